"""The third-party path end to end: pip-install docs/example-plugin into a throwaway venv and use it
from the command line as a user would (list it, train its recipe, solve a puzzle), then run the
package's own tests there."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from throwaway_venv import make_venv, pip_install

PACKAGE = Path(__file__).resolve().parents[1] / "docs" / "example-plugin"
N = 6  # the shipped tiny recipe's board


def queens_solutions(n: int) -> list[tuple[int, ...]]:
    """All n-queens placements by brute force over permutations; independent of the plugin's solver."""
    return [p for p in itertools.permutations(range(n))
            if len({r - c for r, c in enumerate(p)}) == n and len({r + c for r, c in enumerate(p)}) == n]


def read_board(text: str) -> np.ndarray:
    """A solve output as a bool queen mask; fails unless it is N rows of N '.'/'Q'."""
    rows = text.splitlines()
    assert len(rows) == N and all(len(row) == N and set(row) <= {".", "Q"} for row in rows), text
    return np.array([[ch == "Q" for ch in row] for row in rows])


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A throwaway venv (tests/throwaway_venv.py) with the example plugin installed into it."""
    root = tmp_path_factory.mktemp("example-plugin")
    source = root / "source"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    python = make_venv(root / "venv")
    pip_install(python, source, root)
    return root, python, source


def trmzoo(venv, *args: str) -> subprocess.CompletedProcess:
    root, python, _ = venv
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRMZOO_")}
    result = subprocess.run([python, "-m", "trmzoo", *args], capture_output=True, text=True, cwd=root, env=env)
    assert result.returncode == 0, f"trmzoo {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_installed_example_plugin_lists_trains_and_solves(venv):
    root = venv[0]
    rows = {row["name"]: row for row in json.loads(trmzoo(venv, "plugins", "--json").stdout)}
    assert rows["nqueens"]["distribution"] == "trmzoo-nqueens"
    assert rows["nqueens"]["contributes"] == {"backbone": ["conv1d"], "task": ["nqueens"]}

    trmzoo(venv, "train", "nqueens_conv_tiny", "--set", "train.max_steps=20", "--set", "train.lr_warmup_steps=2",
           "--set", f"data.dir={root / 'data'}", "--out", str(root / "run"), "--quiet")
    assert (root / "run" / "weights" / "model.safetensors").exists()
    evaluation = [json.loads(line) for line in (root / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    assert evaluation["step"] == 20 and 0.0 <= evaluation["eval/valid"] <= 1.0
    # The evaluator takes what `trmzoo eval` passes (it once raised TypeError on --max-puzzles).
    scored = json.loads(trmzoo(venv, "eval", str(root / "run"), "--max-puzzles", "3", "--json").stdout)
    assert scored["count"] == 3.0 and 0.0 <= scored["valid"] <= 1.0

    # A puzzle with one completion, made here: a solution's queens until only it contains them.
    rng = np.random.default_rng(0)
    solutions = queens_solutions(N)
    solution = solutions[rng.integers(len(solutions))]
    givens = []
    for r in rng.permutation(N):
        givens.append((int(r), solution[r]))
        if sum(all(s[r] == c for r, c in givens) for s in solutions) == 1:
            break
    puzzle = "/".join("".join("Q" if (r, c) in givens else "." for c in range(N)) for r in range(N))

    answer = json.loads(trmzoo(venv, "solve", str(root / "run"), puzzle, "--json").stdout)
    board = read_board(answer["solution"])
    assert np.array_equal(np.array(answer["tokens"]).reshape(N, N) == 2, board), "tokens and drawing disagree"
    assert all(board[r, c] for r, c in givens), f"the given queens {givens} are not kept:\n{answer['solution']}"
    assert 1 <= answer["steps"] <= 4


@pytest.mark.slow
def test_example_plugin_own_tests_pass_in_the_venv(venv):
    root, python, source = venv
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRMZOO_")}
    result = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
                            capture_output=True, text=True, cwd=source, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout
