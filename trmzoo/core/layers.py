"""Layers shared by backbones: casted linear maps, JAX-style init, parameter-free RMSNorm, SwiGLU, RoPE.

Master weights stay fp32; each layer casts them to the activation dtype at call
time, as the official TRM code does, so a recipe's forward dtype is one switch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.layers import RmsNormFp32
from torch import nn

from trmzoo.errors import env_switch


def trunc_normal_init_(tensor: torch.Tensor, std: float = 1.0, lower: float = -2.0, upper: float = 2.0) -> torch.Tensor:
    """Truncated normal whose *actual* standard deviation is ``std`` (timm's and torch's are smaller)."""
    with torch.no_grad():
        if std == 0:
            return tensor.zero_()
        cdf_lo, cdf_hi = math.erf(lower / math.sqrt(2)), math.erf(upper / math.sqrt(2))
        mass = (cdf_hi - cdf_lo) / 2
        pdf_lo = math.exp(-0.5 * lower**2) / math.sqrt(2 * math.pi)
        pdf_hi = math.exp(-0.5 * upper**2) / math.sqrt(2 * math.pi)
        variance = 1 - (upper * pdf_hi - lower * pdf_lo) / mass - ((pdf_hi - pdf_lo) / mass) ** 2
        scale = std / math.sqrt(variance)
        tensor.uniform_(cdf_lo, cdf_hi).erfinv_().mul_(math.sqrt(2) * scale)
        return tensor.clip_(lower * scale, upper * scale)


def _onednn_bf16() -> bool:
    """Whether this torch has oneDNN's linear on prepacked weights and this CPU runs it in bf16."""
    try:
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


ONEDNN_BF16 = _onednn_bf16()


def onednn_bf16(x: torch.Tensor) -> bool:
    """Whether oneDNN runs ``x``'s products here: a bf16 tensor on a CPU that has it, outside ``torch.compile``."""
    return ONEDNN_BF16 and x.dtype == torch.bfloat16 and x.device.type == "cpu" and not torch.compiler.is_compiling()


FUSED_OPS_VAR = "TRMZOO_FUSED_OPS"
"""Set to 0 (or false, no, off) to run bf16 steps on a CPU with the official ops after each product."""
_fused_ops: bool | None = None  # None: not yet read from FUSED_OPS_VAR


def use_fused_ops(enabled: bool) -> None:
    """Turn on or off, for this process, the element-wise work that oneDNN does inside the products in bf16 on
    a CPU without gradient (SwiGLU's gating, residual adds). On (the default) a Sudoku bf16 evaluation step
    is about 1.1x as fast and rounds to bf16 less often; off, the step gives the official code's bits (one
    thread). Overrides ``TRMZOO_FUSED_OPS``."""
    global _fused_ops
    if not isinstance(enabled, bool):  # "off" is truthy: a string would silently mean on
        raise TypeError(f"use_fused_ops: takes True or False, got {enabled!r}")
    _fused_ops = enabled


def fused_ops_enabled() -> bool:
    """The setting of :func:`use_fused_ops`; until it is called, ``TRMZOO_FUSED_OPS`` (on when unset)."""
    global _fused_ops
    if _fused_ops is None:
        _fused_ops = env_switch(FUSED_OPS_VAR, default=True)
    return _fused_ops


def fused_ops(x: torch.Tensor) -> bool:
    """Whether the products of ``x`` take their element-wise work inside: fused ops on, no gradient, and
    oneDNN running ``x`` (bf16 on a CPU that has it, not compiled)."""
    return not torch.is_grad_enabled() and onednn_bf16(x) and fused_ops_enabled()


def _kept_product(x: torch.Tensor, low: torch.Tensor, packed: torch.Tensor | None, bias: torch.Tensor | None) -> torch.Tensor:
    """``x @ low.T + bias``, through oneDNN's prepacked copy of ``low`` where there is one."""
    if packed is not None:
        return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")
    return F.linear(x, low, bias)


class _LinearOnKeptCast(torch.autograd.Function):
    """``x @ W.T + b`` with the kept low-precision copy of W (oneDNN-prepacked where given), so a call
    with gradient skips the cast of W. The backward computes what autograd computes through a per-call
    cast (the same products), and hands W its gradient in W's dtype, as that cast's backward does."""

    @staticmethod
    def forward(ctx, x, weight, low, packed, bias):
        ctx.save_for_backward(x, low)
        ctx.weight_dtype = weight.dtype
        return _kept_product(x, low, packed, bias)

    @staticmethod
    def backward(ctx, grad):
        x, low = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        rows = grad.reshape(-1, grad.shape[-1])
        if ctx.needs_input_grad[0]:
            grad_x = grad.matmul(low)
        if ctx.needs_input_grad[1]:
            grad_w = rows.t().mm(x.reshape(-1, x.shape[-1])).to(ctx.weight_dtype)
        if ctx.needs_input_grad[4]:
            grad_b = rows.sum(0)
        return grad_x, grad_w, None, None, grad_b


class CastedLinear(nn.Module):
    """Linear map with fp32 master weights cast to the input dtype; truncated LeCun init.

    The cast weight is kept and reused until the master weight changes (an optimizer step,
    a load): a supervision step calls the same net up to 21 times, and casting at every
    call, as the official code does, cost 5-10% of a bf16 step on a CPU. In bf16 on a CPU
    the kept weight is also prepacked in oneDNN's layout, whose products are 20-30% faster
    at a few hundred rows (same values). Under ``torch.compile`` the cast is left to the
    compiler.
    """

    def __init__(self, in_features: int, out_features: int, *, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(trunc_normal_init_(torch.empty(out_features, in_features), std=in_features**-0.5))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self._cast: tuple[torch.Tensor, int, torch.Tensor] | None = None  # (master view, its version, cast copy)
        # (the cast copy they were packed from, {number of row blocks: the blocks' packed copies})
        self._packed: tuple[torch.Tensor, dict[int, tuple[torch.Tensor, ...]]] | None = None

    def _kept_cast(self, dtype: torch.dtype) -> torch.Tensor:
        w = self.weight
        # The kept master view holds its storage alive, so an equal data_ptr means the same storage.
        cached = self._cast
        if cached is None or cached[0].data_ptr() != w.data_ptr() or cached[1] != w._version or cached[2].dtype != dtype:
            cached = self._cast = (w.detach(), w._version, w.detach().to(dtype))
        return cached[2]

    def cast_weight(self, dtype: torch.dtype) -> torch.Tensor:
        """The weight in ``dtype`` (for callers that multiply by it themselves, weight on the left)."""
        w = self.weight
        if w.dtype == dtype or (torch.is_grad_enabled() and w.requires_grad) or torch.compiler.is_compiling():
            return w.to(dtype)
        return self._kept_cast(dtype)

    def onednn_blocks(self, x: torch.Tensor, blocks: int = 1) -> tuple[torch.Tensor, ...] | None:
        """oneDNN's prepacked copies of the kept bf16 weight cut into ``blocks`` blocks of output rows, for a
        bf16 ``x`` on a CPU whose oneDNN runs bf16 (None elsewhere, and under ``torch.compile``). Packed once
        per kept cast, for the row count of ``x``."""
        if not onednn_bf16(x) or self.weight.dtype == x.dtype:
            return None
        low = self._kept_cast(x.dtype)
        if self._packed is None or self._packed[0] is not low:
            self._packed = (low, {})
        copies = self._packed[1]
        if blocks not in copies:
            rows = x.numel() // x.shape[-1]
            copies[blocks] = tuple(torch.ops.mkldnn._reorder_linear_weight(b.contiguous(), rows) for b in low.chunk(blocks))
        return copies[blocks]

    def forward(self, x: torch.Tensor, *, add: torch.Tensor | None = None) -> torch.Tensor:
        """``x @ W.T + b``, plus ``add`` where given (a residual: ``add + x @ W.T + b``, the official order). In
        bf16 on a CPU without gradient oneDNN adds it inside the product, before rounding to bf16 (unless
        :func:`use_fused_ops` turned that off)."""
        bias = self.bias.to(x.dtype) if self.bias is not None else None
        w = self.weight
        if w.dtype == x.dtype or torch.compiler.is_compiling():
            out = F.linear(x, w.to(x.dtype), bias)
            return out if add is None else add + out
        low = self._kept_cast(x.dtype)
        blocks = self.onednn_blocks(x)
        packed = blocks[0] if blocks is not None else None
        if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, w, bias, add)):
            out = _LinearOnKeptCast.apply(x, w, low, packed, bias)
        elif packed is not None and add is not None and add.shape == (*x.shape[:-1], len(w)) and add.dtype == x.dtype \
                and add.is_contiguous() and fused_ops_enabled():
            return torch.ops.mkldnn._linear_pointwise.binary(x, add, packed, bias, "add")
        else:
            out = _kept_product(x, low, packed, bias)
        return out if add is None else add + out


class CastedEmbedding(nn.Module):
    """Embedding table in fp32, looked up in the forward dtype."""

    def __init__(self, num_embeddings: int, dim: int, *, init_std: float, dtype: torch.dtype) -> None:
        super().__init__()
        self.dtype = dtype
        self.weight = nn.Parameter(trunc_normal_init_(torch.empty(num_embeddings, dim), std=init_std))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight.to(self.dtype))


def _normalize_fp32(x: torch.Tensor, dim: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The official RMSNorm's ops in fp32: (x / rms(x), 1 / rms(x)) over ``dim``."""
    xf = x.float()
    rstd = torch.rsqrt(xf.square().mean(dim, keepdim=True) + eps)
    return xf * rstd, rstd


class _RMSNormFp32(torch.autograd.Function):
    """RMSNorm over ``dim`` in fp32 for a low-precision x: the official function's ops forward (the same
    outputs, bit for bit) and a closed-form backward, ``(g - y * mean(g * y)) * rstd`` in four passes;
    autograd through the ops, or PyTorch's fused kernel, took about 1.5x as long on a CPU (benchmarks/elementwise.py).
    The gradient differs from autograd's in the last bits, as accurate against float64."""

    @staticmethod
    def forward(ctx, x, dim, eps):
        normed, rstd = _normalize_fp32(x, dim, eps)
        ctx.save_for_backward(normed, rstd)
        ctx.dim = dim
        return normed.to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        normed, rstd = ctx.saved_tensors
        grad_f = grad.float()
        grad_x = normed * (grad_f * normed).mean(ctx.dim, keepdim=True)
        torch.sub(grad_f, grad_x, out=grad_x)
        return grad_x.mul_(rstd).to(grad.dtype), None, None


def _low_precision_with_grad(x: torch.Tensor) -> bool:
    return x.dtype != torch.float32 and torch.is_grad_enabled() and x.requires_grad


def rms_norm_fp32(x: torch.Tensor, dim: int, eps: float) -> torch.Tensor:
    """Parameter-free RMSNorm of ``x`` over ``dim`` computed in fp32, returned in x's dtype. An fp32 x keeps
    autograd's gradients through the official ops, bit for bit (the equivalence checks compare them)."""
    if _low_precision_with_grad(x):
        return _RMSNormFp32.apply(x, dim, eps)
    return _normalize_fp32(x, dim, eps)[0].to(x.dtype)


class RMSNorm(RmsNormFp32):
    """Parameter-free RMSNorm over the last dimension in fp32: timm's layer (PyTorch's fused kernel, the
    official function's values bit for bit), with the closed-form backward above for low-precision inputs."""

    def __init__(self, features: int, *, eps: float) -> None:
        super().__init__(features, eps=eps, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if _low_precision_with_grad(x):
            return _RMSNormFp32.apply(x, -1, self.eps)
        return super().forward(x)


def swiglu_width(hidden: int, expansion: float) -> int:
    """The official inner width: 2/3 of ``expansion * hidden``, rounded up to a multiple of 256."""
    return -(round(expansion * hidden * 2 / 3) // -256) * 256


class SwiGLU(nn.Module):
    """SwiGLU with the gate and up projections fused into one matmul (the official key layout)."""

    def __init__(self, dim: int, expansion: float) -> None:
        super().__init__()
        inner = swiglu_width(dim, expansion)
        self.gate_up_proj = CastedLinear(dim, 2 * inner)
        self.down_proj = CastedLinear(inner, dim)

    def forward(self, x: torch.Tensor, *, add: torch.Tensor | None = None) -> torch.Tensor:
        """The SwiGLU of ``x``, plus ``add`` where given (a residual, added as :class:`CastedLinear` adds it).

        In bf16 on a CPU without gradient oneDNN computes the gating inside the two halves' products: the
        gate's SiLU on its fp32 accumulator, then the product with up (and ``add`` inside the last product).
        That saves the passes of the element-wise ops over the [rows, 2 x inner] intermediate (a Sudoku bf16
        evaluation step about 1.1x as fast) and rounds to bf16 less often than the official ops, so the
        values are as accurate but not the same bits; fp32, any call with gradient, and bf16 under
        ``use_fused_ops(False)`` run the official ops."""
        halves = self.gate_up_proj.onednn_blocks(x, 2) if fused_ops(x) else None
        if halves is None:
            return self.down_proj(silu_gate(self.gate_up_proj(x), -1), add=add)
        gate, up = halves
        activated = torch.ops.mkldnn._linear_pointwise(x, gate, None, "swish", [], "")
        return self.down_proj(torch.ops.mkldnn._linear_pointwise.binary(x, activated, up, None, "mul"), add=add)


class _SiluGate(torch.autograd.Function):
    """``silu(gate) * up`` for the two halves of one tensor; the backward writes both halves' gradients
    into one tensor instead of concatenating them (the same products as autograd's, so the same bits)."""

    @staticmethod
    def forward(ctx, gate_up, dim):
        gate, up = gate_up.chunk(2, dim)
        activated = F.silu(gate)
        ctx.save_for_backward(gate, up, activated)
        ctx.dim = dim
        return activated * up

    @staticmethod
    def backward(ctx, grad):
        gate, up, activated = ctx.saved_tensors
        shape = list(grad.shape)
        shape[ctx.dim] *= 2
        grad_gate_up = grad.new_empty(shape)
        grad_gate, grad_up = grad_gate_up.chunk(2, ctx.dim)
        torch.ops.aten.silu_backward(grad * up, gate, grad_input=grad_gate)
        torch.mul(grad, activated, out=grad_up)
        return grad_gate_up, None


def silu_gate(gate_up: torch.Tensor, dim: int) -> torch.Tensor:
    """SwiGLU's gating: ``silu(gate) * up`` where ``gate, up = gate_up.chunk(2, dim)``."""
    # Without gradient nothing is saved; compiled, Dynamo cannot write into the halves and autograd's form
    # compiles to the same.
    if torch.is_grad_enabled() and gate_up.requires_grad and not torch.compiler.is_compiling():
        return _SiluGate.apply(gate_up, dim)
    gate, up = gate_up.chunk(2, dim)
    return F.silu(gate) * up


def rotary_tables(head_dim: int, positions: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 cos and sin tables, NeoX layout (frequencies repeated over both halves)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(positions, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def _rotate_fp32(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, inverse: bool = False) -> torch.Tensor:
    """The official ``xf * cos + cat(-x2, x1) * sin`` in fp32, written half by half into one tensor instead
    of through ``neg`` and ``cat``: the same products and sums, so the same bits. ``inverse`` rotates the
    other way, ``xf * cos + cat(x2 * sin2, -x1 * sin1)``: the transpose, which is the backward."""
    half = x.shape[-1] // 2
    xf = x.float()
    out = xf * cos
    first, second = out[..., :half], out[..., half:]
    if inverse:
        first.add_(xf[..., half:] * sin[..., half:])
        second.sub_(xf[..., :half] * sin[..., :half])
    else:
        first.sub_(xf[..., half:] * sin[..., :half])
        second.add_(xf[..., :half] * sin[..., half:])
    return out


class _Rotary(torch.autograd.Function):
    """RoPE with the backward in closed form: the gradient rotated back. The gradients are autograd's
    through the official ops (slices, ``neg``, ``cat``, casts), bit for bit, in fp32 and bf16; forward
    and backward took 1.07-1.2x as long that way (benchmarks/elementwise.py)."""

    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        return _rotate_fp32(x, cos, sin).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        return _rotate_fp32(grad, cos, sin, inverse=True).to(grad.dtype), None, None


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` [B, S, H, Dh] in fp32 with the rotate-half convention, return in x's dtype."""
    cos, sin = cos[:, None], sin[:, None]
    if torch.is_grad_enabled() and x.requires_grad and not torch.compiler.is_compiling():
        return _Rotary.apply(x, cos, sin)
    return _rotate_fp32(x, cos, sin).to(x.dtype)
