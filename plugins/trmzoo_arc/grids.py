"""ARC grids as tokens: the 30x30 canvas, the EOS crop, augmentation names and grid hashes.

Tokens: 0 PAD, 1 EOS, 2..11 the colours 0..9. A grid sits in the canvas at some
offset (the top-left corner outside the train split) with an EOS row just below it
and an EOS column just right of it; the corner between them stays PAD.

An augmented puzzle version is named ``<task id>|||t<k>|||<colour map>``: ``k`` is
the dihedral id of :mod:`trmzoo.data.grids` and the colour map is ten digits, the
new colour of each old colour 0..9 (black always stays 0).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from trmzoo.data.grids import dihedral, inverse_dihedral
from trmzoo.errors import TrmzooError

SIZE = 30
PAD, EOS, COLOUR0 = 0, 1, 2
VOCAB = COLOUR0 + 10
SEP = "|||"
IDENTITY = np.arange(10, dtype=np.uint8)


def check_grid(value: Any, where: str, error: type[TrmzooError]) -> np.ndarray:
    """A JSON grid as uint8, or ``error`` naming the first bad row or cell."""
    if not isinstance(value, list) or not value:
        raise error(f"{where}: expected a non-empty list of rows")
    if len(value) > SIZE:
        raise error(f"{where}: {len(value)} rows, at most {SIZE}")
    width = None
    for r, row in enumerate(value):
        if not isinstance(row, list) or not row:
            raise error(f"{where} row {r}: expected a non-empty list of colours")
        if width is None:
            width = len(row)
            if width > SIZE:
                raise error(f"{where} row {r}: {width} cells, at most {SIZE}")
        elif len(row) != width:
            raise error(f"{where} row {r}: {len(row)} cells, row 0 has {width}")
        for c, cell in enumerate(row):
            if isinstance(cell, bool) or not isinstance(cell, int) or not 0 <= cell <= 9:
                raise error(f"{where} row {r} column {c}: {cell!r} is not a colour 0..9")
    return np.array(value, dtype=np.uint8)


def grid_hash(grid: np.ndarray) -> str:
    """SHA-256 of the shape and cells, as the official builder and evaluator key grids."""
    digest = hashlib.sha256(bytes(grid.shape))
    digest.update(np.ascontiguousarray(grid, dtype=np.uint8).tobytes())
    return digest.hexdigest()


def to_canvas(grid: np.ndarray, top: int = 0, left: int = 0) -> np.ndarray:
    """Flat [900] uint8 tokens of ``grid`` placed at (top, left), with its EOS row and column."""
    rows, cols = grid.shape
    canvas = np.zeros((SIZE, SIZE), dtype=np.uint8)
    canvas[top : top + rows, left : left + cols] = grid + COLOUR0
    if top + rows < SIZE:
        canvas[top + rows, left : left + cols] = EOS
    if left + cols < SIZE:
        canvas[top : top + rows, left + cols] = EOS
    return canvas.reshape(-1)


def crop(tokens: np.ndarray) -> np.ndarray:
    """The largest top-left rectangle made only of colour tokens, as colours 0..9.

    Each row can extend the rectangle only as far as every row above it; the first
    height with the largest area wins (a model's prediction may be ragged).
    """
    canvas = np.asarray(tokens).reshape(SIZE, SIZE)
    colour = (canvas >= COLOUR0) & (canvas < VOCAB)
    run = np.where(colour.all(1), SIZE, np.argmin(colour, axis=1))
    width = np.minimum.accumulate(run)
    area = width * np.arange(1, SIZE + 1)
    rows = int(np.argmax(area))
    if area[rows] == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    return (canvas[: rows + 1, : width[rows]] - COLOUR0).astype(np.uint8)


def locate(tokens: np.ndarray) -> tuple[int, int, np.ndarray]:
    """Offset and colours of the grid in a (possibly translated) canvas: the box of its colour tokens."""
    canvas = np.asarray(tokens).reshape(SIZE, SIZE)
    rows, cols = np.nonzero(canvas >= COLOUR0)
    if rows.size == 0:
        return 0, 0, np.zeros((0, 0), dtype=np.uint8)
    top, left = int(rows.min()), int(cols.min())
    grid = canvas[top : rows.max() + 1, left : cols.max() + 1] - COLOUR0
    return top, left, grid.astype(np.uint8)


def augment_grid(grid: np.ndarray, tid: int, mapping: np.ndarray) -> np.ndarray:
    """Recolour, then apply dihedral ``tid`` (the official order)."""
    return dihedral(mapping[grid], tid)


def undo_grid(grid: np.ndarray, tid: int, mapping: np.ndarray) -> np.ndarray:
    """Invert :func:`augment_grid`."""
    return np.argsort(mapping).astype(np.uint8)[inverse_dihedral(grid, tid)]


def version_name(task_id: str, tid: int, mapping: np.ndarray) -> str:
    return f"{task_id}{SEP}t{tid}{SEP}{''.join(str(int(c)) for c in mapping)}"


def parse_version(name: str) -> tuple[str, int, np.ndarray]:
    """``(task id, dihedral id, colour map)`` of a puzzle identifier; the original has the identity."""
    if SEP not in name:
        return name, 0, IDENTITY
    task_id, transform, colours = name.rsplit(SEP, 2)
    return task_id, int(transform[1:]), np.array([int(c) for c in colours], dtype=np.uint8)
