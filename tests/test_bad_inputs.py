"""A campaign of bad inputs and faults a user can cause, as one table run through the CLI in-process.

Every case must end with a non-zero exit status, a message of at most 3 lines that names the place
(file and dotted path, ``--set PATH``, ``--option NAME``, the puzzle, the array, the plugin), no
traceback, and every file that existed before byte-identical (nor any new one left behind). The
families are listed in ``FAMILIES`` and in docs/guarantees.md. Shared fixtures (one tiny dataset, one
tiny trained run, one weight folder per task) are built once for the module.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import trmzoo
from trmzoo import registry
from trmzoo.cli import cli
from trmzoo.testing import tiny_model

RECIPE = Path(__file__).parent / "data" / "recipes" / "maze_tiny.yaml"
ARC_DATA = Path(__file__).parent / "data" / "arc"
pytestmark = pytest.mark.usefixtures("one_thread")


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file and folder under ``roots`` with a hash of its bytes."""
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for root in roots for p in sorted(root.rglob("*"))}


def put(path: Path, content: str | bytes) -> Path:
    """Write ``content`` to ``path`` and return the path (a bad file, made inside a table row)."""
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def broken_link(path: Path) -> Path:
    """A symbolic link at ``path`` to a file that is not there (a name that is taken all the same)."""
    path.symlink_to(path.with_name("gone"))
    return path


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def error_message(output: str) -> str:
    """The error a command ended with (after any progress bar or warning)."""
    assert "error: " in output, output
    return output[output.rindex("error: "):].strip()


@dataclass
class World:
    """What the module builds once: a tiny maze dataset, a run trained on it, weight folders per task."""

    root: Path
    data: Path
    run: Path
    sudoku: Path
    arc: Path

    @property
    def maze(self) -> Path:
        return self.run / "weights"


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("world")
    data, run = root / "data", root / "run"
    built = invoke("data", "build", "maze", "--out", data, "--size", 5, "--source", "generate", "--min-path-length", 2,
                   "--num-train", 7, "--num-test", 4)
    assert built.exit_code == 0, built.output
    trained = invoke("train", RECIPE, "--out", run, *small(data), "--quiet")
    assert trained.exit_code == 0, trained.output
    sudoku = tiny_model(vocab_size=6, seq_len=16, puzzle_emb_len=1, recursion={"H_cycles": 1}, halting={"max_steps": 2})
    sudoku.provenance.task = {"name": "sudoku", "box_rows": 2, "box_cols": 2}
    arc = tiny_model(vocab_size=12, seq_len=900, puzzle_emb_len=1, recursion={"H_cycles": 1}, halting={"max_steps": 2})
    arc.provenance.task = {"name": "arc"}
    return World(root, data, run, trmzoo.save_pretrained(sudoku, root / "sudoku"),
                 trmzoo.save_pretrained(arc, root / "arc"))


def small(data: Path) -> list[str]:
    """``--set`` options that make the tiny recipe train in a fraction of a second on ``data``."""
    values = {"data.dir": data, "train.max_steps": 2, "train.lr_warmup_steps": 1, "train.global_batch_size": 4,
              "eval.batch_size": 4, "task.size": 5, "task.min_path_length": 2, "task.num_train": 7, "task.num_test": 4}
    return [part for key, value in values.items() for part in ("--set", f"{key}={value}")]


@dataclass
class Ctx:
    """What a case's setup sees: the shared world, its own folder, the fake Hub when it asked for one."""

    w: World
    t: Path
    hub: object = None

    def recipe(self, changes: dict | None = None, text: str | None = None, name: str = "recipe.yaml") -> Path:
        """A copy of the tiny recipe with dotted ``changes`` (or the raw ``text``) in this case's folder."""
        path = self.t / name
        if text is not None:
            path.write_text(text)
            return path
        data = yaml.safe_load(RECIPE.read_text())
        data["data"]["dir"] = str(self.w.data)
        data["task"].update(size=5, min_path_length=2, num_train=7, num_test=4)  # as the world's data was built
        data["train"]["global_batch_size"] = 4  # of its 8 training mazes
        for dotted, value in (changes or {}).items():
            *parents, last = dotted.split(".")
            node = data
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        path.write_text(yaml.safe_dump(data))
        return path

    def copy(self, source: Path, name: str, *, leave_out: str | None = None) -> Path:
        """A copy of ``source`` in this case's folder, without its entry ``leave_out``."""
        target = self.t / name
        shutil.copytree(source, target, ignore=(lambda folder, names: [leave_out] if folder == str(source) else [])
                        if leave_out else None)
        return target

    def folder(self, name: str, files: dict[str, str]) -> Path:
        """A folder in this case's folder holding ``files`` (name: text)."""
        path = self.t / name
        path.mkdir()
        for file, text in files.items():
            put(path / file, text)
        return path

    def weights(self, edit: Callable[[dict], None] | None = None, name: str = "w") -> Path:
        """A copy of the trained maze weights, its config.json changed by ``edit``."""
        folder = self.copy(self.w.maze, name)
        if edit is not None:
            config = json.loads((folder / "config.json").read_text())
            edit(config)
            (folder / "config.json").write_text(json.dumps(config))
        return folder

    def dataset(self, split: str = "test", **arrays: np.ndarray | bytes | None) -> Path:
        """A copy of the maze dataset with some arrays replaced (bytes: raw file content; None: removed)."""
        folder = self.copy(self.w.data, "d")
        for name, value in arrays.items():
            path = folder / split / f"all__{name}.npy"
            if value is None:
                path.unlink()
            elif isinstance(value, bytes):
                path.write_bytes(value)
            else:
                np.save(path, value)
        return folder

    def array(self, name: str, split: str = "test") -> np.ndarray:
        return np.load(self.w.data / split / f"all__{name}.npy")


@dataclass
class Case:
    id: str
    family: str
    make: Callable[[Ctx], tuple[list, list[str]]]
    """Builds the bad input in the case's folder; returns the CLI arguments and the words the message names."""
    status: int = 1
    hub: str | None = None  # "fake": the fake Hub; "unreachable": a closed port on 127.0.0.1; "offline"
    env: dict[str, str] = field(default_factory=dict)


CASES: list[Case] = []


def add(family: str, id: str, make, **options) -> None:
    CASES.append(Case(f"{family}:{id}", family, make, **options))


# -- recipes: the file itself ---------------------------------------------------------------------
add("recipe", "missing", lambda c: (["train", c.t / "nope.yaml", "--dry-run"], ["nope.yaml", "no such recipe"]))
add("recipe", "a-folder", lambda c: (["train", c.t, "--dry-run"], [str(c.t), "cannot read"]))
add("recipe", "binary", lambda c: (["train", put(c.t / "bin.yaml", b"\xff\xfe\x00garbage"), "--dry-run"],
                                   ["bin.yaml", "not UTF-8"]))
add("recipe", "not-a-mapping", lambda c: (["train", c.recipe(text="- a\n- b\n"), "--dry-run"], ["recipe.yaml", "mapping"]))
add("recipe", "empty", lambda c: (["train", c.recipe(text=""), "--dry-run"], ["recipe.yaml", "mapping"]))
add("recipe", "invalid-yaml", lambda c: (["train", c.recipe(text="model: {hidden_size: 8\n"), "--dry-run"],
                                         ["recipe.yaml", "line"]))
add("recipe", "duplicate-key", lambda c: (["train", c.recipe(text="task: {name: maze}\ntask: {name: maze}\n"),
                                           "--dry-run"], ["recipe.yaml", "duplicate key 'task'"]))
add("recipe", "deep-brackets", lambda c: (["train", c.recipe(text="model: " + "[" * 5000), "--dry-run"],
                                          ["recipe.yaml", "nested"]))
add("recipe", "deep-blocks", lambda c: (["train", c.recipe(text="".join(" " * i + f"k{i}:\n" for i in range(3000))),
                                         "--dry-run"], ["recipe.yaml", "nested"]))
add("recipe", "no-task", lambda c: (["train", c.recipe(text="model: {hidden_size: 8}\n"), "--dry-run"],
                                    ["recipe.yaml", "task"]))
add("recipe", "unknown-section", lambda c: (["train", c.recipe({"extra.x": 1}), "--dry-run"], ["recipe.yaml", "extra"]))
add("recipe", "unknown-key", lambda c: (["train", c.recipe({"train.lrr": 1}), "--dry-run"], ["recipe.yaml", "train.lrr"]))
add("recipe", "wrong-type", lambda c: (["train", c.recipe({"model.hidden_size": "big"}), "--dry-run"],
                                       ["recipe.yaml", "model.hidden_size"]))
add("recipe", "unknown-backbone", lambda c: (["train", c.recipe({"model.backbone": {"kind": "cnn"}}), "--dry-run"],
                                             ["recipe.yaml", "model.backbone", "'cnn'"]))
add("recipe", "unknown-task", lambda c: (["train", c.recipe({"task": {"name": "chess"}}), "--dry-run"],
                                         ["recipe.yaml", "task", "'chess'"]))
add("recipe", "unknown-preset", lambda c: (["train", c.recipe({"model.preset": "trm_chess"}), "--dry-run"],
                                           ["recipe.yaml", "model.preset", "trm_chess"]))
add("recipe", "yes-for-a-number", lambda c: (["train", c.recipe({"train.max_steps": True}), "--dry-run"],
                                             ["recipe.yaml", "train.max_steps", "integer"]))
add("recipe", "a-device-file", lambda c: (["train", "/dev/zero", "--dry-run"], ["/dev/zero", "not a regular file"]))
add("recipe", "dry-run-unknown-strategy", lambda c: (["train", c.recipe({"eval.strategy": "nosuch"}), "--dry-run"],
                                                     ["eval.strategy", "'nosuch'"]))
add("recipe", "dry-run-absent-device", lambda c: (["train", c.recipe({"train.device": "mps"}), "--dry-run"],
                                                  ["train.device", "'mps'", "no mps device"]))
add("recipe", "dry-run-init-from-missing", lambda c: (["train", c.recipe(), "--dry-run", "--init-from", c.t / "gone"],
                                                      ["gone", "no such model folder"]))
add("recipe", "dry-run-data-a-file", lambda c: (["train", c.recipe({"data.dir": str(put(c.t / "d", "x"))}), "--dry-run"],
                                                ["data.dir", "is a file"]))
add("recipe", "dry-run-data-missing-no-build", lambda c: (
    ["train", c.recipe({"data.dir": str(c.t / "none"), "data.build": False}), "--dry-run"],
    ["none", "no dataset", "trmzoo data build maze"]))
add("recipe", "dry-run-data-other-files", lambda c: (
    ["train", c.recipe({"data.dir": str(c.folder("mine", {"notes.txt": "mine"}))}), "--dry-run"],
    ["mine", "holds files but no dataset"]))
add("recipe", "dry-run-data-of-another-task", lambda c: (
    ["train", c.recipe({"task": {"name": "sudoku", "box_rows": 2, "box_cols": 2}}), "--dry-run"],
    ["a maze dataset", "sudoku"]))
add("recipe", "data-built-with-other-options", lambda c: (
    ["train", c.recipe({"task.num_test": 9, "task.min_path_length": 3}), "--out", c.t / "run"],
    ["task.min_path_length 2 (recipe: 3), task.num_test 4 (recipe: 9)",
     "--set task.min_path_length=2 --set task.num_test=4", "new folder"]))
add("recipe", "negative-supervision-weight-decay", lambda c: (
    ["train", c.recipe({"train.supervision_weight_decay": -2}), "--dry-run"],
    ["train.supervision_weight_decay", "greater than 0"]))
add("recipe", "curriculum-out-of-order-through-set", lambda c: (
    ["train", c.recipe(), "--dry-run", "--set", "train.curriculum=[{until_step: 5}, {until_step: 3}]"],
    ["--set train.curriculum: the stages' until_step must increase"]))
add("recipe", "seed-beyond-torch", lambda c: (["train", c.recipe({"train.seed": 2**64}), "--dry-run"],
                                          ["train.seed", "less than or equal to"]))
add("recipe", "dry-run-batch-larger-than-an-epoch", lambda c: (
    ["train", c.recipe({"train.global_batch_size": 64}), "--dry-run"],
    ["fewer examples in an epoch", "train.global_batch_size 64"]))
add("recipe", "dry-run-autocast-in-float32", lambda c: (["train", c.recipe({"train.autocast": True}), "--dry-run"],
                                                    ["recipe.yaml: train.autocast", "bfloat16"]))
add("recipe", "dry-run-freeze-without-table", lambda c: (
    ["train", c.recipe({"train.freeze_weights": True, "model.puzzle_emb_ndim": 0}), "--dry-run"],
    ["recipe.yaml: train.freeze_weights", "no puzzle embedding"]))
add("recipe", "dry-run-curriculum-depth-of-another-recursion", lambda c: (
    ["train", c.recipe({"train.curriculum": [{"until_step": 1, "L_cycles": 1}],
                        "model.recursion": {"kind": "direct", "layers": 1}}), "--dry-run"],
    ["recipe.yaml: train.curriculum.0.L_cycles", "no L_cycles"]))
add("recipe", "dry-run-data-test-split-missing", lambda c: (
    ["train", c.recipe({"data.dir": str(c.copy(c.w.data, "d", leave_out="test"))}), "--dry-run"],
    ["test/dataset.json", "cannot read"]))
add("recipe", "prefix-does-not-fit", lambda c: (["train", c.recipe({"model.hidden_size": 8}), "--dry-run"],
                                                ["recipe.yaml", "model", "prefix"]))
add("recipe", "heads-too-many", lambda c: (["train", c.recipe({"model.backbone.num_heads": 64}), "--dry-run"],
                                           ["recipe.yaml: model.backbone.num_heads"]))
add("recipe", "heads-too-many-refused-before-the-data-is-built", lambda c: (
    ["train", c.recipe({"model.backbone.num_heads": 64, "data.dir": str(c.t / "new-data")}), "--out", c.t / "run"],
    ["recipe.yaml: model.backbone.num_heads"]))
add("set", "heads-too-many", lambda c: (
    ["train", c.recipe({"data.dir": str(c.t / "new-data")}), "--out", c.t / "run", "--set", "model.backbone.num_heads=64"],
    ["--set model.backbone.num_heads: 64 heads"]))
add("set", "autocast-in-float32", lambda c: (["train", c.recipe(), "--set", "train.autocast=true", "--dry-run"],
                                             ["--set train.autocast: needs model.forward_dtype bfloat16"]))
add("recipe", "heads-of-odd-width-with-rope", lambda c: (["train", c.recipe({"model.backbone.num_heads": 6}), "--dry-run"],
                                                    ["recipe.yaml: model.backbone.num_heads", "5 channels", "rope needs an even"]))
add("options", "init-from-empty", lambda c: (["train", c.recipe(), "--init-from", ""], ["--init-from: empty"]))
add("recipe", "show-a-binary-file", lambda c: (["recipes", "show", put(c.t / "bin.yaml", b"\x89PNG\x00\xff")],
                                               ["bin.yaml", "binary"]))
add("recipe", "show-what-is-no-recipe", lambda c: (["recipes", "show", put(c.t / "notes.txt", "just words\n")],
                                                   ["notes.txt", "must be a mapping"]))
add("recipe", "unknown-device", lambda c: (["train", c.recipe({"train.device": "gpu"}), "--dry-run"],
                                           ["recipe.yaml", "train.device"]))

# -- values out of range, in the recipe file and through --set (both name their source) ------------
OUT_OF_RANGE = {
    "model.hidden_size": 0, "model.expansion": 0, "model.puzzle_emb_ndim": -1, "model.puzzle_emb_len": -2,
    "model.rope_theta": 0, "model.rms_norm_eps": -1e-5, "model.num_puzzle_identifiers": 0, "model.vocab_size": -1,
    "model.backbone.num_heads": 0, "model.recursion.H_cycles": 0, "model.recursion.L_cycles": -1,
    "model.recursion.L_layers": 0, "model.recursion.H_layers": 0, "model.halting.max_steps": 0,
    "model.halting.exploration_prob": 1.5, "train.global_batch_size": 0, "train.max_steps": -1, "train.epochs": 0,
    "train.lr": -1e-3, "train.lr_warmup_steps": -1, "train.lr_min_ratio": 2, "train.weight_decay": -0.1,
    "train.beta1": 1.0, "train.beta2": -0.5, "train.puzzle_emb_lr": -1, "train.ema_rate": 1.5, "train.seed": -1,
    "train.eval_interval": 0, "train.checkpoint_interval": -5, "train.log_interval": 0, "train.time_budget_s": 0,
    "eval.batch_size": 0, "eval.max_puzzles": -1, "task.size": 2, "task.num_train": 0, "task.num_test": -1,
    "task.min_path_length": 0, "task.seed": -3,
}
for dotted, bad in OUT_OF_RANGE.items():
    add("recipe-range", dotted, lambda c, d=dotted, v=bad: (["train", c.recipe({d: v}), "--dry-run"],
                                                            ["recipe.yaml", d]))
    add("set-range", dotted, lambda c, d=dotted, v=bad: (["train", c.recipe(), "--set", f"{d}={v}", "--dry-run"],
                                                         [f"--set {d}"]))

# -- --set syntax ---------------------------------------------------------------------------------
add("set", "no-equals", lambda c: (["train", c.recipe(), "--set", "train.lr", "--dry-run"], ["--set", "KEY.PATH=VALUE"]))
add("set", "bad-yaml", lambda c: (["train", c.recipe(), "--set", "model.hidden_size=[", "--dry-run"],
                                  ["--set model.hidden_size", "not valid YAML"]))
add("set", "unknown-key", lambda c: (["train", c.recipe(), "--set", "train.lrr=1", "--dry-run"],
                                     ["--set train.lrr", "no such setting"]))
add("set", "through-a-value", lambda c: (["train", c.recipe(), "--set", "train.lr.x=1", "--dry-run"],
                                         ["--set train.lr.x", "train.lr is a value"]))
add("set", "wrong-type", lambda c: (["train", c.recipe(), "--set", "train.ema=maybe", "--dry-run"], ["--set train.ema"]))
add("set", "section-to-value", lambda c: (["train", c.recipe(), "--set", "model.backbone=3", "--dry-run"],
                                          ["--set model.backbone"]))
add("set", "unknown-kind", lambda c: (["train", c.recipe(), "--set", "model.halting.kind=never", "--dry-run"],
                                      ["model.halting", "'never'", "--set model.halting.kind"]))
add("set", "setting-of-another-kind", lambda c: (
    ["train", c.recipe({"model.backbone": {"kind": "mlp"}}), "--set", "model.backbone.num_heads=5", "--dry-run"],
    ["--set model.backbone.num_heads", "the mlp backbone has no num_heads"]))
add("set", "infinite", lambda c: (["train", c.recipe(), "--set", "train.lr=.inf", "--dry-run"], ["--set train.lr", "finite"]))
add("set", "empty-key", lambda c: (["train", c.recipe(), "--set", "=3", "--dry-run"], ["--set", "not a dotted path"]))
add("set", "empty-segment", lambda c: (["train", c.recipe(), "--set", "train..lr=3", "--dry-run"],
                                       ["--set", "train..lr", "not a dotted path"]))

# -- puzzles, for every task ----------------------------------------------------------------------
PUZZLES = {
    "sudoku": {"short": ("1..|..3", "4x4"), "bad-char": ("1x..|..3.|.4..|...2", "'x'"),
               "too-big-digit": ("9...|..3.|.4..|...2", "9"), "empty": ("", "16 cells")},
    "maze": {"wrong-size": ("#####\n#S G#\n#####", "expected 5"), "bad-char": ("#####\n#S*G#\n#   #\n#   #\n#####", "'*'"),
             "no-start": ("#####\n#  G#\n#   #\n#   #\n#####", "S")},
    "arc": {"not-json": ("{train: 1}", "invalid JSON"), "no-train": ('{"test": [{"input": [[1]]}]}', "train"),
            "bad-colour": ('{"train": [{"input": [[12]], "output": [[1]]}], "test": [{"input": [[1]]}]}', "12"),
            "too-big": (json.dumps({"train": [{"input": [[1] * 31], "output": [[1]]}], "test": [{"input": [[1]]}]}),
                        "30"),
            "not-a-grid": ('{"train": [{"input": 5, "output": [[1]]}], "test": [{"input": [[1]]}]}', "train")},
}
for task_name, puzzles in PUZZLES.items():
    for pid, (text, word) in puzzles.items():
        add("puzzle", f"{task_name}-{pid}", lambda c, n=task_name, x=text, wd=word: (
            ["solve", getattr(c.w, n) if n != "maze" else c.w.maze, x], [wd]))
    add("puzzle", f"{task_name}-missing-file", lambda c, n=task_name: (
        ["solve", getattr(c.w, n) if n != "maze" else c.w.maze, c.t / "nothere.txt"], ["nothere.txt", "no such"]))
    add("puzzle", f"{task_name}-binary-file", lambda c, n=task_name: (
        ["solve", getattr(c.w, n) if n != "maze" else c.w.maze, put(c.t / "p.txt", b"\xff\xfe\x00\x01")], ["p.txt"]))

# -- weight folders -------------------------------------------------------------------------------
def _del(key):
    return lambda config: config.pop(key)


def _set(path, value):
    def edit(config):
        *parents, last = path.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[last] = value
    return edit


WEIGHT_CASES = {
    "no-config": (lambda c: (c.weights() / "config.json").unlink(), ["no config.json"]),
    "config-not-json": (lambda c: (c.weights() / "config.json").write_text("{nope"), ["config.json", "invalid JSON"]),
    "config-binary": (lambda c: (c.weights() / "config.json").write_bytes(b"\xff\xfe"), ["config.json"]),
    "config-a-list": (lambda c: (c.weights() / "config.json").write_text("[1, 2]"), ["config.json", "not a JSON object"]),
    "config-a-folder": (lambda c: ((c.weights() / "config.json").unlink(), (c.t / "w" / "config.json").mkdir()),
                        ["config.json"]),
    "no-model-args": (lambda c: c.weights(_del("model_args")), ["config.json", "model_args"]),
    "model-args-a-string": (lambda c: c.weights(_set("model_args", "big")), ["config.json", "model_args"]),
    "hidden-wrong-type": (lambda c: c.weights(_set("model_args.hidden_size", "big")),
                          ["config.json", "model_args.hidden_size"]),
    "heads-zero": (lambda c: c.weights(_set("model_args.backbone.num_heads", 0)),
                   ["config.json", "model_args.backbone.num_heads"]),
    "backbone-a-number": (lambda c: c.weights(_set("model_args.backbone", 3)), ["config.json", "model_args.backbone"]),
    "cycles-negative": (lambda c: c.weights(_set("model_args.recursion.L_cycles", -1)),
                        ["config.json", "model_args.recursion.L_cycles"]),
    "format-too-new": (lambda c: c.weights(_set("format_version", 99)), ["config.json", "format_version 99"]),
    "format-a-string": (lambda c: c.weights(_set("format_version", "two")), ["config.json", "format_version"]),
    "step-wrong-type": (lambda c: c.weights(_set("step", "late")), ["config.json", "step"]),
    "unknown-record-key": (lambda c: c.weights(_set("colour", "blue")), ["config.json", "colour"]),
    "hidden-changed": (lambda c: c.weights(_set("model_args.hidden_size", 64)), ["shape"]),
    "no-weights-file": (lambda c: (c.weights() / "model.safetensors").unlink(), ["model.safetensors", "missing"]),
    "weights-truncated": (lambda c: (c.weights() / "model.safetensors").write_bytes(
        (c.w.maze / "model.safetensors").read_bytes()[:100]), ["model.safetensors"]),
    "no-puzzle-table": (lambda c: (c.weights() / "puzzle_emb.safetensors").unlink(), ["puzzle_emb.safetensors"]),
    "identifiers-broken": (lambda c: (c.weights() / "identifiers.json").write_text("{"), ["identifiers.json", "JSON"]),
    "identifiers-not-names": (lambda c: (c.weights() / "identifiers.json").write_text("[1, 2]"),
                              ["identifiers.json", "names"]),
    "unknown-backbone-kind": (lambda c: c.weights(_set("model_args.backbone.kind", "cnn")), ["'cnn'"]),
}
for wid, (make, words) in WEIGHT_CASES.items():
    add("weights", wid, lambda c, m=make, wd=words: (m(c), ["solve", c.t / "w", "#####"], wd)[1:])
add("weights", "task-of-another-size", lambda c: (
    c.copy(c.w.sudoku, "s9"), (c.t / "s9" / "config.json").write_text(
        (c.w.sudoku / "config.json").read_text().replace('"box_rows": 2', '"box_rows": 3').replace(
            '"box_cols": 2', '"box_cols": 3')),
    ["solve", c.t / "s9", "." * 81], ["s9", "sequences of 81", "reads 16", "config.json"])[2:])


def _damage_tensor(c, change) -> Path:
    """A copy of the maze weights whose output head is changed by ``change``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    path = c.weights() / "model.safetensors"
    with safe_open(path, "pt") as file:
        metadata, tensors = file.metadata(), {k: file.get_tensor(k) for k in file.keys()}
    tensors["lm_head.weight"] = change(tensors["lm_head.weight"])
    save_file(tensors, path, metadata=metadata)
    return path.parent


add("weights", "nan-values", lambda c: (["solve", _damage_tensor(c, lambda t: t * float("nan")), "#####"],
                                        ["lm_head.weight", "NaN or infinite"]))
add("weights", "integer-values", lambda c: (["solve", _damage_tensor(c, lambda t: t.int()), "#####"],
                                            ["lm_head.weight", "torch.int32", "float32"]))
add("weights", "a-plain-file", lambda c: (["solve", put(c.t / "afile", "x"), "#####"], ["afile", "a file, not a model"]))
add("weights", "no-such-folder", lambda c: (["solve", c.t / "gone", "x"], ["gone", "no such model folder"]))
add("weights", "an-empty-folder", lambda c: ((c.t / "e").mkdir(), ["solve", c.t / "e", "x"], ["no config.json"])[1:])

# -- official checkpoints (trmzoo convert) -------------------------------------------------------------
OFFICIAL = Path(__file__).parent / "data" / "official" / "trm"


def convert(c, checkpoint=None, config=None, *extra):
    return ["convert", checkpoint or OFFICIAL / "step_0", "--config", config or OFFICIAL / "all_config.yaml",
            "--data", OFFICIAL, "--out", c.t / "converted", *extra]


add("official", "missing-checkpoint", lambda c: (convert(c, c.t / "step_9"), ["step_9", "no such checkpoint"]))
add("official", "garbage-checkpoint", lambda c: (
    convert(c, put(c.t / "step_1", b"not a zip")), ["step_1", "not a readable"]))
add("official", "truncated-checkpoint", lambda c: (
    convert(c, put(c.t / "step_2", (OFFICIAL / "step_0").read_bytes()[:500])),
    ["step_2"]))
add("official", "pickle-not-tensors", lambda c: (
    convert(c, (c.t / "step_3", __import__("torch").save({"a": 1}, c.t / "step_3"))[0]), ["step_3", "tensors"]))
add("official", "config-not-official", lambda c: (
    convert(c, config=put(c.t / "c.yaml", "lr: 1\n")), ["c.yaml", "arch"]))
add("official", "config-invalid-yaml", lambda c: (
    convert(c, config=put(c.t / "c.yaml", "arch: [\n")), ["c.yaml"]))
add("official", "data-missing", lambda c: (["convert", OFFICIAL / "step_0", "--config", OFFICIAL / "all_config.yaml",
                                            "--data", c.t, "--out", c.t / "o"], ["dataset.json", "missing"]))
add("official", "vocab-zero", lambda c: (["convert", OFFICIAL / "step_0", "--config", OFFICIAL / "all_config.yaml",
                                          "--vocab-size", 0, "--seq-len", 4, "--out", c.t / "o"], ["--vocab-size"]),
    status=2)
add("official", "text-checkpoint", lambda c: (convert(c, put(c.t / "step_4", "hello\n")),
                                            ["step_4", "not a readable torch state dict (not a torch file)"]))
add("official", "setting-wrong-type", lambda c: (
    convert(c, config=put(c.t / "c.yaml", (OFFICIAL / "all_config.yaml").read_text().replace("hidden_size: 48",
                                                                                              "hidden_size: x"))),
    ["c.yaml", "wrong type", "'x'"]))
add("official", "setting-infinite", lambda c: (
    convert(c, config=put(c.t / "c.yaml", (OFFICIAL / "all_config.yaml").read_text().replace("halt_max_steps: 16",
                                                                                              "halt_max_steps: .inf"))),
    ["c.yaml", "wrong type", "infinity"]))
add("official", "setting-a-fraction", lambda c: (  # int() would make it 2: a wrong n ruins accuracy silently
    convert(c, config=put(c.t / "c.yaml", (OFFICIAL / "all_config.yaml").read_text().replace("L_cycles: 2",
                                                                                              "L_cycles: 2.7"))),
    ["c.yaml", "arch.L_cycles 2.7 is not a whole number"]))


def doubled_checkpoint(c) -> Path:
    """The official checkpoint with one tensor also saved under a second prefix (zeros): two tensors, one name."""
    import torch

    state = torch.load(OFFICIAL / "step_0", weights_only=True)
    key = next(k for k in state if k.endswith("lm_head.weight"))
    plain = key.replace("_orig_mod.", "")
    torch.save({**state, plain: torch.zeros_like(state[key])}, c.t / "step_5")
    return c.t / "step_5"


add("official", "two-tensors-one-name", lambda c: (convert(c, doubled_checkpoint(c)),
                                                   ["step_5", "lm_head.weight", "one tensor once the wrappers' prefixes"]))
add("official", "out-onto-another-librarys-model", lambda c: (
    convert(c)[:-1] + [c.folder("hf", {"config.json": '{"architectures": ["Bert"]}', "tokenizer.json": "{}"}),
                       "--overwrite"], ["hf", "not"]))
add("official", "out-onto-weights", lambda c: (convert(c)[:-1] + [c.copy(c.w.maze, "mine")], ["mine", "already holds"]))

# -- the Hub ------------------------------------------------------------------------------------------
for hid, name in {"no-slash": "hf-hub:justaname", "too-many-slashes": "hf-hub:a/b/c", "empty-org": "hf-hub:/b",
                  "empty-name": "hf-hub:a/", "space": "hf-hub:my org/name", "only-prefix": "hf-hub:",
                  "bad-chars": "hf-hub:org/na$me", "empty-revision": "hf-hub:org/name@"}.items():
    add("hub", f"malformed-{hid}", lambda c, n=name: (["solve", n, "x"], [repr(n.removeprefix("hf-hub:"))]))
add("hub", "eval-without-data", lambda c: (["eval", "hf-hub:org/uncached"], ["give --data DIR", "before the download"]))
add("hub", "eval-data-not-a-dataset", lambda c: (["eval", "hf-hub:org/uncached", "--data", c.t],
                                                 [f"{c.t}: no built dataset there", "before the download"]))
add("hub", "unknown-name", lambda c: (["solve", "trm-arc-7", "x"], ["'trm-arc-7'", "did you mean"]))
add("hub", "model-without-weights", lambda c: (["solve", "trm_maze_mlp", "x"], ["without published weights"]))
add("hub", "unreachable", lambda c: (["solve", "hf-hub:org/uncached", "x"], ["org/uncached", "cannot reach the Hub"]),
    hub="unreachable")
add("hub", "unreachable-official", lambda c: (["solve", "trm-arc-7m", "x"], ["cannot reach the Hub"]), hub="unreachable")
add("hub", "offline-not-cached", lambda c: (["solve", "hf-hub:org/uncached", "x"], ["HF_HUB_OFFLINE"]), hub="offline")
add("hub", "no-such-repo", lambda c: (["solve", "hf-hub:org/nothing", "x"], ["org/nothing", "no such repository"]),
    hub="fake")
add("hub", "gated", lambda c: ((c.hub.add_folder("org/gated", c.w.maze), c.hub.gate("org/gated")),
                               ["solve", "hf-hub:org/gated", "x"], ["org/gated", "gated"])[1:], hub="fake")
add("hub", "no-revision", lambda c: (c.hub.add_folder("org/tiny", c.w.maze), ["solve", "hf-hub:org/tiny@v9", "x"],
                                     ["v9"])[1:], hub="fake")
add("hub", "cut-download", lambda c: ((c.hub.add_folder("org/cut", c.w.maze),
                                       c.hub.truncate("org/cut", "model.safetensors", 100)),
                                      ["solve", "hf-hub:org/cut", "x"], ["cut short"])[1:], hub="fake")
add("hub", "no-weights-in-repo", lambda c: (
    c.hub.add_file("org/partial", "config.json", (c.w.maze / "config.json").read_bytes()),
    ["solve", "hf-hub:org/partial", "x"], ["model.safetensors"])[1:], hub="fake")
add("hub", "portal", lambda c: (setattr(c.hub, "portal", True), ["solve", "hf-hub:org/x", "x"],
                                ["cannot reach the Hub"])[1:], hub="fake")
add("hub", "push-malformed-id", lambda c: (["push", c.w.run, "not-an-id"], ["'not-an-id'", "org/name"]), hub="fake")
add("hub", "data-build-unreachable", lambda c: (["data", "build", "sudoku", "--out", c.t / "s", "--source", "hub"],
                                                ["cannot reach the Hub", ".csv", "not in the local cache"]),
    hub="unreachable")
add("hub", "push-damaged-weights", lambda c: (
    (c.weights() / "model.safetensors").write_bytes((c.w.maze / "model.safetensors").read_bytes()[:100]),
    ["push", c.t / "w", "org/x"], ["model.safetensors"])[1:], hub="unreachable")
add("hub", "push-not-a-model", lambda c: (["push", c.t, "org/x"], [str(c.t), "neither a run folder"]), hub="fake")

# -- run folders and resume -------------------------------------------------------------------------
add("run", "out-onto-run", lambda c: (["train", c.recipe(), "--out", c.copy(c.w.run, "r"), *small(c.w.data)],
                                      ["already holds a run", "--resume"]))
add("run", "out-onto-notes", lambda c: ((c.t / "notes").mkdir(), (c.t / "notes" / "a.txt").write_text("mine"),
                                        ["train", c.recipe(), "--out", c.t / "notes", *small(c.w.data)],
                                        ["already holds files"])[2:])
add("run", "overwrite-notes", lambda c: ((c.t / "notes").mkdir(), (c.t / "notes" / "a.txt").write_text("mine"),
                                         ["train", c.recipe(), "--out", c.t / "notes", "--overwrite", *small(c.w.data)],
                                         ["not a run folder"])[2:])
add("run", "out-is-a-file", lambda c: (["train", c.recipe(), "--out", put(c.t / "f", "x")], ["--out", "f"]), status=2)
add("run", "out-under-a-file", lambda c: (["train", c.recipe(), "--out", put(c.t / "f", "x") / "run", *small(c.w.data)],
                                          ["cannot be created", "is a file"]))
add("run", "resume-missing", lambda c: (["train", "--resume", c.t / "gone"], ["--resume", "gone"]), status=2)
add("run", "resume-not-a-run", lambda c: (["train", "--resume", c.t], [str(c.t)]))
add("run", "resume-with-recipe", lambda c: (["train", "--resume", c.copy(c.w.run, "r"), c.recipe()],
                                            ["RECIPE", "cannot be given"]))
add("run", "resume-with-out", lambda c: (["train", "--resume", c.copy(c.w.run, "r"), "--out", c.t / "x"],
                                         ["--out", "cannot be given"]))
add("run", "resume-refused-set", lambda c: (["train", "--resume", c.copy(c.w.run, "r"), "--set", "model.hidden_size=64",
                                             "--quiet"], ["resume.pt", "does not match"]))
add("run", "resume-bad-set", lambda c: (["train", "--resume", c.copy(c.w.run, "r"), "--set", "train.lr=-1", "--quiet"],
                                        ["--set train.lr"]))
add("run", "resume-damaged-checkpoint", lambda c: (
    (c.copy(c.w.run, "r") / "resume.pt").write_bytes(b"garbage"),
    ["train", "--resume", c.t / "r", "--quiet"], ["resume.pt"])[1:])
add("run", "resume-damaged-recipe", lambda c: (
    (c.copy(c.w.run, "r") / "recipe.yaml").write_text("train: [\n"), ["train", "--resume", c.t / "r", "--quiet"],
    ["recipe.yaml"])[1:])
add("run", "overwrite-with-damaged-test-split", lambda c: (
    ["train", c.recipe(), "--out", c.copy(c.w.run, "r"), "--overwrite", *small(c.dataset(inputs=None))],
    ["test/all__inputs.npy", "missing"]))
add("run", "damaged-test-split-before-training", lambda c: (
    ["train", c.recipe(), "--out", c.t / "new", *small(c.dataset(inputs=None))], ["test/all__inputs.npy", "missing"]))
add("run", "out-inside-a-run", lambda c: (
    ["train", c.recipe(), "--out", c.copy(c.w.run, "r") / "weights", "--overwrite", *small(c.w.data)],
    ["weights", "inside the run folder", "pick another --out"]))
add("run", "resume-below-the-step-reached", lambda c: (
    ["train", "--resume", c.copy(c.w.run, "r"), "--set", "train.max_steps=1", "--quiet"],
    ["train.max_steps", "below step 2", "left as it was"]))
add("run", "data-dir-a-file", lambda c: (
    ["train", c.recipe(), "--out", c.t / "r", *small(c.w.data), "--set", f"data.dir={put(c.t / 'afile', 'x')}"],
    ["data.dir", "afile", "is a file"]))
add("run", "plot-unknown-format", lambda c: (["plot", c.w.run, "--out", c.t / "curves.foo"], ["curves.foo", ".png"]))
add("run", "plot-no-records", lambda c: (
    (c.copy(c.w.run, "r") / "metrics.jsonl").write_text('[1, 2]\n{"step": "x"}\n'), ["plot", c.t / "r"],
    ["metrics.jsonl", "no record"])[1:])
add("run", "plot-binary-metrics", lambda c: (
    (c.copy(c.w.run, "r") / "metrics.jsonl").write_bytes(b"\xff\xfe\x00"), ["plot", c.t / "r"],
    ["metrics.jsonl", "not text"])[1:])
add("run", "eval-without-data", lambda c: (["eval", c.copy(c.w.maze, "wf")], ["not a run folder", "--data"]))
add("run", "plot-not-a-run", lambda c: (["plot", c.t], [str(c.t)]))
add("run", "train-without-recipe", lambda c: (["train"], ["RECIPE", "--resume"]))

# -- datasets -------------------------------------------------------------------------------------------
def _eval_on(c, folder):
    return ["eval", c.w.run, "--data", folder]


for name in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices"):
    add("dataset", f"{name}-missing", lambda c, n=name: (_eval_on(c, c.dataset(**{n: None})), [f"all__{n}.npy", "missing"]))
    add("dataset", f"{name}-garbage", lambda c, n=name: (_eval_on(c, c.dataset(**{n: b"garbage"})), [f"all__{n}.npy"]))
    add("dataset", f"{name}-float", lambda c, n=name: (
        _eval_on(c, c.dataset(**{n: c.array(n).astype(np.float32)})), [f"all__{n}.npy", "dtype float32"]))
add("dataset", "inputs-3d", lambda c: (_eval_on(c, c.dataset(inputs=c.array("inputs")[:, :, None])),
                                       ["all__inputs.npy", "shape"]))
add("dataset", "token-outside-vocab", lambda c: (
    _eval_on(c, c.dataset(inputs=np.where(np.arange(25) == 0, 99, c.array("inputs")).astype(np.uint8))),
    ["all__inputs.npy", "token 99", "vocab_size"]))
add("dataset", "label-outside-vocab", lambda c: (
    _eval_on(c, c.dataset(labels=np.full_like(c.array("labels"), 7))), ["all__labels.npy", "token 7"]))
add("dataset", "puzzle-id-outside-table", lambda c: (
    _eval_on(c, c.dataset(puzzle_identifiers=np.full_like(c.array("puzzle_identifiers"), 5))),
    ["all__puzzle_identifiers.npy", "puzzle id 5"]))
add("dataset", "offsets-short", lambda c: (
    _eval_on(c, c.dataset(puzzle_indices=c.array("puzzle_indices")[:-1])), ["all__puzzle_indices.npy"]))
add("dataset", "metadata-not-json", lambda c: (
    (c.dataset(), (c.t / "d" / "test" / "dataset.json").write_text("{"))[0] and _eval_on(c, c.t / "d"),
    ["test/dataset.json"]))
add("dataset", "metadata-negative-vocab", lambda c: (
    (c.dataset(), (c.t / "d" / "test" / "dataset.json").write_text(json.dumps(
        {**json.loads((c.w.data / "test" / "dataset.json").read_text()), "vocab_size": -1})))[0] and _eval_on(c, c.t / "d"),
    ["test/dataset.json", "vocab_size"]))
for sets in ([], ["all", "extra"]):
    add("dataset", f"metadata-sets-{len(sets)}", lambda c, v=sets: (
        (c.dataset(), (c.t / "d" / "test" / "dataset.json").write_text(json.dumps(
            {**json.loads((c.w.data / "test" / "dataset.json").read_text()), "sets": v})))[0] and _eval_on(c, c.t / "d"),
        ["test/dataset.json", "sets", "['all']"]))
add("dataset", "train-on-data-of-another-vocabulary", lambda c: (  # e.g. a plugin's builder and task disagree
    (c.dataset(), (c.t / "d" / "train" / "dataset.json").write_text(json.dumps(
        {**json.loads((c.w.data / "train" / "dataset.json").read_text()), "vocab_size": 12})))[0] and
    ["train", c.recipe({"data.dir": str(c.t / "d")}), "--dry-run"],
    ["dataset.json says vocab_size 12", "the maze task reads vocab_size 6"]))
add("dataset", "identifiers-broken", lambda c: (
    (c.dataset(), (c.t / "d" / "identifiers.json").write_text("{"))[0] and _eval_on(c, c.t / "d"),
    ["identifiers.json"]))
add("dataset", "no-dataset", lambda c: (_eval_on(c, c.t), [str(c.t), "not a built dataset"]))
add("dataset", "other-task-eval", lambda c: (
    invoke("data", "build", "sudoku", "--out", c.t / "s", "--box-rows", 2, "--box-cols", 2, "--num-train", 2,
           "--num-test", 2) and _eval_on(c, c.t / "s"), ["sudoku dataset", "maze"]))
add("dataset", "other-task-train", lambda c: (
    invoke("data", "build", "sudoku", "--out", c.t / "s", "--box-rows", 2, "--box-cols", 2, "--num-train", 2,
           "--num-test", 2) and ["train", c.recipe(), "--out", c.t / "r", *small(c.t / "s")],
    ["sudoku dataset", "task.name", "maze"]))
add("dataset", "train-on-bad-tokens", lambda c: (
    ["train", c.recipe(), "--out", c.t / "r", *small(c.dataset("train", inputs=np.full_like(c.array("inputs", "train"), 50)))],
    ["train/all__inputs.npy", "token 50"]))
add("dataset", "built-with-other-task-options", lambda c: (
    ["train", c.recipe({"task.seed": 7}), "--out", c.t / "run", *small(c.w.data)],
    ["built with other task options", "task.seed 0 (recipe: 7)", "--set task.seed=0"]))
add("dataset", "built-with-other-task-options-dry-run", lambda c: (
    ["train", c.recipe({"task.seed": 7}), "--dry-run", *small(c.w.data)], ["task.seed 0 (recipe: 7)"]))
add("dataset", "build-unknown-task", lambda c: (["data", "build", "chess", "--out", c.t / "x"], ["'chess'"]))
add("dataset", "build-unknown-option", lambda c: (["data", "build", "maze", "--out", c.t / "x", "--colour", "red"],
                                                  ["--colour", "no such option"]))
add("dataset", "build-option-out-of-range", lambda c: (["data", "build", "maze", "--out", c.t / "x", "--size", 1],
                                                       ["size", "greater than or equal to 3"]))
add("dataset", "build-option-without-value", lambda c: (["data", "build", "maze", "--out", c.t / "x", "--num-train"],
                                                        ["--num-train", "needs a value"]))
add("dataset", "build-option-twice", lambda c: (
    ["data", "build", "maze", "--out", c.t / "x", "--num-train", 3, "--num-train", 4], ["--num-train", "given twice"]))
add("dataset", "build-option-with-equals-out-of-range", lambda c: (
    ["data", "build", "maze", "--out", c.t / "x", "--size=1"], ["size", "greater than or equal to 3"]))
add("dataset", "build-onto-dataset", lambda c: (["data", "build", "maze", "--out", c.copy(c.w.data, "d"), "--size", 5],
                                                ["already holds a dataset", "--overwrite"]))
def arc_source_with(c: Ctx, name: str, text: str) -> Path:
    """The shipped ARC sample with one of its files replaced by ``text``."""
    source = c.copy(ARC_DATA, "src")
    put(source / name, text)
    return source


for which in ("challenges", "solutions"):  # a Kaggle file that holds a JSON list, not tasks by id
    add("dataset", f"build-arc-{which}-a-list", lambda c, w=which: (
        ["data", "build", "arc", "--out", c.t / "x", "--subsets", "training", "--test-set-name", "training",
         "--source", arc_source_with(c, f"arc-agi_training_{w}.json", "[]")],
        [f"arc-agi_training_{w}.json", "expected an object", "JSON list"]))
add("dataset", "build-arc-missing-source", lambda c: (
    ["data", "build", "arc", "--out", c.t / "x", "--source", c.t / "nothing", "--subsets", "training"], ["nothing"]))

# -- plugins --------------------------------------------------------------------------------------------
add("plugins", "allow-list-unknown", lambda c: (["list"], ["TRMZOO_LOAD_PLUGINS", "'sudokuu'", "installed: arc"]),
    env={"TRMZOO_LOAD_PLUGINS": "trm,sudokuu"})
add("plugins", "allow-list-empty", lambda c: (["list"], ["TRMZOO_LOAD_PLUGINS=' , '", "names no plugin", "unset it"]),
    env={"TRMZOO_LOAD_PLUGINS": " , "})
add("plugins", "block-list-unknown", lambda c: (["list"], ["TRMZOO_DISABLE_PLUGINS", "'mazee'", "maze"]),
    env={"TRMZOO_DISABLE_PLUGINS": "mazee"})
add("plugins", "run-needs-disabled-plugin", lambda c: (["eval", c.w.run], ["needs plugin 'maze'", "TRMZOO_DISABLE_PLUGINS"]),
    env={"TRMZOO_DISABLE_PLUGINS": "maze"})
add("plugins", "build-of-a-disabled-plugins-task", lambda c: (["data", "build", "maze", "--out", c.t / "x"],
    ["unknown task 'maze'", "installed but not loaded: maze (TRMZOO_DISABLE_PLUGINS skips it)"]),
    env={"TRMZOO_DISABLE_PLUGINS": "maze"})
add("plugins", "recipe-needs-disabled-backbone", lambda c: (
    ["train", c.recipe(), "--dry-run"], ["model.backbone", "'attention'"]), env={"TRMZOO_DISABLE_PLUGINS": "attention"})

add("environment", "batch-not-divisible-by-the-processes", lambda c: (  # refused before the data is built
    ["train", c.recipe({"data.dir": str(c.t / "new-data")}), "--out", c.t / "run", "--set", "train.global_batch_size=3"],
    ["--set train.global_batch_size: 3 is not divisible by the 2 processes"]), env={"WORLD_SIZE": "2"})
for variable in ("WORLD_SIZE", "TORCHELASTIC_RESTART_COUNT"):  # torchrun's, set by hand
    add("environment", f"{variable}-not-a-number", lambda c, v=variable: (["train", c.recipe(), "--out", c.t / "run"],
                                                                          [v, "'two'"]), env={variable: "two"})

# -- command-line options ----------------------------------------------------------------------------------
add("options", "eval-batch-size-zero", lambda c: (["eval", c.w.run, "--batch-size", 0], ["--batch-size"]), status=2)
add("options", "eval-max-puzzles-zero", lambda c: (["eval", c.w.run, "--max-puzzles", 0], ["--max-puzzles"]), status=2)
add("options", "eval-max-puzzles-negative", lambda c: (["eval", c.w.run, "--max-puzzles", -1], ["--max-puzzles"]),
    status=2)
add("options", "eval-unknown-device", lambda c: (["eval", c.w.run, "--device", "gpu7"], ["--device", "'gpu7'"]))
add("options", "eval-absent-cuda", lambda c: (["eval", c.w.run, "--device", "cuda:3"], ["--device", "'cuda:3'"]))
add("options", "eval-option-no-equals", lambda c: (["eval", c.w.run, "--option", "foo"], ["--option", "KEY=VALUE"]))
add("options", "eval-option-unknown", lambda c: (["eval", c.w.run, "--option", "foo=1"], ["--option foo", "maze"]))
add("options", "eval-arc-augmentations-negative", lambda c: (
    ["eval", c.w.arc, "--data", c.t, "--option", "max_augmentations=-1"], ["--option max_augmentations", "greater"]))
add("options", "eval-option-bad-yaml", lambda c: (["eval", c.w.run, "--option", "k=["], ["--option k", "YAML"]))
add("options", "recipe-evaluator-option-unknown", lambda c: (
    ["train", c.recipe({"eval.evaluator_options": {"beam": 3}}), "--out", c.t / "r", *small(c.w.data)],
    ["eval.evaluator_options beam", "maze"]))
add("options", "solve-strategy-option-without-strategy", lambda c: (
    ["solve", c.w.maze, "#####\n#S G#\n#   #\n#   #\n#####", "--strategy-option", "k=2"], ["--strategy-option", "k"]))
add("options", "solve-puzzle-a-device", lambda c: (["solve", c.w.maze, "/dev/null"], ["/dev/null", "not a regular file"]))
add("options", "solve-puzzle-a-folder", lambda c: (["solve", c.w.maze, c.t], [str(c.t), "a folder"]))
add("options", "solve-trace-unknown-format", lambda c: (
    ["solve", c.w.maze, "#####", "--trace", c.t / "t.foo"], ["t.foo", ".png"]))
add("options", "eval-submission-task-writes-none", lambda c: (["eval", c.w.run, "--submission", c.t / "s.json"],
                                                              ["--submission", "maze task writes no submission"]))
add("options", "eval-submission-folder-missing", lambda c: (
    ["eval", c.w.run, "--submission", c.t / "nodir" / "s.json"], ["--submission", "nodir", "does not exist"]))
add("options", "eval-submission-there-already", lambda c: (
    ["eval", c.w.run, "--submission", put(c.t / "s.json", "mine")], ["--submission", "s.json", "--overwrite"]))
add("options", "solve-trace-there-already", lambda c: (
    ["solve", c.w.maze, "#####", "--trace", put(c.t / "t.png", "mine")], ["--trace", "t.png", "--overwrite"]))
add("options", "solve-trace-there-already-without-suffix", lambda c: (  # the .png it adds is what is refused
    ["solve", c.w.maze, "#####", "--trace", put(c.t / "t.png", "mine").with_suffix("")], ["t.png", "--overwrite"]))
add("options", "solve-trace-folder-missing", lambda c: (
    ["solve", c.w.maze, "#####", "--trace", c.t / "nodir" / "t.png"], ["--trace", "nodir", "does not exist"]))
add("options", "strategy-seed-negative", lambda c: (
    ["eval", c.w.run, "--strategy", "symmetry", "--strategy-option", "seed=-1"], ["seed", "greater than"]))
add("options", "strategy-inner-unknown", lambda c: (
    ["eval", c.w.run, "--strategy", "symmetry", "--strategy-option", "inner=nosuch"],
    ["strategy 'symmetry' inner", "'nosuch'"]))
add("options", "early-exit-with-noise", lambda c: (
    ["eval", c.w.run, "--strategy", "noise", "--early-exit"], ["--early-exit", "'noise' strategy has none"]))
add("options", "solve-trace-a-broken-link", lambda c: (
    ["solve", c.w.maze, "#####", "--trace", broken_link(c.t / "t.png")], ["--trace", "t.png", "--overwrite"]))
add("run", "plot-out-there-already", lambda c: (
    ["plot", c.w.run, "--out", put(c.t / "c.svg", "mine")], ["--out", "c.svg", "--overwrite"]))
add("options", "unknown-command", lambda c: (["trian"], ["trian"]), status=2)
add("options", "unknown-option", lambda c: (["train", "--colour", "red"], ["--colour"]), status=2)
add("options", "missing-argument", lambda c: (["solve"], ["MODEL"]), status=2)
add("options", "eval-bad-batch-type", lambda c: (["eval", c.w.run, "--batch-size", "many"], ["--batch-size"]), status=2)
add("options", "data-build-no-out", lambda c: (["data", "build", "maze"], ["--out"]), status=2)

FAMILIES = sorted({case.family for case in CASES})


@pytest.fixture
def isolated_plugins(monkeypatch):
    """Plugin lists in the environment take effect on a fresh registry, and leave none behind."""
    registry.reset()
    yield monkeypatch
    monkeypatch.delenv("TRMZOO_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("TRMZOO_DISABLE_PLUGINS", raising=False)
    registry.reset()


def _point_hub(case: Case, request, monkeypatch):
    if case.hub is None:
        return None
    hub = request.getfixturevalue("fake_hub")
    from huggingface_hub import constants

    if case.hub == "unreachable":  # nothing listens on the discard port
        monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}")
    if case.hub == "offline":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return hub


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_in_a_few_lines_naming_the_place_and_changes_nothing(case, world, tmp_path, request,
                                                                                  monkeypatch):
    hub = _point_hub(case, request, monkeypatch)
    context = Ctx(world, tmp_path / "case", hub)
    context.t.mkdir()
    if case.env:
        monkeypatch = request.getfixturevalue("isolated_plugins")
        for var, value in case.env.items():
            monkeypatch.setenv(var, value)
    args, words = case.make(context)
    before = snapshot(world.root, context.t)
    start = time.perf_counter()
    result = invoke(*args)
    elapsed = time.perf_counter() - start
    assert result.exit_code == case.status, result.output
    assert "Traceback" not in result.output, result.output
    message = error_message(result.output)
    assert len(message.splitlines()) <= 3, message
    for word in words:
        assert str(word) in message, f"{word!r} not in: {message}"
    assert snapshot(world.root, context.t) == before
    if case.hub == "unreachable":
        assert elapsed < 10, f"the Hub error came after {elapsed:.1f} s"


def test_the_campaign_covers_every_family_with_enough_cases():
    assert len(CASES) >= 120 and len({case.id for case in CASES}) == len(CASES)
    assert set(FAMILIES) >= {"recipe", "recipe-range", "set", "set-range", "puzzle", "weights", "official", "hub",
                             "run", "dataset", "plugins", "options"}
    tasks = {case.id.split(":")[1].split("-")[0] for case in CASES if case.family == "puzzle"}
    assert tasks == {"sudoku", "maze", "arc"}


# -- faults of the machine: a full disk, a read-only one, while saving or building -------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_a_full_or_read_only_disk_while_building_names_the_path_and_leaves_nothing(code, tmp_path, monkeypatch):
    import trmzoo_maze

    def fail(*args, **kwargs):
        raise OSError(code, "injected", str(tmp_path / "maze" / "train" / "all__inputs.npy"))

    monkeypatch.setattr(trmzoo_maze, "write_split", fail)
    result = invoke("data", "build", "maze", "--out", tmp_path / "maze", "--size", 5, "--source", "generate",
                    "--min-path-length", 2, "--num-train", 4, "--num-test", 2)
    assert result.exit_code == 1 and "Traceback" not in result.output
    message = error_message(result.output)
    assert "all__inputs.npy" in message and "not built" in message and len(message.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no half dataset, no hidden build folder


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only")])
def test_a_full_or_read_only_disk_while_saving_weights_names_the_path(code, words, world, tmp_path, monkeypatch):
    import trmzoo.weights

    def fail(tensors, filename, metadata=None):
        raise OSError(code, "injected", filename)

    monkeypatch.setattr(trmzoo.weights, "save_file", fail)
    result = invoke("convert", OFFICIAL / "step_0", "--config", OFFICIAL / "all_config.yaml", "--data", OFFICIAL,
                    "--out", tmp_path / "converted")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    message = error_message(result.output)
    assert "model.safetensors" in message and words in message and len(message.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no half folder, no temporary file


def test_a_full_disk_while_checkpointing_names_the_checkpoint_and_leaves_no_partial_file(world, tmp_path, monkeypatch):
    import torch

    def fail(obj, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(torch, "save", fail)
    result = invoke("train", RECIPE, "--out", tmp_path / "run", *small(world.data), "--quiet")
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    message = error_message(result.output)
    assert str(tmp_path / "run" / "resume.pt") in message and "no space left" in message, message
    assert list(tmp_path.iterdir()) == []  # no temporary file, and no run folder without a checkpoint


# -- the boundary itself -------------------------------------------------------------------------------
def test_an_internal_error_is_one_line_saying_it_is_a_bug_and_debug_shows_the_traceback(monkeypatch):
    import trmzoo.registry

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(trmzoo.registry, "list_models", broken)
    result = invoke("list")
    assert result.exit_code == 70 and "Traceback" not in result.output
    message = error_message(result.output)
    assert len(message.splitlines()) == 1 and "bug" in message and "report it to" in message and "--debug" in message
    debug = CliRunner().invoke(cli, ["--debug", "list"])
    assert isinstance(debug.exception, ZeroDivisionError)


def test_a_process_whose_torchrun_peer_died_says_so_instead_of_calling_it_a_bug(monkeypatch):
    import trmzoo.registry

    def peer_gone(*args, **kwargs):
        raise RuntimeError("[gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:29500")

    monkeypatch.setattr(trmzoo.registry, "list_models", peer_gone)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    result = invoke("list")
    message = error_message(result.output)
    assert result.exit_code == 1 and message.startswith("error: [rank 1] another process of this torchrun launch")
    assert "bug" not in message
    monkeypatch.setenv("WORLD_SIZE", "1")  # one process: the same failure is nobody else's
    assert invoke("list").exit_code == 70


def test_a_plugin_whose_hook_raises_at_registration_is_isolated_like_one_failing_at_import(fresh, site):
    from plugin_site import install_dist

    install_dist(site, "zoo-test-raising", "zoo_test_raising", """
        from trmzoo import hookimpl

        @hookimpl
        def register_backbones(register):
            register("doomed", dict, None)

        @hookimpl
        def register_models(register):
            raise RuntimeError("boom at registration")
    """)
    with pytest.warns(UserWarning, match="zoo_test_raising.*register_models raised RuntimeError: boom"):
        reg = registry.get_registry()
    assert "doomed" not in reg.backbone and "trm_sudoku_att" in reg.model  # nothing of it kept, the rest works
    result = invoke("plugins")
    assert result.exit_code == 0 and "zoo_test_raising: NOT LOADED (register_models raised RuntimeError" in result.output
    assert invoke("train", RECIPE, "--dry-run").exit_code == 0


def test_a_plugin_whose_commands_hook_raises_is_isolated_and_the_cli_runs(fresh, site):
    from plugin_site import install_dist
    from trmzoo.cli import _add_plugin_commands
    from trmzoo.plugins import plugin_failures

    install_dist(site, "zoo-test-badcmd", "zoo_test_badcmd", """
        from trmzoo import hookimpl

        @hookimpl
        def register_commands(cli):
            raise KeyError("no such group")
    """)
    with pytest.warns(UserWarning, match="zoo_test_badcmd.*register_commands raised KeyError"):
        _add_plugin_commands()
    assert "register_commands raised KeyError" in plugin_failures()["zoo_test_badcmd"]
    assert invoke("list").exit_code == 0


def test_a_build_removes_half_builds_that_killed_processes_left_beside_it(tmp_path):
    dead = 2**22 + 12345  # above the kernel's largest pid
    stale, running = tmp_path / f".maze.building-{dead}", tmp_path / f".maze.building-{os.getppid()}"
    for folder in (stale, running):
        folder.mkdir()
        (folder / "half.npy").write_bytes(b"x")
    result = invoke("data", "build", "maze", "--out", tmp_path / "maze", "--size", 5, "--source", "generate",
                    "--min-path-length", 2, "--num-train", 4, "--num-test", 2)
    assert result.exit_code == 0, result.output
    assert not stale.exists() and running.exists()  # a live process's build is never touched


@pytest.mark.parametrize("variable", ["TRMZOO_KEEP_FREED_MEMORY", "TRMZOO_FUSED_OPS"])
def test_a_mistyped_on_off_variable_stops_the_command_before_it_starts(variable, monkeypatch, capsys):
    from trmzoo.cli import main
    from trmzoo.core import layers

    monkeypatch.setenv(variable, "maybe")
    monkeypatch.setattr(layers, "_fused_ops", None)  # read afresh, as in a new process
    monkeypatch.setattr(sys, "argv", ["trmzoo", "list"])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == f"error: {variable}='maybe': expected one of 1, true, yes, on, 0, false, no, off"
