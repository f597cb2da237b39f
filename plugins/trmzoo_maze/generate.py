"""An offline maker of mazes with long shortest paths, so Maze training needs no download.

Mazes are *perfect* (a randomised depth-first search carves a spanning tree), so
the path between any two open cells is unique and the label is unambiguous.
Every random choice comes from the ``numpy`` generator passed in, so a seed fixes
the output.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from trmzoo.errors import DataError

WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5  # tokens of "# SGo"; 0 is padding
MOVES = ((-1, 0), (0, 1), (1, 0), (0, -1))


def carve(size: int, rng: np.random.Generator) -> np.ndarray:
    """A perfect maze on a ``size x size`` grid: cells at odd coordinates, walls elsewhere."""
    grid = np.full((size, size), WALL, np.uint8)
    n = len(range(1, size, 2))  # cells per side
    visited = np.zeros((n, n), bool)
    r, c = int(rng.integers(n)), int(rng.integers(n))
    visited[r, c] = True
    grid[2 * r + 1, 2 * c + 1] = OPEN
    stack = [(r, c)]
    while stack:
        r, c = stack[-1]
        fresh = [(r + dr, c + dc) for dr, dc in MOVES
                 if 0 <= r + dr < n and 0 <= c + dc < n and not visited[r + dr, c + dc]]
        if not fresh:
            stack.pop()
            continue
        nr, nc = fresh[int(rng.integers(len(fresh)))]
        visited[nr, nc] = True
        grid[r + nr + 1, c + nc + 1] = OPEN  # the wall between the two cells
        grid[2 * nr + 1, 2 * nc + 1] = OPEN
        stack.append((nr, nc))
    return grid


def distances(grid: np.ndarray, source: tuple[int, int]) -> np.ndarray:
    """Breadth-first distance (4-neighbour moves over non-wall cells) from ``source``; -1 if unreachable."""
    h, w = grid.shape
    free = grid != WALL
    dist = np.full((h, w), -1, np.int32)
    dist[source] = 0
    queue = deque([source])
    while queue:
        r, c = queue.popleft()
        d = dist[r, c] + 1
        for dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            if 0 <= nr < h and 0 <= nc < w and free[nr, nc] and dist[nr, nc] < 0:
                dist[nr, nc] = d
                queue.append((nr, nc))
    return dist


def solve(grid: np.ndarray) -> np.ndarray | None:
    """The label for a maze with one S and one G: a shortest S->G path marked ``PATH``.

    Walks back from G, always taking the first neighbour one step closer to S in
    ``MOVES`` order, so the choice is deterministic where several shortest paths
    exist. Returns None when G cannot be reached.
    """
    start = tuple(int(i) for i in np.argwhere(grid == START)[0])
    goal = tuple(int(i) for i in np.argwhere(grid == GOAL)[0])
    dist = distances(grid, start)
    if dist[goal] < 0:
        return None
    label = grid.copy()
    h, w = grid.shape
    r, c = goal
    while dist[r, c] > 1:
        for dr, dc in MOVES:
            nr, nc = r + dr, c + dc
            if 0 <= nr < h and 0 <= nc < w and dist[nr, nc] == dist[r, c] - 1:
                r, c = nr, nc
                break
        label[r, c] = PATH
    return label


def marks_shortest_path(maze: np.ndarray, answer: np.ndarray) -> bool:
    """Whether ``answer`` is ``maze`` with one shortest S->G path marked ``PATH`` and nothing else changed.

    Any shortest path counts, not only the one :func:`solve` marks: the path cells lie on open cells, there
    are as many as a shortest path has between S and G, and they link S to G. A grid without exactly one S
    and one G (a batch's padding) has no answer.
    """
    starts, goals = np.argwhere(maze == START), np.argwhere(maze == GOAL)
    on_path = answer == PATH
    if len(starts) != 1 or len(goals) != 1 or not np.array_equal(np.where(on_path, OPEN, answer), maze):
        return False  # not a maze (a batch's padding rows) or the answer changed it
    start, goal = tuple(int(i) for i in starts[0]), tuple(int(i) for i in goals[0])
    moves = int(distances(maze, start)[goal])
    if moves < 0 or int(on_path.sum()) != moves - 1:
        return False
    walk = np.where(on_path | (maze == START) | (maze == GOAL), OPEN, WALL)
    return int(distances(walk, start)[goal]) == moves


def make_maze(size: int, min_path_length: int, rng: np.random.Generator, *,
              max_tries: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """One ``(input, label)`` pair whose S->G shortest path takes more than ``min_path_length`` moves."""
    for _ in range(max_tries):
        grid = carve(size, rng)
        open_cells = np.argwhere(grid == OPEN)
        for _ in range(4):  # a few starts per maze before carving another
            start = tuple(int(i) for i in open_cells[rng.integers(len(open_cells))])
            far = np.argwhere(distances(grid, start) > min_path_length)
            if len(far):
                goal = tuple(int(i) for i in far[rng.integers(len(far))])
                grid[start], grid[goal] = START, GOAL
                return grid, solve(grid)
    raise DataError(f"task.min_path_length={min_path_length} is too long for {size}x{size} mazes "
                    f"(none found in {max_tries} tries); lower it or raise task.size")
