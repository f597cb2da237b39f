"""What a backbone is: the tiny network applied at every recursion step.

A backbone plugin supplies a *mixer* (how tokens talk to each other: attention,
an MLP over the sequence axis, ...). The core wraps it into post-norm blocks with a
channel SwiGLU and stacks them into a :class:`ReasoningNet`, which maps
``(hidden, injection) -> hidden`` by adding the injection and running the blocks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from trmzoo.core.layers import RMSNorm, SwiGLU
from trmzoo.core.model import ModelConfigBase


@dataclass(frozen=True)
class BackboneSpec:
    """What the model tells a backbone builder about the sequence it will see."""

    hidden_size: int
    seq_len: int  # prefix slots included
    expansion: float
    rms_norm_eps: float
    pos_encodings: str  # "rope", "learned" or "none"
    rope_theta: float

    @classmethod
    def from_config(cls, config: ModelConfigBase) -> BackboneSpec:
        """What a model with this config tells its backbone."""
        return cls(hidden_size=config.hidden_size, seq_len=config.seq_len + config.prefix_len,
                   expansion=config.expansion, rms_norm_eps=config.rms_norm_eps,
                   pos_encodings=config.pos_encodings, rope_theta=config.rope_theta)


class Block(nn.Module):
    """One post-norm block: the mixer (which owns its residual and norm), then a channel SwiGLU."""

    def __init__(self, mixer: nn.Module, spec: BackboneSpec) -> None:
        super().__init__()
        self.mixer = mixer
        self.mlp = SwiGLU(spec.hidden_size, spec.expansion)
        self.norm = RMSNorm(spec.hidden_size, eps=spec.rms_norm_eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.mixer(h)
        return self.norm(self.mlp(h, add=h))


class ReasoningNet(nn.Module):
    """A stack of blocks with its input injected by addition."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, hidden: torch.Tensor, injection: torch.Tensor | None = None) -> torch.Tensor:
        if injection is not None:
            hidden = hidden + injection
        for layer in self.layers:
            hidden = layer(hidden)
        return hidden


def build_blocks(make_mixer: Callable[[], nn.Module], spec: BackboneSpec, num_layers: int) -> ReasoningNet:
    """The usual backbone builder: ``num_layers`` blocks, each with a fresh mixer."""
    return ReasoningNet([Block(make_mixer(), spec) for _ in range(num_layers)])
