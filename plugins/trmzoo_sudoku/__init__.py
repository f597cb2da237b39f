"""Built-in task plugin: Sudoku on 2x2, 2x3 or 3x3 boxes, generated offline or Sudoku-Extreme from the Hub.

Tokens follow the official builder: 0 PAD, 1 blank, 2..N+1 the digits 1..N; the
label is the whole solution, givens included. See docs/tasks-sudoku.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from tqdm import tqdm

from trmzoo import hookimpl
from trmzoo.data import write_identifiers, write_split
from trmzoo.errors import PuzzleError
from trmzoo.hub import download
from trmzoo.task import Puzzle, Task, TaskConfig, read_puzzle_text
from trmzoo_sudoku.build import generate_puzzles, metadata, read_csv_split, split_arrays
from trmzoo_sudoku.solver import geometry
from trmzoo_sudoku.symmetry import SudokuGroup, Transform, breaks_no_rule, random_transform

SEPARATORS = set(" \t\r\n|-+")
GENERATE_ONLY = ("num_train", "num_test", "givens")
HUB_ONLY = ("subsample_size", "test_subsample_size", "hub_repo")


class SudokuConfig(TaskConfig):
    name: Literal["sudoku"] = "sudoku"
    source: Literal["generate", "hub"] = "generate"
    """``generate``: our own puzzles; ``hub``: the official Sudoku-Extreme CSVs (3x3 boxes only)."""
    box_rows: int = Field(3, ge=2)
    box_cols: int = Field(3, ge=2)
    num_train: int = Field(1000, ge=1)
    num_test: int = Field(1000, ge=1)
    givens: tuple[int, int] | None = None
    """Generated puzzles keep a number of givens drawn from this range (or fewer removals are
    possible); None: minimal puzzles. 4x4 boards need a range for variety (docs)."""
    num_aug: int = Field(0, ge=0)
    """Shuffled copies of each training puzzle, stored in its group."""
    min_difficulty: int | None = Field(None, ge=0)
    """Keep puzzles rated at least this: guesses for generated ones, the CSV ``rating`` for the Hub."""
    subsample_size: int | None = Field(None, ge=1)
    """Hub: draw this many training puzzles (seeded); None keeps all."""
    test_subsample_size: int | None = Field(None, ge=1)
    """Hub: draw this many test puzzles (seeded); None keeps the whole official test set."""
    hub_repo: str = "sapientinc/sudoku-extreme"

    @model_validator(mode="after")
    def _check(self) -> SudokuConfig:
        n = self.box_rows * self.box_cols
        if n > 9:
            raise ValueError(f"boxes of {self.box_rows}x{self.box_cols} make a {n}x{n} grid; at most 9x9 is supported")
        if self.source == "hub" and (self.box_rows, self.box_cols) != (3, 3):
            raise ValueError("source 'hub' (Sudoku-Extreme) has 3x3 boxes only")
        unused = HUB_ONLY if self.source == "generate" else GENERATE_ONLY
        # A value equal to the default is no choice (resolved recipes spell every default out).
        stray = [name for name in unused if getattr(self, name) != type(self).model_fields[name].default]
        if stray:
            raise ValueError(f"{', '.join(stray)} only apply to the other source than {self.source!r}")
        if self.givens is not None and not 0 <= self.givens[0] <= self.givens[1] < n * n:
            raise ValueError(f"givens must be a range [low, high] within 0..{n * n - 1}")
        return self


class SudokuTask(Task):
    name = "sudoku"
    Config = SudokuConfig
    config: SudokuConfig

    @property
    def size(self) -> int:
        return self.config.box_rows * self.config.box_cols

    @property
    def vocab_size(self) -> int:
        return self.size + 2

    @property
    def seq_len(self) -> int:
        return self.size * self.size

    # -- data ------------------------------------------------------------------------------
    def build(self, out_dir: Path, *, progress: bool = True) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        if cfg.source == "hub":
            test, train = self._hub_split("test", cfg.test_subsample_size, rng), \
                self._hub_split("train", cfg.subsample_size, rng)
        else:
            with tqdm(total=cfg.num_test + cfg.num_train, desc=f"sudoku {self.size}x{self.size} puzzles",
                      disable=not progress) as bar:
                seen: set[bytes] = set()  # canonical forms: test first, so train never meets a test orbit
                options = dict(box_rows=cfg.box_rows, box_cols=cfg.box_cols, rng=rng, seen=seen,
                               givens=cfg.givens, min_difficulty=cfg.min_difficulty, bar=bar)
                test = generate_puzzles(cfg.num_test, **options)
                train = generate_puzzles(cfg.num_train, **options)
        out_dir = Path(out_dir)
        for split, (puzzles, solutions), num_aug in (("train", train, cfg.num_aug), ("test", test, 0)):
            with tqdm(total=len(puzzles), desc=f"sudoku {split} split", disable=not progress) as bar:
                arrays = split_arrays(puzzles, solutions, box_rows=cfg.box_rows, box_cols=cfg.box_cols,
                                      num_aug=num_aug, rng=rng, bar=bar)
            write_split(out_dir, split, arrays, metadata(arrays, size=self.size))
        write_identifiers(out_dir, ["<blank>"])

    def _hub_split(self, split: str, subsample: int | None, rng: np.random.Generator):
        puzzles, solutions = read_csv_split(download(self.config.hub_repo, f"{split}.csv", repo_type="dataset"),
                                            size=self.seq_len, min_difficulty=self.config.min_difficulty)
        if subsample is not None and subsample < len(puzzles):
            keep = rng.choice(len(puzzles), size=subsample, replace=False)
            puzzles, solutions = puzzles[keep], solutions[keep]
        return puzzles, solutions

    def augment(self, inputs: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        t = random_transform(self.config.box_rows, self.config.box_cols, rng)
        return t.apply(inputs), t.apply(labels), t

    def invert(self, tokens: np.ndarray, params: Transform) -> np.ndarray:
        return params.invert(tokens)

    def symmetries(self) -> SudokuGroup:
        return SudokuGroup(self.config.box_rows, self.config.box_cols)

    def verify(self, inputs: np.ndarray, preds: np.ndarray) -> np.ndarray:
        """The answer breaks no rule of Sudoku and keeps the givens."""
        return breaks_no_rule(inputs, preds, self.config.box_rows, self.config.box_cols)

    # -- single puzzles --------------------------------------------------------------------
    def parse(self, text: str) -> Puzzle:
        """A grid as N*N characters (digits, '.' or '0' for blanks; spaces, '|', '-', '+' ignored), or a file."""
        text, path = read_puzzle_text(text)
        where = path or "puzzle"
        n = self.size
        cells = [ch for ch in text if ch not in SEPARATORS]
        for k, ch in enumerate(cells):  # a bad character first: it would miscount the cells (a comma, a BOM)
            if ch != "." and (ch not in "0123456789" or int(ch) > n):
                raise PuzzleError(f"{where}: row {k // n + 1}, column {k % n + 1}: {ch!r} is not a digit "
                                  f"1..{n} or a blank ('.' or '0')")
        if len(cells) != n * n:
            raise PuzzleError(f"{where}: a {n}x{n} Sudoku needs {n * n} cells, got {len(cells)}")
        digits = np.array([0 if ch == "." else int(ch) for ch in cells], dtype=np.uint8)
        _check_givens(digits, self.config.box_rows, self.config.box_cols, where)
        return Puzzle(inputs=digits + 1)

    def cell_text(self, token: int) -> str:
        return str(token - 1) if 2 <= token <= self.size + 1 else "."

    def render(self, tokens: np.ndarray, puzzle: Puzzle) -> str:
        br, bc, n = self.config.box_rows, self.config.box_cols, self.size
        chars = [self.cell_text(t) for t in np.asarray(tokens).reshape(-1).tolist()]
        rule = "-+-".join("-" * (2 * bc - 1) for _ in range(n // bc))
        lines = []
        for r in range(n):
            if r and r % br == 0:
                lines.append(rule)
            row = chars[r * n:(r + 1) * n]
            lines.append(" | ".join(" ".join(row[c:c + bc]) for c in range(0, n, bc)))
        return "\n".join(lines)


def _check_givens(digits: np.ndarray, box_rows: int, box_cols: int, where: str) -> None:
    """Refuse two equal givens in one row, column or box, naming both cells."""
    geo = geometry(box_rows, box_cols)
    n = geo.size
    for index, unit in enumerate(geo.units):
        kind = ("row", "column", "box")[index // n]
        first: dict[int, int] = {}
        for cell in unit:
            d = int(digits[cell])
            if not d:
                continue
            if d in first:
                a, b = first[d], cell
                raise PuzzleError(f"{where}: cells (row {a // n + 1}, column {a % n + 1}) and (row {b // n + 1}, "
                                  f"column {b % n + 1}) both hold {d} in the same {kind}")
            first[d] = cell


@hookimpl
def register_tasks(register):
    register("sudoku", SudokuTask)
