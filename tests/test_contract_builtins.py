"""The built-in plugins pass the same contract as a third-party plugin (trmzoo.testing)."""

import json
from pathlib import Path

import pytest

from trmzoo import testing
from trmzoo.registry import get_registry

BACKBONES = [
    pytest.param("attention", {"num_heads": 2}, {"pos_encodings": "rope"}, id="attention-rope"),
    pytest.param("attention", {"num_heads": 4}, {"pos_encodings": "learned"}, id="attention-learned"),
    pytest.param("mlp", None, {"pos_encodings": "none"}, id="mlp"),
]

DATA = Path(__file__).parent / "data"

# Tiny builds that need no network; the tasks' own tests cover their full-size data.
TASKS = {
    "sudoku": ("sudoku", "exact_accuracy",
               {"box_rows": 2, "box_cols": 2, "num_train": 4, "num_test": 3, "givens": [6, 10]}),
    "maze": ("maze", "exact_accuracy",
             {"source": "generate", "size": 7, "min_path_length": 4, "num_train": 4, "num_test": 3}),
    "arc": ("arc", "pass@1", {"source": str(DATA / "arc"), "subsets": ["training", "evaluation"], "num_aug": 1}),
}


@pytest.mark.parametrize(("name", "config", "model"), BACKBONES)
def test_backbone_contract(name, config, model, tmp_path):
    testing.check_backbone(name, tmp_path, plugin=name, config=config, **model)


@pytest.mark.parametrize(("name", "plugin"), [("trm", "trm"), ("direct", "direct")])
def test_recursion_contract(name, plugin, tmp_path):
    testing.check_component("recursion", name, tmp_path, plugin=plugin)


@pytest.mark.parametrize("name", ["bce", "q_learning", "fixed"])
def test_halting_contract(name, tmp_path):
    testing.check_component("halting", name, tmp_path, plugin="trm")


def test_named_models_build():
    for name in get_registry().contributions["trm"]["model"]:
        testing.check_model_entry(name, plugin="trm")


def arc_task_json() -> str:
    """One evaluation task of the shipped sample, Kaggle-style ``{"<id>": task}``, as ``trmzoo solve`` takes it."""
    challenges = json.loads((DATA / "arc" / "arc-agi_evaluation_challenges.json").read_text())
    task_id = next(iter(challenges))
    return json.dumps({task_id: challenges[task_id]})


@pytest.mark.parametrize("task", list(TASKS))
def test_task_contract(task, tmp_path):
    plugin, metric, options = TASKS[task]
    if task == "arc":  # ARC reads task JSON and draws answer grids: no parse/render round trip
        testing.check_task(task, tmp_path, plugin=plugin, options=options, metric=metric,
                           puzzles=[arc_task_json()], roundtrip=False)
    else:
        testing.check_task(task, tmp_path, plugin=plugin, options=options, metric=metric)


STRATEGY_TASK = {"box_rows": 2, "box_cols": 2}  # symmetries and verify come from a task: 4x4 Sudoku's


@pytest.mark.parametrize("name", sorted(get_registry().contributions["strategies"]["strategy"]))
def test_strategy_contract(name):
    options = {"k": 2} if name not in ("plain", "depth") else None
    task = testing.make_task("sudoku", STRATEGY_TASK)
    testing.check_strategy(name, plugin="strategies", options=options, task=task)
