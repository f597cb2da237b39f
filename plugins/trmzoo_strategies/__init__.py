"""Built-in inference strategies: turning more test-time compute into accuracy on a trained model.

``plain``   one rollout of the trained supervision steps (optionally early exit): the official evaluation.
``depth``   more (or fewer) supervision steps; optionally stop a sample when its halting head fires or
            when its answer stops changing.
``noise``   K trajectories with Gaussian noise on the latent after every update inside the recursion,
            the answer of the most confident one kept (PTRM, arXiv 2605.19943).
``halt_first`` K noisy trajectories; a sample stops as soon as one of them halts, and that one answers
            (the halt-first ensemble of arXiv 2601.19085).
``symmetry`` K elements of the task's symmetry group: transform, solve (with any inner strategy, e.g.
            ``noise``), map back, vote (HRM/TRM's augmentation voting).
``noise+verify``, ``symmetry+verify``: the same, preferring answers the task's ``verify`` check accepts
            (rules a pure model does not know: reported as such).

docs/test-time-scaling.md gives the cost of each and how to write one.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Literal

import numpy as np
import torch
from pydantic import Field

from trmzoo import hookimpl
from trmzoo.core.recursion import latent_hook
from trmzoo.core.trajectories import best_trajectory, replicate, select, split
from trmzoo.errors import RecipeError
from trmzoo.factory import make_strategy
from trmzoo.strategy import Answers, PlainStrategy, Strategy, StrategyConfig, vote

WINNER_BONUS = 1e9  # added to a score to rank a class of trajectories (halted, verified) above all others


NOISE_PATTERNS = 64
"""Noise patterns drawn per latent update; each row adds one of them (at least as many as trajectories)."""
MASK64 = 2**64 - 1


def mix(*values: int) -> int:
    """A 64-bit hash of whole numbers (splitmix64 steps): decorrelated keys from counters and seeds."""
    x = 0
    for value in values:
        x = (x ^ value) + 0x9E3779B97F4A7C15 & MASK64
        x = (x ^ x >> 30) * 0xBF58476D1CE4E5B9 & MASK64
        x = (x ^ x >> 27) * 0x94D049BB133111EB & MASK64
        x ^= x >> 31
    return x


def puzzle_keys(batch) -> list[int]:
    """A key per row from what it holds (tokens and puzzle id): a puzzle has the same key in any batch."""
    inputs = batch["inputs"].cpu().numpy().astype(np.int64)
    ids = batch["puzzle_identifiers"].cpu().numpy().astype(np.int64)
    return [int.from_bytes(hashlib.blake2b(row.tobytes() + ident.tobytes(), digest_size=8).digest(), "little")
            for row, ident in zip(inputs, ids)]


def run_rows(model, batch, steps: int, *, noise_scale: torch.Tensor | None = None, seed: int = 0,
             trajectories: int = 1, stop: Callable[[Any, torch.Tensor], torch.Tensor] | None = None) -> dict[str, Any]:
    """Run ``steps`` supervision steps on every row of ``batch``; ``stop(out, active)`` (bool per active
    row) takes rows out of the batch after a step, keeping their last outputs.

    ``noise_scale`` (``[rows]``) adds ``scale * N(0, 1)`` to the latent after every update inside the
    recursion. The rows are ``trajectories`` copies of the puzzles side by side (row ``j * B + b`` is
    trajectory ``j`` of puzzle ``b``). At each update ``NOISE_PATTERNS`` patterns are drawn from ``seed`` and
    the update's count, and trajectory ``j`` of a puzzle adds pattern ``(offset + j) mod NOISE_PATTERNS``, the
    offset a hash of ``seed``, the count and the puzzle's content: a puzzle's trajectories get independent
    noise, and its answers do not depend on the batch it is in. Returns the last ``preds``, ``q_halt``,
    ``q_continue`` and ``steps`` of each row and ``sample_steps``, the rows run summed over steps.
    """
    size = batch["inputs"].shape[0]
    device = batch["inputs"].device
    carry = model.initial_carry(batch)
    last: dict[str, torch.Tensor] = {}
    active = torch.arange(size, device=device)
    sub = batch
    scale = noise_scale if noise_scale is not None and bool((noise_scale != 0).any()) else None
    patterns = max(NOISE_PATTERNS, trajectories)
    puzzles = size // trajectories
    keys = puzzle_keys({k: v[:puzzles] for k, v in batch.items()}) if scale is not None else []
    updates = 0

    def add_noise(z: torch.Tensor) -> torch.Tensor:
        nonlocal updates
        updates += 1
        generator = torch.Generator(device=device).manual_seed(mix(seed, updates))
        table = torch.randn((patterns, *z.shape[1:]), generator=generator, device=z.device, dtype=z.dtype)
        offsets = torch.tensor([mix(seed, updates, key) % patterns for key in keys], device=device)
        pick = (offsets[active % puzzles] + active // puzzles) % patterns
        rows = scale[active].to(z.dtype).view(-1, *([1] * (z.ndim - 1)))
        return z + rows * table[pick]

    sample_steps = 0
    with latent_hook(model.recursion, add_noise if scale is not None else None):
        for _ in range(steps):
            carry, out = model.step(carry, sub)
            carry.halted = torch.zeros_like(carry.halted)  # keep each row's example
            sample_steps += len(active)
            for name in ("preds", "q_halt", "q_continue", "steps"):
                value = getattr(out, name)
                if name not in last:
                    last[name] = torch.zeros((size, *value.shape[1:]), dtype=value.dtype, device=device)
                last[name][active] = value
            if stop is None:
                continue
            keep = ~stop(out, active)
            if not bool(keep.any()):
                break
            if not bool(keep.all()):
                carry, active = carry.index(keep), active[keep]
                sub = {k: v[active] for k, v in batch.items()}
    return {**last, "sample_steps": sample_steps}


class DepthConfig(StrategyConfig):
    steps: int | None = Field(None, ge=1)
    """Supervision steps (default: the trained number, the model's ``halting.max_steps``)."""
    stop: Literal["none", "halt", "stable"] = "none"
    """``halt``: stop a sample once its halting signal fires; ``stable``: once its answer has not
    changed for ``patience`` steps."""
    patience: int = Field(1, ge=1)


class DepthStrategy(Strategy):
    """More supervision steps than the model was trained with (the paper's N_sup, raised at test time)."""

    Config = DepthConfig

    def run(self, model, batch):
        cfg = self.config
        stop = None
        if cfg.stop == "halt":
            stop = lambda out, active: model.halting.signal(out.q_halt, out.q_continue)  # noqa: E731
        elif cfg.stop == "stable":
            stop = _Stable(batch["inputs"].shape[0], cfg.patience)
        res = run_rows(model, batch, cfg.steps or model.halting.max_steps, stop=stop)
        return Answers(res["preds"], res["q_halt"], res["steps"], res["sample_steps"])


class _Stable:
    """Stop a row once its answer has stayed the same for ``patience`` steps in a row."""

    def __init__(self, size: int, patience: int) -> None:
        self.patience = patience
        self.previous: torch.Tensor | None = None
        self.unchanged = torch.zeros(size, dtype=torch.long)

    def __call__(self, out, active):
        preds = out.preds
        if self.previous is None:
            self.previous = torch.zeros((self.unchanged.shape[0], *preds.shape[1:]), dtype=preds.dtype,
                                        device=preds.device)
            self.unchanged = self.unchanged.to(preds.device)
            same = torch.zeros(len(active), dtype=torch.bool, device=preds.device)
        else:
            same = (self.previous[active] == preds).all(-1)
        self.unchanged[active] = torch.where(same, self.unchanged[active] + 1, 0)
        self.previous[active] = preds
        return self.unchanged[active] >= self.patience


class TrajectoriesConfig(StrategyConfig):
    k: int = Field(8, ge=1)
    """Trajectories per puzzle."""
    scale: float = Field(0.1, ge=0)
    """Standard deviation of the Gaussian noise added to the latent after every update (states are RMS-normed, so about 1 per unit)."""
    seed: int = Field(0, ge=0, le=2**63 - 1)
    """Seeds the noise: the same seed gives the same answers, in any batch."""
    steps: int | None = Field(None, ge=1)
    """Supervision steps per trajectory (default: the trained number)."""
    clean_first: bool = True
    """Trajectory 0 runs without noise, so the plain answer is always a candidate."""


class NoiseStrategy(Strategy):
    """K trajectories with noise at every recursion; the one whose halting head is most confident answers (PTRM)."""

    Config = TrajectoriesConfig

    def run(self, model, batch):
        res = self._trajectories(model, batch)
        return self._pick(batch, res, res["q_halt"].double())

    def _trajectories(self, model, batch, stop=None):
        cfg = self.config
        size = batch["inputs"].shape[0]
        scale = torch.full((cfg.k * size,), cfg.scale, device=batch["inputs"].device)
        if cfg.clean_first:
            scale[:size] = 0
        return run_rows(model, replicate(batch, cfg.k), cfg.steps or model.halting.max_steps,
                        noise_scale=scale, seed=cfg.seed, trajectories=cfg.k, stop=stop)

    def _pick(self, batch, res, score):
        if self.uses_verify:
            fine = self.task.verify(replicate(batch, self.config.k)["inputs"].cpu().numpy(), res["preds"].cpu().numpy())
            score = score + WINNER_BONUS * torch.as_tensor(fine, device=score.device)
        winner = best_trajectory(score, self.config.k)
        chosen = select({k: res[k] for k in ("preds", "q_halt", "steps")}, winner)
        return Answers(chosen["preds"], chosen["q_halt"], chosen["steps"], res["sample_steps"])


class NoiseVerifyStrategy(NoiseStrategy):
    """``noise``, preferring trajectories whose answer the task's verify check accepts."""

    uses_verify = True


class HaltFirstStrategy(NoiseStrategy):
    """K noisy trajectories run together; a puzzle stops at the first step where any of them halts, and
    the most confident of those that halted answers (none halted by the last step: the most confident)."""

    def run(self, model, batch):
        size = batch["inputs"].shape[0]

        def stop(out, active):
            fired = model.halting.signal(out.q_halt, out.q_continue)
            sample_done = torch.zeros(size, dtype=torch.bool, device=fired.device)
            sample_done[active[fired] % size] = True
            return sample_done[active % size]

        res = self._trajectories(model, batch, stop=stop)
        fired = model.halting.signal(res["q_halt"], res["q_continue"])
        # trajectories of one puzzle leave together, so their last outputs are from the same step
        return self._pick(batch, res, res["q_halt"].double() + WINNER_BONUS * fired)


class SymmetryConfig(StrategyConfig):
    k: int = Field(8, ge=1)
    """Group elements per puzzle, the identity first (all of them when the group is smaller)."""
    seed: int = Field(0, ge=0, le=2**63 - 1)
    """Draws the other elements: the same seed, the same elements."""
    inner: str = "plain"
    """The strategy that solves each transformed copy (e.g. ``noise``)."""
    inner_options: dict[str, Any] = {}


class SymmetryStrategy(Strategy):
    """Transform each puzzle by K elements of its task's symmetry group, solve every copy, map the answers
    back and vote: the answer most copies agree on wins; ties go to the higher mean sigmoid(q_halt) of
    its voters, then to the copy drawn first (the identity)."""

    Config = SymmetryConfig

    def __init__(self, config=None, *, task=None, name=""):
        super().__init__(config, task=task, name=name)
        if self.config.inner.startswith("symmetry"):
            raise RecipeError(f"strategy {self.name!r}: inner={self.config.inner!r}; a vote over a vote is not offered")
        self.inner = make_strategy(self.config.inner, self.config.inner_options, task=task,
                                   source=f"strategy {self.name!r} inner_options", name_source=f"strategy {self.name!r} inner")
        self.uses_verify = self.uses_verify or self.inner.uses_verify

    def elements(self) -> list:
        group = self.task.symmetries() if self.task is not None else None
        if group is None:
            return []
        count = min(self.config.k, len(group))
        rng = np.random.default_rng(self.config.seed)
        others = rng.choice(len(group) - 1, size=count - 1, replace=False) + 1 if count > 1 else []
        return [group[int(i)] for i in [0, *others]]

    def run(self, model, batch):
        elements = self.elements()
        if not elements:
            if getattr(self.task, "versions_in_split", False):  # ARC: the evaluator votes over the split's versions
                return self.inner.run(model, batch)
            raise RecipeError(f"strategy {self.name!r}: the {getattr(self.task, 'name', '?')} task has no symmetry group")
        k, inputs = len(elements), batch["inputs"]
        big = {"inputs": torch.cat([g.apply(inputs) for g in elements]),
               "puzzle_identifiers": replicate(batch["puzzle_identifiers"], k)}
        answers = self.inner.run(model, big)
        back = torch.stack([g.invert(p) for g, p in zip(elements, split(answers.preds, k))])  # [K, B, L]
        allowed = None
        if type(self).uses_verify:
            fine = self.task.verify(replicate(inputs, k).cpu().numpy(), back.flatten(0, 1).cpu().numpy())
            allowed = split(torch.as_tensor(fine, device=back.device), k)
        winner = vote(back, torch.sigmoid(split(answers.q_halt.float(), k)), allowed)
        chosen = select({"q_halt": answers.q_halt, "steps": answers.steps}, winner)
        return Answers(back.transpose(0, 1)[torch.arange(len(winner)), winner], chosen["q_halt"], chosen["steps"],
                       answers.sample_steps)


class SymmetryVerifyStrategy(SymmetryStrategy):
    """``symmetry``, voting only among answers the task's verify check accepts (where any is)."""

    uses_verify = True


@hookimpl
def register_strategies(register):
    register("plain", PlainStrategy)
    register("depth", DepthStrategy)
    register("noise", NoiseStrategy)
    register("noise+verify", NoiseVerifyStrategy)
    register("halt_first", HaltFirstStrategy)
    register("symmetry", SymmetryStrategy)
    register("symmetry+verify", SymmetryVerifyStrategy)
