"""`trmzoo solve` and `trmzoo.solve` as a user runs them: text or file in, grid out, trace picture, errors."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import trmzoo
from trmzoo.testing import tiny_model
from trmzoo.cli import cli

PUZZLE = "1...|..3.|.4..|...2"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    model = tiny_model(vocab_size=6, seq_len=16, puzzle_emb_len=1, pos_encodings="rope", expansion=4.0,
                       recursion={"H_cycles": 1}, halting={"max_steps": 3})
    model.provenance.task = {"name": "sudoku", "box_rows": 2, "box_cols": 2}
    return trmzoo.save_pretrained(model, tmp_path_factory.mktemp("sudoku4") / "weights")


def test_python_api_solves_text_and_keeps_every_step(model_dir):
    solution = trmzoo.solve(str(model_dir), PUZZLE)
    assert solution.steps == 3 and len(solution.trace) == 3 and len(solution.q_trace) == 3
    assert solution.tokens.shape == (16,)
    rows = [line for line in solution.text.splitlines() if any(ch.isdigit() or ch == "." for ch in line)]
    assert len(rows) == 4  # drawn as a 4x4 grid


def test_the_answer_is_checked_against_the_rules(model_dir):
    from trmzoo.factory import task_of
    from trmzoo_sudoku.solver import solve as solve_sudoku

    task = task_of(trmzoo.load(str(model_dir)))
    puzzle = task.parse(PUZZLE)
    right = np.array(solve_sudoku([int(t) - 1 for t in puzzle.inputs], 2, 2)[0]) + 1  # digit d: token d + 1
    swapped = right.copy()
    swapped[[0, 1]] = swapped[[1, 0]]  # cell 0 is a given: the row keeps its digits but a given moves
    assert task.keeps_rules(puzzle, right) is True and task.keeps_rules(puzzle, swapped) is False
    solution = trmzoo.solve(str(model_dir), PUZZLE)
    assert solution.valid is task.keeps_rules(puzzle, solution.tokens)
    words = "valid: yes, it keeps every rule" if solution.valid else "valid: no, it breaks a rule"
    result = CliRunner().invoke(cli, ["solve", str(model_dir), PUZZLE])
    assert result.exit_code == 0 and words in result.output.splitlines()[-1], result.output


def test_cli_json_trace_and_file_input(model_dir, tmp_path):
    puzzle_file = tmp_path / "p.txt"
    puzzle_file.write_text(PUZZLE.replace("|", "\n"))
    trace = tmp_path / "trace.png"
    result = CliRunner().invoke(cli, ["solve", str(model_dir), str(puzzle_file), "--json", "--trace", str(trace)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["steps"] == 3 and len(data["tokens"]) == 16 and 0 <= data["q_halt"] <= 1
    assert isinstance(data["valid"], bool)
    assert trace.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trace.write_text("my notes")  # a file the user has is replaced only with --overwrite
    again = CliRunner().invoke(cli, ["solve", str(model_dir), str(puzzle_file), "--trace", str(trace)])
    assert again.exit_code == 1 and "add --overwrite" in again.output and trace.read_text() == "my notes"
    again = CliRunner().invoke(cli, ["solve", str(model_dir), str(puzzle_file), "--trace", str(trace), "--overwrite"])
    assert again.exit_code == 0 and trace.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.txt", "trace.png"]  # no temporary file left


@pytest.mark.parametrize("puzzle, message", [
    ("1...", "a 4x4 Sudoku needs 16 cells, got 4"),
    ("1...|..3.|.4..|..52", "row 4, column 3: '5' is not a digit 1..4"),
    ("11..|..3.|.4..|...2", "row 1"),
])
def test_bad_puzzles_end_in_one_line(model_dir, puzzle, message):
    result = subprocess.run([sys.executable, "-m", "trmzoo", "solve", str(model_dir), puzzle],
                            capture_output=True, text=True)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_a_trace_of_a_sequence_that_is_no_square_grid_is_drawn_as_one_row(tmp_path):
    """A plugin's task may read any length (a sort of 5 numbers): its trace is one row of cells per step."""
    from types import SimpleNamespace

    from trmzoo.plot import draw_trace
    from trmzoo.task import Puzzle, Solution

    trace = [np.array([3, 1, 4, 1, 5]), np.array([1, 1, 3, 4, 5])]
    solution = Solution(tokens=trace[-1], steps=2, q_halt=0.9, trace=trace, q_trace=[0.2, 0.9])
    task = SimpleNamespace(cell_text=str)
    out = draw_trace(solution, task, Puzzle(inputs=np.array([3, 1, 4, 1, 5])), tmp_path / "t.png")
    assert out.read_bytes().startswith(b"\x89PNG")


def test_a_puzzle_file_saved_with_a_byte_order_mark_reads_as_without(model_dir, tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeff".encode() + PUZZLE.encode() + b"\n")  # as some editors save UTF-8
    assert np.array_equal(trmzoo.solve(str(model_dir), str(path)).tokens, trmzoo.solve(str(model_dir), PUZZLE).tokens)
