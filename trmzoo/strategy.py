"""What an inference strategy is: how a trained model turns a batch of puzzles into answers.

The plain rollout (all supervision steps, or early exit) is one strategy; test-time
scaling methods (more steps, noisy trajectories, voting over symmetries) are others,
contributed by plugins through the ``register_strategies`` hook. A strategy may call
the model's ``step`` / ``rollout`` as often as it likes; it returns one answer per sample
and says what it spent in supervision steps over all the rows it ran. Evaluation counts
the rows the networks processed with forward hooks, as ``benchmarks/early_exit.py`` does.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, Iterable, Iterator

import torch

from trmzoo.core.config import Config
from trmzoo.core.model import RecursiveModel
from trmzoo.task import Task

Batch = dict[str, torch.Tensor]


class StrategyConfig(Config):
    """Base of a strategy's options (``--strategy-option k=v``, a recipe's ``eval.strategy_options``)."""


@dataclass
class Answers:
    """A strategy's result on one batch."""

    preds: torch.Tensor  # int64 [B, seq_len]: the chosen answer of each sample
    q_halt: torch.Tensor  # float32 [B]: the halting logit that came with it (the evaluator's confidence)
    steps: torch.Tensor  # int [B]: supervision steps behind the chosen answer
    sample_steps: int  # what it spent: supervision steps summed over every row it ran


class Strategy:
    """Interface: subclasses set ``Config`` (a :class:`StrategyConfig`) and implement :meth:`run`.

    ``uses_verify``: the strategy consults ``Task.verify``, knowledge a pure model does not have;
    its registered name must then contain ``verify`` so that every report says so."""

    Config: ClassVar[type[StrategyConfig]] = StrategyConfig
    uses_verify: ClassVar[bool] = False
    traces: ClassVar[bool] = False
    """Its answer is the last step of one rollout, so ``solve --trace`` can draw every step."""

    def __init__(self, config: StrategyConfig | None = None, *, task: Task | None = None, name: str = "") -> None:
        self.config = config if config is not None else self.Config()
        self.task = task
        self.name = name or type(self).__name__

    def run(self, model: RecursiveModel, batch: Batch) -> Answers:
        raise NotImplementedError

    def run_split(self, model: RecursiveModel, batches: Iterable[tuple[Batch, int]]) -> Iterator[tuple[Batch, int, Answers]]:
        """The whole test split, batch by batch (``(batch, real rows)``). A strategy that needs every
        batch before it answers (ARC-style voting across versions of one puzzle) overrides this."""
        for batch, real in batches:
            yield batch, real, self.run(model, batch)

    def describe(self) -> str:
        """The strategy and its options, for reports."""
        options = ", ".join(f"{k}={v}" for k, v in self.config.model_dump().items())
        return f"{self.name}({options})" if options else self.name


class PlainConfig(StrategyConfig):
    early_exit: bool = False
    """Stop each sample once its halting signal fires (the samples that stopped leave the batch)."""


class PlainStrategy(Strategy):
    """One rollout of the trained number of supervision steps: the official evaluation."""

    Config = PlainConfig
    traces = True

    def run(self, model, batch):
        final = model.rollout(batch, early_exit=self.config.early_exit)[-1]
        return Answers(final.preds, final.q_halt, final.steps, int(final.steps.sum()))


def networks(model: RecursiveModel) -> list[torch.nn.Module]:
    """The recursion's networks (TRM: ``net``, and ``y_net`` with separate networks)."""
    return list(model.recursion.children())


class RowCount:
    """Batch rows of every call of the recursion's networks, summed in a tensor: a compiled model traces
    the in-place add, where appending to a Python list made it recompile at every call."""

    def __init__(self, device: torch.device) -> None:
        self.rows = torch.zeros((), dtype=torch.int64, device=device)

    def __call__(self, module: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        self.rows.add_(args[0].shape[0])

    def take(self) -> int:
        """The rows counted since the last ``take``."""
        rows = int(self.rows)
        self.rows.zero_()
        return rows


@contextmanager
def count_network_rows(model: RecursiveModel) -> Iterator[RowCount]:
    """Inside the block, the yielded :class:`RowCount` counts the rows the recursion's networks run."""
    count = RowCount(model.device)
    hooks = [net.register_forward_hook(count) for net in networks(model)]
    try:
        yield count
    finally:
        for hook in hooks:
            hook.remove()


def vote(preds: torch.Tensor, confidence: torch.Tensor, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Per sample, the candidate the most candidates agree with (the whole answer equal).

    ``preds`` is ``[K, B, L]`` (candidate ``k`` of sample ``b``), ``confidence`` ``[K, B]``.
    Ties on the vote count go to the higher mean confidence of the agreeing candidates,
    then to the lowest ``k``. ``allowed`` (bool ``[K, B]``) keeps only some candidates in
    the vote, for samples where any is allowed. Returns the winning ``k`` per sample (int64 ``[B]``).
    """
    by_sample = preds.transpose(0, 1)  # [B, K, L]
    same = (by_sample[:, :, None, :] == by_sample[:, None, :, :]).all(-1)  # [B, K, K]
    conf = confidence.transpose(0, 1).to(torch.float64)  # [B, K]
    if allowed is not None:
        allowed = allowed.transpose(0, 1)
        allowed = allowed | ~allowed.any(-1, keepdim=True)  # nobody allowed: everybody votes
        same = same & allowed[:, None, :] & allowed[:, :, None]
    votes = same.sum(-1)  # [B, K]
    mean_conf = (same * conf[:, None, :]).sum(-1) / votes.clamp_min(1)
    best = votes == votes.max(-1, keepdim=True).values
    mean_conf = torch.where(best, mean_conf, torch.tensor(-torch.inf, dtype=torch.float64))
    best = best & (mean_conf == mean_conf.max(-1, keepdim=True).values)
    return best.int().argmax(-1)  # the first (lowest k) of the best
