"""The run folder: what ``trmzoo train`` writes and what eval, push, plot and load read.

A run folder holds ``recipe.yaml`` (the resolved recipe), ``metrics.jsonl`` (one JSON
record per log or evaluation), ``weights/`` (a trmzoo weight folder with the EMA
weights), ``resume.pt`` (everything ``--resume`` needs) and, for tasks that write one,
``submission.json``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from trmzoo.errors import DataError
from trmzoo.weights import CONFIG_FILE, is_weight_dir

RECIPE_FILE = "recipe.yaml"
METRICS_FILE = "metrics.jsonl"
RESUME_FILE = "resume.pt"
WEIGHTS_DIR = "weights"
SUBMISSION_FILE = "submission.json"
LAUNCH_FILE = "launch.json"
"""Which torchrun launch started the run, so that torchrun's restarts of it (and only they) continue it."""


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a run folder that has saved its weights."""
    return (Path(path) / WEIGHTS_DIR / CONFIG_FILE).exists()


def is_replaceable_run(path: str | Path) -> bool:
    """Whether ``--overwrite`` may replace ``path``: a run folder (even one killed before its first
    checkpoint) or a weight folder, never an unknown folder."""
    path = Path(path)
    return any((path / name).exists() for name in (RECIPE_FILE, RESUME_FILE, METRICS_FILE, LAUNCH_FILE)) \
        or is_run_dir(path) or is_weight_dir(path)


def enclosing_run(path: str | Path) -> Path | None:
    """The run folder that ``path`` would sit directly inside (its ``weights/``, say), or None."""
    parent = Path(path).resolve().parent
    runs = (parent / RECIPE_FILE).exists() and \
        ((parent / RESUME_FILE).exists() or (parent / METRICS_FILE).exists() or is_run_dir(parent))
    return parent if runs else None


def check_not_inside_run(path: str | Path) -> None:
    """Refuse an output folder directly inside a run (its ``weights/``, say), which writing there would damage."""
    if (inside := enclosing_run(path)) is not None:
        raise DataError(f"{path}: is inside the run folder {inside}, which it would damage; pick another --out")


def new_run_dir(recipe_path: str) -> Path:
    """``runs/<recipe name>-<date>-<time>``: the default folder of a new run."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{Path(recipe_path).stem}-{stamp}"


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """The records of a run's metrics.jsonl; a line cut short by a kill is skipped."""
    path = Path(run_dir) / METRICS_FILE
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not text (it should hold one JSON record per line)") from None
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def last_evaluation(run_dir: str | Path) -> dict[str, Any]:
    """The run's last record holding ``eval/`` metrics (empty when it has none)."""
    if not (Path(run_dir) / METRICS_FILE).exists():
        return {}
    evaluations = [r for r in read_metrics(run_dir) if any(k.startswith("eval/") for k in r)]
    return evaluations[-1] if evaluations else {}
