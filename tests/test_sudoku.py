"""The Sudoku task: generator, difficulty, symmetries, held-out split, on-disk layout, parsing, Hub source."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from trmzoo.data import build_fingerprint, read_identifiers, read_split
from trmzoo.errors import DataError, HubError, PuzzleError
from trmzoo.registry import get_registry
from trmzoo_sudoku import SudokuConfig, SudokuTask
from trmzoo_sudoku.solver import difficulty, generate, solve
from trmzoo_sudoku.symmetry import canonical_form

SHAPES = [(2, 2), (2, 3), (3, 3)]
# Arto Inkala's "hardest Sudoku" (2012): singles alone cannot make progress on it.
INKALA = "8..........36......7..9.2...5...7.......457.....1...3...1....68..85...1..9....4.."


def task(**options) -> SudokuTask:
    return SudokuTask(SudokuConfig(**options))


def is_solved_grid(digits: np.ndarray, box_rows: int, box_cols: int) -> bool:
    n = box_rows * box_cols
    g = np.asarray(digits).reshape(n, n)
    boxes = g.reshape(n // box_rows, box_rows, n // box_cols, box_cols).transpose(0, 2, 1, 3).reshape(n, n)
    want = set(range(1, n + 1))
    return all(set(line) == want for lines in (g, g.T, boxes) for line in lines.tolist())


def test_registered_through_entry_point():
    assert get_registry().task["sudoku"].task_cls is SudokuTask


@pytest.mark.parametrize("box_rows,box_cols", SHAPES)
def test_generated_puzzles_are_unique_and_minimal(box_rows, box_cols):
    rng = np.random.default_rng(1)
    n = box_rows * box_cols
    for _ in range({4: 10, 6: 4, 9: 2}[n]):
        puzzle, solution = generate(box_rows, box_cols, rng)
        assert len(puzzle) == len(solution) == n * n and max(puzzle) <= n
        assert is_solved_grid(solution, box_rows, box_cols)
        assert all(p in (0, s) for p, s in zip(puzzle, solution))
        assert solve(puzzle, box_rows, box_cols) == [solution]
        for cell in np.flatnonzero(puzzle):  # minimal: every given is needed
            weaker = list(puzzle)
            weaker[cell] = 0
            assert len(solve(weaker, box_rows, box_cols)) == 2


def test_givens_range_stops_removal_early():
    rng = np.random.default_rng(2)
    for _ in range(20):
        puzzle, _ = generate(2, 2, rng, min_givens=9)
        assert np.count_nonzero(puzzle) == 9


def test_difficulty_counts_guesses():
    rng = np.random.default_rng(3)
    _, solution = generate(3, 3, rng)
    one_blank = list(solution)
    one_blank[40] = 0
    assert difficulty(one_blank, solution, 3, 3) == 0
    inkala = [0 if ch == "." else int(ch) for ch in INKALA]
    (inkala_solution,) = solve(inkala, 3, 3)
    assert difficulty(inkala, inkala_solution, 3, 3) >= 3


def test_min_difficulty_filter(tmp_path):
    t = task(box_rows=2, box_cols=3, num_train=3, num_test=2, min_difficulty=1, seed=4)
    t.build(tmp_path, progress=False)
    for split in ("train", "test"):
        _, arrays = read_split(tmp_path, split)
        for inputs, labels in zip(arrays.inputs, arrays.labels):
            assert difficulty(list(inputs.astype(int) - 1), list(labels.astype(int) - 1), 2, 3) >= 1


@pytest.mark.parametrize("box_rows,box_cols", SHAPES)
def test_augment_preserves_validity_and_inverts(box_rows, box_cols):
    t = task(box_rows=box_rows, box_cols=box_cols)
    rng = np.random.default_rng(5)
    puzzle, solution = generate(box_rows, box_cols, rng)
    inputs, labels = np.array(puzzle, dtype=np.uint8) + 1, np.array(solution, dtype=np.uint8) + 1
    key = canonical_form(np.array(puzzle), box_rows, box_cols)
    for _ in range(10):
        aug_in, aug_lab, params = t.augment(inputs, labels, rng)
        assert aug_in.dtype == np.uint8 and aug_in.shape == inputs.shape
        digits_in, digits_lab = aug_in.astype(int) - 1, aug_lab.astype(int) - 1
        assert is_solved_grid(digits_lab, box_rows, box_cols)
        assert solve(list(digits_in), box_rows, box_cols) == [list(digits_lab)]
        assert np.array_equal(t.invert(aug_in, params), inputs)
        assert np.array_equal(t.invert(aug_lab, params), labels)
        assert canonical_form(digits_in, box_rows, box_cols) == key


def test_canonical_form_separates_different_puzzles():
    rng = np.random.default_rng(6)
    puzzle, solution = generate(2, 2, rng, min_givens=8)
    key = canonical_form(np.array(puzzle), 2, 2)
    assert canonical_form(np.frombuffer(key, dtype=np.uint8), 2, 2) == key  # a representative of its own orbit
    more = list(puzzle)
    more[puzzle.index(0)] = solution[puzzle.index(0)]
    assert canonical_form(np.array(more), 2, 2) != key


def test_build_layout_dtypes_and_metadata(tmp_path):
    t = task(box_rows=2, box_cols=2, num_train=40, num_test=10, num_aug=3, givens=(5, 9))
    t.build(tmp_path, progress=False)
    assert read_identifiers(tmp_path) == ["<blank>"]
    for split, groups, versions in (("train", 40, 4), ("test", 10, 1)):
        meta, a = read_split(tmp_path, split)
        assert json.loads((tmp_path / split / "dataset.json").read_text()) == {
            "pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": 6, "seq_len": 16,
            "num_puzzle_identifiers": 1, "total_groups": groups, "mean_puzzle_examples": 1.0,
            "total_puzzles": groups, "sets": ["all"]}
        assert a.inputs.dtype == a.labels.dtype == np.uint8 and a.inputs.shape == (groups * versions, 16)
        for name in ("puzzle_identifiers", "puzzle_indices", "group_indices"):
            assert getattr(a, name).dtype == np.int32
        assert np.array_equal(a.puzzle_indices, np.arange(groups * versions + 1))
        assert np.array_equal(a.group_indices, np.arange(0, groups * versions + 1, versions))
        assert not a.puzzle_identifiers.any()
        assert a.inputs.min() >= 1 and a.inputs.max() <= 5 and a.labels.min() >= 2 and a.labels.max() <= 5
        given = a.inputs > 1
        assert np.array_equal(a.inputs[given], a.labels[given])
        assert all(is_solved_grid(row.astype(int) - 1, 2, 2) for row in a.labels)
        assert (a.inputs == 1).any(axis=1).all()  # every example has blanks to fill


def test_test_split_is_held_out_by_canonical_form(tmp_path):
    options = dict(box_rows=2, box_cols=2, num_train=300, num_test=100, num_aug=2, givens=(4, 10), seed=7)
    task(**options).build(tmp_path, progress=False)
    keys = {}
    for split in ("train", "test"):
        _, a = read_split(tmp_path, split)
        keys[split] = [canonical_form(row.astype(int) - 1, 2, 2) for row in a.inputs]
    originals = keys["train"][::3]
    assert len(set(originals)) == 300 and len(set(keys["test"])) == 100
    assert not set(keys["train"]) & set(keys["test"])
    # Without the dedupe the same draws would collide: 4x4 has only a few thousand distinct puzzles.
    rng = np.random.default_rng(7)
    raw = [canonical_form(np.array(generate(2, 2, rng, min_givens=int(rng.integers(4, 11)))[0]), 2, 2)
           for _ in range(400)]
    assert len(set(raw)) < 400


def test_build_is_deterministic(tmp_path):
    options = dict(box_rows=2, box_cols=2, num_train=20, num_test=5, num_aug=2, givens=(5, 9), seed=8)
    task(**options).build(tmp_path / "a", progress=False)
    task(**options).build(tmp_path / "b", progress=False)
    task(**{**options, "seed": 9}).build(tmp_path / "c", progress=False)
    assert build_fingerprint(tmp_path / "a") == build_fingerprint(tmp_path / "b") != build_fingerprint(tmp_path / "c")


def test_impossible_request_fails_clearly(tmp_path):
    with pytest.raises(DataError, match="distinct puzzles"):
        task(box_rows=2, box_cols=2, num_train=200, num_test=10).build(tmp_path, progress=False)


def test_parse_render_round_trip(tmp_path):
    t = task()
    puzzle = t.parse(INKALA)
    assert puzzle.inputs.dtype == np.uint8 and puzzle.inputs.shape == (81,)
    assert t.vocab_size == 11 and t.seq_len == 81
    drawing = t.render(puzzle.inputs, puzzle)
    assert drawing.splitlines()[0] == "8 . . | . . . | . . ."
    assert drawing.splitlines()[3] == "------+-------+------"
    assert np.array_equal(t.parse(drawing).inputs, puzzle.inputs)
    path = tmp_path / "grid.txt"
    path.write_text(INKALA.replace(".", "0") + "\n")
    assert np.array_equal(t.parse(str(path)).inputs, puzzle.inputs)
    small = task(box_rows=2, box_cols=3)
    six = small.parse("1..... ..2... ...... ...... ...... .....6")
    assert small.render(six.inputs, six).splitlines()[2] == "------+------"
    assert np.array_equal(small.parse(small.render(six.inputs, six)).inputs, six.inputs)


@pytest.mark.parametrize("text,message", [
    ("1.3. ..4. .... ...", "a 4x4 Sudoku needs 16 cells, got 15"),
    ("1.3. ..x. .... ....", "row 2, column 3: 'x' is not a digit 1..4"),
    ("1.3. ..4. ...5 ....", "row 3, column 4: '5' is not a digit 1..4"),
    ("1,3,..4.........", "row 1, column 2: ',' is not a digit 1..4"),  # a bad character, not a wrong cell count
    ("1.3. .... ..3. ....", r"cells \(row 1, column 3\) and \(row 3, column 3\) both hold 3 in the same column"),
    ("12.. .1.. .... ....", r"cells \(row 1, column 1\) and \(row 2, column 2\) both hold 1 in the same box"),
])
def test_parse_refuses_bad_input(text, message):
    with pytest.raises(PuzzleError, match=f"^puzzle: {message}"):
        task(box_rows=2, box_cols=2).parse(text)


def test_config_checks():
    with pytest.raises(ValidationError, match="3x3 boxes only"):
        SudokuConfig(source="hub", box_rows=2, box_cols=2)
    with pytest.raises(ValidationError, match="subsample_size only apply"):
        SudokuConfig(subsample_size=10)
    with pytest.raises(ValidationError, match=r"within 0..15"):
        SudokuConfig(box_rows=2, box_cols=2, givens=(4, 16))
    with pytest.raises(ValidationError, match="at most 9x9"):
        SudokuConfig(box_rows=3, box_cols=4)


def csv_text(rows) -> str:
    lines = ["source,q,a,rating"]
    for puzzle, solution, rating in rows:
        q = "".join(str(d) if d else "." for d in puzzle)
        lines.append(f"gen,{q},{''.join(map(str, solution))},{rating}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def extreme_rows():
    """Eight real 9x9 puzzles from our generator, rated by guesses as the CSV rating."""
    rng = np.random.default_rng(10)
    rows = []
    for _ in range(8):
        puzzle, solution = generate(3, 3, rng)
        rows.append((puzzle, solution, difficulty(puzzle, solution, 3, 3)))
    return rows


def prepare_cache(root, repo, files):
    """The Hub cache layout: datasets--org--name/refs/main and snapshots/<sha>/files."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    folder = root / f"datasets--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(sha)
    (folder / "snapshots" / sha).mkdir(parents=True)
    for name, text in files.items():
        (folder / "snapshots" / sha / name).write_text(text)


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def test_hub_source_from_cache(tmp_path, offline_cache, extreme_rows):
    prepare_cache(offline_cache, "sapientinc/sudoku-extreme",
                  {"train.csv": csv_text(extreme_rows[:6]), "test.csv": csv_text(extreme_rows[6:])})
    t = task(source="hub", subsample_size=3, num_aug=2, seed=11)
    t.build(tmp_path / "data", progress=False)
    _, train = read_split(tmp_path / "data", "train")
    _, test = read_split(tmp_path / "data", "test")
    assert train.inputs.shape == (9, 81) and test.inputs.shape == (2, 81)
    known = {tuple(np.array(p) + 1): tuple(np.array(s) + 1) for p, s, _ in extreme_rows}
    originals = [tuple(row) for row in train.inputs[::3]]
    assert len(set(originals)) == 3 and all(known[row] == tuple(lab) for row, lab in zip(originals, train.labels[::3]))
    assert [tuple(row) for row in test.inputs] == [tuple(np.array(p) + 1) for p, _, _ in extreme_rows[6:]]
    assert all(is_solved_grid(row.astype(int) - 1, 3, 3) for row in train.labels)

    hardest = max(r for _, _, r in extreme_rows[:6])
    t = task(source="hub", min_difficulty=hardest, test_subsample_size=1, seed=11)
    t.build(tmp_path / "hard", progress=False)
    _, train = read_split(tmp_path / "hard", "train")
    assert len(train.inputs) == sum(r >= hardest for _, _, r in extreme_rows[:6])


def test_hub_source_missing_offline_says_how_to_fetch(tmp_path, offline_cache):
    with pytest.raises(HubError, match=r"^sapientinc/sudoku-extreme: (test|train).csv is not in the local cache and "
                                       r"HF_HUB_OFFLINE is set; unset HF_HUB_OFFLINE to download it once$"):
        task(source="hub").build(tmp_path, progress=False)


def test_hub_source_downloads_then_reads_its_cache_when_the_hub_is_gone(tmp_path, fake_hub, extreme_rows, monkeypatch):
    fake_hub.add_file("someone/sudoku", "train.csv", csv_text(extreme_rows[:2]).encode(), repo_type="dataset")
    fake_hub.add_file("someone/sudoku", "test.csv", csv_text(extreme_rows[2:3]).encode(), repo_type="dataset")
    task(source="hub", hub_repo="someone/sudoku").build(tmp_path / "data", progress=False)
    _, test = read_split(tmp_path / "data", "test")
    assert np.array_equal(test.labels[0], np.array(extreme_rows[2][1]) + 1)

    from huggingface_hub import constants  # the Hub gone: the cached files serve, without the library's retries

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                        "http://127.0.0.1:9/{repo_id}/resolve/{revision}/{filename}")
    task(source="hub", hub_repo="someone/sudoku").build(tmp_path / "again", progress=False)
    assert np.array_equal(read_split(tmp_path / "again", "test")[1].labels, test.labels)
