"""Reading YAML safely: duplicate keys are refused and errors name the file and line.

Used for recipes, ``--set`` values and official ``all_config.yaml`` files alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from trmzoo.errors import RecipeError


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses a mapping with the same key twice (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


MAX_DEPTH = 50
"""Deepest nesting of brackets read (a recipe needs four; thousands exhaust the parser's stack)."""


def yaml_problem(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line report as ``line N: problem`` (``N`` of the document's first line)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"line {mark.line + 1}: {problem}" if mark else problem


def _flow_depth(text: str) -> int:
    """An upper bound of the nesting of ``[...]`` and ``{...}``, counted before parsing (cheap)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_yaml(text: str) -> Any:
    """One YAML document from text (``yaml.YAMLError`` on bad input, duplicate keys and nesting deeper
    than ``MAX_DEPTH`` included)."""
    if _flow_depth(text) > MAX_DEPTH:
        raise yaml.YAMLError(f"nested more than {MAX_DEPTH} levels deep")
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except RecursionError:  # deep indentation
        raise yaml.YAMLError("nested too deeply") from None


def read_yaml(path: str | Path, *, what: str = "a recipe must be a mapping of sections (model, task, data, train, eval)"
              ) -> dict:
    """A YAML file whose top level is a mapping; any problem is a one-line ``RecipeError`` naming the
    file (and line); ``what`` says what the file must be when it is not a mapping."""
    path = Path(path)
    if path.exists() and not path.is_dir() and not path.is_file():  # a device or pipe may never end
        raise RecipeError(f"{path}: not a regular file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start}); is it a binary file?") from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: {yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: {what}")
    return data
