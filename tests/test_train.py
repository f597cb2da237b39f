"""The training engine on tiny generated mazes: exact resume, atomic checkpoints, the
inner-loop schedule, --init-from, freeze_weights, the NaN guard, autocast, plot and eval."""

import json
import shutil
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import trmzoo.weights
from trmzoo.cli import cli, quiet_libraries
from trmzoo.data.format import read_split, write_identifiers, write_split
from trmzoo.errors import CheckpointError, RecipeError, TrainingError
from trmzoo.plot import RUN_PANELS, run_figure
from trmzoo.recipe import dump_recipe, load_recipe
from trmzoo.factory import create_task
from trmzoo.run import read_metrics
from trmzoo.train.trainer import Trainer, train

RECIPE = Path(__file__).parent / "data" / "recipes" / "maze_tiny.yaml"
CLI = [sys.executable, "-c", "from trmzoo.cli import main; main()"]


def build_multi_id_maze(out: Path) -> Path:
    """The tiny maze data with one puzzle identifier per dihedral version (1..8; 0 is the
    blank), so the sparse puzzle table has several rows to learn."""
    create_task(load_recipe(RECIPE).task).build(out, progress=False)
    for split in ("train", "test"):
        meta, arrays = read_split(out, split)
        arrays.puzzle_identifiers = (1 + np.arange(len(arrays.puzzle_identifiers)) % 8).astype(np.int32)
        write_split(out, split, arrays, meta.model_copy(update={"num_puzzle_identifiers": 9}))
    write_identifiers(out, ["<blank>"] + [f"version{i}" for i in range(8)])
    return out


def same_state(a, b, path="") -> list[str]:
    """Paths where two nested checkpoint structures differ (tensors compared bit for bit)."""
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in same_state(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, (list, tuple)):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same_state(x, y, f"{path}/{i}")]
    if isinstance(a, torch.Tensor):
        return [] if a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b) else [path]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.fixture(scope="module")
def maze_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("maze") / "data"
    create_task(load_recipe(RECIPE).task).build(out, progress=False)
    return out


@pytest.fixture(scope="module")
def multi_dir(tmp_path_factory) -> Path:
    return build_multi_id_maze(tmp_path_factory.mktemp("multi") / "data")


@pytest.fixture(scope="module")
def base_run(tmp_path_factory, multi_dir) -> Path:
    """A finished 12-step run on the several-identifier data, with evaluations and checkpoints."""
    out = tmp_path_factory.mktemp("runs") / "base"
    train(str(RECIPE), overrides=(f"data.dir={multi_dir}", "train.max_steps=12", "train.eval_interval=6",
                                  "train.checkpoint_interval=6", "train.log_interval=3"), out=str(out), progress=False)
    return out


def trainer(data_dir: Path, run_dir: Path, *sets: str, init_from=None) -> Trainer:
    run_dir.mkdir(parents=True, exist_ok=True)
    recipe = load_recipe(RECIPE, (f"data.dir={data_dir}", *sets))
    (run_dir / "recipe.yaml").write_text(dump_recipe(recipe))
    return Trainer(recipe, run_dir, init_from=init_from, progress=False)


# -- exact resume ------------------------------------------------------------------------------
FAST_OPTIONS = ["train.augment=true", "train.supervision_weight_decay=0.7", "train.optimizer=muon",
                "train.lr_schedule=linear", "train.parallel_latents=2",
                "train.curriculum=[{until_step: 4, H_cycles: 1, L_cycles: 1, max_steps: 2}, {until_step: 8, L_cycles: 1}]"]
"""Every time-to-accuracy option on (tests/test_fast_training.py), the curriculum's stages around the kill."""


@pytest.mark.slow
@pytest.mark.parametrize("options", [[], FAST_OPTIONS], ids=["official", "fast_options"])
def test_sigkill_then_resume_is_bit_exact(maze_dir, tmp_path, options):
    sets = [f"data.dir={maze_dir}", "train.max_steps=40", "train.checkpoint_interval=3", "train.eval_interval=10",
            "train.log_interval=5", *options]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    train(str(RECIPE), overrides=tuple(sets), out=str(whole), progress=False)

    args = [f"--set={s}" for s in sets]
    proc = subprocess.Popen([*CLI, "train", str(RECIPE), "--out", str(killed), "--quiet", *args], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not (killed / "resume.pt").exists():
        assert proc.poll() is None, f"the run ended before its first checkpoint: {proc.stderr.read().decode()}"
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    step = torch.load(killed / "resume.pt", weights_only=True)["step"]
    assert 0 < step < 40, f"the kill came too late to test a resume (step {step})"

    done = subprocess.run([*CLI, "train", "--resume", str(killed), "--quiet"], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    for name in ("model.safetensors", "puzzle_emb.safetensors"):
        assert same_state(load_file(whole / "weights" / name), load_file(killed / "weights" / name)) == []
    # live weights, optimizer, EMA, RNGs, loader position and carry
    assert same_state(torch.load(whole / "resume.pt", weights_only=True),
                      torch.load(killed / "resume.pt", weights_only=True)) == []
    # the log is the one of the run never stopped: nothing the killed run wrote after its checkpoint is
    # kept twice, and the first record after the resume averages the same steps (its speed aside)
    untimed = lambda run: [{k: v for k, v in r.items() if k != "samples_per_s"} for r in read_metrics(run)]  # noqa: E731
    assert untimed(killed) == untimed(whole)
    assert not list(killed.glob(".*tmp*")) and not list((killed / "weights").glob(".*tmp*"))


class Killed(BaseException):
    """Stands for the process dying in the middle of writing a file: no handler of trmzoo catches it, as a
    killed process runs none (an error or Ctrl-C there removes the temporary file instead)."""


def dying_after(calls: int, real):
    """A writer that works ``calls`` times, then writes half a file and dies."""
    count = [0]

    def write(obj, path, *args, **kwargs):
        count[0] += 1
        if count[0] <= calls:
            return real(obj, path, *args, **kwargs)
        Path(path).write_bytes(b"\x00" * 100)  # a torn temporary file
        raise Killed(str(path))

    return write


@pytest.mark.parametrize("dies_in", ["resume.pt", "model.safetensors"])
def test_a_save_cut_short_keeps_the_last_checkpoint(maze_dir, tmp_path, monkeypatch, dies_in):
    run = tmp_path / "run"
    sets = (f"data.dir={maze_dir}", "train.max_steps=8", "train.checkpoint_interval=4", "train.log_interval=2")
    if dies_in == "resume.pt":  # the second torch.save is the final checkpoint at step 8
        monkeypatch.setattr(torch, "save", dying_after(1, torch.save))
    else:  # save_file writes the network then the puzzle table; the third call is step 8's network
        monkeypatch.setattr(trmzoo.weights, "save_file", dying_after(2, trmzoo.weights.save_file))
    with pytest.raises(Killed):
        train(str(RECIPE), overrides=sets, out=str(run), progress=False)
    monkeypatch.undo()
    assert list(run.glob(f"**/.{dies_in}.tmp*"))  # the torn bytes stayed in the temporary file
    resume = torch.load(run / "resume.pt", weights_only=True)
    assert resume["step"] == 4
    # weights/ is written before resume.pt: dying in resume.pt leaves the complete step-8 weights
    weights_step = json.loads((run / "weights" / "config.json").read_text())["step"]
    assert weights_step == (8 if dies_in == "resume.pt" else 4)
    trmzoo.load(run)  # every weight file is whole
    if weights_step == 4:
        assert same_state(load_file(run / "weights" / "model.safetensors"), ema_view(resume)) == []

    train("", resume=str(run), progress=False)
    assert torch.load(run / "resume.pt", weights_only=True)["step"] == 8
    assert not list(run.glob("**/.*tmp*"))
    train_steps = [r["step"] for r in read_metrics(run) if "loss" in r]
    assert train_steps == [2, 4, 6, 8]


def ema_view(resume: dict) -> dict[str, torch.Tensor]:
    """The network weights a checkpoint's weights/ folder holds: the EMA of the parameters, live buffers."""
    state = {k: v for k, v in resume["model"].items() if k != "puzzle_emb.weight"}
    return {**state, **resume["ema"]}


def test_a_damaged_resume_file_is_one_line(maze_dir, tmp_path):
    run = tmp_path / "run"
    train(str(RECIPE), overrides=(f"data.dir={maze_dir}", "train.max_steps=2"), out=str(run), progress=False)
    data = (run / "resume.pt").read_bytes()
    (run / "resume.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"resume\.pt: cannot read the resume state") as err:
        train("", resume=str(run), progress=False)
    assert "\n" not in str(err.value)


# -- schedules, initialisation, freezing -------------------------------------------------------
def test_inner_loop_runs_every_supervision_step_on_one_batch_and_resumes_exactly(maze_dir, tmp_path):
    sets = ("train.schedule=inner_loop", "model.halting.kind=fixed", "train.max_steps=10")
    t = trainer(maze_dir, tmp_path / "a", *sets)
    for step in range(1, 7):
        t.train_step()
        assert t.loader.position["batch"] == 1 + (step - 1) // 4  # a new batch at steps 1 and 5
        assert (t.state.carry is None) == (step == 4)
    assert t.state.carry.steps.tolist() == [2] * 16
    t.save()  # in the middle of the second batch's supervision steps

    resumed = trainer(maze_dir, tmp_path / "a", *sets)
    resumed.restore()
    resumed.fit()
    whole = trainer(maze_dir, tmp_path / "b", *sets)
    whole.fit()
    assert same_state(torch.load(tmp_path / "a" / "resume.pt", weights_only=True),
                      torch.load(tmp_path / "b" / "resume.pt", weights_only=True)) == []


def test_init_from_a_run_replaces_another_sized_puzzle_table_by_its_mean_row(maze_dir, base_run, tmp_path):
    source = trmzoo.load(base_run)
    table = source.puzzle_emb.weight
    assert table.shape[0] == 9 and not torch.allclose(table[1], table[2])
    t = trainer(maze_dir, tmp_path / "run", init_from=str(base_run))
    state = t.model.state_dict()
    assert state["puzzle_emb.weight"].shape == (1, 32)
    assert torch.allclose(state["puzzle_emb.weight"][0], table.mean(0))
    for key, value in source.state_dict().items():
        if key != "puzzle_emb.weight":
            assert torch.equal(state[key], value), key
    with pytest.raises(CheckpointError, match=r"--init-from .*base.* has shape"):
        trainer(maze_dir, tmp_path / "other", "model.hidden_size=16", "model.puzzle_emb_ndim=16",
                init_from=str(base_run))


def test_freeze_weights_trains_only_the_puzzle_table(multi_dir, tmp_path):
    t = trainer(multi_dir, tmp_path / "run", "train.freeze_weights=true", "train.max_steps=3", "train.lr=0.5",
                "train.puzzle_emb_lr=0.25", "train.lr_schedule=constant", "train.lr_warmup_steps=0")
    before = {k: v.clone() for k, v in t.model.state_dict().items()}
    t.fit()
    after = t.model.state_dict()
    for key, value in before.items():
        if key != "puzzle_emb.weight":
            assert torch.equal(after[key], value), key
    assert not torch.equal(after["puzzle_emb.weight"], before["puzzle_emb.weight"])
    logged = [json.loads(line)["lr"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
              if '"lr"' in line]
    assert logged and set(logged) == {0.25}  # the rate of the table it trains, not train.lr
    with pytest.raises(RecipeError, match="train.freeze_weights: the model has no puzzle embedding"):
        trainer(multi_dir, tmp_path / "none", "train.freeze_weights=true", "model.puzzle_emb_ndim=0")


def test_non_finite_loss_stops_with_one_line_and_keeps_the_last_good_state(maze_dir, tmp_path, monkeypatch, capsys):
    from trmzoo.cli import main

    run = tmp_path / "run"
    argv = ["trmzoo", "train", str(RECIPE), "--out", str(run), "--quiet", f"--set=data.dir={maze_dir}",
            "--set=train.lr=1e30", "--set=train.lr_warmup_steps=0", "--set=train.max_steps=20"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    failed = int(err.split("step ")[1].split(":")[0])
    assert err.startswith(f"error: step {failed}: the loss is ") and f"--resume {run}" in err
    resume = torch.load(run / "resume.pt", weights_only=True)
    assert resume["step"] == failed - 1
    assert json.loads((run / "weights" / "config.json").read_text())["step"] == failed - 1
    assert all(torch.isfinite(v).all() for v in resume["model"].values())
    with pytest.raises(TrainingError, match=f"step {failed}: the loss is"):  # a resume fails at the same step
        train("", resume=str(run), progress=False)


def test_autocast_trains_in_bfloat16_with_float32_masters(maze_dir, tmp_path):
    t = trainer(maze_dir, tmp_path / "run", "train.autocast=true", "model.forward_dtype=bfloat16",
                "train.max_steps=3")
    metrics = [t.train_step() for _ in range(3)]
    assert all(torch.isfinite(m["loss"]) for m in metrics)
    assert all(p.dtype == torch.float32 for p in t.model.parameters())
    # the run's evaluation scores the model it saves, in float32, as `trmzoo eval RUN` does afterwards
    t.save()
    saved = trmzoo.load(tmp_path / "run")
    assert saved.config.forward_dtype == "float32"
    cfg = t.recipe.eval
    assert t.evaluate() == trmzoo.evaluate(saved, maze_dir, t.task, max_puzzles=cfg.max_puzzles,
                                           batch_size=cfg.batch_size or t.recipe.train.global_batch_size)
    with pytest.raises(RecipeError, match="train.autocast: needs model.forward_dtype bfloat16"):
        trainer(maze_dir, tmp_path / "fp32", "train.autocast=true")


def test_constant_schedule_ignores_the_cosine_floor(maze_dir, tmp_path):
    t = trainer(maze_dir, tmp_path / "run", "train.lr_schedule=constant", "train.lr_warmup_steps=2",
                "train.max_steps=4")
    lrs = [float(t.train_step()["lr"]) for _ in range(4)]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3, 1e-3])


@pytest.mark.parametrize("sets", [["model.halting={kind: fixed, max_steps: 1}"],
                                  ["train.curriculum=[{until_step: 2, max_steps: 1}]"]], ids=["single_pass", "curriculum"])
def test_one_supervision_step_per_sample_trains(maze_dir, tmp_path, sets):
    """A single pass (docs/baselines.md) has no minimum step count to explore: every batch is new."""
    t = trainer(maze_dir, tmp_path / "run", *sets, "train.max_steps=3")
    metrics = [t.train_step() for _ in range(3)]
    assert all(torch.isfinite(m["loss"]) for m in metrics)
    assert [(float(m["count"]), float(m["steps"])) for m in metrics[:2]] == [(16, 16)] * 2  # all halt after one step


# -- the run folder: metrics, plot, eval, TensorBoard --------------------------------------------
def test_run_folder_logs_train_and_eval_records(base_run):
    records = read_metrics(base_run)
    assert [r["step"] for r in records if "loss" in r] == [3, 6, 9, 12]
    evals = [r for r in records if "eval/exact_accuracy" in r]
    assert [r["step"] for r in evals] == [6, 12] and all(r["eval/count"] == 16 for r in evals)
    assert json.loads((base_run / "weights" / "config.json").read_text())["step"] == 12


def test_plot_writes_a_png_with_the_four_panels(base_run, tmp_path):
    out = tmp_path / "curves.png"
    result = CliRunner().invoke(cli, ["plot", str(base_run), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "curves.svg"
    svg.write_text("my picture")  # replaced only with --overwrite, in the format its suffix names
    assert CliRunner().invoke(cli, ["plot", str(base_run), "--out", str(svg)]).exit_code == 1
    assert svg.read_text() == "my picture"
    assert CliRunner().invoke(cli, ["plot", str(base_run), "--out", str(svg), "--overwrite"]).exit_code == 0
    assert "<svg" in svg.read_text()[:500]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "curves.svg"]  # no temporary file left
    fig = run_figure(read_metrics(base_run))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [title for title, _, _ in RUN_PANELS]
    assert all(ax.lines for ax in fig.axes)  # every panel has data
    exact = fig.axes[titles.index("exact accuracy")]
    assert [line.get_label() for line in exact.lines] == ["train", "test"]


def test_eval_prints_the_task_metrics_of_a_run(base_run):
    result = CliRunner().invoke(cli, ["eval", str(base_run), "--json", "--batch-size", "16", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics.pop("strategy") == "plain"
    final = [r for r in read_metrics(base_run) if "eval/count" in r][-1]  # the same EMA weights
    assert metrics == pytest.approx({k.removeprefix("eval/"): v for k, v in final.items() if k != "step"}, abs=1e-6)


@pytest.mark.slow
def test_eval_compiled_gives_the_metrics_of_eager(base_run, monkeypatch):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    quiet_libraries()  # as trmzoo's entry point does: torch's note on CUDA_HOME would precede the JSON
    args = ["eval", str(base_run), "--json", "--batch-size", "16", "--device", "cpu"]
    eager = json.loads(CliRunner().invoke(cli, args).output)
    result = CliRunner().invoke(cli, [*args, "--compile"])
    assert result.exit_code == 0, result.output
    torch._dynamo.reset()
    assert json.loads(result.output) == pytest.approx(eager, abs=1e-5)


def test_eval_compile_without_a_cpp_compiler_is_one_line_and_exit_1(base_run, tmp_path):
    env = {**os.environ, "CXX": str(tmp_path / "no-such-g++"), "TORCHINDUCTOR_CACHE_DIR": str(tmp_path / "cache")}
    result = subprocess.run([sys.executable, "-m", "trmzoo", "eval", str(base_run), "--compile", "--device", "cpu"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith("error: torch.compile on a CPU needs a working C++ compiler (")
    assert "no-such-g++" in result.stderr and "set CXX" in result.stderr


def test_tensorboard_events_when_installed(base_run):
    pytest.importorskip("torch.utils.tensorboard", reason="TensorBoard is optional")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(base_run / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss")] == [3, 6, 9, 12]
    assert [e.step for e in events.Scalars("eval/exact_accuracy")] == [6, 12]
    last = [r for r in read_metrics(base_run) if "loss" in r][-1]
    assert events.Scalars("loss")[-1].value == pytest.approx(last["loss"], abs=1e-5)


def test_dry_run_reports_the_dataset_where_built_and_builds_nothing(maze_dir, tmp_path):
    built = CliRunner().invoke(cli, ["train", str(RECIPE), "--dry-run", f"--set=data.dir={maze_dir}"])
    assert built.exit_code == 0, built.output
    train = json.loads((maze_dir / "train" / "dataset.json").read_text())
    assert f"vocab {train['vocab_size']}, seq_len {train['seq_len']}" in built.output
    assert built.output.strip().endswith(f"data {maze_dir}: built, {train['total_groups']} training puzzles")

    missing = tmp_path / "data"
    fresh = CliRunner().invoke(cli, ["train", str(RECIPE), "--dry-run", f"--set=data.dir={missing}"])
    assert fresh.exit_code == 0, fresh.output
    assert fresh.output.strip().endswith(f"data {missing}: not built yet; the run builds it")
    assert not missing.exists()


def test_dry_run_refuses_what_the_run_would_refuse_and_changes_nothing(maze_dir, base_run):
    before = {p: p.read_bytes() for p in base_run.rglob("*") if p.is_file()}
    dry = ["train", str(RECIPE), "--dry-run", f"--set=data.dir={maze_dir}"]
    fits = CliRunner().invoke(cli, [*dry, "--init-from", str(base_run)])  # another puzzle count: its mean row
    assert fits.exit_code == 0, fits.output
    wider = CliRunner().invoke(cli, [*dry, "--init-from", str(base_run), "--set", "model.hidden_size=48"])
    assert wider.exit_code == 1 and wider.output.startswith(f"error: --init-from {base_run}: ")
    assert "has shape" in wider.output and len(wider.output.splitlines()) == 1
    taken = CliRunner().invoke(cli, [*dry, "--out", str(base_run)])
    assert taken.exit_code == 1 and f"continue it with --resume {base_run}" in taken.output
    inside = CliRunner().invoke(cli, [*dry, "--out", str(base_run / "more")])
    assert inside.exit_code == 1 and "is inside the run folder" in inside.output
    assert CliRunner().invoke(cli, [*dry, "--out", str(base_run), "--overwrite"]).exit_code == 0
    assert {p: p.read_bytes() for p in base_run.rglob("*") if p.is_file()} == before


def test_dry_run_refuses_augmentation_of_a_dataset_with_puzzle_identifiers(multi_dir):
    result = CliRunner().invoke(cli, ["train", str(RECIPE), "--dry-run", f"--set=data.dir={multi_dir}",
                                      "--set", "train.augment=true"])
    assert result.exit_code == 1 and result.output.startswith("error: --set train.augment: the dataset has 9 puzzle")


def test_resuming_a_finished_run_reports_its_evaluation_and_changes_nothing(base_run, tmp_path):
    run = tmp_path / "finished"
    shutil.copytree(base_run, run)
    before = {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    metrics = train("", resume=str(run), progress=False)
    assert metrics["exact_accuracy"] == read_metrics(run)[-1]["eval/exact_accuracy"]
    assert {p.name: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


def test_a_restarted_torchrun_worker_finds_the_default_folder_its_launch_started(base_run, multi_dir, tmp_path,
                                                                                 monkeypatch):
    """Without --out the folder is named by the first attempt's time; a restart finds it by its launch.json."""
    started = tmp_path / "runs" / f"{RECIPE.stem}-20261207-031500"
    shutil.copytree(base_run, started)
    (started / "launch.json").write_text(json.dumps({"torchelastic_run_id": "launch-7"}))
    before = {p.name: p.read_bytes() for p in started.rglob("*") if p.is_file()}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "launch-7")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    metrics = train(str(RECIPE), overrides=(f"data.dir={multi_dir}", "train.max_steps=12", "train.eval_interval=6",
                                            "train.checkpoint_interval=6", "train.log_interval=3"), progress=False)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [started.name]  # no second folder
    assert metrics["exact_accuracy"] == read_metrics(started)[-1]["eval/exact_accuracy"]
    assert {p.name: p.read_bytes() for p in started.rglob("*") if p.is_file()} == before


def test_a_run_stopped_by_its_time_budget_logs_its_last_steps(maze_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "_out_of_time", lambda self, deadline: self.state.step >= 3)  # the budget, spent
    t = trainer(maze_dir, tmp_path / "run", "train.max_steps=10", "train.log_interval=5", "train.time_budget_s=60")
    metrics = t.fit()
    records = read_metrics(tmp_path / "run")
    assert [r["step"] for r in records if "loss" in r] == [3]  # not only the evaluation of step 3
    assert [r["step"] for r in records if "eval/count" in r] == [3] and "exact_accuracy" in metrics
