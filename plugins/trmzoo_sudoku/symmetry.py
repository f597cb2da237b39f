"""The validity-preserving symmetries of a Sudoku and a canonical form under them.

The group: relabel the digits; permute the bands (groups of ``box_rows`` rows)
and the rows inside each band; permute the stacks (groups of ``box_cols``
columns) and the columns inside each stack; transpose when the boxes are square.
Augmentation draws one element at random (the official ``shuffle_sudoku``,
generalised to rectangular boxes); the canonical form names a puzzle's whole
orbit, so puzzles equal up to augmentation can be kept out of each other's split.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from trmzoo.task import Symmetry, SymmetryGroup


@dataclass(frozen=True)
class Transform:
    """``new = digits[old[positions]]`` on flat token sequences (transpose folded into positions).

    The arrays may carry a leading batch axis: then ``apply`` maps one sequence to
    one image per transform. ``invert`` takes a single transform.
    """

    digits: np.ndarray  # token -> token; PAD (0) and blank (1) map to themselves
    positions: np.ndarray  # new cell -> old cell

    def apply(self, tokens: np.ndarray) -> np.ndarray:
        return np.take_along_axis(self.digits, tokens[..., self.positions], axis=-1).astype(tokens.dtype)

    def invert(self, tokens: np.ndarray) -> np.ndarray:
        inverse = np.argsort(self.digits).astype(tokens.dtype)
        out = np.empty_like(tokens)
        out[..., self.positions] = inverse[tokens]
        return out


def _shuffled(count: int, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """``count`` independent random permutations of ``range(shape[-1])`` for every leading index."""
    return rng.permuted(np.broadcast_to(np.arange(shape[-1]), (count, *shape)), axis=-1)


def random_transforms(box_rows: int, box_cols: int, rng: np.random.Generator, count: int) -> Transform:
    """``count`` random elements of the group, as one batched :class:`Transform`."""
    n = box_rows * box_cols
    digits = np.concatenate([np.broadcast_to([0, 1], (count, 2)), 2 + _shuffled(count, (n,), rng)], axis=1)

    def lines(per_group: int) -> np.ndarray:  # band (or stack) order, then line order inside each
        groups = _shuffled(count, (n // per_group,), rng)
        return (groups[:, :, None] * per_group + _shuffled(count, (n // per_group, per_group), rng)).reshape(count, n)

    rows, cols = lines(box_rows), lines(box_cols)
    positions = (rows[:, :, None] * n + cols[:, None, :]).reshape(count, n * n)
    if box_rows == box_cols:
        flip = rng.random(count) < 0.5
        positions[flip] = (positions[flip] % n) * n + positions[flip] // n
    return Transform(digits=digits, positions=positions)


def random_transform(box_rows: int, box_cols: int, rng: np.random.Generator) -> Transform:
    t = random_transforms(box_rows, box_cols, rng, 1)
    return Transform(digits=t.digits[0], positions=t.positions[0])


@functools.lru_cache(maxsize=None)
def _column_orders(box_rows: int, box_cols: int) -> np.ndarray:
    """Every order of the columns that keeps stacks together: [count, N]."""
    stacks = box_rows
    inner = list(itertools.permutations(range(box_cols)))
    orders = []
    for stack_order in itertools.permutations(range(stacks)):
        for within in itertools.product(inner, repeat=stacks):
            orders.append([s * box_cols + c for s, w in zip(stack_order, within) for c in w])
    return np.array(orders, dtype=np.int64)


def _relabel_row(values: np.ndarray, labels: np.ndarray, next_label: np.ndarray) -> np.ndarray:
    """Rename digits in order of first appearance, continuing ``labels``/``next_label`` in place."""
    out = np.zeros_like(values)
    rows = np.arange(len(values))
    for j in range(values.shape[1]):
        v = values[:, j]
        new = (v > 0) & (labels[rows, v] == 0)
        labels[rows[new], v[new]] = next_label[new]
        next_label += new
        out[:, j] = labels[rows, v]  # labels[:, 0] stays 0: blanks stay blank
    return out


def canonical_form(grid: np.ndarray, box_rows: int, box_cols: int) -> bytes:
    """The lexicographically smallest image of ``grid`` (0 blank, 1..N digits) under the group.

    For a fixed arrangement of cells the smallest digit relabelling names digits
    in order of first appearance, so only arrangements are searched: row by row,
    keeping every partial arrangement whose rows so far tie for the smallest.
    """
    n = box_rows * box_cols
    grid = np.asarray(grid, dtype=np.int64).reshape(n, n)
    views = np.stack([grid, grid.T]) if box_rows == box_cols else grid[None]
    cols = _column_orders(box_rows, box_cols)
    # A partial arrangement: (view, column order, rows placed so far, digit labels so far).
    view = np.repeat(np.arange(len(views)), len(cols))
    col = np.tile(np.arange(len(cols)), len(views))
    placed = np.zeros((len(view), 0), dtype=np.int64)
    labels = np.zeros((len(view), n + 1), dtype=np.int64)
    next_label = np.ones(len(view), dtype=np.int64)
    band_of = np.arange(n) // box_rows
    result = []
    for k in range(n):
        used = np.zeros((len(view), n), dtype=bool)
        np.put_along_axis(used, placed, True, axis=1)
        if k % box_rows == 0:  # a new band: any row of a band not used yet
            band_used = used.reshape(len(view), -1, box_rows).any(-1)
            allowed = ~band_used[:, band_of]
        else:  # the same band as the row above
            allowed = (band_of[None, :] == band_of[placed[:, -1]][:, None]) & ~used
        parent, row = np.nonzero(allowed)
        values = views[view[parent], row][np.arange(len(parent))[:, None], cols[col[parent]]]
        labels_p, next_p = labels[parent], next_label[parent]
        renamed = _relabel_row(values, labels_p, next_p)
        key = renamed @ (n + 1) ** np.arange(n - 1, -1, -1)
        best = key == key.min()
        result.append(renamed[np.argmax(best)])
        keep = np.nonzero(best)[0]
        view, col = view[parent[keep]], col[parent[keep]]
        placed = np.concatenate([placed[parent[keep]], row[keep, None]], axis=1)
        labels, next_label = labels_p[keep], next_p[keep]
    return np.concatenate(result).astype(np.uint8).tobytes()


def nth_permutation(index: int, n: int) -> list[int]:
    """Permutation number ``index`` of ``range(n)`` in lexicographic order (0 is the identity)."""
    items, out = list(range(n)), []
    for place in range(n, 0, -1):
        pick, index = divmod(index, math.factorial(place - 1))
        out.append(items.pop(pick))
    return out


class SudokuGroup(SymmetryGroup):
    """The whole group, enumerated in mixed radix: digit relabelling, band order, row order in each
    band, stack order, column order in each stack, then transpose (square boxes only). Element 0
    is the identity."""

    def __init__(self, box_rows: int, box_cols: int) -> None:
        self.box_rows, self.box_cols = box_rows, box_cols
        self.n = n = box_rows * box_cols
        bands, stacks = n // box_rows, n // box_cols
        self.radix = [math.factorial(n), math.factorial(bands), *[math.factorial(box_rows)] * bands,
                      math.factorial(stacks), *[math.factorial(box_cols)] * stacks, 2 if box_rows == box_cols else 1]

    def __len__(self) -> int:
        return math.prod(self.radix)

    def __getitem__(self, index: int) -> Symmetry:
        if not 0 <= index < len(self):
            raise IndexError(f"symmetry {index} of a group of {len(self)}")
        digits = []
        for base in self.radix:
            index, digit = divmod(index, base)
            digits.append(digit)
        n, br, bc = self.n, self.box_rows, self.box_cols
        bands, stacks = n // br, n // bc
        relabel = nth_permutation(digits[0], n)
        band_order = nth_permutation(digits[1], bands)
        in_band = [nth_permutation(d, br) for d in digits[2 : 2 + bands]]
        stack_order = nth_permutation(digits[2 + bands], stacks)
        in_stack = [nth_permutation(d, bc) for d in digits[3 + bands : 3 + bands + stacks]]
        rows = np.array([band_order[g] * br + in_band[g][j] for g in range(bands) for j in range(br)])
        cols = np.array([stack_order[g] * bc + in_stack[g][j] for g in range(stacks) for j in range(bc)])
        positions = (rows[:, None] * n + cols[None, :]).reshape(-1)
        if digits[-1]:
            positions = (positions % n) * n + positions // n
        return Symmetry(positions=positions.astype(np.int64), tokens=np.array([0, 1, *(2 + np.array(relabel))]))


def breaks_no_rule(inputs: np.ndarray, preds: np.ndarray, box_rows: int, box_cols: int) -> np.ndarray:
    """Per answer: every cell a digit, each row, column and box holds every digit once, and the givens kept;
    a row whose inputs hold padding (token 0) is no puzzle, so none of its answers is valid."""
    n = box_rows * box_cols
    grid = np.asarray(preds, dtype=np.int64).reshape(-1, n, n) - 1  # digits 1..n
    boxes = grid.reshape(-1, n // box_rows, box_rows, n // box_cols, box_cols).transpose(0, 1, 3, 2, 4).reshape(-1, n, n)
    digits = np.arange(1, n + 1)
    ok = np.ones(len(grid), dtype=bool)
    for units in (grid, grid.transpose(0, 2, 1), boxes):
        ok &= (np.sort(units, axis=-1) == digits).all((1, 2))
    inputs = np.asarray(inputs).reshape(len(grid), -1)
    given = inputs > 1
    puzzle = (inputs > 0).all(-1)  # blanks are token 1, digits 2..n+1
    return ok & puzzle & ((np.asarray(preds).reshape(len(grid), -1) == inputs) | ~given).all(-1)
