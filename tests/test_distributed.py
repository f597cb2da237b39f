"""Two processes (torchrun, gloo, on 127.0.0.1 only) train like one process with the same global batch,
on one node and as two nodes; a worker killed mid-run is restarted by torchrun and the run resumes
from its last checkpoint to the weights of a run never stopped.

Run by pytest, this file launches itself under ``torch.distributed.run``; in the one-node run each
worker trains into its own folder so that the test can see that only rank 0 writes.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
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
# the inner-loop schedule with noisy parallel latents, from weights whose halting head fires at once: samples halt
# at steps their exploration draws set, so one process's half of the batch halts before the other's
OPTIONS = ("train.schedule=inner_loop", "train.parallel_latents=2", "train.latent_noise=0.5",
           "model.halting.exploration_prob=0.5", "train.log_interval=1")
KILLED_AFTER_STEP = 4  # the elastic run's rank 1 dies here, one step after the checkpoint at step 3
LAUNCH_TIMEOUT_S = 180


def close(a: dict, b: dict, atol: float = 1e-5) -> list[str]:
    return [k for k in a if not torch.allclose(a[k].double(), b[k].double(), rtol=0, atol=atol)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(base: Path, data: Path, mode: str, *, nnodes: int, nproc: int, port: int, node: int = 0,
             restarts: int = 0) -> subprocess.Popen:
    """One torchrun agent of a launch on 127.0.0.1 (a c10d rendezvous hosted by node 0) running :func:`worker`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TORCHELASTIC_", "TRMZOO_")) and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK",
                                                                             "MASTER_ADDR", "MASTER_PORT")}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nnodes), "--nproc-per-node", str(nproc),
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", f"trmzoo-{mode}",
        "--rdzv-conf", f"is_host={int(node == 0)},join_timeout=60", "--local-addr", "127.0.0.1",
        "--max-restarts", str(restarts), "--monitor-interval", "0.2", __file__, str(data), str(base), mode,
    ]
    return subprocess.Popen(command, cwd=base, env={**env, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(*agents: subprocess.Popen) -> None:
    """Wait for every agent; all must succeed. A launch still running after LAUNCH_TIMEOUT_S is
    killed with its workers (each agent leads its own process group)."""
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    outputs = []
    try:
        for agent in agents:
            outputs.append(agent.communicate(timeout=max(deadline - time.monotonic(), 1))[0])
    except subprocess.TimeoutExpired:
        pass
    finally:
        for agent in agents:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(agent.pid, signal.SIGKILL)
            agent.wait()
    assert len(outputs) == len(agents), f"a torchrun launch ran past {LAUNCH_TIMEOUT_S} s and was killed"
    failed = [out[-3000:] for agent, out in zip(agents, outputs) if agent.returncode != 0]
    assert not failed, "\n".join(failed)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """The one-process reference and the uninterrupted two-process run on one node."""
    base = tmp_path_factory.mktemp("dist")
    data = build_multi_id_maze(base / "data")
    single = train(str(RECIPE), overrides=(f"data.dir={data}", *SETS), out=str(base / "single"), progress=False)
    (base / "single.json").write_text(json.dumps(single))
    finish(torchrun(base, data, "one-node", nnodes=1, nproc=2, port=free_port()))
    return base


def halting_weights(base: Path, data: Path) -> Path:
    """The recipe's model with a halting head that fires at once (q_halt +3), saved as a weight folder."""
    from trmzoo.weights import save_pretrained

    t = Trainer(load_recipe(RECIPE, (f"data.dir={data}",)), base / "scratch", progress=False)
    with torch.no_grad():
        t.model.q_head.bias.copy_(torch.tensor([3.0, -3.0]))
    return save_pretrained(t.model, base / "halting-weights")


@pytest.fixture(scope="module")
def options_runs(runs) -> Path:
    """One process and two with OPTIONS, from the same halting weights."""
    weights = halting_weights(runs, runs / "data")
    train(str(RECIPE), overrides=(f"data.dir={runs / 'data'}", *SETS, *OPTIONS), out=str(runs / "options-single"),
          init_from=str(weights), progress=False)
    finish(torchrun(runs, runs / "data", "options", nnodes=1, nproc=2, port=free_port()))
    return runs


@pytest.fixture(scope="module")
def two_nodes(runs) -> Path:
    """The same two-process run as two torchrun nodes of one process each."""
    port = free_port()
    finish(*[torchrun(runs, runs / "data", "two-nodes", nnodes=2, nproc=1, port=port, node=n) for n in (0, 1)])
    return runs / "two-nodes"


@pytest.fixture(scope="module")
def elastic(runs) -> Path:
    """The two-process run with rank 1 killed (SIGKILL) after step 4; torchrun may restart once."""
    finish(torchrun(runs, runs / "data", "elastic", nnodes=1, nproc=2, port=free_port(), restarts=1))
    return runs / "elastic"


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
    # resume.pt holds the carry of the whole global batch (both processes' halves), as one process does
    assert same_state(one["carry"]["data"], two["carry"]["data"]) == []
    assert torch.equal(one["carry"]["steps"], two["carry"]["steps"])
    assert torch.equal(one["carry"]["halted"], two["carry"]["halted"])
    assert torch.allclose(one["carry"]["y"], two["carry"]["y"], atol=1e-4)


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
def test_the_inner_loop_and_noisy_parallel_latents_train_like_one_process(options_runs):
    one = torch.load(options_runs / "options-single" / "resume.pt", weights_only=True)
    two = torch.load(options_runs / "options" / "resume.pt", weights_only=True)
    assert one["step"] == two["step"] == 6 and one["loader"] == two["loader"]  # no hang; the same batches taken
    assert torch.equal(one["torch_rng"], two["torch_rng"])  # the latent noise drawn for the whole global batch
    assert close(one["model"], two["model"]) == [] and close(one["ema"], two["ema"]) == []
    def mean_steps(run: str) -> list[float]:
        return [r["steps"] for r in read_metrics(options_runs / run) if "steps" in r]

    assert len(set(mean_steps("options-single"))) > 1  # samples halted at different steps: the schedule was exercised
    assert mean_steps("options") == pytest.approx(mean_steps("options-single"), abs=1e-6)


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


@pytest.mark.slow
def test_two_nodes_train_like_one_node(runs, two_nodes):
    assert sorted((runs / "two-nodes.attempts").read_text().splitlines()) == ["0 0", "0 1"]
    one_node = torch.load(runs / "rank0" / "resume.pt", weights_only=True)
    nodes = torch.load(two_nodes / "resume.pt", weights_only=True)
    assert same_state(one_node, nodes) == []  # bit for bit: the same two-process sums, through the network
    for name in ("model.safetensors", "puzzle_emb.safetensors"):
        assert same_state(load_file(runs / "rank0" / "weights" / name), load_file(two_nodes / "weights" / name)) == []


@pytest.mark.slow
def test_a_killed_worker_is_restarted_and_the_run_resumes_to_the_same_weights(runs, elastic):
    assert (runs / "elastic.killed").read_text() == f"rank 1 killed after step {KILLED_AFTER_STEP}"
    assert sorted((runs / "elastic.attempts").read_text().splitlines()) == ["0 0", "0 1", "1 0", "1 1"]
    never_stopped = torch.load(runs / "rank0" / "resume.pt", weights_only=True)
    restarted = torch.load(elastic / "resume.pt", weights_only=True)
    assert restarted["step"] == 6
    assert same_state(never_stopped, restarted) == []  # weights, optimizer, EMA, carry, RNGs: torch.equal
    for name in ("model.safetensors", "puzzle_emb.safetensors"):
        assert same_state(load_file(runs / "rank0" / "weights" / name), load_file(elastic / "weights" / name)) == []
    # what the killed attempt logged after its checkpoint (step 4) was dropped, then logged again once
    records = [{k: v for k, v in r.items() if k != "samples_per_s"} for r in read_metrics(elastic)]
    assert records == [{k: v for k, v in r.items() if k != "samples_per_s"} for r in read_metrics(runs / "rank0")]


def worker(data_dir: str, base: str, mode: str) -> None:
    rank, attempt = int(os.environ["RANK"]), int(os.environ["TORCHELASTIC_RESTART_COUNT"])
    with open(Path(base, f"{mode}.attempts"), "a") as f:
        f.write(f"{attempt} {rank}\n")
    if mode == "elastic" and rank == 1 and attempt == 0:
        real = Trainer.train_step

        def step_then_die(self):
            metrics = real(self)
            if self.state.step == KILLED_AFTER_STEP:
                Path(base, "elastic.killed").write_text(f"rank 1 killed after step {KILLED_AFTER_STEP}")
                os.kill(os.getpid(), signal.SIGKILL)
            return metrics

        Trainer.train_step = step_then_die
    out = Path(base) / (f"rank{rank}" if mode == "one-node" else mode)  # one node: each rank gets a folder
    options = OPTIONS if mode == "options" else ()
    metrics = train(str(RECIPE), overrides=(f"data.dir={data_dir}", *SETS, *options), out=str(out), progress=False,
                    init_from=str(Path(base) / "halting-weights") if options else None)
    if mode == "one-node":
        Path(base, f"report{rank}.json").write_text(json.dumps(metrics))  # the test's record, not the run's


if __name__ == "__main__":
    worker(*sys.argv[1:])
