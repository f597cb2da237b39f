"""N-Queens boards: every solution, completions of given queens, and puzzles with one completion.

A solution is an array ``cols`` of length N with the queen of row ``r`` in column
``cols[r]``. All solutions of an N up to 12 are enumerated once (14,200 for N=12),
so the completions of a set of given queens are a filter over that table, which
makes the uniqueness check exact and cheap.
"""

from __future__ import annotations

import functools

import numpy as np

Cell = tuple[int, int]  # (row, column), 0-based


@functools.lru_cache(maxsize=None)
def all_solutions(n: int) -> np.ndarray:
    """Every placement of ``n`` non-attacking queens, ``[count, n]`` columns by row, in lexicographic order."""
    found: list[tuple[int, ...]] = []
    cols: list[int] = []

    def place(row: int, used: int, diag: int, anti: int) -> None:
        if row == n:
            found.append(tuple(cols))
            return
        for c in range(n):
            d, a = 1 << (row - c + n), 1 << (row + c)
            if used >> c & 1 or diag & d or anti & a:
                continue
            cols.append(c)
            place(row + 1, used | 1 << c, diag | d, anti | a)
            cols.pop()

    place(0, 0, 0, 0)
    return np.array(found, dtype=np.int64).reshape(-1, n)


def completions(n: int, givens: list[Cell]) -> np.ndarray:
    """The solutions that contain every given queen."""
    sols = all_solutions(n)
    keep = np.ones(len(sols), dtype=bool)
    for r, c in givens:
        keep &= sols[:, r] == c
    return sols[keep]


def attack(a: Cell, b: Cell) -> str | None:
    """How queen ``a`` attacks queen ``b`` ('row', 'column', 'diagonal'), or None."""
    if a[0] == b[0]:
        return "row"
    if a[1] == b[1]:
        return "column"
    if abs(a[0] - b[0]) == abs(a[1] - b[1]):
        return "diagonal"
    return None


def make_puzzle(n: int, extra_givens: int, rng: np.random.Generator) -> tuple[list[Cell], np.ndarray]:
    """A random solution and a set of its queens whose only completion is that solution.

    Queens are dropped in random order while the completion stays unique, which
    leaves a minimal set; then up to ``extra_givens`` of the dropped ones come back.
    """
    sols = all_solutions(n)
    solution = sols[int(rng.integers(len(sols)))]
    order = [(int(r), int(solution[r])) for r in rng.permutation(n)]
    givens = list(order)
    dropped = []
    for cell in order:
        rest = [g for g in givens if g != cell]
        if len(completions(n, rest)) == 1:
            givens, dropped = rest, dropped + [cell]
    extra = int(rng.integers(min(extra_givens, len(dropped)) + 1))
    return sorted(givens + dropped[:extra]), solution
