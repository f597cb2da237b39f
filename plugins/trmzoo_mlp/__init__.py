"""Built-in backbone plugin: TRM-MLP, a SwiGLU over the sequence axis in place of attention.

The official code transposes to [B, D, L], applies a SwiGLU of width L, adds the
residual and normalises over the *sequence* axis before transposing back. This
mixer computes the same numbers without the transposes around the products: the
weights multiply from the left, ``W @ h`` with ``h`` laid out as one
[L, B*D] matrix, so each projection is a single large matrix product, and the norm
reduces over L in place. In fp32 every output and gradient is bit-identical to the
transposed form (each element sums the same products in the same order). Without
gradient in bf16 on a CPU it takes the official layout after all, where oneDNN can
compute the gating and the residual inside the products. It has no positional
encoding: the token-mixing weights already know each position.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from trmzoo import hookimpl
from trmzoo.core.backbone import BackboneSpec, build_blocks
from trmzoo.core.config import Config
from trmzoo.core.layers import SwiGLU, fused_ops, rms_norm_fp32, silu_gate


SLICE_TOKENS = 1024


class MLPConfig(Config):
    kind: Literal["mlp"] = "mlp"


class TokenMixer(SwiGLU):
    """A SwiGLU whose width is the sequence length, applied across positions."""

    def __init__(self, spec: BackboneSpec) -> None:
        super().__init__(spec.seq_len, spec.expansion)
        self.eps = spec.rms_norm_eps

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if fused_ops(h):
            return self._forward_on_rows(h)
        batch, length, dim = h.shape
        columns = h.transpose(0, 1).reshape(length, batch * dim)  # [L, B*D]: one copy, positions as rows
        gate_up, down = self.gate_up_proj.cast_weight(h.dtype), self.down_proj.cast_weight(h.dtype)
        # Without gradient, a few samples at a time (about SLICE_TOKENS positions): the [2*inner, samples*D]
        # intermediate then stays in cache (a bf16 Sudoku evaluation step ran 1.5x faster on a CPU than with
        # the whole batch). With gradient the whole batch, so each weight gradient is one product (bit-identical).
        step = batch * dim if torch.is_grad_enabled() else max(1, SLICE_TOKENS // length) * dim
        mixed = []
        for start in range(0, batch * dim, step):
            mixed.append(down @ silu_gate(gate_up @ columns[:, start : start + step], 0))
        mixed = mixed[0] if len(mixed) == 1 else torch.cat(mixed, dim=1)
        return rms_norm_fp32(h + mixed.view(length, batch, dim).transpose(0, 1), 1, self.eps)

    def _forward_on_rows(self, h: torch.Tensor) -> torch.Tensor:
        """Without gradient in bf16 on a CPU: the official [B*D, L] layout, whose products take the weights on
        the right, so oneDNN computes the gating and the residual inside them (``SwiGLU.forward``), a few
        samples at a time as above. The values are as accurate as the official ops', not the same bits."""
        batch, length, dim = h.shape
        rows = h.transpose(1, 2).reshape(batch * dim, length)  # one copy
        swiglu = super().forward
        mixed = [swiglu(part, add=part) for part in rows.split(max(1, SLICE_TOKENS // length) * dim)]
        mixed = mixed[0] if len(mixed) == 1 else torch.cat(mixed)
        return rms_norm_fp32(mixed, -1, self.eps).view(batch, dim, length).transpose(1, 2).contiguous()


def build(config: MLPConfig, spec: BackboneSpec, num_layers: int) -> nn.Module:
    return build_blocks(lambda: TokenMixer(spec), spec, num_layers)


@hookimpl
def register_backbones(register):
    register("mlp", MLPConfig, build)
