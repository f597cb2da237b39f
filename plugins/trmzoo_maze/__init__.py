"""Built-in task plugin: Maze, find the shortest path from S to G on a square grid.

The data is either Maze-Hard from the Hub (``sapientinc/maze-30x30-hard-1k``, the
paper's benchmark) or mazes generated offline. Either way it is encoded as the
official builder does: ``"# SGo"`` -> tokens 1..5 with 0 as padding, one puzzle
identifier, and on the train split each group holds a maze and its 7 other
dihedral symmetries (each its own puzzle).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator
from tqdm import tqdm

from trmzoo import Puzzle, Task, TaskConfig, hookimpl
from trmzoo.task import Symmetry, SymmetryGroup, quote, read_puzzle_text
from trmzoo.data import DatasetMetadata, SplitArrays, write_identifiers, write_split
from trmzoo.data.grids import dihedral, inverse_dihedral
from trmzoo.errors import DataError, PuzzleError
from trmzoo.hub import download

from trmzoo_maze.generate import GOAL, START, make_maze, marks_shortest_path

CHARSET = "# SGo"  # tokens 1..5: wall, open, start, goal, path (labels only)
DRAW = "?" + CHARSET  # token -> character; '?' for padding predicted inside the grid
READ = {ch: i + 1 for i, ch in enumerate(CHARSET)} | {".": CHARSET.index(" ") + 1}
NUM_DIHEDRAL = 8


def orbit_key(maze: np.ndarray) -> bytes:
    """The same key for a maze and its rotations and mirror images: its smallest orientation's bytes."""
    return min(np.ascontiguousarray(dihedral(maze, t)).tobytes() for t in range(NUM_DIHEDRAL))


class DihedralGroup(SymmetryGroup):
    """The 8 symmetries of a square grid, numbered as :func:`trmzoo.data.grids.dihedral` (0 the identity)."""

    def __init__(self, size: int, vocab_size: int) -> None:
        self.size, self.vocab_size = size, vocab_size

    def __len__(self) -> int:
        return NUM_DIHEDRAL

    def __getitem__(self, index: int) -> Symmetry:
        if not 0 <= index < NUM_DIHEDRAL:
            raise IndexError(f"dihedral symmetry {index}: there are {NUM_DIHEDRAL}")
        cells = np.arange(self.size * self.size).reshape(self.size, self.size)
        return Symmetry(positions=dihedral(cells, index).reshape(-1).copy(), tokens=np.arange(self.vocab_size))


class MazeConfig(TaskConfig):
    """Build options; the defaults are the paper's Maze-Hard with its 8 augmentations."""

    name: Literal["maze"] = "maze"
    source: Literal["generate", "hub"] = "hub"
    size: int = Field(30, ge=3)  # grid side; the sequence is size * size cells
    min_path_length: int = Field(110, ge=1)  # generate only: S->G takes more moves than this
    num_train: int = Field(1000, ge=1)  # hub: a seeded subset when below the file's count
    num_test: int = Field(1000, ge=1)
    aug: bool = True  # the 8 dihedral versions of every train maze (the official flag is off by default)
    hub_repo: str = "sapientinc/maze-30x30-hard-1k"

    @model_validator(mode="after")
    def _generate_only(self) -> MazeConfig:
        default = type(self).model_fields["min_path_length"].default
        if self.source == "hub" and self.min_path_length != default:
            raise ValueError(f"min_path_length {self.min_path_length}: the Hub's mazes are as published; "
                             "it sets what source generate draws")
        return self


class MazeTask(Task):
    name = "maze"
    Config = MazeConfig

    @property
    def vocab_size(self) -> int:
        return len(CHARSET) + 1

    @property
    def seq_len(self) -> int:
        return self.config.size**2

    # -- data ------------------------------------------------------------------------------
    def build(self, out_dir: Path, *, progress: bool = True) -> None:
        cfg = self.config
        counts = {"train": cfg.num_train, "test": cfg.num_test}
        if cfg.source == "hub":
            splits = {split: self._read_hub(split, n) for split, n in counts.items()}
        else:
            splits = self._generate(counts, progress)
        for split, (inputs, labels) in splits.items():
            versions = NUM_DIHEDRAL if split == "train" and cfg.aug else 1
            arrays = self._layout(inputs, labels, versions)
            metadata = DatasetMetadata(
                vocab_size=self.vocab_size, seq_len=self.seq_len, num_puzzle_identifiers=1,
                total_groups=len(inputs), mean_puzzle_examples=1, total_puzzles=len(inputs),
            )  # the official builder counts groups as puzzles; kept for identical files
            write_split(out_dir, split, arrays, metadata)
        write_identifiers(out_dir, ["<blank>"])

    def _layout(self, inputs: np.ndarray, labels: np.ndarray, versions: int) -> SplitArrays:
        """Each maze followed by its dihedral versions 1..versions-1; one example per puzzle, one group per maze."""
        n = len(inputs)

        def expand(grids: np.ndarray) -> np.ndarray:
            stacked = np.stack([dihedral(grids, t) for t in range(versions)], axis=1)
            return stacked.reshape(n * versions, self.seq_len).astype(np.uint8)

        return SplitArrays(
            inputs=expand(inputs),
            labels=expand(labels),
            puzzle_identifiers=np.zeros(n * versions, np.int32),
            puzzle_indices=np.arange(n * versions + 1, dtype=np.int32),
            group_indices=np.arange(0, n * versions + 1, versions, dtype=np.int32),
        )

    def _generate(self, counts: dict[str, int], progress: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Fresh mazes per split from seeded streams. No maze appears twice in the first split (training), and
        every maze of a later split (test) is new up to symmetry: no rotation or mirror image of it is in an
        earlier split or earlier in its own. Training sees each maze in all 8 orientations (the built versions,
        or ``train.augment``), so a test maze that is another's image would not be held out, nor a new one."""
        cfg = self.config
        earlier: set[bytes] = set()  # the orbits of the earlier splits' mazes, by their smallest orientation
        splits = {}
        for index, (split, count) in enumerate(counts.items()):
            rng = np.random.default_rng([cfg.seed, index])
            inputs, labels, seen = [], [], set()
            bar = tqdm(total=count, desc=f"maze {split}", disable=not progress)
            for _ in range(100 * count):
                if len(inputs) == count:
                    break
                maze, label = make_maze(cfg.size, cfg.min_path_length, rng)
                key = orbit_key(maze) if index else maze.tobytes()
                if key in seen or key in earlier:
                    continue
                seen.add(key)
                inputs.append(maze)
                labels.append(label)
                bar.update()
            bar.close()
            if len(inputs) < count:
                held_out = " that are no rotation or mirror image of an earlier split's" if earlier else ""
                raise DataError(f"only {len(inputs)} distinct {cfg.size}x{cfg.size} mazes{held_out} found for {split}; "
                                f"lower task.num_{split} or task.min_path_length, or raise task.size")
            earlier.update(orbit_key(maze) for maze in inputs)
            splits[split] = (np.stack(inputs), np.stack(labels))
        return splits

    def _read_hub(self, split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Maze-Hard CSV (columns source, q, a, rating; one maze per row, row-major text)."""
        cfg = self.config
        path = download(cfg.hub_repo, f"{split}.csv", repo_type="dataset")
        cells = cfg.size**2
        inputs, labels = [], []
        with open(path, newline="") as f:
            rows = csv.reader(f)
            next(rows, None)  # header
            for line, row in enumerate(rows, start=2):
                if len(row) != 4:
                    raise DataError(f"{path} line {line}: expected 4 columns (source, q, a, rating), got {len(row)}")
                for column, text in zip(("q", "a"), row[1:3]):
                    if len(text) != cells:
                        raise DataError(f"{path} line {line}: column {column} has {len(text)} cells, "
                                        f"expected {cells} (task.size={cfg.size})")
                    if set(text) - set(CHARSET):
                        raise DataError(f"{path} line {line}: column {column} has characters outside {CHARSET!r}")
                inputs.append([READ[ch] for ch in row[1]])
                labels.append([READ[ch] for ch in row[2]])
        if count > len(inputs):
            raise DataError(f"{path} holds {len(inputs)} mazes; task.num_{split}={count} asks for more")
        keep = np.sort(np.random.default_rng(cfg.seed).choice(len(inputs), count, replace=False))
        shape = (len(inputs), cfg.size, cfg.size)
        return (np.array(inputs, np.uint8).reshape(shape)[keep],
                np.array(labels, np.uint8).reshape(shape)[keep])

    # -- augmentation ----------------------------------------------------------------------
    def augment(self, inputs: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        """One of the 8 grid symmetries (uniformly, identity included); ``params`` is its official id."""
        tid = int(rng.integers(NUM_DIHEDRAL))
        return self._transform(inputs, tid), self._transform(labels, tid), tid

    def invert(self, tokens: np.ndarray, params: int) -> np.ndarray:
        grid = np.asarray(tokens).reshape(*np.shape(tokens)[:-1], self.config.size, self.config.size)
        return inverse_dihedral(grid, params).reshape(np.shape(tokens)).copy()

    def symmetries(self) -> SymmetryGroup:
        return DihedralGroup(self.config.size, self.vocab_size)

    def _transform(self, tokens: np.ndarray, tid: int) -> np.ndarray:
        grid = np.asarray(tokens).reshape(*np.shape(tokens)[:-1], self.config.size, self.config.size)
        return dihedral(grid, tid).reshape(np.shape(tokens)).copy()

    def verify(self, inputs: np.ndarray, preds: np.ndarray) -> np.ndarray:
        """The answer keeps the maze and marks a shortest S->G path (any of them, where there are several)."""
        shape = (-1, self.config.size, self.config.size)
        return np.array([marks_shortest_path(maze, answer) for maze, answer in
                         zip(np.asarray(inputs).reshape(shape), np.asarray(preds).reshape(shape))], dtype=bool)

    # -- single puzzles --------------------------------------------------------------------
    def cell_text(self, token: int) -> str:
        return DRAW[token] if 0 <= token < len(DRAW) else "?"

    def parse(self, text: str) -> Puzzle:
        """A maze as ``size`` rows of ``#`` wall, space or ``.`` open, one ``S`` and one ``G``; or a file of it."""
        size = self.config.size
        text, path = read_puzzle_text(text)
        where = path or "maze"
        if path is None and "\n" not in text.strip():
            raise PuzzleError(f"{quote(text.strip())} is neither a maze file nor a {size}x{size} grid "
                              "of '#', ' ', 'S', 'G'")
        rows = text.splitlines()
        while rows and rows[0] == "":
            rows.pop(0)
        while rows and rows[-1] == "":
            rows.pop()
        if len(rows) != size:
            raise PuzzleError(f"{where}: {len(rows)} rows, expected {size} (task.size)")
        grid = np.zeros((size, size), np.uint8)
        for r, row in enumerate(rows):
            if len(row) != size:
                raise PuzzleError(f"{where} row {r + 1}: {len(row)} characters, expected {size} "
                                  "(write open cells as '.' if trailing spaces get lost)")
            for c, ch in enumerate(row):
                if ch == "o":
                    raise PuzzleError(f"{where} row {r + 1}, column {c + 1}: 'o' marks a solved path; "
                                      "give the maze without it")
                if ch not in READ:
                    raise PuzzleError(f"{where} row {r + 1}, column {c + 1}: unknown character {ch!r} "
                                      "(use '#' wall, ' ' or '.' open, 'S' start, 'G' goal)")
                grid[r, c] = READ[ch]
        for token, label in ((START, "start 'S'"), (GOAL, "goal 'G'")):
            found = np.argwhere(grid == token)
            if len(found) == 0:
                raise PuzzleError(f"{where}: no {label}")
            if len(found) > 1:
                cells = ", ".join(f"row {r + 1} column {c + 1}" for r, c in found[:4])
                raise PuzzleError(f"{where}: {len(found)} of {label} ({cells}); exactly one is needed")
        return Puzzle(inputs=grid.reshape(-1), info={"size": size})

    def render(self, tokens: np.ndarray, puzzle: Puzzle) -> str:
        size = puzzle.info.get("size", self.config.size)
        grid = np.asarray(tokens).reshape(size, size)
        return "\n".join("".join(DRAW[t] if t < len(DRAW) else "?" for t in row) for row in grid)


@hookimpl
def register_tasks(register):
    register("maze", MazeTask)
