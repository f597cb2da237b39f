"""The ``conv1d`` backbone: a depthwise 1-D convolution over the token sequence as the token mixer.

Each channel is convolved along the sequence (prefix slots included), then the
residual is added and RMSNorm applied; the core's ``build_blocks`` adds the channel
SwiGLU and stacks the blocks. A convolution is blind to where it is, so the model
needs learned position encodings (RoPE only acts inside attention).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from trmzoo.core.backbone import BackboneSpec, build_blocks
from trmzoo.core.layers import RMSNorm, trunc_normal_init_
from trmzoo.errors import RecipeError


class ConvConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["conv1d"] = "conv1d"
    kernel_size: int = Field(7, ge=1)
    dilation: int = Field(1, ge=1)

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"must be odd so the output keeps the sequence length, got {value}")
        return value


class DepthwiseConv(nn.Module):
    """Per-channel convolution along the sequence, then residual and RMSNorm."""

    def __init__(self, spec: BackboneSpec, kernel_size: int, dilation: int) -> None:
        super().__init__()
        weight = torch.empty(spec.hidden_size, 1, kernel_size)
        self.weight = nn.Parameter(trunc_normal_init_(weight, std=kernel_size**-0.5))
        self.dilation = dilation
        self.padding = dilation * (kernel_size - 1) // 2
        self.norm = RMSNorm(spec.hidden_size, eps=spec.rms_norm_eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        mixed = F.conv1d(h.transpose(1, 2), self.weight.to(h.dtype), padding=self.padding,
                         dilation=self.dilation, groups=h.shape[-1])
        return self.norm(h + mixed.transpose(1, 2))


def build(config: ConvConfig, spec: BackboneSpec, num_layers: int) -> nn.Module:
    if spec.pos_encodings == "rope":
        raise RecipeError("model.pos_encodings: rope only acts inside attention; "
                          "the conv1d backbone needs 'learned' (or 'none')")
    return build_blocks(lambda: DepthwiseConv(spec, config.kernel_size, config.dilation), spec, num_layers)
