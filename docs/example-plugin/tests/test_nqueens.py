"""trmzoo-nqueens' own tests: the trmzoo plugin contract, plus what is special to N-Queens."""

import numpy as np
import pytest

from trmzoo.errors import PuzzleError, RecipeError
from trmzoo.factory import build_model
from trmzoo.registry import get_registry
from trmzoo.testing import PluginContract, tiny_model_config

from trmzoo_nqueens.board import all_solutions, completions, make_puzzle

PUZZLE_6 = ".Q..../....../....../....../....../......"  # one queen: the completion is unique


class TestNQueensContract(PluginContract):
    plugin = "nqueens"
    task_options = {"nqueens": {"size": 6, "num_train": 6, "num_test": 4, "extra_givens": 3}}
    puzzles = {"nqueens": [PUZZLE_6, "......\n..Q...\n......\n......\n......\n......"]}
    model_overrides = {"conv1d": {"pos_encodings": "learned"}}


def nqueens(**options):
    task_cls = get_registry().task["nqueens"].task_cls
    return task_cls(task_cls.Config(**options))


@pytest.mark.parametrize(("n", "count"), [(4, 2), (5, 10), (6, 4), (8, 92)])
def test_solution_counts_are_the_known_ones(n, count):
    sols = all_solutions(n)
    assert len(sols) == count
    for cols in sols:  # distinct columns and diagonals in every row pair
        assert len(set(cols)) == n
        assert len({r - c for r, c in enumerate(cols)}) == n and len({r + c for r, c in enumerate(cols)}) == n


def test_generated_puzzles_have_one_completion_and_are_minimal_plus_extras():
    rng = np.random.default_rng(3)
    for _ in range(20):
        givens, solution = make_puzzle(8, 0, rng)
        assert [tuple(s) for s in completions(8, givens)] == [tuple(solution)]
        for drop in givens:  # minimal: every given is needed
            assert len(completions(8, [g for g in givens if g != drop])) > 1


def test_test_split_holds_no_symmetry_of_a_train_puzzle(tmp_path):
    task = nqueens(size=6, num_train=10, num_test=6, extra_givens=3, num_aug=7)
    task.build(tmp_path, progress=False)
    from trmzoo.data import read_split
    from trmzoo.data.grids import dihedral

    _, train = read_split(tmp_path, "train")
    _, test = read_split(tmp_path, "test")
    assert len(train.inputs) == 10 * 8 and len(test.inputs) == 6
    train_boards = {x.tobytes() for x in train.inputs}
    for x in test.inputs:
        board = x.reshape(6, 6)
        assert not any(dihedral(board, t).reshape(-1).tobytes() in train_boards for t in range(8))


def test_too_many_puzzles_asked_is_a_one_line_error(tmp_path):
    from trmzoo.errors import DataError

    with pytest.raises(DataError, match=r"only \d+ distinct 6-queens puzzles found for train; lower task.num_train"):
        nqueens(size=6, num_train=100, num_test=1).build(tmp_path, progress=False)


@pytest.mark.parametrize(("text", "message"), [
    ("Q...../....../....../......", r"^4 rows, expected 6"),
    (".Q..../...../....../....../....../......", r"^row 2: 5 cells, expected 6$"),
    (".Q..../....x./....../....../....../......", r"^row 2, column 5: unknown character 'x'"),
    (".Q..../....../...Q../....../....../......",
     r"^row 3, column 4: this queen attacks the queen at row 1, column 2 \(same diagonal\)$"),
    ("Q...../....../....../....../....../......", r"^no placement of 6 non-attacking queens contains the 1 given$"),
])
def test_parse_errors_name_the_position(text, message):
    with pytest.raises(PuzzleError, match=message):
        nqueens(size=6).parse(text)


def test_a_puzzle_file_reads_like_the_text_it_holds(tmp_path):
    text = ".Q..../....../....../....../....../......"
    (tmp_path / "board.txt").write_text(text.replace("/", "\n") + "\n")
    task = nqueens(size=6)
    assert np.array_equal(task.parse(str(tmp_path / "board.txt")).inputs, task.parse(text).inputs)
    with pytest.raises(PuzzleError, match="no such file"):
        task.parse(str(tmp_path / "missing.txt"))


def test_evaluator_counts_a_valid_board_and_rejects_attacks():
    task = nqueens(size=4)
    solution = np.array([[1, 2, 1, 1], [1, 1, 1, 2], [2, 1, 1, 1], [1, 1, 2, 1]], np.uint8).reshape(1, -1)
    givens = np.where(solution == 2, 1, 1).astype(np.uint8)
    givens[0, 1] = 2
    wrong = solution.copy().reshape(4, 4)
    wrong[3] = [1, 1, 1, 2]  # same column as row 2's queen
    evaluator = task.evaluator(None)
    batch = {"inputs": np.concatenate([givens, givens]), "labels": np.concatenate([solution, solution])}
    evaluator.update(batch, np.concatenate([solution, wrong.reshape(1, -1)]), np.zeros(2))
    assert evaluator.result()["valid"] == 0.5 and evaluator.result()["exact_accuracy"] == 0.5


def test_conv1d_refuses_rope_and_even_kernels():
    with pytest.raises(RecipeError, match=r"^model.pos_encodings: rope only acts inside attention"):
        build_model(tiny_model_config(backbone={"kind": "conv1d"}, pos_encodings="rope"))
    with pytest.raises(RecipeError, match=r"backbone.kernel_size: must be odd"):
        build_model(tiny_model_config(backbone={"kind": "conv1d", "kernel_size": 4}))
