"""Nothing a user already has (a run, a weight folder, a dataset, any folder) is changed by a command
that fails or that was not asked to replace it: replacing a run, a dataset or a named output file takes
``--overwrite``, and a write that fails midway keeps the old file."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from test_train import RECIPE
from trmzoo.cli import cli
from trmzoo.errors import TrmzooError
from trmzoo.files import atomic_write
from trmzoo.run import read_metrics
from trmzoo.train.trainer import Trainer

OFFICIAL = Path(__file__).parent / "data" / "official" / "trm"


def maze(**changes) -> list[str]:
    """``trmzoo data build maze`` options of a tiny generated maze dataset."""
    options = {"size": 5, "source": "generate", "min_path_length": 2, "num_train": 7, "num_test": 4, **changes}
    return [part for key, value in options.items() for part in (f"--{key.replace('_', '-')}", str(value))]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its bytes (folders as entries too)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


def refused(result, *words: str, status: int = 1) -> str:
    """The one-line error of a refused command (after any progress bar), checked for the words it must hold."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output and "error: " in result.output, result.output
    message = result.output[result.output.rindex("error: "):].strip()
    assert len(message.splitlines()) == 1, message
    for word in words:
        assert word in message, message
    return message


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "maze"
    assert invoke("data", "build", "maze", "--out", out, *maze()).exit_code == 0
    return out


def sets(data: Path, steps: int = 2) -> list[str]:
    return ["--set", f"data.dir={data}", "--set", f"train.max_steps={steps}", "--set", "train.lr_warmup_steps=1",
            "--set", "train.global_batch_size=4", "--set", "eval.batch_size=4", "--set", "task.size=5",
            "--set", "task.min_path_length=2", "--set", "task.num_train=7", "--set", "task.num_test=4", "--quiet"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data) -> Path:
    run = tmp_path_factory.mktemp("runs") / "finished"
    result = invoke("train", RECIPE, "--out", run, *sets(data))
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture
def user(tmp_path, finished, data) -> Path:
    """A user's folder: a finished run, one killed before its first checkpoint, a weight folder, a
    dataset, and a folder of their own, each a copy this test may try to damage."""
    shutil.copytree(finished, tmp_path / "run")
    (tmp_path / "early").mkdir()
    shutil.copy(finished / "recipe.yaml", tmp_path / "early" / "recipe.yaml")
    (tmp_path / "early" / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    shutil.copytree(finished / "weights", tmp_path / "weights")
    shutil.copytree(data, tmp_path / "data")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("two years of work\n")
    (tmp_path / "a-file").write_text("not a folder\n")
    return tmp_path


@pytest.mark.parametrize(("target", "words"), [
    ("run", ["already holds a run", "--resume", "--overwrite"]),
    ("early", ["already holds a run", "--overwrite"]),  # killed before its first checkpoint
    ("weights", ["already holds a run", "--overwrite"]),
    ("notes", ["already holds files", "--overwrite"]),
    ("a-file", ["is a file", "--out"]),
    ("a-file/run", ["cannot be created", "a-file is a file"]),
])
def test_train_out_onto_what_exists_is_refused_and_changes_nothing(user, target, words):
    before = snapshot(user)
    status = 2 if target == "a-file" else 1  # click refuses a file for --out itself: a usage mistake
    refused(invoke("train", RECIPE, "--out", user / target, *sets(user / "data")), str(user / target), *words,
            status=status)
    assert snapshot(user) == before


def test_overwrite_never_removes_a_folder_that_is_not_a_run(user):
    before = snapshot(user)
    refused(invoke("train", RECIPE, "--out", user / "notes", "--overwrite", *sets(user / "data")),
            "not a run folder", "leaves it alone")
    assert snapshot(user) == before


def test_overwrite_replaces_a_run_and_an_empty_folder_is_free(user):
    old = read_metrics(user / "run")
    result = invoke("train", RECIPE, "--out", user / "run", "--overwrite", *sets(user / "data", steps=1))
    assert result.exit_code == 0, result.output
    new = read_metrics(user / "run")
    assert new[-1]["step"] == 1 and old[-1]["step"] == 2 and all(r["step"] <= 1 for r in new)
    (user / "empty").mkdir()
    assert invoke("train", RECIPE, "--out", user / "empty", *sets(user / "data", steps=1)).exit_code == 0
    assert (user / "empty" / "resume.pt").exists()


def test_a_batch_larger_than_an_epoch_is_refused_before_the_old_run_is_touched(user, monkeypatch):
    before = snapshot(user)
    monkeypatch.setattr(Trainer, "fit", lambda self: pytest.fail("the run started"))
    refused(invoke("train", RECIPE, "--out", user / "run", "--overwrite", *sets(user / "data"),
                   "--set", "train.global_batch_size=64"), "fewer examples in an epoch", "train.global_batch_size 64")
    assert snapshot(user) == before


def failing_at_step(step: int, exc: BaseException):
    """A ``Trainer.train_step`` that raises ``exc`` at ``step`` (1 = the first)."""
    real = Trainer.train_step

    def train_step(self):
        if self.state.step + 1 == step:
            raise exc
        return real(self)
    return train_step


@pytest.mark.parametrize("exc", [TrmzooError("injected"), KeyboardInterrupt()], ids=["error", "ctrl-c"])
def test_a_run_that_fails_before_its_first_checkpoint_leaves_out_as_it_was(user, monkeypatch, exc):
    (user / "empty").mkdir()
    before = snapshot(user)
    monkeypatch.setattr(Trainer, "train_step", failing_at_step(2, exc))
    for out, extra in [("run", ["--overwrite"]), ("empty", []), ("new", [])]:
        result = invoke("train", RECIPE, "--out", user / out, *extra, *sets(user / "data", steps=3))
        assert result.exit_code == (130 if isinstance(exc, KeyboardInterrupt) else 1), result.output
        assert snapshot(user) == before, out  # the old run back, the empty folder empty, no new folder


STOPPED_AT_STEP_2 = """
import os, signal, sys
from trmzoo.train.trainer import Trainer
real, stop = Trainer.train_step, getattr(signal, sys.argv.pop(1))
def train_step(self):
    if self.state.step == 1:
        os.kill(os.getpid(), stop)
    return real(self)
Trainer.train_step = train_step
from trmzoo.cli import main
main()
"""


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_a_stopped_command_says_so_in_one_line_and_leaves_out_as_it_was(user, signal_name):
    before = snapshot(user)
    stopped = subprocess.run([sys.executable, "-c", STOPPED_AT_STEP_2, signal_name, "train", str(RECIPE),
                              "--out", str(user / "run"), "--overwrite", *map(str, sets(user / "data", steps=3))],
                             capture_output=True, text=True, timeout=300)
    assert stopped.returncode == 130, stopped.stderr
    assert stopped.stderr.strip().splitlines()[-1].startswith("error: interrupted; nothing half-written is left")
    assert snapshot(user) == before


def test_the_first_checkpoint_makes_the_new_run_final(user, monkeypatch):
    old = snapshot(user / "run")
    monkeypatch.setattr(Trainer, "train_step", failing_at_step(3, TrmzooError("injected")))
    result = invoke("train", RECIPE, "--out", user / "run", "--overwrite", *sets(user / "data", steps=4),
                    "--set", "train.checkpoint_interval=2")
    assert result.exit_code == 1, result.output
    assert snapshot(user / "run") != old and json.loads((user / "run" / "weights" / "config.json").read_text())["step"] == 2
    assert not list(user.glob(".run.*"))  # the old run is gone, not kept hidden
    monkeypatch.undo()
    assert invoke("train", "--resume", user / "run", "--quiet").exit_code == 0


def test_a_refused_resume_changes_no_file(user):
    before = snapshot(user)
    refused(invoke("train", "--resume", user / "run", "--set", "model.hidden_size=64", "--quiet"),
            str(user / "run" / "resume.pt"), "does not match")
    for setting in ("train.optimizer=adamw", "train.optimizer=muon", "train.ema=false", "train.freeze_weights=true"):
        key = setting.partition("=")[0]
        refused(invoke("train", "--resume", user / "run", "--set", setting, "--quiet"),
                f"--set {key}: the run was trained with", f"--init-from {user / 'run'}")
    assert snapshot(user) == before


@pytest.mark.parametrize(("extra", "named"), [([RECIPE], "RECIPE"), (["--out", "elsewhere"], "--out"),
                                             (["--init-from", "trm-arc-7m"], "--init-from"),
                                             (["--overwrite"], "--overwrite")])
def test_resume_refuses_what_it_would_ignore(user, extra, named):
    before = snapshot(user)
    refused(invoke("train", "--resume", user / "run", *extra, "--quiet"), named, "cannot be given")
    assert snapshot(user) == before


def test_data_build_onto_a_dataset_or_a_folder_is_refused(user):
    before = snapshot(user)
    refused(invoke("data", "build", "maze", "--out", user / "data", *maze()), "already holds a dataset", "--overwrite")
    refused(invoke("data", "build", "sudoku", "--out", user / "data", "--box-rows", "2", "--box-cols", "2"),
            "already holds a dataset")
    refused(invoke("data", "build", "maze", "--out", user / "notes", "--overwrite", *maze()), "not a dataset folder")
    refused(invoke("data", "build", "maze", "--out", user / "a-file", *maze()), "is a file", status=2)
    refused(invoke("data", "build", "maze", "--out", user / "weights", "--overwrite", *maze()), "not a dataset folder")
    for inside in ("weights", "more"):
        refused(invoke("data", "build", "maze", "--out", user / "run" / inside, "--overwrite", *maze()),
                f"is inside the run folder {user / 'run'}")
    assert snapshot(user) == before


def test_convert_never_writes_into_a_run(user):
    before = snapshot(user)
    for inside in ("weights", "more"):
        refused(invoke("convert", OFFICIAL / "step_0", "--config", OFFICIAL / "all_config.yaml", "--data", OFFICIAL,
                       "--out", user / "run" / inside, "--overwrite"), f"is inside the run folder {user / 'run'}")
    assert snapshot(user) == before


def test_a_failing_rebuild_keeps_the_old_dataset_and_overwrite_replaces_it(user):
    before = snapshot(user)
    # no 5x5 maze has a path of 200 moves: the builder fails after --overwrite was given
    refused(invoke("data", "build", "maze", "--out", user / "data", "--overwrite", *maze(min_path_length=200)),
            "too long for 5x5 mazes")
    assert snapshot(user) == before
    assert not [p.name for p in user.iterdir() if p.name.startswith(".")]  # no half build left beside it
    old = snapshot(user / "data")
    assert invoke("data", "build", "maze", "--out", user / "data", "--overwrite", *maze(seed=7)).exit_code == 0
    new = snapshot(user / "data")
    assert new.keys() == old.keys() and new != old


def test_training_never_builds_into_a_folder_that_is_not_a_dataset(user):
    before = snapshot(user)
    refused(invoke("train", RECIPE, "--out", user / "new-run", *sets(user / "notes")), "holds files but no dataset")
    assert snapshot(user) == before


@pytest.mark.parametrize("failure", [ValueError("a writer's bug"), OSError(28, "No space left on device")])
def test_a_write_that_fails_midway_keeps_the_old_file_and_leaves_no_temporary_one(tmp_path, failure):
    path = tmp_path / "submission.json"
    path.write_text("the old file")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half of the new")
        failure.filename = str(tmp) if isinstance(failure, OSError) else None
        raise failure

    with pytest.raises(type(failure)) as raised:
        atomic_write(path, half_then_fail)
    assert path.read_text() == "the old file" and [p.name for p in tmp_path.iterdir()] == ["submission.json"]
    if isinstance(failure, OSError):  # the message names the file the user knows
        assert raised.value.filename == str(path)
