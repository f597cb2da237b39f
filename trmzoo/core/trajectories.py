"""K trajectories of one batch, side by side in one bigger batch.

Test-time strategies (K noisy rollouts of each puzzle) and training with K parallel
latents both run K copies of a batch through the model at once. The copies are laid
out **trajectory-major**: row ``k * B + b`` is trajectory ``k`` of sample ``b``, so
copy ``k`` is the contiguous slice ``[k * B, (k + 1) * B)`` and ``split`` is a view.

    big = replicate(batch, k)                   # dict of [K*B, ...]
    carry = replicate(model.initial_carry(batch), k)
    ...                                         # run steps on the big batch
    winner = best_trajectory(score, k)          # [B]: which copy each sample keeps
    answer = select(preds, winner)              # [B, ...]
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass, replace
from typing import TypeVar

import torch

T = TypeVar("T")


def replicate(value: T, k: int) -> T:
    """``k`` trajectory-major copies along the batch axis (dim 0) of a tensor, or of every tensor
    in a dict, list, tuple or dataclass (a ``Carry``, a ``StepOutput``); ``None`` and non-tensors pass through."""
    if k < 1:
        raise ValueError(f"replicate: k must be at least 1, got {k}")
    return _map(value, lambda t: t.repeat(k, *([1] * (t.ndim - 1))) if t.ndim else t)


def split(value: torch.Tensor, k: int) -> torch.Tensor:
    """``[K*B, ...] -> [K, B, ...]`` (a view): ``split(x, k)[i]`` is trajectory ``i`` of every sample."""
    if value.shape[0] % k:
        raise ValueError(f"split: {value.shape[0]} rows are not {k} trajectories of one batch")
    return value.view(k, value.shape[0] // k, *value.shape[1:])


def best_trajectory(score: torch.Tensor, k: int) -> torch.Tensor:
    """Per sample, the trajectory with the highest ``score`` (``[K*B]``), as int64 ``[B]``.

    Ties go to the lowest trajectory index, so trajectory 0 wins when all scores are equal; a NaN score (a
    trajectory that diverged) never wins."""
    scores = split(score, k)
    return torch.nan_to_num(scores, nan=-torch.inf).argmax(dim=0)  # argmax returns the first maximal index


def select(value: T, winner: torch.Tensor) -> T:
    """Row ``winner[b] * B + b`` for every sample ``b``: each sample's chosen trajectory, ``[B, ...]``.

    ``value`` is a ``[K*B, ...]`` tensor, or a dict / list / tuple / dataclass of them."""
    size = winner.shape[0]
    rows = winner.to(torch.long) * size + torch.arange(size, device=winner.device)

    def take(t: torch.Tensor) -> torch.Tensor:
        if t.ndim == 0:
            return t
        if t.shape[0] % size:
            raise ValueError(f"select: {t.shape[0]} rows are not trajectories of {size} samples")
        return t[rows.to(t.device)]

    return _map(value, take)


def _map(value, fn):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, dict):
        return {key: _map(item, fn) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map(item, fn) for item in value)
    if is_dataclass(value) and not isinstance(value, type):
        return replace(value, **{f.name: _map(getattr(value, f.name), fn) for f in fields(value) if f.init})
    return value
