"""The 8 symmetries of a square grid, numbered as the official TRM builders number them.

Maze and ARC both augment with these; keeping the numbering lets augmentation ids
written by the official builders (ARC's ``t<k>`` names) be undone here. Every
function acts on the last two axes, so a batch of grids ``[..., H, W]`` works too.
"""

from __future__ import annotations

import numpy as np

DIHEDRAL_INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)
"""``DIHEDRAL_INVERSE[t]`` undoes transform ``t`` (only the two quarter turns swap)."""


def dihedral(grid: np.ndarray, tid: int) -> np.ndarray:
    """Apply symmetry ``tid``: 0 identity, 1-3 quarter turns counter-clockwise (as ``np.rot90``),
    4 left-right mirror, 5 up-down mirror, 6 transpose, 7 anti-transpose.

    Returns a view where numpy can; copy it before writing into it.
    """
    if tid == 0:
        return grid
    if tid in (1, 2, 3):
        return np.rot90(grid, k=tid, axes=(-2, -1))
    if tid == 4:
        return np.flip(grid, axis=-1)
    if tid == 5:
        return np.flip(grid, axis=-2)
    if tid == 6:
        return np.swapaxes(grid, -2, -1)
    if tid == 7:
        return np.flip(np.rot90(grid, k=1, axes=(-2, -1)), axis=-1)
    raise ValueError(f"dihedral transform id must be 0..7, got {tid}")


def inverse_dihedral(grid: np.ndarray, tid: int) -> np.ndarray:
    """Undo :func:`dihedral` with the same ``tid``."""
    return dihedral(grid, DIHEDRAL_INVERSE[tid])
