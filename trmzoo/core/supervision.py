"""The deep-supervision loss and metrics of one supervision step.

Every sample in the batch is supervised at every step (not only the halted ones):
the token loss is a per-sequence mean over supervised cells, summed over the
batch, plus 0.5 times the halting loss. The caller divides by the global batch
size. Metrics are sums over samples that halted at this step.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

IGNORE_LABEL = -100
LossType = Literal["stablemax", "softmax"]


def _stablemax_transform(x: torch.Tensor) -> torch.Tensor:
    return torch.where(x < 0, 1 / (1 - x + 1e-30), x + 1)


def stablemax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token cross-entropy under stablemax, in fp64 (zero where ``mask`` is false)."""
    s = _stablemax_transform(logits.to(torch.float64))
    logp = torch.log(s / s.sum(dim=-1, keepdim=True))
    picked = logp.gather(-1, torch.where(mask, labels, 0).long().unsqueeze(-1)).squeeze(-1)
    return -torch.where(mask, picked, 0)


def softmax_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-token softmax cross-entropy in fp32 (zero where ``mask`` is false)."""
    flat = F.cross_entropy(
        logits.float().flatten(0, -2), torch.where(mask, labels, IGNORE_LABEL).long().flatten(),
        ignore_index=IGNORE_LABEL, reduction="none",
    )
    return flat.view(labels.shape)


LOSSES = {"stablemax": stablemax_cross_entropy, "softmax": softmax_cross_entropy}


def supervision_loss(out, labels: torch.Tensor, halting, loss_type: LossType = "stablemax",
                     weights: torch.Tensor | None = None):
    """Return ``(loss, metrics)`` for one supervision step's output ``out`` (a StepOutput).

    ``loss`` is summed over the batch; divide by the global batch size before backward.
    ``weights`` (``[B]``, optional) scale each sample's token loss (not the halting loss).
    ``metrics`` are detached sums: count, accuracy, exact_accuracy, q_halt_accuracy,
    steps (over halted samples with supervised cells) and the loss parts.
    """
    mask = labels != IGNORE_LABEL
    counts = mask.sum(-1)
    divisor = counts.clamp_min(1).unsqueeze(-1)
    with torch.no_grad():
        correct = mask & (out.logits.argmax(-1) == labels)
        seq_correct = correct.sum(-1) == counts
        counted = out.halted & (counts > 0)
        metrics = {
            "count": counted.sum(),
            "accuracy": torch.where(counted, (correct.float() / divisor).sum(-1), 0).sum(),
            "exact_accuracy": (counted & seq_correct).sum(),
            "q_halt_accuracy": (counted & ((out.q_halt >= 0) == seq_correct)).sum(),
            "steps": torch.where(counted, out.steps, 0).sum(),
        }
    token_loss = LOSSES[loss_type](out.logits, labels, mask) / divisor
    lm_loss = token_loss.sum() if weights is None else (token_loss.sum(-1) * weights).sum()
    halt_loss = halting.loss(out.q_halt, out.q_continue, seq_correct, out.target_q_continue)
    metrics["lm_loss"] = lm_loss.detach()
    metrics["halt_loss"] = halt_loss.detach()
    return lm_loss + 0.5 * halt_loss, metrics
