"""ARC scoring as the official evaluator does it: undo each version's transform, vote, pass@K.

Each prediction on the test split is cropped at EOS, mapped back through its
version's inverse dihedral and colour map, and counted as a vote for that grid on
the original test input (found by hashing the mapped-back input). Candidates rank
by (votes, mean sigmoid(q_halt)); pass@K asks whether the true output is among the
top K. A task scores the fraction of its test inputs solved; the benchmark averages tasks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from trmzoo import Evaluator
from trmzoo.data import read_identifiers, read_split
from trmzoo.errors import DataError

from trmzoo_arc.grids import crop, grid_hash, parse_version, undo_grid

PASS_KS = (1, 2, 5, 10, 100, 1000)
ATTEMPTS = 2  # Kaggle scores two attempts per test input


class Ballot:
    """Votes per (task, original test input): each candidate grid's count and summed confidence."""

    def __init__(self) -> None:
        self.grids: dict[str, np.ndarray] = {}
        self.votes: dict[str, dict[str, dict[str, list]]] = {}

    def add(self, task_id: str, input_hash: str, grid: np.ndarray, confidence: float) -> None:
        key = grid_hash(grid)
        self.grids.setdefault(key, grid)
        tally = self.votes.setdefault(task_id, {}).setdefault(input_hash, {}).setdefault(key, [0, 0.0])
        tally[0] += 1
        tally[1] += confidence

    def ranked(self, task_id: str, input_hash: str) -> list[tuple[str, int, float]]:
        """``(grid hash, votes, mean confidence)``, best first; ties keep the order first seen."""
        candidates = self.votes.get(task_id, {}).get(input_hash, {})
        stats = [(key, count, total / count) for key, (count, total) in candidates.items()]
        return sorted(stats, key=lambda s: (s[1], s[2]), reverse=True)

    def attempts(self, task_id: str, input_hash: str) -> list[np.ndarray]:
        """The top two grids, the first repeated when there is only one."""
        top = [self.grids[key] for key, _, _ in self.ranked(task_id, input_hash)[:ATTEMPTS]]
        return (top + top[:1] * ATTEMPTS)[:ATTEMPTS]


def sigmoid64(logits: np.ndarray) -> np.ndarray:
    """The halting confidence in float64, computed as the official evaluator does (torch)."""
    return torch.from_numpy(np.asarray(logits)).to(torch.float64).sigmoid().numpy()


class ARCEvaluator(Evaluator):
    """Votes over the test split of an ARC build.

    ``max_puzzles`` keeps the first tasks of the test split, ``max_augmentations`` the
    original plus that many augmented versions of each: :meth:`example_indices` lists
    the test examples that still count, so an evaluation loop can skip the rest.
    An evaluator holds the votes of one evaluation (one checkpoint): the official
    evaluator's pooling of votes across evaluation rounds is not reproduced.
    """

    def __init__(self, data_dir: str | Path, *, max_puzzles: int | None = None,
                 max_augmentations: int | None = None) -> None:
        data_dir = Path(data_dir)
        self.identifiers = read_identifiers(data_dir)
        path = data_dir / "test_puzzles.json"
        if not path.is_file():
            raise DataError(f"{data_dir}: no test_puzzles.json; not an ARC build")
        self.test_puzzles = json.loads(path.read_text())
        metadata, arrays = read_split(data_dir, "test", mmap=True)
        self.blank = metadata.blank_identifier_id

        groups = np.asarray(arrays.group_indices)
        offsets = np.asarray(arrays.puzzle_indices)
        ids = np.asarray(arrays.puzzle_identifiers)
        self.task_ids: list[str] = []
        allowed, examples, versions = [], [], 1
        for g in range(len(groups) - 1 if max_puzzles is None else min(max_puzzles, len(groups) - 1)):
            first, end = int(groups[g]), int(groups[g + 1])
            if max_augmentations is not None:
                end = min(end, first + 1 + max_augmentations)
            task_id = parse_version(self.identifiers[ids[first]])[0]
            if task_id not in self.test_puzzles:
                raise DataError(f"{path}: test split task {task_id} is missing")
            self.task_ids.append(task_id)
            allowed.extend(int(i) for i in ids[first:end])
            examples.append(np.arange(offsets[first], offsets[end]))
            versions = max(versions, end - first)
        self.allowed = set(allowed)
        self._examples = np.concatenate(examples) if examples else np.zeros(0, dtype=np.int64)
        self.pass_ks = [k for k in PASS_KS if k <= max(versions, ATTEMPTS)]
        self.ballot = Ballot()

    def example_indices(self) -> np.ndarray:
        """Test-split example rows whose predictions count (all of them by default)."""
        return self._examples

    def update(self, batch: dict[str, np.ndarray], preds: np.ndarray, q_halt: np.ndarray) -> None:
        confidence = sigmoid64(q_halt)
        for row, ident in enumerate(np.asarray(batch["puzzle_identifiers"]).tolist()):
            if ident == self.blank or ident not in self.allowed:
                continue
            task_id, tid, mapping = parse_version(self.identifiers[ident])
            original_input = undo_grid(crop(batch["inputs"][row]), tid, mapping)
            answer = undo_grid(crop(preds[row]), tid, mapping)
            self.ballot.add(task_id, grid_hash(original_input), answer, float(confidence[row]))

    def _tally(self) -> tuple[dict[str, float], dict[str, list]]:
        scores = np.zeros(len(self.pass_ks))
        submission: dict[str, list] = {}
        unanswered = 0
        for task_id in self.task_ids:
            tests = self.test_puzzles[task_id]["test"]
            solved = np.zeros(len(self.pass_ks))
            submission[task_id] = []
            for pair in tests:
                key = grid_hash(np.array(pair["input"], dtype=np.uint8))
                truth = grid_hash(np.array(pair["output"], dtype=np.uint8))
                ranked = [h for h, _, _ in self.ballot.ranked(task_id, key)]
                solved += [truth in ranked[:k] for k in self.pass_ks]
                grids = self.ballot.attempts(task_id, key) or [np.zeros((1, 1), dtype=np.uint8)] * ATTEMPTS
                unanswered += not ranked
                submission[task_id].append({f"attempt_{i + 1}": g.tolist() for i, g in enumerate(grids)})
            scores += solved / len(tests)
        count = max(len(self.task_ids), 1)
        metrics = {f"pass@{k}": float(s / count) for k, s in zip(self.pass_ks, scores)}
        metrics.update(puzzles=float(len(self.task_ids)), unanswered_inputs=float(unanswered))
        return metrics, submission

    def result(self) -> dict[str, float]:
        """pass@K (the task-averaged fraction of test inputs solved), tasks scored, inputs without a vote."""
        return self._tally()[0]

    def write_submission(self, path: str | Path) -> Path:
        """Kaggle ``submission.json``: two attempts per test input ([[0]] where nothing voted)."""
        path = Path(path)
        path.write_text(json.dumps(self._tally()[1]))
        return path
