"""Built-in backbone plugin: TRM-MLP, a SwiGLU over the sequence axis in place of attention.

The mixer transposes to [B, D, L], applies a SwiGLU of width L, adds the residual
and normalises over the *sequence* axis before transposing back. It has no
positional encoding: the token-mixing weights already know each position.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from trmzoo import hookimpl
from trmzoo.core.backbone import BackboneSpec, build_blocks
from trmzoo.core.layers import SwiGLU, rms_norm


class MLPConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["mlp"] = "mlp"


class TokenMixer(SwiGLU):
    """A SwiGLU whose width is the sequence length, applied across positions."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__(spec.seq_len, spec.expansion)
        self.norm = rms_norm(spec.seq_len, spec.rms_norm_eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        t = h.transpose(1, 2)
        return self.norm(t + super().forward(t)).transpose(1, 2)


def build(config: MLPConfig, spec: BackboneSpec, num_layers: int) -> nn.Module:
    return build_blocks(lambda: TokenMixer(spec), spec, num_layers)


@hookimpl
def register_backbones(register):
    register("mlp", MLPConfig, build)
