"""Property tests: any text given as a puzzle of any task, and any data given as a recipe, ends in either
a valid object or a ``TrmzooError`` (one line for the CLI), never another exception."""

from __future__ import annotations

import string

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from trmzoo.errors import TrmzooError
from trmzoo.factory import create_task
from trmzoo.recipe import load_recipe, validate_recipe
from trmzoo.registry import lookup
from trmzoo.task import Puzzle

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TASKS = {
    "sudoku": {"name": "sudoku", "box_rows": 2, "box_cols": 2},
    "maze": {"name": "maze", "size": 5, "source": "generate"},
    "arc": {"name": "arc"},
}
ALPHABETS = {  # each task's own characters, so that near-valid puzzles are drawn often, plus anything
    "sudoku": "0123456789.|-+ \n",
    "maze": "# SGo.\n",
    "arc": '{}[]:,"0123456789 trainoutestp\n',
}
json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def task(name: str):
    """The registered task ``name`` with the small options of ``TASKS``."""
    return create_task(lookup("task", name).task_cls.Config.model_validate(TASKS[name]))


def parse_or_refuse(name: str, text: str) -> None:
    """``parse`` gives a Puzzle whose tokens fit the task, or a TrmzooError of one line."""
    current = task(name)
    try:
        puzzle = current.parse(text)
    except TrmzooError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    assert isinstance(puzzle, Puzzle)
    tokens = np.asarray(puzzle.inputs)
    assert tokens.min() >= 0 and tokens.max() < current.vocab_size


@pytest.mark.parametrize("name", sorted(TASKS))
@SETTINGS
@given(data=st.data())
def test_any_puzzle_text_is_a_puzzle_or_a_one_line_error(name, data):
    text = data.draw(st.text(alphabet=ALPHABETS[name], max_size=120) | st.text(max_size=60), label="text")
    parse_or_refuse(name, text)


@SETTINGS
@given(rows=st.lists(st.lists(st.integers(-3, 12), min_size=0, max_size=4), min_size=0, max_size=4),
       key=st.sampled_from(["input", "output", "inputs"]))
def test_any_arc_json_structure_is_a_puzzle_or_a_one_line_error(rows, key):
    import json

    parse_or_refuse("arc", json.dumps({"train": [{key: rows, "output": rows}], "test": [{"input": rows}]}))


SECTIONS = {
    "model": ["hidden_size", "expansion", "puzzle_emb_ndim", "puzzle_emb_len", "forward_dtype", "backbone",
              "recursion", "halting", "preset"],
    "task": ["name", "size", "box_rows", "num_train", "source"],
    "train": ["global_batch_size", "max_steps", "lr", "ema_rate", "device", "seed", "epochs"],
    "eval": ["batch_size", "max_puzzles", "evaluator_options"],
    "data": ["dir", "build"],
}
values = json_like | st.sampled_from(["maze", "sudoku", "arc", "attention", "mlp", "trm", "bce", "auto", "float32"])
sections = st.fixed_dictionaries({}, optional={
    section: st.dictionaries(st.sampled_from(keys + ["kind", "bogus"]), values, max_size=5)
    for section, keys in SECTIONS.items()
})


def validate_or_refuse(data, overrides=()) -> None:
    try:
        recipe = validate_recipe(data, "recipe.yaml", overrides)
    except TrmzooError as exc:
        assert "\n" not in str(exc), str(exc)
        return
    assert isinstance(recipe, BaseModel)


@SETTINGS
@given(data=sections | json_like.filter(lambda v: isinstance(v, dict)))
def test_any_recipe_data_is_a_recipe_or_a_one_line_error(data):
    validate_or_refuse(data)


@SETTINGS
@given(key=st.lists(st.sampled_from(list(SECTIONS) + [k for keys in SECTIONS.values() for k in keys] + [""]),
                    min_size=1, max_size=3).map(".".join),
       value=st.text(alphabet=string.printable, max_size=12))
def test_any_set_override_is_a_recipe_or_a_one_line_error(key, value):
    validate_or_refuse({"task": {"name": "maze", "size": 5}}, (f"{key}={value}",))


@SETTINGS
@given(text=st.text(alphabet=string.printable + "\x00\x85\u2028", max_size=200))
def test_any_recipe_text_is_a_recipe_or_a_one_line_error(text, tmp_path_factory):
    path = tmp_path_factory.mktemp("recipe") / "r.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_recipe(path)
    except TrmzooError as exc:
        assert "\n" not in str(exc), str(exc)
    except yaml.YAMLError as exc:  # pragma: no cover - the failure this test exists to catch
        raise AssertionError(f"PyYAML's error escaped: {exc}")
