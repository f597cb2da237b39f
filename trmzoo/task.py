"""What a task is: a family of puzzles with its data builder, tokens, augmentations,
evaluator, and the reading and drawing of one puzzle for ``trmzoo solve``.

A task plugin subclasses :class:`Task`, gives it a pydantic ``Config`` whose
``name`` field is ``Literal["<task name>"]`` (the recipe's ``task`` section), and
registers it with the ``register_tasks`` hook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from pydantic import Field

from trmzoo.core.config import Config
from trmzoo.core.model import RecursiveModel
from trmzoo.core.supervision import IGNORE_LABEL
from trmzoo.errors import PuzzleError


def solve_with(task: Task, model, puzzle: Puzzle, *, early_exit: bool = False, strategy=None) -> Solution:
    """``task.solve`` as trmzoo's ``solve`` calls it: ``strategy`` is passed only when one is given, so a task
    whose ``solve`` was written before strategies (without the keyword) still solves plainly."""
    extra = {} if strategy is None else {"strategy": strategy}
    return task.solve(model, puzzle, early_exit=early_exit, **extra)


def read_puzzle_text(text: str, *, inline_slashes: bool = False) -> tuple[str, str | None]:
    """A puzzle given inline or as a file path: ``(text, path)``, path None for inline text.

    One line naming an existing file is read; one that looks like a path (a slash, a file suffix)
    but names no file is an error saying so; anything else is taken as the puzzle itself.
    ``inline_slashes``: the task's one-line puzzles hold ``/`` (as row separators), so a slash alone
    does not make a path.
    """
    if not isinstance(text, str):
        raise PuzzleError(f"puzzle {text!r}: give the puzzle as text, or the path of a file holding it")
    candidate = text.strip()
    if "\n" in candidate or not candidate or len(candidate) > 1024:
        return text, None
    path = Path(candidate)
    try:
        is_file = path.is_file()
    except OSError:  # e.g. a name too long to be a path: it is the puzzle itself
        return text, None
    if not is_file:
        if path.exists():  # a folder, a device or a pipe, which may never end
            raise PuzzleError(f"{candidate}: not a regular file; give the puzzle as text or in a file")
        if looks_like_path(candidate.replace("/", "") if inline_slashes else candidate):
            raise PuzzleError(f"{candidate}: no such file (it looks like a path, not a puzzle)")
        return text, None
    try:
        return path.read_text(encoding="utf-8-sig"), str(path)  # a byte-order mark is no cell
    except (OSError, UnicodeDecodeError) as exc:
        raise PuzzleError(f"{path}: cannot read the puzzle ({exc})") from None


PUZZLE_FILE_SUFFIXES = (".txt", ".json", ".csv", ".yaml", ".puzzle")


def looks_like_path(text: str) -> bool:
    """Whether one line of user text names a file rather than being a puzzle (no task's one-line puzzle
    holds a slash or ends in a file suffix)."""
    return "/" in text or "\\" in text or text.lower().endswith(PUZZLE_FILE_SUFFIXES)


def quote(text: str, limit: int = 40) -> str:
    """A short one-line rendering of user text for error messages."""
    flat = text.replace("\n", "\\n")
    return repr(flat if len(flat) <= limit else flat[: limit - 3] + "...")


def check_puzzle_fits(model: RecursiveModel, puzzle: Puzzle) -> None:
    """Refuse a puzzle the model cannot read: another length, a token outside its vocabulary or a puzzle
    id outside its embedding table (a task built with other options than the model's)."""
    tokens, config = np.asarray(puzzle.inputs), model.config
    if tokens.shape != (config.seq_len,):
        raise PuzzleError(f"puzzle: {tokens.size} cells, the model reads {config.seq_len}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= config.vocab_size):
        raise PuzzleError(f"puzzle: token {int(tokens.max())} outside the model's vocabulary of {config.vocab_size}")
    if not 0 <= puzzle.puzzle_identifier < config.num_puzzle_identifiers:
        raise PuzzleError(f"puzzle: puzzle id {puzzle.puzzle_identifier} outside the model's embedding table of "
                          f"{config.num_puzzle_identifiers} rows")


class TaskConfig(Config):
    """Base of a task's recipe section: its build options."""

    name: str
    seed: int = Field(0, ge=0)


@dataclass
class Puzzle:
    """One puzzle read from user text, ready for the model."""

    inputs: np.ndarray  # [seq_len] tokens
    puzzle_identifier: int = 0
    info: dict[str, Any] = field(default_factory=dict)  # what render() needs (grid shape, ...)


@dataclass
class Solution:
    tokens: np.ndarray  # [seq_len] predicted tokens
    steps: int  # supervision steps used
    q_halt: float  # sigmoid of the halting logit: the model's confidence
    trace: list[np.ndarray] = field(default_factory=list)  # predicted tokens after every step
    q_trace: list[float] = field(default_factory=list)
    text: str = ""
    valid: bool | None = None  # the answer keeps the puzzle's rules (Task.verify); None where the task has no check


@dataclass(frozen=True)
class Symmetry:
    """One validity-preserving transform of a token sequence and its exact inverse:
    ``new[i] = tokens[old[positions[i]]]`` (a cell permutation, then a token relabelling).

    Works on numpy arrays and torch tensors of shape ``[..., seq_len]``."""

    positions: np.ndarray  # int64 [seq_len]: new cell -> old cell
    tokens: np.ndarray  # int64 [vocab]: old token -> new token

    def apply(self, x):
        return _take(self.tokens, _gather(x, self.positions))

    def invert(self, x):
        return _gather(_take(np.argsort(self.tokens), x), np.argsort(self.positions))


def _gather(x, index: np.ndarray):
    if isinstance(x, torch.Tensor):
        return x[..., torch.as_tensor(index, device=x.device)]
    return np.asarray(x)[..., index]


def _take(table: np.ndarray, x):
    if isinstance(x, torch.Tensor):
        return torch.as_tensor(table, device=x.device)[x.long()].to(x.dtype)
    return table[x].astype(np.asarray(x).dtype)


class SymmetryGroup:
    """A task's symmetry group, enumerated: ``group[i]`` for ``0 <= i < len(group)``, element 0 the identity.

    Groups can be far too big to list (9x9 Sudoku: about 1.2e12 elements), so elements are
    built on demand from their index."""

    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, index: int) -> Symmetry:
        raise NotImplementedError


class Evaluator:
    """Accumulates predictions on the test split and reports metrics (docs/plugin-guide.md, "An evaluator").

    trmzoo calls :meth:`example_indices` once, :meth:`update` once per batch in order and
    :meth:`result` once; ``write_submission(path)``, when an evaluator has it, on request.
    """

    def update(self, batch: dict[str, np.ndarray], preds: np.ndarray, q_halt: np.ndarray) -> None:
        """One batch of the rows that reach the evaluator (padding removed): ``batch`` holds
        ``inputs`` and ``labels`` (int32 ``[n, seq_len]``, -100 in unsupervised cells) and
        ``puzzle_identifiers`` (int32 ``[n]``); ``preds`` the predicted tokens (int64
        ``[n, seq_len]``); ``q_halt`` the halting logits (float32 ``[n]``)."""
        raise NotImplementedError

    def result(self) -> dict[str, float]:
        """The metrics, as finite numbers (logged as ``eval/<key>``)."""
        raise NotImplementedError

    def example_indices(self) -> np.ndarray | None:
        """The test examples to run, in order, as row indices (None: all of them, or the first ``max_puzzles``)."""
        return None


class GridEvaluator(Evaluator):
    """Exact accuracy (every supervised cell right) and token accuracy, per test example.

    Labels arrive as the loader collates them: unsupervised cells hold -100."""

    def __init__(self) -> None:
        self.count = 0
        self.exact = 0.0
        self.tokens = 0.0

    def update(self, batch, preds, q_halt):
        labels = batch["labels"]
        mask = labels != IGNORE_LABEL
        counts = mask.sum(-1)
        keep = counts > 0
        right = (preds == labels) & mask
        self.count += int(keep.sum())
        self.exact += float(((right.sum(-1) == counts) & keep).sum())
        self.tokens += float((right.sum(-1)[keep] / counts[keep]).sum())

    def result(self):
        n = max(self.count, 1)
        return {"exact_accuracy": self.exact / n, "token_accuracy": self.tokens / n, "count": float(self.count)}


class Task:
    """Base class for task plugins. Subclasses set ``name`` and ``Config`` and implement the methods."""

    name: ClassVar[str]
    Config: ClassVar[type[TaskConfig]]
    versions_in_split: ClassVar[bool] = False
    """Every augmented version of a puzzle is its own test example (with its own puzzle embedding) and the
    evaluator votes over them (ARC): test-time voting happens over the split, not inside a batch."""

    def __init__(self, config: TaskConfig | None = None) -> None:
        self.config = config if config is not None else self.Config()

    # -- sizes -------------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    @property
    def seq_len(self) -> int:
        raise NotImplementedError

    # -- data ------------------------------------------------------------------------------
    def build(self, out_dir: Path, *, progress: bool = True) -> None:
        """Write the dataset (train and test splits, identifiers.json) in the on-disk format."""
        raise NotImplementedError

    def augment(self, inputs: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
        """A random validity-preserving transform of one example: ``(inputs, labels, params)``
        (for test-time augmentation; training reads the augmented versions the builder wrote)."""
        raise NotImplementedError

    def invert(self, tokens: np.ndarray, params: Any) -> np.ndarray:
        """Undo :meth:`augment` on a token sequence."""
        raise NotImplementedError

    def symmetries(self) -> SymmetryGroup | None:
        """The task's symmetry group for test-time voting (``symmetry`` strategy); None when the
        task has none, or (ARC) when every augmented version is its own puzzle in the test split."""
        return None

    def verify(self, inputs: np.ndarray, preds: np.ndarray) -> np.ndarray:
        """Whether each answer is a valid solution of its puzzle (bool ``[n]``), from the rules alone,
        without the label; a row that is no puzzle (a batch's padding) is not. Optional: strategies whose name
        says ``verify`` use it, and ``trmzoo solve`` reports it for its answer (:meth:`keeps_rules`)."""
        raise NotImplementedError

    @property
    def offers_verify(self) -> bool:
        return type(self).verify is not Task.verify

    def keeps_rules(self, puzzle: Puzzle, tokens: np.ndarray) -> bool | None:
        """Whether one answer to ``puzzle`` is a valid solution by :meth:`verify`; None when the task has no check."""
        if not self.offers_verify:
            return None
        return bool(self.verify(np.asarray(puzzle.inputs)[None], np.asarray(tokens)[None])[0])

    # -- evaluation ------------------------------------------------------------------------
    def evaluator(self, data_dir: Path, *, max_puzzles: int | None = None) -> Evaluator:
        """The test-split scorer. trmzoo calls ``evaluator(data_dir, max_puzzles=..., **options)``:
        ``max_puzzles`` when the signature names it (it may ignore it: trmzoo then keeps the first
        examples itself), ``options`` from ``--option`` / ``eval.evaluator_options``. A task with
        options declares them as keyword-only parameters; others are refused before this is called."""
        return GridEvaluator()

    # -- single puzzles --------------------------------------------------------------------
    def parse(self, text: str) -> Puzzle:
        """Read one puzzle from user text; raise ``PuzzleError`` naming the bad position."""
        raise NotImplementedError

    def render(self, tokens: np.ndarray, puzzle: Puzzle) -> str:
        """Draw a token sequence as the puzzle's text grid."""
        raise NotImplementedError

    def cell_text(self, token: int) -> str:
        """How one token is written in a cell of a ``--trace`` picture."""
        return str(token)

    @torch.no_grad()
    def solve(self, model: RecursiveModel, puzzle: Puzzle, *, early_exit: bool = False, strategy=None) -> Solution:
        """Run ``model`` on one puzzle and keep the answer after every supervision step;
        tasks that vote over augmentations override this. A ``strategy`` (a
        ``trmzoo.strategy.Strategy`` other than the plain rollout) gives the answer instead, without a trace."""
        model.eval()
        check_puzzle_fits(model, puzzle)
        inputs = torch.as_tensor(np.asarray(puzzle.inputs), dtype=torch.int32, device=model.device)[None]
        batch = {
            "inputs": inputs,
            "labels": torch.zeros_like(inputs),
            "puzzle_identifiers": torch.tensor([puzzle.puzzle_identifier], dtype=torch.int32, device=model.device),
        }
        if strategy is not None and not strategy.traces:
            answers = strategy.run(model, batch)
            tokens = answers.preds[0].cpu().numpy()
            return Solution(tokens=tokens, steps=int(answers.steps[0]), q_halt=float(torch.sigmoid(answers.q_halt[0])),
                            text=self.render(tokens, puzzle), valid=self.keeps_rules(puzzle, tokens))
        if strategy is not None:
            early_exit = strategy.config.early_exit
        outputs = model.rollout(batch, early_exit=early_exit)
        trace = [out.preds[0].cpu().numpy() for out in outputs]
        q_trace = [float(torch.sigmoid(out.q_halt[0])) for out in outputs]
        tokens = trace[-1]
        return Solution(
            tokens=tokens, steps=int(outputs[-1].steps[0]), q_halt=q_trace[-1], trace=trace, q_trace=q_trace,
            text=self.render(tokens, puzzle), valid=self.keeps_rules(puzzle, tokens),
        )
