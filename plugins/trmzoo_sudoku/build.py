"""Building the Sudoku splits: generated puzzles held out by canonical form, or Sudoku-Extreme from the Hub.

Grids here are digit arrays (0 blank, 1..N); tokens are digits + 1 (0 PAD, 1 blank,
2..N+1 digits), the official encoding.
"""

from __future__ import annotations

import csv
from pathlib import Path
import numpy as np
from tqdm import tqdm

from trmzoo.data import DatasetMetadata, SplitArrays
from trmzoo.errors import DataError
from trmzoo_sudoku.solver import difficulty, generate
from trmzoo_sudoku.symmetry import canonical_form, random_transforms

MAX_MISSES = 1000
"""Consecutive rejected draws (duplicates or too easy) after which a request is deemed impossible."""


def generate_puzzles(count: int, *, box_rows: int, box_cols: int, rng: np.random.Generator, seen: set[bytes],
                     givens: tuple[int, int] | None, min_difficulty: int | None,
                     bar: tqdm) -> tuple[np.ndarray, np.ndarray]:
    """``count`` puzzles (and solutions) whose canonical forms are not in ``seen``; adds theirs.

    Each puzzle stops losing givens at a target drawn from ``givens`` (or is
    minimal when ``givens`` is None).
    """
    puzzles, solutions = [], []
    misses = 0
    while len(puzzles) < count:
        target = 0 if givens is None else int(rng.integers(givens[0], givens[1] + 1))
        puzzle, solution = generate(box_rows, box_cols, rng, min_givens=target)
        key = canonical_form(np.array(puzzle), box_rows, box_cols)
        hard_enough = min_difficulty is None or difficulty(puzzle, solution, box_rows, box_cols) >= min_difficulty
        if key in seen or not hard_enough:
            misses += 1
            if misses > MAX_MISSES:
                raise DataError(
                    f"sudoku {box_rows}x{box_cols} boxes: found only {len(seen)} distinct puzzles of the requested "
                    f"kind (givens={givens}, min_difficulty={min_difficulty}) after {MAX_MISSES} draws in a row gave "
                    f"nothing new; ask for fewer puzzles, a wider `givens` range or a lower `min_difficulty`")
            continue
        misses = 0
        seen.add(key)
        puzzles.append(puzzle)
        solutions.append(solution)
        bar.update()
    size = (box_rows * box_cols) ** 2
    return np.array(puzzles, dtype=np.uint8).reshape(-1, size), np.array(solutions, dtype=np.uint8).reshape(-1, size)


def read_csv_split(path: Path, *, size: int, min_difficulty: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Puzzles and solutions of a Sudoku-Extreme CSV (source,q,a,rating; '.' blank), rating-filtered."""
    puzzles, solutions = [], []
    with open(path, newline="") as f:
        reader = csv.reader(f)
        next(reader, None)
        for line, row in enumerate(reader, start=2):
            if len(row) != 4 or len(row[1]) != size or len(row[2]) != size or not row[3].strip().isdigit():
                raise DataError(f"{path}:{line}: expected `source,q,a,rating` with {size}-character grids")
            if min_difficulty is None or int(row[3]) >= min_difficulty:
                puzzles.append(row[1].replace(".", "0"))
                solutions.append(row[2])

    def digits(rows: list[str]) -> np.ndarray:
        return (np.frombuffer("".join(rows).encode(), dtype=np.uint8) - ord("0")).reshape(-1, size)

    return digits(puzzles), digits(solutions)


def split_arrays(puzzles: np.ndarray, solutions: np.ndarray, *, box_rows: int, box_cols: int, num_aug: int,
                 rng: np.random.Generator, bar: tqdm) -> SplitArrays:
    """The official Sudoku layout: one group per original puzzle, holding it and ``num_aug`` shuffles,
    each a puzzle of one example."""
    inputs, labels = puzzles + 1, solutions + 1  # digits -> tokens, uint8 kept
    versions = 1 + num_aug
    all_inputs = np.empty((len(inputs), versions, inputs.shape[1]), dtype=np.uint8)
    all_labels = np.empty_like(all_inputs)
    all_inputs[:, 0], all_labels[:, 0] = inputs, labels
    for i in range(len(inputs)):
        if num_aug:
            t = random_transforms(box_rows, box_cols, rng, num_aug)
            all_inputs[i, 1:], all_labels[i, 1:] = t.apply(inputs[i]), t.apply(labels[i])
        bar.update()
    all_inputs, all_labels = all_inputs.reshape(-1, inputs.shape[1]), all_labels.reshape(-1, inputs.shape[1])
    examples = len(all_inputs)
    return SplitArrays(
        inputs=all_inputs,
        labels=all_labels,
        puzzle_identifiers=np.zeros(examples, dtype=np.int32),
        puzzle_indices=np.arange(examples + 1, dtype=np.int32),
        group_indices=np.arange(0, examples + 1, versions, dtype=np.int32),
    )


def metadata(arrays: SplitArrays, *, size: int) -> DatasetMetadata:
    """``dataset.json`` as the official Sudoku builder writes it (it counts groups as ``total_puzzles``)."""
    groups = len(arrays.group_indices) - 1
    return DatasetMetadata(
        pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=size + 2, seq_len=size * size,
        num_puzzle_identifiers=1, total_groups=groups, mean_puzzle_examples=1, total_puzzles=groups,
    )
