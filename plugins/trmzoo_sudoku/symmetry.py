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
from dataclasses import dataclass

import numpy as np


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
