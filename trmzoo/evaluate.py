"""The evaluators' common parts: run a model over a test split or one puzzle.

By default every sample runs all supervision steps, as the official evaluation
does; ``early_exit`` stops each sample once its halting signal fires, and the
samples that stopped leave the batch so the work really shrinks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from trmzoo.core.model import RecursiveModel
from trmzoo.data.format import read_split
from trmzoo.data.loader import eval_batches
from trmzoo.task import Puzzle, Solution, Task


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate(
    model: RecursiveModel,
    data_dir: str | Path,
    task: Task,
    *,
    batch_size: int = 256,
    early_exit: bool = False,
    max_examples: int | None = None,
    progress: bool = False,
    rank: int = 0,
    world_size: int = 1,
) -> dict[str, float]:
    """Score ``model`` on the test split of ``data_dir`` with the task's evaluator.

    Returns the evaluator's metrics plus ``mean_steps`` (supervision steps used per example).
    """
    was_training = model.training
    model.eval()
    metadata, arrays = read_split(data_dir, "test", mmap=True)
    evaluator = task.evaluator(Path(data_dir))
    device = _device(model)
    steps_used, examples = 0.0, 0
    total = len(arrays.inputs) if max_examples is None else min(max_examples, len(arrays.inputs))
    batches = eval_batches(metadata, arrays, batch_size=batch_size, max_examples=max_examples,
                           rank=rank, world_size=world_size)
    for batch, real in tqdm(batches, total=-(-total // batch_size), disable=not progress, desc="eval", leave=False):
        batch = {k: v.to(device) for k, v in batch.items()}
        final = model.rollout(batch, early_exit=early_exit)[-1]
        numpy_batch = {k: v[:real].cpu().numpy() for k, v in batch.items()}
        evaluator.update(numpy_batch, final.preds[:real].cpu().numpy(), final.q_halt[:real].float().cpu().numpy())
        steps_used += float(final.steps[:real].sum())
        examples += real
    model.train(was_training)
    return {**evaluator.result(), "mean_steps": steps_used / max(examples, 1)}


@torch.no_grad()
def solve_single(model: RecursiveModel, task: Task, puzzle: Puzzle, *, early_exit: bool = False) -> Solution:
    """Run ``model`` on one parsed puzzle and keep the answer after every supervision step."""
    model.eval()
    device = _device(model)
    inputs = torch.as_tensor(np.asarray(puzzle.inputs), dtype=torch.int32, device=device)[None]
    batch = {
        "inputs": inputs,
        "labels": torch.zeros_like(inputs),
        "puzzle_identifiers": torch.tensor([puzzle.puzzle_identifier], dtype=torch.int32, device=device),
    }
    outputs = model.rollout(batch, early_exit=early_exit)
    trace = [out.preds[0].cpu().numpy() for out in outputs]
    q_trace = [float(torch.sigmoid(out.q_halt[0])) for out in outputs]
    tokens = trace[-1]
    return Solution(
        tokens=tokens, steps=int(outputs[-1].steps[0]), q_halt=q_trace[-1], trace=trace, q_trace=q_trace,
        text=task.render(tokens, puzzle),
    )
