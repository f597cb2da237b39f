"""Pictures: training curves of a run, and the answer after every supervision step of a solve."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from trmzoo.errors import TrmzooError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise TrmzooError("drawing needs matplotlib: pip install 'trmzoo[plot]'") from None
    return plt


def plot_run(run_dir: str | Path, out: str | Path) -> Path:
    """Draw loss, exact accuracy, mean steps and learning rate of a run's metrics.jsonl."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise TrmzooError(f"{run_dir}: no metrics.jsonl (not a run folder, or it logged nothing yet)")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    plt = _pyplot()
    panels = [("loss", "loss"), ("exact_accuracy", "exact accuracy"), ("steps", "mean supervision steps"), ("lr", "learning rate")]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (key, title) in zip(axes.flat, panels):
        train = [(r["step"], r[key]) for r in records if key in r]
        if train:
            ax.plot(*zip(*train), label="train")
        evals = [(r["step"], r[f"eval/{key}"]) for r in records if f"eval/{key}" in r]
        if evals:
            ax.plot(*zip(*evals), "o-", label="test")
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)


def draw_trace(solution, task, puzzle, out: str | Path) -> Path:
    """One panel per supervision step with the predicted grid; cells that changed since the
    previous step are highlighted, and the title shows sigmoid(q_halt)."""
    plt = _pyplot()
    steps = len(solution.trace)
    side = int(round(np.sqrt(len(solution.trace[0]))))
    cols = min(steps, 8)
    rows = -(-steps // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    given = np.asarray(puzzle.inputs).reshape(side, side)
    previous = None
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= steps:
            continue
        grid = solution.trace[i].reshape(side, side)
        changed = np.zeros_like(grid, dtype=bool) if previous is None else grid != previous
        ax.imshow(changed, cmap="Oranges", vmin=0, vmax=1.5)
        for r in range(side):
            for c in range(side):
                weight = "bold" if given[r, c] == grid[r, c] else "normal"
                ax.text(c, r, str(int(grid[r, c])), ha="center", va="center", fontsize=max(4, 60 // side), weight=weight)
        ax.set_title(f"step {i + 1}  q={solution.q_trace[i]:.2f}", fontsize=8)
        previous = grid
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return Path(out)
