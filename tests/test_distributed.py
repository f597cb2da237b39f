"""Two processes (torchrun, gloo) train like one process with the same global batch.

Run by pytest, this file launches itself under ``torch.distributed.run``; each worker
trains into its own folder so that the test can see that only rank 0 writes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from test_train import RECIPE, build_multi_id_maze, same_state
from trmzoo.recipe import load_recipe
from trmzoo.distributed import DistInfo
from trmzoo.run import read_metrics
from trmzoo.train.trainer import Trainer, train

# several puzzle ids per batch, shared between the two halves: the sparse gather matters
SETS = ("train.max_steps=6", "train.log_interval=2", "train.eval_interval=3", "train.puzzle_emb_lr=0.1",
        "train.checkpoint_interval=3")


def close(a: dict, b: dict, atol: float = 1e-5) -> list[str]:
    return [k for k in a if not torch.allclose(a[k].double(), b[k].double(), rtol=0, atol=atol)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("dist")
    data = build_multi_id_maze(base / "data")
    single = train(str(RECIPE), overrides=(f"data.dir={data}", *SETS), out=str(base / "single"), progress=False)
    (base / "single.json").write_text(json.dumps(single))
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", __file__,
         str(data), str(base)],
        cwd=base, env={**env, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return base


@pytest.mark.slow
def test_two_processes_reach_the_weights_of_one(runs):
    single, rank0 = runs / "single", runs / "rank0"
    for name in ("model.safetensors", "puzzle_emb.safetensors"):
        assert close(load_file(single / "weights" / name), load_file(rank0 / "weights" / name)) == [], name
    one = torch.load(single / "resume.pt", weights_only=True)
    two = torch.load(rank0 / "resume.pt", weights_only=True)
    assert close(one["model"], two["model"]) == []  # the live weights, puzzle table included
    assert close(one["ema"], two["ema"]) == []
    for a, b in zip(one["optimizer"]["state"].values(), two["optimizer"]["state"].values()):
        assert close(a, b, atol=1e-6) == []
    # the same examples and exploration draws were consumed
    assert one["loader"] == two["loader"] and torch.equal(one["explore_rng"], two["explore_rng"])
    # rank 0 holds the first half of the global batch's carry
    assert same_state({k: v[:8] for k, v in one["carry"]["data"].items()}, two["carry"]["data"]) == []
    assert torch.equal(one["carry"]["steps"][:8], two["carry"]["steps"])
    assert torch.allclose(one["carry"]["y"][:8], two["carry"]["y"], atol=1e-4)


@pytest.mark.slow
def test_two_processes_log_and_evaluate_like_one(runs):
    single = json.loads((runs / "single.json").read_text())
    for rank in (0, 1):  # each process returns rank 0's metrics over the whole test split
        assert json.loads((runs / f"report{rank}.json").read_text()) == pytest.approx(single, abs=1e-6)
    assert single["count"] == 16
    one, two = read_metrics(runs / "single"), read_metrics(runs / "rank0")
    assert [sorted(r) for r in one] == [sorted(r) for r in two]
    for a, b in zip(one, two):
        for key in a:
            if key != "samples_per_s":
                assert a[key] == pytest.approx(b[key], abs=1e-5), key


@pytest.mark.slow
def test_only_rank_zero_writes(runs):
    assert (runs / "rank0" / "resume.pt").exists() and (runs / "rank0" / "recipe.yaml").exists()
    assert not (runs / "rank1").exists()


def test_exploration_draws_do_not_depend_on_the_process_count(tmp_path):
    """Each process takes its slice of draws made for the whole global batch from a shared seed."""
    data = build_multi_id_maze(tmp_path / "data")
    t = Trainer(load_recipe(RECIPE, (f"data.dir={data}", "model.halting.exploration_prob=0.5")), tmp_path / "run",
                progress=False)

    def draws(rank: int, world: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        t.dist = DistInfo(rank=rank, world_size=world)
        t.explore_rng.manual_seed(1)
        return [t._explore(16 // world) for _ in range(3)]

    whole, halves = draws(0, 1), [draws(r, 2) for r in (0, 1)]
    for step, (uniform, minimum) in enumerate(whole):
        assert torch.equal(uniform, torch.cat([h[step][0] for h in halves]))
        assert torch.equal(minimum, torch.cat([h[step][1] for h in halves]))
        assert minimum.min() >= 2 and minimum.max() <= 4


def worker(data_dir: str, base: str) -> None:
    rank = int(os.environ["RANK"])
    metrics = train(str(RECIPE), overrides=(f"data.dir={data_dir}", *SETS), out=str(Path(base) / f"rank{rank}"),
                    progress=False)
    Path(base, f"report{rank}.json").write_text(json.dumps(metrics))  # the test's record, not the run's


if __name__ == "__main__":
    worker(*sys.argv[1:])
