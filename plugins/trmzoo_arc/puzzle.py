"""One ARC task from a user: reading, drawing, and solving it with a trained model.

The official models only know the tasks in their training build: each augmented
version of a task has a learned row in the puzzle table. Solving therefore looks
the task up by id among the model's identifiers, runs every known version of the
test inputs, undoes each transform and votes, as the evaluator does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from trmzoo import Puzzle, Solution
from trmzoo.data import embedding_fingerprint
from trmzoo.errors import CheckpointError, DataError, PuzzleError
from trmzoo.task import quote, read_puzzle_text

from trmzoo_arc.build import BLANK
from trmzoo_arc.evaluate import Ballot, sigmoid64
from trmzoo_arc.grids import SEP, augment_grid, check_grid, crop, grid_hash, parse_version, to_canvas, undo_grid


@dataclass
class ArcSolution(Solution):
    attempts: list[list[np.ndarray]] = field(default_factory=list)
    """Two answer grids per test input, best first."""
    votes: list[list[tuple[int, float]]] = field(default_factory=list)
    """Per test input, (votes, mean confidence) of each candidate, best first."""


def _pairs(data: dict, key: str, where: str, need_output: bool) -> list[tuple[np.ndarray, np.ndarray | None]]:
    if key not in data:
        raise PuzzleError(f"{where}: missing key '{key}'")
    pairs = data[key]
    if not isinstance(pairs, list) or not pairs:
        raise PuzzleError(f"{where}: '{key}' must be a non-empty list of pairs")
    out = []
    for i, pair in enumerate(pairs):
        place = f"{where}: {key}[{i}]"
        if not isinstance(pair, dict):
            raise PuzzleError(f"{place}: expected an object with input and output")
        for name in ("input", "output") if need_output else ("input",):
            if name not in pair:
                raise PuzzleError(f"{place}: missing key '{name}'")
        output = pair.get("output")
        out.append((check_grid(pair["input"], f"{place}.input", PuzzleError),
                    None if output is None else check_grid(output, f"{place}.output", PuzzleError)))
    return out


def parse_puzzle(text: str) -> Puzzle:
    """Read a task from a JSON file path or JSON text; the task id is the file name (or the single
    key of a Kaggle-style ``{"<id>": {...}}`` object)."""
    task_id, where = None, "puzzle"
    text, path = read_puzzle_text(text)
    if path is not None:
        task_id, where = Path(path).stem, path
    elif not text.lstrip().startswith(("{", "[")):
        raise PuzzleError(f"{quote(text.strip())}: no such file, and not JSON (give a task JSON file or JSON text)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PuzzleError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    if isinstance(data, dict) and len(data) == 1 and "train" not in data and "test" not in data:
        (task_id, data), = data.items()
    if not isinstance(data, dict):
        raise PuzzleError(f"{where}: expected an object with 'train' and 'test'")
    train = _pairs(data, "train", where, need_output=True)
    test = _pairs(data, "test", where, need_output=False)
    return Puzzle(
        inputs=to_canvas(test[0][0]),
        info={"task_id": task_id, "source": where, "train": train,
              "test": [inp for inp, _ in test], "test_outputs": [out for _, out in test]},
    )


def render_grid(grid: np.ndarray) -> str:
    """Rows of digits, one colour per character."""
    if grid.size == 0:
        return "(empty grid)"
    return "\n".join("".join(str(int(c)) for c in row) for row in grid)


def model_identifiers(model) -> list[str]:
    """The puzzle names behind the model's puzzle-table rows (its provenance's ``identifiers``, which
    its weight folder keeps in identifiers.json), checked against the embedding fingerprint the model
    recorded, when it did."""
    identifiers = model.provenance.identifiers
    if identifiers is None:
        raise DataError("model: it records no puzzle identifiers; ARC solving needs the "
                        "identifiers.json of the build the model was trained on")
    recorded = model.provenance.data.embedding_fingerprint
    if recorded and recorded != embedding_fingerprint(identifiers):
        raise CheckpointError(f"model identifiers: not the build this model's puzzle table was trained on "
                              f"({embedding_fingerprint(identifiers)}, the model records {recorded})")
    return identifiers


@torch.no_grad()  # as Task.solve: a strategy's answers carry no graph
def solve_puzzle(model, puzzle: Puzzle, *, early_exit: bool = False, max_augmentations: int | None = None,
                 batch_size: int = 64, strategy=None) -> ArcSolution:
    """Vote over the model's known versions of ``puzzle``'s task (the original plus at most
    ``max_augmentations`` augmented ones); a ``strategy`` other than the plain rollout answers each
    version (no trace then)."""
    task_id, where = puzzle.info.get("task_id"), puzzle.info.get("source", "puzzle")
    if model.puzzle_emb is None:
        raise CheckpointError("model: no puzzle embedding table; ARC models identify the task by its row")
    identifiers = model_identifiers(model)
    if len(identifiers) > model.puzzle_emb.weight.shape[0]:
        raise CheckpointError(f"model: {len(identifiers)} puzzle identifiers but only "
                              f"{model.puzzle_emb.weight.shape[0]} puzzle-table rows")
    versions = [] if task_id is None else [
        (row, *parse_version(name)[1:]) for row, name in enumerate(identifiers)
        if name == task_id or name.startswith(task_id + SEP)
    ]
    if not versions:
        known = "no task id (name the file <task id>.json)" if task_id is None else f"task {task_id!r} is unknown"
        tasks = len({name for name in identifiers if SEP not in name} - {BLANK})
        raise PuzzleError(
            f"{where}: {known}: this model only solves the {tasks} tasks it was trained on; train or "
            "fine-tune on this task first (--init-from MODEL with train.freeze_weights=true)"
        )
    if max_augmentations is not None:
        if max_augmentations < 0:
            raise PuzzleError(f"max_augmentations {max_augmentations}: give 0 or more (0: the original only)")
        versions = versions[: 1 + max_augmentations]

    tests = puzzle.info["test"]
    keys = [grid_hash(grid) for grid in tests]
    jobs = [(t, row, tid, mapping) for row, tid, mapping in versions for t in range(len(tests))]
    device = next(model.parameters()).device
    ballot, steps = Ballot(), 0
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        inputs = np.stack([to_canvas(augment_grid(tests[t], tid, mapping)) for t, _, tid, mapping in chunk])
        batch = {"inputs": torch.from_numpy(inputs.astype(np.int32)).to(device),
                 "puzzle_identifiers": torch.tensor([row for _, row, _, _ in chunk], dtype=torch.int32, device=device)}
        if strategy is not None and not strategy.traces:
            last = strategy.run(model, batch)
            trace, q_trace = [], []
        else:
            outputs = model.rollout(batch, early_exit=strategy.config.early_exit if strategy else early_exit)
            if start == 0:  # the first job is test input 0 of the original version: its trace is shown
                trace = [out.preds[0].cpu().numpy() for out in outputs]
                q_trace = [float(sigmoid64(out.q_halt[:1].float().cpu().numpy())[0]) for out in outputs]
            last = outputs[-1]
        preds, confidence = last.preds.cpu().numpy(), sigmoid64(last.q_halt.float().cpu().numpy())
        steps = max(steps, int(last.steps.max()))
        for i, (t, _, tid, mapping) in enumerate(chunk):
            ballot.add(task_id, keys[t], undo_grid(crop(preds[i]), tid, mapping), float(confidence[i]))

    attempts = [ballot.attempts(task_id, key) for key in keys]
    votes = [[(count, mean) for _, count, mean in ballot.ranked(task_id, key)] for key in keys]
    lines = []
    for t, (grids, truth) in enumerate(zip(attempts, puzzle.info["test_outputs"])):
        for a, grid in enumerate(grids):
            verdict = "" if truth is None else (" (correct)" if np.array_equal(grid, truth) else " (wrong)")
            lines += [f"test[{t}] attempt {a + 1}, {votes[t][min(a, len(votes[t]) - 1)][0]} votes{verdict}:",
                      render_grid(grid)]
    return ArcSolution(tokens=to_canvas(attempts[0][0]), steps=steps, q_halt=votes[0][0][1], trace=trace,
                       q_trace=q_trace, text="\n".join(lines), attempts=attempts, votes=votes)
