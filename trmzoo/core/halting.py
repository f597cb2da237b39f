"""What a halting policy is: when a sample stops, and how the halting head is trained.

The q head reads two logits from prefix position 0: ``q_halt`` and ``q_continue``.
During training a sample halts at the step limit or when the policy's signal fires,
except that with probability ``exploration_prob`` a random minimum of 2..N steps
is forced. At evaluation every sample runs all steps (the official behaviour)
unless early exit is asked for, which stops a sample as soon as the signal fires.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict


class HaltingPolicy:
    """Interface. ``needs_target`` asks the model for a second forward pass (Q-learning)."""

    needs_target = False

    def __init__(self, config: "_HaltingConfig") -> None:
        self.config = config
        self.max_steps = config.max_steps
        self.exploration_prob = config.exploration_prob

    def signal(self, q_halt: torch.Tensor, q_continue: torch.Tensor) -> torch.Tensor:
        """Whether the learned head asks to stop now."""
        raise NotImplementedError

    def loss(self, q_halt, q_continue, seq_correct, target_q_continue=None) -> torch.Tensor:
        """Summed halting loss over the batch (multiplied by 0.5 in the total loss)."""
        raise NotImplementedError

    def halted(
        self,
        steps: torch.Tensor,
        q_halt: torch.Tensor,
        q_continue: torch.Tensor,
        *,
        training: bool,
        early_exit: bool = False,
        explore: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Which samples stop after this step. ``explore`` holds a uniform draw and a
        random minimum step count per sample, made by the caller so that they can
        come from a seed shared across processes."""
        halted = steps >= self.max_steps
        if (training and self.max_steps > 1) or early_exit:
            halted = halted | self.signal(q_halt, q_continue)
        if training and self.max_steps > 1 and self.exploration_prob > 0:
            if explore is None:
                explore = (torch.rand_like(q_halt), torch.randint_like(steps, 2, self.max_steps + 1))
            uniform, minimum = explore
            min_steps = (uniform < self.exploration_prob) * minimum
            halted = halted & (steps >= min_steps)
        return halted


class _HaltingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_steps: int = 16
    """N_sup: the most supervision steps a sample gets."""
    exploration_prob: float = 0.1
    """Probability of forcing a random minimum of 2..max_steps steps during training."""


class BCEHaltingConfig(_HaltingConfig):
    kind: Literal["bce"] = "bce"


class BCEHalting(HaltingPolicy):
    """TRM: q_halt learns whether the whole answer is already correct; halt when q_halt > 0."""

    def signal(self, q_halt, q_continue):
        return q_halt > 0

    def loss(self, q_halt, q_continue, seq_correct, target_q_continue=None):
        return F.binary_cross_entropy_with_logits(q_halt, seq_correct.to(q_halt.dtype), reduction="sum")


class QLearningHaltingConfig(_HaltingConfig):
    kind: Literal["q_learning"] = "q_learning"
    bootstrap: bool = True
    """Train q_continue toward a target from a second forward pass. The official direct
    baseline halts on q_halt > q_continue but never computes that target (False)."""


class QLearningHalting(BCEHalting):
    """HRM (and TRM's "w/ ACT" ablation): q_continue learns a bootstrapped target from a
    second forward pass; halt when q_halt > q_continue."""

    def __init__(self, config: QLearningHaltingConfig) -> None:
        super().__init__(config)
        self.needs_target = config.bootstrap

    def signal(self, q_halt, q_continue):
        return q_halt > q_continue

    def loss(self, q_halt, q_continue, seq_correct, target_q_continue=None):
        halt_loss = super().loss(q_halt, q_continue, seq_correct)
        if target_q_continue is None:  # evaluation: no target was computed
            return halt_loss
        return halt_loss + F.binary_cross_entropy_with_logits(q_continue, target_q_continue, reduction="sum")

    def target(self, next_q_halt, next_q_continue, is_last_step):
        return torch.sigmoid(torch.where(is_last_step, next_q_halt, torch.maximum(next_q_halt, next_q_continue)))


class FixedHaltingConfig(_HaltingConfig):
    kind: Literal["fixed"] = "fixed"
    exploration_prob: float = 0.0


class FixedHalting(BCEHalting):
    """Always run ``max_steps`` steps; the q head still learns the BCE target but never stops a sample."""

    def signal(self, q_halt, q_continue):
        return torch.zeros_like(q_halt, dtype=torch.bool)
