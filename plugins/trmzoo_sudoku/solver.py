"""A constraint-propagating Sudoku solver and a generator of puzzles with one solution.

Grids are flat lists of ints, row-major, 0 for a blank and 1..N for digits, on a
board of ``box_rows x box_cols`` boxes (N = box_rows * box_cols). Candidates are
bit masks (bit d-1 for digit d). Propagation assigns naked singles (a cell with
one candidate) and hidden singles (a digit with one place in a unit); when it
stalls, the solver guesses on a cell with the fewest candidates (MRV).

A puzzle's difficulty is the number of guesses on the way to its solution: how
often propagation stalls and the solver must commit a digit to an MRV cell,
guessing right each time. 0 means singles alone solve it. Following the known
solution makes the count independent of the order in which digits are tried.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


class Contradiction(Exception):
    """Propagation emptied a cell or left a digit without a place."""


@dataclass(frozen=True)
class Geometry:
    """The cells, units and peers of a board of ``box_rows x box_cols`` boxes."""

    box_rows: int
    box_cols: int

    @property
    def size(self) -> int:
        return self.box_rows * self.box_cols

    @functools.cached_property
    def units(self) -> list[tuple[int, ...]]:
        n, br, bc = self.size, self.box_rows, self.box_cols
        rows = [tuple(r * n + c for c in range(n)) for r in range(n)]
        cols = [tuple(r * n + c for r in range(n)) for c in range(n)]
        boxes = [
            tuple((r0 + r) * n + c0 + c for r in range(br) for c in range(bc))
            for r0 in range(0, n, br) for c0 in range(0, n, bc)
        ]
        return rows + cols + boxes

    @functools.cached_property
    def cell_units(self) -> list[list[tuple[int, ...]]]:
        return [[u for u in self.units if cell in u] for cell in range(self.size ** 2)]

    @functools.cached_property
    def peers(self) -> list[tuple[int, ...]]:
        return [tuple(sorted(set().union(*us) - {cell})) for cell, us in enumerate(self.cell_units)]


@functools.lru_cache(maxsize=None)
def geometry(box_rows: int, box_cols: int) -> Geometry:
    return Geometry(box_rows, box_cols)


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low
        mask ^= low


class _Search:
    """One propagation-and-guessing search over a candidate table."""

    def __init__(self, geo: Geometry, rng: np.random.Generator | None = None) -> None:
        self.geo = geo
        self.rng = rng

    def assign(self, cand: list[int], cell: int, bit: int) -> None:
        for other in _bits(cand[cell] & ~bit):
            self.eliminate(cand, cell, other)

    def eliminate(self, cand: list[int], cell: int, bit: int) -> None:
        if not cand[cell] & bit:
            return
        left = cand[cell] = cand[cell] & ~bit
        if not left:
            raise Contradiction
        if not left & (left - 1):  # naked single: its digit leaves every peer
            for peer in self.geo.peers[cell]:
                self.eliminate(cand, peer, left)
        for unit in self.geo.cell_units[cell]:
            self._hidden_single(cand, unit, bit)

    def _hidden_single(self, cand: list[int], unit: tuple[int, ...], bit: int) -> None:
        """Assign ``bit`` if it has one place left in ``unit``; stop scanning at the second place."""
        place = -1
        for c in unit:
            if cand[c] & bit:
                if place >= 0:
                    return
                place = c
        if place < 0:
            raise Contradiction
        self.assign(cand, place, bit)

    def start(self, grid: list[int]) -> list[int]:
        """The candidate table of a grid's givens, propagated; raises ``Contradiction``.

        Givens first strike their digit from their peers directly; the singles this
        creates are then propagated, and every unit is scanned once for hidden singles.
        """
        full = (1 << self.geo.size) - 1
        cand = [full] * len(grid)
        givens = [(cell, 1 << (int(v) - 1)) for cell, v in enumerate(grid) if v]
        for cell, bit in givens:
            cand[cell] = bit
        for cell, bit in givens:
            for peer in self.geo.peers[cell]:
                if cand[peer] == bit:
                    raise Contradiction
                cand[peer] &= ~bit
        if not all(cand):
            raise Contradiction
        for cell, mask in enumerate(cand):
            if not grid[cell] and not mask & (mask - 1):
                for peer in self.geo.peers[cell]:
                    self.eliminate(cand, peer, mask)
        for unit in self.geo.units:
            for bit in _bits(full):
                self._hidden_single(cand, unit, bit)
        return cand

    def solutions(self, cand: list[int], limit: int) -> list[list[int]]:
        """Up to ``limit`` completions of a propagated table (random digit order when rng is set)."""
        open_cells = [(bin(m).count("1"), c) for c, m in enumerate(cand) if m & (m - 1)]
        if not open_cells:
            return [[m.bit_length() for m in cand]]
        _, cell = min(open_cells)
        options = list(_bits(cand[cell]))
        if self.rng is not None:
            options = [options[i] for i in self.rng.permutation(len(options))]
        found: list[list[int]] = []
        for bit in options:
            trial = list(cand)
            try:
                self.assign(trial, cell, bit)
            except Contradiction:
                continue
            found += self.solutions(trial, limit - len(found))
            if len(found) >= limit:
                break
        return found


def solve(grid: list[int], box_rows: int, box_cols: int, *, limit: int = 2) -> list[list[int]]:
    """Up to ``limit`` solutions of ``grid``: two are enough to tell a unique puzzle."""
    search = _Search(geometry(box_rows, box_cols))
    try:
        cand = search.start(grid)
    except Contradiction:
        return []
    return search.solutions(cand, limit)


def difficulty(grid: list[int], solution: list[int], box_rows: int, box_cols: int) -> int:
    """Guesses needed to reach ``solution`` from ``grid``: the MRV branch points on its path."""
    search = _Search(geometry(box_rows, box_cols))
    cand = search.start(grid)
    guesses = 0
    while True:
        open_cells = [(bin(m).count("1"), c) for c, m in enumerate(cand) if m & (m - 1)]
        if not open_cells:
            return guesses
        _, cell = min(open_cells)
        search.assign(cand, cell, 1 << (solution[cell] - 1))
        guesses += 1


def random_grid(box_rows: int, box_cols: int, rng: np.random.Generator) -> list[int]:
    """A uniformly seeded random full grid (random digit order in the search)."""
    search = _Search(geometry(box_rows, box_cols), rng)
    return search.solutions(search.start([0] * (box_rows * box_cols) ** 2), 1)[0]


def _unique_without(grid: list[int], cell: int, geo: Geometry) -> bool:
    """Whether ``grid`` with ``cell`` blanked still has only its known solution.

    The blanked puzzle keeps the known solution, so it is unique exactly when no
    solution puts another digit in ``cell``: one existence search, usually short.
    """
    value = grid[cell]
    if len({grid[p] for p in geo.peers[cell]} - {0}) == geo.size - 1:
        return True  # its peers still show every other digit: the cell stays forced
    trial = list(grid)
    trial[cell] = 0
    search = _Search(geo)
    try:
        cand = search.start(trial)
        search.eliminate(cand, cell, 1 << (value - 1))
    except Contradiction:
        return True
    return not search.solutions(cand, 1)


def generate(box_rows: int, box_cols: int, rng: np.random.Generator, *,
             min_givens: int = 0) -> tuple[list[int], list[int]]:
    """A puzzle with exactly one solution, and that solution.

    Givens of a random full grid are removed in random order while the solution
    stays unique, stopping early at ``min_givens``; with ``min_givens=0`` the
    puzzle is minimal (no given can be removed).
    """
    geo = geometry(box_rows, box_cols)
    solution = random_grid(box_rows, box_cols, rng)
    puzzle = list(solution)
    givens = len(puzzle)
    for cell in rng.permutation(len(puzzle)).tolist():
        if givens <= min_givens:
            break
        if _unique_without(puzzle, cell, geo):
            puzzle[cell] = 0
            givens -= 1
    return puzzle, solution
