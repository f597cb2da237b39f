"""The ``nqueens`` task: complete an N x N board with some queens given to N non-attacking queens.

Tokens: 0 padding, 1 empty cell, 2 queen. Inputs hold the given queens, labels the
full solution, every cell supervised. Each train puzzle forms a group with some
of its 8 board symmetries (a symmetry of a solution is a solution); no puzzle of
the test split is a symmetry of a train puzzle, so test accuracy is held out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field
from tqdm import tqdm

from trmzoo import Puzzle, Task, TaskConfig
from trmzoo.data import DatasetMetadata, SplitArrays, write_identifiers, write_split
from trmzoo.data.grids import dihedral, inverse_dihedral
from trmzoo.errors import DataError, PuzzleError
from trmzoo.task import GridEvaluator, read_puzzle_text

from trmzoo_nqueens.board import Cell, attack, completions, make_puzzle

PAD, EMPTY, QUEEN = 0, 1, 2
DRAW = {PAD: "?", EMPTY: ".", QUEEN: "Q"}
READ = {".": EMPTY, "Q": QUEEN, "q": QUEEN}


class NQueensConfig(TaskConfig):
    """Build options: board size, split sizes, givens and augmentation."""

    name: Literal["nqueens"] = "nqueens"
    size: int = Field(8, ge=4, le=10)  # N; every solution of N is enumerated, 10 has 724
    num_train: int = Field(1000, ge=1)
    num_test: int = Field(200, ge=1)
    extra_givens: int = Field(0, ge=0)  # up to this many queens beyond a minimal set (easier, and more puzzles)
    num_aug: int = Field(7, ge=0, le=7)  # other board symmetries added to each train puzzle's group


class NQueensEvaluator(GridEvaluator):
    """Exact and token accuracy, plus ``valid``: the prediction is N non-attacking queens over the givens.

    With one completion per puzzle ``valid`` equals exact accuracy; it is computed from
    the rules alone, so it also holds for boards built without labels.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.valid = 0.0

    def update(self, batch, preds, q_halt):
        super().update(batch, preds, q_halt)
        for inputs, pred in zip(batch["inputs"], preds):
            self.valid += float(is_valid(pred.reshape(self.size, self.size), inputs.reshape(self.size, self.size)))

    def result(self):
        return {**super().result(), "valid": self.valid / max(self.count, 1)}


def is_valid(board: np.ndarray, givens: np.ndarray) -> bool:
    queens = [tuple(int(i) for i in q) for q in np.argwhere(board == QUEEN)]
    if len(queens) != len(board) or np.isin(board, (EMPTY, QUEEN), invert=True).any():
        return False
    if (board[givens == QUEEN] != QUEEN).any():
        return False
    return all(attack(a, b) is None for i, a in enumerate(queens) for b in queens[i + 1 :])


class NQueensTask(Task):
    name = "nqueens"
    Config = NQueensConfig

    @property
    def vocab_size(self) -> int:
        return 3

    @property
    def seq_len(self) -> int:
        return self.config.size**2

    # -- data ------------------------------------------------------------------------------
    def build(self, out_dir: Path, *, progress: bool = True) -> None:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        seen: set[bytes] = set()
        for split, count in (("train", cfg.num_train), ("test", cfg.num_test)):
            inputs, labels = [], []
            bar = tqdm(total=count, desc=f"nqueens {split}", disable=not progress)
            for _ in range(50 * count):
                if len(inputs) == count:
                    break
                givens, solution = make_puzzle(cfg.size, cfg.extra_givens, rng)
                board = self._board(givens)
                key = min(dihedral(board, t).tobytes() for t in range(8))  # one key per symmetry class
                if key in seen:
                    continue
                seen.add(key)
                inputs.append(board)
                labels.append(self._board([(r, int(c)) for r, c in enumerate(solution)]))
                bar.update()
            bar.close()
            if len(inputs) < count:
                raise DataError(f"only {len(inputs)} distinct {cfg.size}-queens puzzles found for {split}; "
                                f"lower task.num_{split}, raise task.extra_givens or task.size")
            versions = 1 + (cfg.num_aug if split == "train" else 0)
            arrays = self._layout(np.stack(inputs), np.stack(labels), versions, rng)
            write_split(out_dir, split, arrays, DatasetMetadata(
                vocab_size=self.vocab_size, seq_len=self.seq_len, num_puzzle_identifiers=1,
                total_groups=count, mean_puzzle_examples=1.0, total_puzzles=count * versions,
            ))
        write_identifiers(out_dir, ["<blank>"])

    def _board(self, queens: list[Cell]) -> np.ndarray:
        board = np.full((self.config.size, self.config.size), EMPTY, np.uint8)
        for r, c in queens:
            board[r, c] = QUEEN
        return board

    def _layout(self, inputs: np.ndarray, labels: np.ndarray, versions: int, rng) -> SplitArrays:
        """Each puzzle then ``versions - 1`` distinct random symmetries of it; one group per puzzle."""
        rows_in, rows_out = [], []
        for x, y in zip(inputs, labels):
            for t in [0, *rng.permutation(np.arange(1, 8))[: versions - 1]]:
                rows_in.append(dihedral(x, int(t)).reshape(-1))
                rows_out.append(dihedral(y, int(t)).reshape(-1))
        total = len(rows_in)
        return SplitArrays(
            inputs=np.stack(rows_in).astype(np.uint8),
            labels=np.stack(rows_out).astype(np.uint8),
            puzzle_identifiers=np.zeros(total, np.int32),
            puzzle_indices=np.arange(total + 1, dtype=np.int32),
            group_indices=np.arange(0, total + 1, versions, dtype=np.int32),
        )

    # -- augmentation ----------------------------------------------------------------------
    def augment(self, inputs: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        """One of the 8 board symmetries; ``params`` is its id in ``trmzoo.data.grids``."""
        tid = int(rng.integers(8))
        return self._apply(inputs, dihedral, tid), self._apply(labels, dihedral, tid), tid

    def invert(self, tokens: np.ndarray, params: int) -> np.ndarray:
        return self._apply(tokens, inverse_dihedral, params)

    def _apply(self, tokens: np.ndarray, transform, tid: int) -> np.ndarray:
        n = self.config.size
        shape = np.shape(tokens)
        return transform(np.asarray(tokens).reshape(*shape[:-1], n, n), tid).reshape(shape).copy()

    def evaluator(self, data_dir: Path, *, max_puzzles: int | None = None) -> NQueensEvaluator:
        """trmzoo passes ``max_puzzles`` (``--max-puzzles``); it keeps the first examples itself."""
        return NQueensEvaluator(self.config.size)

    # -- single puzzles --------------------------------------------------------------------
    def parse(self, text: str) -> Puzzle:
        """N rows of ``.`` (empty) and ``Q`` (queen), one per line or separated by ``/``; or a file of them."""
        n = self.config.size
        text = read_puzzle_text(text, inline_slashes=True)[0].strip()
        rows = [row.strip() for row in text.replace("/", "\n").splitlines() if row.strip()]
        if len(rows) == 1 and len(rows[0]) == n * n:
            rows = [rows[0][i : i + n] for i in range(0, n * n, n)]
        if len(rows) != n:
            raise PuzzleError(f"{len(rows)} rows, expected {n} (task.size) rows of '.' and 'Q'")
        queens: list[Cell] = []
        for r, row in enumerate(rows):
            if len(row) != n:
                raise PuzzleError(f"row {r + 1}: {len(row)} cells, expected {n}")
            for c, ch in enumerate(row):
                if ch not in READ:
                    raise PuzzleError(f"row {r + 1}, column {c + 1}: unknown character {ch!r} "
                                      "(use '.' for an empty cell, 'Q' for a queen)")
                if READ[ch] == QUEEN:
                    for other in queens:
                        how = attack(other, (r, c))
                        if how:
                            raise PuzzleError(f"row {r + 1}, column {c + 1}: this queen attacks the queen at "
                                              f"row {other[0] + 1}, column {other[1] + 1} (same {how})")
                    queens.append((r, c))
        if len(completions(n, queens)) == 0:
            raise PuzzleError(f"no placement of {n} non-attacking queens contains the {len(queens)} given")
        return Puzzle(inputs=self._board(queens).reshape(-1), info={"size": n})

    def render(self, tokens: np.ndarray, puzzle: Puzzle) -> str:
        n = puzzle.info.get("size", self.config.size)
        board = np.asarray(tokens).reshape(n, n)
        return "\n".join("".join(DRAW.get(int(t), "?") for t in row) for row in board)
