"""Built-in backbone plugin: non-causal multi-head self-attention with fused QKV and NeoX RoPE."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from trmzoo import hookimpl
from trmzoo.core.config import Config
from trmzoo.core.backbone import BackboneSpec, build_blocks
from trmzoo.core.layers import CastedLinear, RMSNorm, apply_rotary, rotary_tables
from trmzoo.errors import RecipeError


class AttentionConfig(Config):
    kind: Literal["attention"] = "attention"
    num_heads: int = Field(8, ge=1)


class SelfAttention(nn.Module):
    """Attention over the whole sequence (prefix slots included), then residual and RMSNorm."""

    def __init__(self, spec: BackboneSpec, num_heads: int, rotary: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        super().__init__()
        self.num_heads = num_heads
        # Floor division as in the official code: 512 / 12 heads gives head_dim 42 and a
        # 504-wide attention output (the direct baseline), projected back by o_proj.
        self.head_dim = spec.hidden_size // num_heads
        self.qkv_proj = CastedLinear(spec.hidden_size, 3 * num_heads * self.head_dim)
        self.o_proj = CastedLinear(num_heads * self.head_dim, spec.hidden_size)
        self.norm = RMSNorm(spec.hidden_size, eps=spec.rms_norm_eps)
        if rotary is not None:
            self.cos = nn.Buffer(rotary[0], persistent=False)
            self.sin = nn.Buffer(rotary[1], persistent=False)
        else:
            self.cos = self.sin = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        batch, length, _ = h.shape
        q, k, v = self.qkv_proj(h).view(batch, length, 3, self.num_heads, self.head_dim).unbind(2)
        if self.cos is not None:
            q, k = apply_rotary(q, self.cos, self.sin), apply_rotary(k, self.cos, self.sin)
        out = attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.norm(self.o_proj(out.transpose(1, 2).reshape(batch, length, -1), add=h))


# Up to this many positions a CPU bf16 step with gradient uses the two matmuls below; beyond it, the fused kernel.
MATMUL_ATTENTION_MAX_LEN = 256


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Non-causal attention over [B, H, L, Dh]: PyTorch's fused kernel, as the official code, except
    where a CPU bf16 step takes gradients over a short sequence: there the fused kernel's backward is
    slow (Sudoku, 97 positions, docs/performance.md) and two batched matmuls with fp32 scores and
    softmax are used. Over long sequences (Maze and ARC, 916 positions) the fp32 [L, L] scores cost
    more than the fused kernel saves, so it is used there too. The scores must be fp32: rounded to
    bf16 before the softmax they put errors of 25% of the logits' scale into one Sudoku supervision step."""
    if (q.device.type != "cpu" or q.dtype != torch.bfloat16 or not (torch.is_grad_enabled() and q.requires_grad)
            or q.shape[-2] > MATMUL_ATTENTION_MAX_LEN):
        return F.scaled_dot_product_attention(q, k, v)
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)).mul_(q.shape[-1] ** -0.5)
    return torch.matmul(scores.softmax(dim=-1).to(v.dtype), v)


def build(config: AttentionConfig, spec: BackboneSpec, num_layers: int) -> nn.Module:
    head_dim = spec.hidden_size // config.num_heads
    if head_dim < 1:
        raise RecipeError(f"model.backbone.num_heads: {config.num_heads} heads are more than hidden_size "
                          f"{spec.hidden_size}; each head needs at least one channel")
    if spec.pos_encodings == "rope" and head_dim % 2:
        raise RecipeError(f"model.backbone.num_heads: {config.num_heads} heads give each head {head_dim} channels "
                          f"(hidden_size {spec.hidden_size} // num_heads), an odd number; rope needs an even one")
    rotary = rotary_tables(head_dim, spec.seq_len, spec.rope_theta) if spec.pos_encodings == "rope" else None
    return build_blocks(lambda: SelfAttention(spec, config.num_heads, rotary), spec, num_layers)


@hookimpl
def register_backbones(register):
    register("attention", AttentionConfig, build)
