"""The element-wise functions of trmzoo.core.layers compute what the official formulas compute.

SwiGLU's gating is an autograd function whose backward skips a concatenation; its outputs and
gradients must equal autograd's bit for bit, in fp32 and bf16.
RMSNorm's forward must equal the official ops; in fp32 its gradients too, in bf16 its closed-form
backward must be as accurate against float64 as autograd's.
RoPE is written half by half with a closed-form backward; its outputs and gradients must equal
autograd's through the official ops bit for bit, in fp32 and bf16.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trmzoo.core.layers import apply_rotary, rms_norm_fp32, rotary_tables, silu_gate

DTYPES = [torch.float32, torch.bfloat16]


def _official_rms_norm(x, dim, eps=1e-5):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(dim, keepdim=True) + eps)).to(x.dtype)


def _grads(fn, base, upstream):
    x = base.clone().requires_grad_(True)
    out = fn(x)
    out.backward(upstream)
    with torch.no_grad():
        without_grad = fn(base)
    return out.detach(), without_grad, x.grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [-1, 0])
def test_silu_gate_equals_autograd_bit_for_bit(dtype, dim):
    g = torch.Generator().manual_seed(1)
    gate_up = torch.randn(6, 8, generator=g).to(dtype) * 3
    upstream = torch.randn(3, 8, generator=g).to(dtype) if dim == 0 else torch.randn(6, 4, generator=g).to(dtype)

    def official(t):
        gate, up = t.chunk(2, dim)
        return F.silu(gate) * up

    ours, theirs = _grads(lambda t: silu_gate(t, dim), gate_up, upstream), _grads(official, gate_up, upstream)
    for name, a, b in zip(("output", "output without grad", "input grad"), ours, theirs):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tables", ["rope", "any"])
def test_rotary_equals_autograd_through_the_official_ops_bit_for_bit(dtype, tables):
    g = torch.Generator().manual_seed(3)
    length = 13
    cos, sin = rotary_tables(8, length, 10000.0)
    if tables == "any":  # halves that differ: nothing may rely on RoPE's repeated frequencies
        cos, sin = torch.randn(length, 8, generator=g), torch.randn(length, 8, generator=g)
    qkv = (torch.randn(2, length, 3, 4, 8, generator=g) * 3).to(dtype)  # q is a strided view, as in attention
    upstream = torch.randn(2, length, 4, 8, generator=g).to(dtype)

    def official(t):
        xf = t[:, :, 0].float()
        x1, x2 = xf.chunk(2, dim=-1)
        return (xf * cos[:, None] + torch.cat((-x2, x1), dim=-1) * sin[:, None]).to(dtype)

    ours, theirs = _grads(lambda t: apply_rotary(t[:, :, 0], cos, sin), qkv, upstream), _grads(official, qkv, upstream)
    for name, a, b in zip(("output", "output without grad", "input grad"), ours, theirs):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("dim", [-1, 1])
def test_rms_norm_fp32_keeps_the_official_outputs_and_fp32_gradients(dim):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 7, 16, generator=g) * 4 + 1
    upstream = torch.randn(3, 7, 16, generator=g)
    for dtype in DTYPES:
        ours = _grads(lambda t: rms_norm_fp32(t, dim, 1e-5), x.to(dtype), upstream.to(dtype))
        theirs = _grads(lambda t: _official_rms_norm(t, dim), x.to(dtype), upstream.to(dtype))
        assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1]), dtype
        if dtype == torch.float32:
            assert torch.equal(ours[2], theirs[2])


@pytest.mark.parametrize("dim", [-1, 1])
def test_rms_norm_closed_form_gradient_is_as_accurate_as_autograd(dim):
    """bf16: the closed-form backward differs from autograd's in the last bits, never by more than
    bf16 rounding, and its error against float64 is no larger."""
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(8, 33, 64, generator=g) * 3 + 0.5).bfloat16()
    upstream = torch.randn(8, 33, 64, generator=g).bfloat16()
    exact = _grads(lambda t: _official_rms_norm(t, dim), x.double(), upstream.double())[2]
    ours = _grads(lambda t: rms_norm_fp32(t, dim, 1e-5), x, upstream)[2]
    theirs = _grads(lambda t: _official_rms_norm(t, dim), x, upstream)[2]
    assert ours.dtype == torch.bfloat16
    error, reference_error = (ours.double() - exact).abs(), (theirs.double() - exact).abs()
    assert error.max() <= reference_error.max() * 1.01
    assert error.mean() <= reference_error.mean() * 1.05
    assert (ours.double() - theirs.double()).abs().max() <= 2 ** -7 * exact.abs().max()
