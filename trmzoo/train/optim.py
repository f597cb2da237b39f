"""Optimizers of the official recipe, in plain PyTorch so they run on any device.

* :class:`AdamATan2` - Adam with ``atan2`` in place of the epsilon-guarded division
  and decoupled weight decay (the official code uses a CUDA-only package for this).
* :class:`SparseSignSGD` - sign-SGD with decoupled weight decay for the per-puzzle
  embedding table, touching only the rows looked up in the batch.
* :func:`lr_at` - linear warmup, then cosine (or linear) down to ``min_ratio`` (1.0 = constant).
* :class:`Optimizers` - several optimizers stepped and saved as one (Muon for matrices, AdamATan2 for the rest).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

from trmzoo.core.model import PuzzleEmbedding
from trmzoo.distributed import all_gather_rows


class AdamATan2(torch.optim.Optimizer):
    """``p <- p (1 - lr wd) - lr / (1 - b1^t) * atan2(m, sqrt(v / (1 - b2^t)))``; no epsilon needed."""

    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.95), weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float64)
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"].item()
                m, v = state["exp_avg"], state["exp_avg_sq"]
                p.mul_(1 - lr * wd)
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denom = v.sqrt() / math.sqrt(1 - beta2**t)
                p.add_(torch.atan2(m, denom), alpha=-lr / (1 - beta1**t))


class SparseSignSGD:
    """Sign-SGD for a :class:`PuzzleEmbedding` buffer: gradients of the rows used in the
    last forward (gathered across processes) are summed per puzzle id, then each of those
    rows moves by ``-lr * sign(grad)`` after decoupled decay. Rows not in the batch are untouched."""

    def __init__(self, embedding: PuzzleEmbedding, *, lr: float, weight_decay: float) -> None:
        self.embedding = embedding
        self.lr = lr
        self.weight_decay = weight_decay

    @torch.no_grad()
    def step(self) -> None:
        lookup = self.embedding.last_lookup
        if lookup is None or lookup[1].grad is None:
            return
        ids, grads = all_gather_rows(lookup[0]), all_gather_rows(lookup[1].grad)
        unique, inverse = ids.unique(return_inverse=True)
        summed = torch.zeros(unique.shape[0], grads.shape[1], dtype=grads.dtype, device=grads.device)
        summed.index_add_(0, inverse, grads)
        table = self.embedding.weight
        rows = table[unique] * (1 - self.lr * self.weight_decay) - self.lr * summed.sign()
        table[unique] = rows.to(table.dtype)
        lookup[1].grad = None  # the leaf is refilled at the next forward; its gradient must not add up
        self.embedding.last_lookup = None


def lr_at(step: int, *, base_lr: float, warmup_steps: int, total_steps: int, min_ratio: float,
          shape: Literal["cosine", "linear"] = "cosine") -> float:
    """Learning rate at optimizer step ``step`` (1-based, so the first step uses base/warmup)."""
    if step < warmup_steps:
        return base_lr * step / max(1, warmup_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if shape == "linear":
        return base_lr * (min_ratio + (1 - min_ratio) * max(0.0, 1 - progress))
    return base_lr * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))))


class Optimizers:
    """Several optimizers used as one: ``param_groups`` of all, one ``step``, one state dict."""

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [group for opt in self.optimizers for group in opt.param_groups]

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, dict]:
        return {type(opt).__name__: opt.state_dict() for opt in self.optimizers}

    def load_state_dict(self, state: dict[str, dict]) -> None:
        for opt in self.optimizers:
            opt.load_state_dict(state[type(opt).__name__])


def muon_with_adam_atan2(model: torch.nn.Module, *, lr: float, betas: tuple[float, float],
                         weight_decay: float) -> Optimizers:
    """torch's Muon for the recursion's weight matrices (the blocks), AdamATan2 for the embeddings,
    heads and vectors. Muon's ``match_rms_adamw`` step size lets both follow the same ``lr``."""
    recursion = getattr(model, "recursion", model)
    matrices = [p for p in recursion.parameters() if p.ndim == 2]
    chosen = {id(p) for p in matrices}
    rest = [p for p in model.parameters() if id(p) not in chosen]
    return Optimizers(
        torch.optim.Muon(matrices, lr=lr, weight_decay=weight_decay, adjust_lr_fn="match_rms_adamw"),
        AdamATan2(rest, lr=lr, betas=betas, weight_decay=weight_decay),
    )


class ParameterEMA:
    """Exponential moving average of the parameters only (buffers stay live, as in the
    official code). timm's ModelEmaV3 keeps a whole model copy, puzzle table included,
    which for ARC doubles a multi-GB buffer; this keeps one tensor per parameter."""

    def __init__(self, model: torch.nn.Module, *, decay: float) -> None:
        self.decay = decay
        self.shadow = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for name, p in model.named_parameters():
            if name in self.shadow:
                self.shadow[name].lerp_(p.detach(), 1 - self.decay)

    @torch.no_grad()
    def swap(self, model: torch.nn.Module) -> None:
        """Exchange the model's parameters with the averages (call twice to undo)."""
        for name, p in model.named_parameters():
            if name in self.shadow:
                current = p.detach().clone()
                p.copy_(self.shadow[name])
                self.shadow[name] = current

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name in self.shadow:
            self.shadow[name].copy_(state[name])
