"""What a halting policy is: when a sample stops, and how the halting head is trained.

This module holds the interface (:class:`HaltingPolicy` and the config base
:class:`HaltingConfig`); the reference policies (``bce``, ``q_learning``, ``fixed``)
live in the TRM plugin.

The q head reads two logits from prefix position 0: ``q_halt`` and ``q_continue``.
During training a sample halts at the step limit or when the policy's signal fires,
except that with probability ``exploration_prob`` a random minimum of 2..N steps
is forced. At evaluation every sample runs all steps (the official behaviour)
unless early exit is asked for, which stops a sample as soon as the signal fires.
"""

from __future__ import annotations

import torch

from pydantic import Field

from trmzoo.core.config import Config


class HaltingConfig(Config):
    """Base of a halting policy's recipe section (``model.halting``): a subclass adds
    ``kind: Literal["<name>"] = "<name>"`` and its own options."""

    max_steps: int = Field(16, ge=1)
    """N_sup: the most supervision steps a sample gets."""
    exploration_prob: float = Field(0.1, ge=0, le=1)
    """Probability of forcing a random minimum of 2..max_steps steps during training."""


class HaltingPolicy:
    """Interface: a policy implements :meth:`signal` and :meth:`loss`; one that sets
    ``needs_target`` also implements :meth:`target`."""

    needs_target = False
    """Ask the model, in training, for a second forward pass after each step whose halting
    logits go to :meth:`target` (Q-learning's bootstrapped target)."""

    def __init__(self, config: HaltingConfig) -> None:
        self.config = config
        self.max_steps = config.max_steps
        self.exploration_prob = config.exploration_prob

    def signal(self, q_halt: torch.Tensor, q_continue: torch.Tensor) -> torch.Tensor:
        """Whether the learned head asks to stop now (bool ``[B]``)."""
        raise NotImplementedError

    def loss(self, q_halt: torch.Tensor, q_continue: torch.Tensor, seq_correct: torch.Tensor,
             target_q_continue: torch.Tensor | None = None) -> torch.Tensor:
        """Summed halting loss over the batch (multiplied by 0.5 in the total loss).
        ``seq_correct`` says per sample whether the whole answer is right;
        ``target_q_continue`` is :meth:`target`'s output in training, None otherwise."""
        raise NotImplementedError

    def target(self, next_q_halt: torch.Tensor, next_q_continue: torch.Tensor,
               is_last_step: torch.Tensor) -> torch.Tensor:
        """The training target of ``q_continue`` from the halting logits of the next step
        (fp32 ``[B]``); called only when ``needs_target`` is set."""
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


