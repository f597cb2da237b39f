"""The evaluators' common parts: run a model over a test split.

By default every sample runs all supervision steps, as the official evaluation
does; ``early_exit`` stops each sample once its halting signal fires, and the
samples that stopped leave the batch so the work really shrinks. Any other
inference strategy (``strategy=``, docs/test-time-scaling.md) answers instead of
the plain rollout; what it spent is reported beside the metrics.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import TypeAdapter, ValidationError
from tqdm.auto import tqdm

from trmzoo.core.config import validation_summary
from trmzoo.core.model import RecursiveModel
from trmzoo.data.format import check_data_compatible, check_dataset_task, read_split
from trmzoo.data.loader import eval_batches
from trmzoo.distributed import DistInfo, broadcast_from_main, gather_to_main
from trmzoo.errors import DataError, RecipeError
from trmzoo.factory import make_strategy
from trmzoo.files import atomic_write
from trmzoo.strategy import Strategy, count_network_rows
from trmzoo.task import Evaluator, Task


def check_evaluator_options(task: Task, options: dict[str, Any], source: str = "evaluator option") -> dict[str, Any]:
    """The options as ``task.evaluator`` takes them, checked before any work: an option its signature does
    not name is refused naming it (``source`` says where it came from: ``--option``,
    ``eval.evaluator_options``) and the options it takes; a value is validated against the parameter's
    type (``Annotated[int, Field(ge=0)]`` declares a range)."""
    parameters = list(inspect.signature(task.evaluator).parameters.values())[1:]  # after data_dir
    named = {p.name: p for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
    if "max_puzzles" in options:
        raise RecipeError(f"{source} max_puzzles: give it as --max-puzzles (eval.max_puzzles in a recipe)")
    unknown = [] if takes_any else [key for key in options if key not in named]
    if unknown:
        offered = ", ".join(n for n in named if n != "max_puzzles") or "none"
        raise RecipeError(f"{source} {unknown[0]}: the {task.name} evaluator does not take it "
                          f"(its options: {offered})")
    hints = typing.get_type_hints(task.evaluator, include_extras=True)
    checked = {}
    for key, value in options.items():
        try:
            checked[key] = TypeAdapter(hints[key]).validate_python(value) if key in hints else value
        except ValidationError as exc:
            raise RecipeError(f"{source} {key}: {validation_summary(exc)}") from None
    return checked


def make_evaluator(task: Task, data_dir: str | Path, *, max_puzzles: int | None = None,
                   options: dict[str, Any] | None = None, source: str = "evaluator option") -> Evaluator:
    """``task.evaluator(data_dir, max_puzzles=..., **options)``, the one way trmzoo calls it.

    ``max_puzzles`` goes to evaluators whose signature names it (or takes ``**options``); the
    others are limited by the caller. Options are checked by :func:`check_evaluator_options`.
    """
    if max_puzzles is not None and max_puzzles < 1:
        raise RecipeError(f"max_puzzles {max_puzzles}: give at least 1 (or none for all)")
    options = check_evaluator_options(task, dict(options or {}), source)
    parameters = list(inspect.signature(task.evaluator).parameters.values())[1:]
    named = [p.name for p in parameters if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
    if takes_any or "max_puzzles" in named:
        options["max_puzzles"] = max_puzzles
    return task.evaluator(Path(data_dir), **options)


@torch.no_grad()
def evaluate(
    model: RecursiveModel,
    data_dir: str | Path,
    task: Task,
    *,
    batch_size: int = 256,
    early_exit: bool = False,
    max_puzzles: int | None = None,
    evaluator_options: dict | None = None,
    submission: str | Path | None = None,
    progress: bool = False,
    dist: DistInfo = DistInfo(),
    strategy: str | Strategy | None = None,
    strategy_options: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Score ``model`` on the test split of ``data_dir`` with the task's evaluator.

    ``max_puzzles`` keeps the first puzzles (the evaluator decides which examples they
    are: for ARC all augmented versions of the first tasks); ``evaluator_options`` go to
    ``task.evaluator`` (ARC: ``max_augmentations``); ``submission`` is the file an evaluator
    that can write one (ARC: Kaggle's format) writes it to; another task's is refused before the evaluation. ``task``
    must be the dataset's and the model's (as their ``task.json`` and provenance record it). Each call scores with a new
    evaluator: nothing carries over from one evaluation to the next.
    ``strategy`` names a registered inference strategy (or is a built one), ``strategy_options`` its
    options; the default is the plain rollout (``early_exit`` is its option).
    Returns the evaluator's metrics plus ``mean_steps`` (supervision steps behind each answer),
    what the strategy spent over the whole evaluation (a padded batch's cost shared out over its rows,
    the padding's share left out): ``sample_steps`` (supervision steps summed over every row it ran) and ``network_rows`` (rows the
    recursion's networks processed, counted by forward hooks), and ``uses_verify`` (1.0 when the
    strategy consulted the task's verify check).
    Under torchrun (``dist``) each process runs its slice of every batch; the slices go to
    rank 0 in order, so its evaluator sees what one process would, and every process
    returns rank 0's metrics.
    """
    if not isinstance(task, Task):
        raise RecipeError(f"task {task!r}: give a Task, e.g. trmzoo.task_of(model) or create_task(config)")
    if batch_size < 1:
        raise RecipeError(f"batch_size {batch_size}: give at least 1")
    check_data_compatible(model, data_dir)
    check_dataset_task(data_dir, task.name, "task given")
    recorded = (model.provenance.task or {}).get("name")
    if recorded and recorded != task.name:
        raise DataError(f"task {task.name}: the model was trained on the {recorded} task")
    evaluator = make_evaluator(task, data_dir, max_puzzles=max_puzzles, options=evaluator_options)
    if submission is not None and not hasattr(evaluator, "write_submission"):
        raise RecipeError(f"--submission: the {task.name} task writes no submission file")
    if early_exit:
        if isinstance(strategy, Strategy):
            raise RecipeError("early_exit: give it to the strategy you built, as its option")
        strategy_options = {**(strategy_options or {}), "early_exit": True}
    strategy = make_strategy(strategy, strategy_options, task=task)
    was_training = model.training
    model.eval()
    metadata, arrays = read_split(data_dir, "test", mmap=True)
    rows = evaluator.example_indices()
    if rows is None:
        rows = np.arange(len(arrays.inputs))[:max_puzzles]
    device = model.device
    steps_used, examples, spent = 0.0, 0, [0.0, 0.0]
    total = len(rows)
    batches = eval_batches(metadata, arrays, batch_size=batch_size, rows=rows,
                           rank=dist.rank, world_size=dist.world_size)
    per_batch = -(-batch_size // dist.world_size) * dist.world_size
    bar = tqdm(batches, total=-(-total // per_batch), disable=not (progress and dist.is_main), desc="eval", leave=False)
    on_device = (({k: v.to(device) for k, v in batch.items()}, real) for batch, real in bar)
    with count_network_rows(model) as network_rows:
        for batch, real, answers in strategy.run_split(model, on_device):
            part = (
                {k: v[:real].cpu().numpy() for k, v in batch.items()},
                answers.preds[:real].cpu().numpy(), answers.q_halt[:real].float().cpu().numpy(),
                answers.steps[:real].cpu().numpy(),
                # what the batch cost, its padding rows' share left out (exact where every row runs alike)
                (answers.sample_steps * real / len(answers.steps), network_rows.take() * real / len(answers.steps)),
            )
            for numpy_batch, preds, q_halt, steps, cost in gather_to_main(part, dist) or []:
                spent = [spent[0] + cost[0], spent[1] + cost[1]]
                if len(steps):
                    evaluator.update(numpy_batch, preds, q_halt)
                    steps_used += float(steps.sum())
                    examples += len(steps)
    model.train(was_training)
    metrics = None
    if dist.is_main:
        metrics = {**evaluator.result(), "mean_steps": steps_used / max(examples, 1), "sample_steps": float(spent[0]),
                   "network_rows": float(spent[1]), "uses_verify": float(strategy.uses_verify)}
        if submission is not None:  # under a temporary name, then renamed
            atomic_write(Path(submission), evaluator.write_submission)
    return broadcast_from_main(metrics, dist)
