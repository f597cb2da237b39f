"""Pictures: training curves of a run, and the answer after every supervision step of a solve."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from trmzoo.errors import TrmzooError
from trmzoo.files import atomic_write
from trmzoo.run import METRICS_FILE, read_metrics


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TrmzooError("drawing needs matplotlib: pip install 'trmzoo[plot]'") from None
    return plt


# (title, train key, test key) of each panel of plot_run
RUN_PANELS = [
    ("loss", "loss", None),
    ("exact accuracy", "exact_accuracy", "eval/exact_accuracy"),
    ("mean supervision steps", "steps", "eval/mean_steps"),
    ("learning rate", "lr", None),
]


def run_figure(records: list[dict]):
    """A 2x2 matplotlib figure of a run's metrics records (train lines, test points)."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (title, train_key, test_key) in zip(axes.flat, RUN_PANELS):
        for key, style, label in ((train_key, "-", "train"), (test_key, "o-", "test")):
            points = [(r["step"], r[key]) for r in records if key and key in r]
            if points:  # a lone point of a line would not show: mark it
                ax.plot(*zip(*points), style if len(points) > 1 else "o", label=label)
        ax.set_title(title)
        ax.set_xlabel("step")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    fig.tight_layout()
    return fig


def picture_path(out: str | Path) -> Path:
    """Where a picture asked for as ``out`` goes: its suffix names a format matplotlib writes (.png when it
    has none, as matplotlib adds it); checked before any work is done."""
    out = Path(out)
    if not out.suffix:
        return out.with_name(out.name + ".png")
    _pyplot()
    from matplotlib.backend_bases import FigureCanvasBase

    formats = FigureCanvasBase.get_supported_filetypes()
    if out.suffix[1:].lower() not in formats:
        raise TrmzooError(f"{out}: matplotlib writes no {out.suffix} pictures; end the name with one of "
                          f"{', '.join('.' + f for f in sorted(formats))}")
    return out


def _numbers(records: list, keys: set[str]) -> list[dict]:
    """The records that hold a numeric step and at least one numeric value to draw."""
    def number(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return [r for r in records if isinstance(r, dict) and number(r.get("step")) and any(number(r.get(k)) for k in keys)]


def _save(fig, out: Path) -> None:
    """Write ``fig`` to ``out`` under a temporary name, then rename it (the format from ``out``'s suffix)."""
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, dpi=100, format=out.suffix[1:].lower()))
    finally:
        _pyplot().close(fig)


def plot_run(run_dir: str | Path, out: str | Path) -> Path:
    """Draw loss, exact accuracy, mean steps and learning rate of a run's metrics.jsonl to a picture (PNG
    unless ``out`` names another format)."""
    out = picture_path(out)
    metrics = Path(run_dir) / METRICS_FILE
    if not metrics.exists():
        raise TrmzooError(f"{run_dir}: no {METRICS_FILE} (not a run folder, or it logged nothing yet)")
    records = _numbers(read_metrics(run_dir), {k for _, *keys in RUN_PANELS for k in keys if k})
    if not records:
        raise TrmzooError(f"{metrics}: no record with a step and a value to draw (it logged nothing yet)")
    fig = run_figure(records)
    _save(fig, out)
    return out


def draw_trace(solution, task, puzzle, out: str | Path) -> Path:
    """One panel per supervision step with the predicted grid (as the task writes cells);
    cells that changed since the previous step (since the input, for the first) are
    highlighted, given cells are bold, and the title shows sigmoid(q_halt)."""
    out = picture_path(out)
    plt = _pyplot()
    steps = len(solution.trace)
    cells = len(solution.trace[0])
    side = math.isqrt(cells)
    shape = (side, side) if side * side == cells else (1, cells)  # a square grid, else one row
    cols = min(steps, 8)
    rows = -(-steps // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    given = np.asarray(puzzle.inputs).reshape(shape)
    previous = given
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= steps:
            continue
        grid = solution.trace[i].reshape(shape)
        changed = grid != previous
        ax.imshow(changed, cmap="Oranges", vmin=0, vmax=1.5)
        for r in range(shape[0]):
            for c in range(shape[1]):
                weight = "bold" if given[r, c] == grid[r, c] else "normal"
                ax.text(c, r, task.cell_text(int(grid[r, c])), ha="center", va="center",
                        fontsize=max(4, 60 // max(shape)), weight=weight)
        ax.set_title(f"step {i + 1}  q={solution.q_trace[i]:.2f}", fontsize=8)
        previous = grid
    fig.tight_layout()
    _save(fig, out)
    return out
