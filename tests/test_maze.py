"""Maze task: generator, official layout, Hub source, augmentations, parsing and drawing."""

from __future__ import annotations

import json
from collections import deque

import numpy as np
import pytest
from huggingface_hub import constants
from pydantic import ValidationError

from trmzoo.data import read_identifiers, read_split
from trmzoo.data.grids import DIHEDRAL_INVERSE, dihedral, inverse_dihedral
from trmzoo.errors import DataError, HubError, PuzzleError
from trmzoo.registry import get_registry

WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5


def maze_task(**options):
    task_cls = get_registry().task["maze"].task_cls
    return task_cls(task_cls.Config(**options))


def bfs_distance(grid: np.ndarray, source: tuple[int, int], target: tuple[int, int]) -> int:
    """Moves from source to target over non-wall cells; written here independently of the plugin."""
    h, w = grid.shape
    seen = {source: 0}
    queue = deque([source])
    while queue:
        cell = queue.popleft()
        if cell == target:
            return seen[cell]
        r, c = cell
        for nxt in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= nxt[0] < h and 0 <= nxt[1] < w and grid[nxt] != WALL and nxt not in seen:
                seen[nxt] = seen[cell] + 1
                queue.append(nxt)
    return -1


def check_solution(inputs: np.ndarray, labels: np.ndarray) -> int:
    """Assert the label marks a shortest S->G path of open cells; return its length in moves."""
    assert (inputs == START).sum() == 1 and (inputs == GOAL).sum() == 1 and not (inputs == PATH).any()
    marked = labels == PATH
    assert np.array_equal(labels[~marked], inputs[~marked])
    assert (inputs[marked] == OPEN).all()
    start = tuple(np.argwhere(inputs == START)[0])
    goal = tuple(np.argwhere(inputs == GOAL)[0])
    on_path = {tuple(p) for p in np.argwhere(marked)} | {start, goal}
    # Walk the marked cells from S: a shortest path never touches itself, so each step has one way on.
    walk, cell = [start], start
    while cell != goal:
        r, c = cell
        ahead = [n for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)) if n in on_path and n not in walk]
        assert len(ahead) == 1, f"path branches or breaks at {cell}"
        cell = ahead[0]
        walk.append(cell)
    assert len(walk) == len(on_path), "marked cells off the S->G path"
    moves = len(walk) - 1
    assert moves == bfs_distance(inputs, start, goal)
    return moves


def grids(split_arrays, size):
    return (np.asarray(split_arrays.inputs).reshape(-1, size, size),
            np.asarray(split_arrays.labels).reshape(-1, size, size))


# -- dihedral helpers --------------------------------------------------------------------------

def test_dihedral_ids_follow_the_official_numbering():
    grid = np.arange(12).reshape(3, 4)
    h, w = grid.shape
    expected = {  # out[i, j] = grid[...]: counter-clockwise turns, mirrors, the two diagonals
        0: lambda i, j: grid[i, j],
        1: lambda i, j: grid[j, w - 1 - i],
        2: lambda i, j: grid[h - 1 - i, w - 1 - j],
        3: lambda i, j: grid[h - 1 - j, i],
        4: lambda i, j: grid[i, w - 1 - j],
        5: lambda i, j: grid[h - 1 - i, j],
        6: lambda i, j: grid[j, i],
        7: lambda i, j: grid[h - 1 - j, w - 1 - i],
    }
    for tid, cell in expected.items():
        out = dihedral(grid, tid)
        assert out.tolist() == [[cell(i, j) for j in range(out.shape[1])] for i in range(out.shape[0])], tid
        assert np.array_equal(dihedral(out, DIHEDRAL_INVERSE[tid]), grid)
        assert np.array_equal(inverse_dihedral(out, tid), grid)
        batch = np.stack([grid, grid + 100])
        assert np.array_equal(dihedral(batch, tid)[1], out + 100)
    assert list(DIHEDRAL_INVERSE) == [0, 3, 2, 1, 4, 5, 6, 7]


# -- generator ---------------------------------------------------------------------------------

def test_generated_labels_are_shortest_paths_longer_than_the_minimum(tmp_path):
    task = maze_task(source="generate", size=15, min_path_length=30, num_train=12, num_test=4, aug=False)
    task.build(tmp_path, progress=False)
    for split in ("train", "test"):
        _, arrays = read_split(tmp_path, split)
        for inputs, labels in zip(*grids(arrays, 15)):
            assert check_solution(inputs, labels) > 30


def test_maze_hard_sized_generation():
    from trmzoo_maze.generate import make_maze

    rng = np.random.default_rng(7)
    for _ in range(3):
        inputs, labels = make_maze(30, 110, rng)
        assert inputs.shape == (30, 30)
        assert check_solution(inputs, labels) > 110


def test_generation_is_seeded_and_splits_are_disjoint(tmp_path):
    def build(folder, seed):
        maze_task(source="generate", size=11, min_path_length=12, num_train=6, num_test=6, seed=seed).build(
            folder, progress=False)
        return {split: read_split(folder, split)[1].inputs for split in ("train", "test")}

    first, again, other = build(tmp_path / "a", 3), build(tmp_path / "b", 3), build(tmp_path / "c", 4)
    assert all(np.array_equal(first[s], again[s]) for s in first)
    assert not np.array_equal(first["train"], other["train"])
    train = {row.tobytes() for row in first["train"]}
    assert not any(row.tobytes() in train for row in first["test"])


def test_test_mazes_are_new_up_to_rotation_and_mirroring(tmp_path):
    """Training sees every maze in all 8 orientations, so a test maze whose image is a training maze (or another
    test maze) is not held out. 7x7 mazes with paths over 6 moves come in about 1,070 shapes: 600 training
    mazes with the official 8 versions each, then 100 test mazes of shapes no other maze has."""
    from trmzoo_maze import orbit_key

    maze_task(source="generate", size=7, min_path_length=6, num_train=600, num_test=100).build(
        tmp_path / "m", progress=False)
    train, test = ([orbit_key(row.reshape(7, 7)) for row in read_split(tmp_path / "m", split)[1].inputs]
                   for split in ("train", "test"))
    assert len(set(test)) == len(test) == 100 and not set(test) & set(train)
    assert len(set(train)) < len(train) == 600 * 8  # training holds every orientation
    with pytest.raises(DataError, match=r"only \d+ distinct 7x7 mazes that are no rotation or mirror image of an "
                                        r"earlier split's found for test; lower task.num_test"):
        maze_task(source="generate", size=7, min_path_length=6, num_train=3000, num_test=500).build(
            tmp_path / "full", progress=False)


def test_a_generate_only_option_with_the_hub_source_is_refused():
    with pytest.raises(ValidationError, match="min_path_length 5: the Hub's mazes are as published"):
        maze_task(source="hub", min_path_length=5)
    maze_task(source="hub", min_path_length=110)  # the default, as a saved model's task records it


def test_impossible_path_length_is_refused():
    with pytest.raises(DataError, match="min_path_length=200"):
        maze_task(source="generate", size=7, min_path_length=200, num_train=1, num_test=1).build(
            "/nonexistent", progress=False)


# -- on-disk layout ----------------------------------------------------------------------------

def test_built_arrays_have_the_official_layout(tmp_path):
    size = 9
    maze_task(source="generate", size=size, min_path_length=8, num_train=3, num_test=2).build(
        tmp_path, progress=False)
    meta, train = read_split(tmp_path, "train")
    assert train.inputs.dtype == train.labels.dtype == np.uint8
    assert train.inputs.shape == (24, size * size)
    for name in ("puzzle_identifiers", "puzzle_indices", "group_indices"):
        assert getattr(train, name).dtype == np.int32
    assert train.puzzle_identifiers.tolist() == [0] * 24
    assert train.puzzle_indices.tolist() == list(range(25))
    assert train.group_indices.tolist() == [0, 8, 16, 24]
    inputs, labels = grids(train, size)
    for group in range(3):
        original_in, original_lab = inputs[8 * group], labels[8 * group]
        for tid in range(8):
            assert np.array_equal(inputs[8 * group + tid], dihedral(original_in, tid))
            assert np.array_equal(labels[8 * group + tid], dihedral(original_lab, tid))
            check_solution(inputs[8 * group + tid], labels[8 * group + tid])
    assert meta.model_dump() == {
        "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": 6, "seq_len": size * size,
        "num_puzzle_identifiers": 1, "total_groups": 3, "mean_puzzle_examples": 1.0, "total_puzzles": 3,
        "sets": ["all"],
    }
    _, test = read_split(tmp_path, "test")
    assert test.inputs.shape == (2, size * size)
    assert test.group_indices.tolist() == [0, 1, 2] and test.puzzle_indices.tolist() == [0, 1, 2]
    assert read_identifiers(tmp_path) == ["<blank>"]
    assert json.loads((tmp_path / "test" / "dataset.json").read_text())["total_groups"] == 2


def test_aug_off_keeps_one_example_per_group(tmp_path):
    maze_task(source="generate", size=9, min_path_length=8, num_train=3, num_test=1, aug=False).build(
        tmp_path, progress=False)
    _, train = read_split(tmp_path, "train")
    assert train.inputs.shape == (3, 81) and train.group_indices.tolist() == [0, 1, 2, 3]


# -- Maze-Hard from the Hub --------------------------------------------------------------------

HUB_MAZES = [  # (question, answer) drawn by hand, 5x5
    (["S #  ", "  # #", "#   #", "### #", "G    "],
     ["So#  ", " o# #", "#ooo#", "###o#", "Gooo "]),
    (["#G   ", "#### ", "     ", " ####", "    S"],
     ["#Gooo", "####o", "ooooo", "o####", "ooooS"]),
    (["  S  ", " ### ", "  #  ", "# # #", "  G  "],
     ["ooS  ", "o### ", "oo#  ", "#o# #", " oG  "]),
]


def encode(rows):
    return np.array([["# SGo".index(ch) + 1 for ch in row] for row in rows], np.uint8)


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """A Hugging Face cache holding a tiny copy of the Maze-Hard CSVs, with the Hub offline."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "datasets--sapientinc--maze-30x30-hard-1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    lines = ["source,question,answer,rating"]
    lines += [f"tiny,{''.join(q)},{''.join(a)},0" for q, a in HUB_MAZES]
    (snapshot / "train.csv").write_text("\n".join(lines) + "\n")
    (snapshot / "test.csv").write_text("\n".join(lines[:2]) + "\n")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return snapshot


def test_hub_source_reads_the_cached_csv(hub_cache, tmp_path):
    for q, a in HUB_MAZES:  # the hand-drawn answers are themselves shortest paths
        check_solution(encode(q), encode(a))
    out = tmp_path / "data"
    maze_task(source="hub", size=5, num_train=3, num_test=1).build(out, progress=False)
    _, train = read_split(out, "train")
    inputs, labels = grids(train, 5)
    assert train.group_indices.tolist() == [0, 8, 16, 24]
    for group, (q, a) in enumerate(HUB_MAZES):
        for tid in range(8):
            assert np.array_equal(inputs[8 * group + tid], dihedral(encode(q), tid))
            assert np.array_equal(labels[8 * group + tid], dihedral(encode(a), tid))
    _, test = read_split(out, "test")
    assert np.array_equal(test.inputs.reshape(5, 5), encode(HUB_MAZES[0][0]))


def test_hub_subset_is_seeded_and_ordered(hub_cache, tmp_path):
    picks = []
    for seed in range(6):
        maze_task(source="hub", size=5, num_train=2, num_test=1, aug=False, seed=seed).build(
            tmp_path / str(seed), progress=False)
        inputs = read_split(tmp_path / str(seed), "train")[1].inputs.reshape(-1, 5, 5)
        order = [next(i for i, (q, _) in enumerate(HUB_MAZES) if np.array_equal(encode(q), grid)) for grid in inputs]
        assert order == sorted(order) and len(set(order)) == 2
        picks.append(tuple(order))
    assert len(set(picks)) > 1
    with pytest.raises(DataError, match="holds 3 mazes"):
        maze_task(source="hub", size=5, num_train=4, num_test=1).build(tmp_path / "x", progress=False)


def test_hub_csv_of_the_wrong_size_names_the_line(hub_cache, tmp_path):
    with pytest.raises(DataError, match=r"train.csv line 2: column q has 25 cells, expected 36 \(task.size=6\)"):
        maze_task(source="hub", size=6, num_train=1, num_test=1).build(tmp_path / "x", progress=False)


def test_hub_download_then_offline_reuse(fake_hub, tmp_path, monkeypatch):
    csv_text = "source,question,answer,rating\n" + "".join(f"t,{''.join(q)},{''.join(a)},0\n" for q, a in HUB_MAZES)
    for split in ("train", "test"):
        fake_hub.add_file("sapientinc/maze-30x30-hard-1k", f"{split}.csv", csv_text.encode(), repo_type="dataset")
    task = maze_task(source="hub", size=5, num_train=3, num_test=3)
    task.build(tmp_path / "online", progress=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    task.build(tmp_path / "offline", progress=False)
    online, offline = read_split(tmp_path / "online", "test")[1], read_split(tmp_path / "offline", "test")[1]
    assert np.array_equal(online.labels, offline.labels)
    assert np.array_equal(online.labels.reshape(3, 5, 5), np.stack([encode(a) for _, a in HUB_MAZES]))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(HubError, match=r"^someone/missing: no such repository on http://127.0.0.1:\d+ [^\n]*$"):
        maze_task(source="hub", size=5, hub_repo="someone/missing").build(tmp_path / "x", progress=False)


def test_hub_missing_while_offline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubError) as info:
        maze_task(source="hub").build(tmp_path / "x", progress=False)
    message = str(info.value)
    assert message.startswith("sapientinc/maze-30x30-hard-1k: train.csv is not in the local cache") and "\n" not in message


# -- augmentation ------------------------------------------------------------------------------

def test_augment_then_invert_is_identity_and_keeps_solutions_valid():
    task = maze_task(source="generate", size=13, min_path_length=20)
    from trmzoo_maze.generate import make_maze

    maze, label = make_maze(13, 20, np.random.default_rng(0))
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(40):
        aug_in, aug_lab, tid = task.augment(maze.reshape(-1), label.reshape(-1), rng)
        seen.add(tid)
        assert aug_in.shape == (169,)
        check_solution(aug_in.reshape(13, 13), aug_lab.reshape(13, 13))
        assert np.array_equal(task.invert(aug_in, tid), maze.reshape(-1))
        assert np.array_equal(task.invert(aug_lab, tid), label.reshape(-1))
        batch = np.stack([aug_lab, aug_in])
        assert np.array_equal(task.invert(batch, tid), np.stack([label.reshape(-1), maze.reshape(-1)]))
    assert seen == set(range(8))


# -- verify ------------------------------------------------------------------------------------

def test_verify_accepts_every_shortest_path_and_nothing_else():
    task = maze_task(source="generate", size=13, min_path_length=20)
    from trmzoo_maze.generate import make_maze

    rng = np.random.default_rng(3)
    mazes, labels = map(np.stack, zip(*(make_maze(13, 20, rng) for _ in range(4))))
    flat = mazes.reshape(4, -1)
    assert task.verify(flat, labels.reshape(4, -1)).tolist() == [True] * 4
    assert task.verify(flat, flat).tolist() == [False] * 4  # no path marked
    gap, extra, moved_wall = (labels.copy() for _ in range(3))
    gap[0][tuple(np.argwhere(labels[0] == PATH)[3])] = OPEN
    extra[0][tuple(np.argwhere(labels[0] == OPEN)[0])] = PATH
    moved_wall[0][tuple(np.argwhere(labels[0] == WALL)[5])] = OPEN
    for answer in (gap, extra, moved_wall):
        assert task.verify(flat[:1], answer[:1].reshape(1, -1)).tolist() == [False]
    padding = np.zeros((1, 169), np.int64)  # a padded batch row: no maze, no answer
    assert task.verify(padding, padding).tolist() == [False]

    room = maze_task(size=5)  # S and G at opposite corners of an open 3x3 room: six shortest paths
    maze = np.array([[WALL] * 5, [WALL, START, OPEN, OPEN, WALL], [WALL, OPEN, OPEN, OPEN, WALL],
                     [WALL, OPEN, OPEN, GOAL, WALL], [WALL] * 5])

    def marked(*cells):
        answer = maze.copy()
        for cell in cells:
            answer[cell] = PATH
        return answer.reshape(1, -1)

    for cells, valid in ((((1, 2), (1, 3), (2, 3)), True), (((2, 1), (3, 1), (3, 2)), True),
                         (((2, 1), (2, 2), (2, 3)), True), (((1, 2), (2, 1), (3, 2)), False),
                         (((1, 2), (2, 2)), False), (((1, 2), (1, 3), (2, 3), (2, 2)), False)):
        assert room.verify(maze.reshape(1, -1), marked(*cells)).tolist() == [valid], cells
        if valid:  # the test's own checker agrees
            assert check_solution(maze, marked(*cells).reshape(5, 5)) == 4


# -- single puzzles ----------------------------------------------------------------------------

GOOD = ["#######", "#S    #", "# ### #", "#   # #", "### # #", "#G    #", "#######"]


def test_parse_render_round_trip(tmp_path):
    task = maze_task(size=7)
    text = "\n".join(GOOD)
    puzzle = task.parse(text)
    assert puzzle.inputs.shape == (49,) and puzzle.puzzle_identifier == 0
    assert task.render(puzzle.inputs, puzzle) == text
    dotted = text.replace(" ", ".")
    assert np.array_equal(task.parse(dotted + "\n").inputs, puzzle.inputs)
    path = tmp_path / "maze.txt"
    path.write_text(dotted + "\n")
    assert np.array_equal(task.parse(str(path)).inputs, puzzle.inputs)
    from trmzoo_maze.generate import solve

    label = solve(puzzle.inputs.reshape(7, 7))
    assert task.render(label.reshape(-1), puzzle).splitlines() == [
        "#######", "#S    #", "#o### #", "#ooo# #", "###o# #", "#Goo  #", "#######"]
    assert check_solution(puzzle.inputs.reshape(7, 7), label) == 8


def with_row(index, row):
    rows = list(GOOD)
    rows[index] = row
    return "\n".join(rows)


@pytest.mark.parametrize("text, message", [
    ("\n".join(GOOD[:6]), "maze: 6 rows, expected 7"),
    (with_row(2, "# ### "), "maze row 3: 6 characters, expected 7"),
    (with_row(3, "#  x# #"), "maze row 4, column 4: unknown character 'x'"),
    (with_row(1, "#     #"), "maze: no start 'S'"),
    (with_row(5, "#     #"), "maze: no goal 'G'"),
    (with_row(3, "#  S# #"), "maze: 2 of start 'S' (row 2 column 2, row 4 column 4)"),
    (with_row(3, "#G  # #"), "maze: 2 of goal 'G'"),
    (with_row(1, "#So   #"), "maze row 2, column 3: 'o' marks a solved path"),
    ("no/such/maze.txt", "no/such/maze.txt: no such file"),
])
def test_bad_puzzles_are_refused_in_one_line(text, message):
    with pytest.raises(PuzzleError) as info:
        maze_task(size=7).parse(text)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_config_defaults_are_maze_hard_and_unknown_options_fail():
    task = maze_task()
    assert (task.config.source, task.config.size, task.config.aug) == ("hub", 30, True)
    assert (task.vocab_size, task.seq_len) == (6, 900)
    with pytest.raises(ValidationError):
        maze_task(sise=30)
