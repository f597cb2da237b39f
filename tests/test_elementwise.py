"""The element-wise functions of trmzoo.core.layers compute what the official formulas compute.

SwiGLU's gating is an autograd function whose backward skips a concatenation; its outputs and
gradients must equal autograd's bit for bit, in fp32 and bf16.
RMSNorm's forward must equal the official ops; in fp32 its gradients too, in bf16 its closed-form
backward must be as accurate against float64 as autograd's.
RoPE is written half by half with a closed-form backward; its outputs and gradients must equal
autograd's through the official ops bit for bit, in fp32 and bf16.
In bf16 on a CPU without gradient, SwiGLU (channel and TRM-MLP's mixer) runs its gating and residual
inside oneDNN's products: it must take that path, and be at least as accurate against float64 as the
official ops; where oneDNN is absent, in fp32, and with the fused ops turned off (``TRMZOO_FUSED_OPS=0``,
``trmzoo.use_fused_ops(False)``), the official ops run, with their bits.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import trmzoo_mlp
from torch.utils._python_dispatch import TorchDispatchMode

import trmzoo
import trmzoo.core.layers as layers
from trmzoo.core.layers import CastedLinear, SwiGLU, apply_rotary, rms_norm_fp32, rotary_tables, silu_gate
from trmzoo.errors import TrmzooError
from trmzoo.testing import tiny_model

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


# -- SwiGLU inside oneDNN's products (bf16, CPU, no gradient) ---------------------------------------
needs_onednn = pytest.mark.skipif(not layers.ONEDNN_BF16, reason="this torch or CPU has no oneDNN bf16 linear")


class _OpsRun(TorchDispatchMode):
    """Records the names of the ops that run inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(str(func))
        return func(*args, **(kwargs or {}))


def _official_swiglu(layer, x, add):
    """The official ops in x's dtype: the residual plus down(silu(gate) * up)."""
    gate, up = F.linear(x, layer.gate_up_proj.weight.to(x.dtype)).chunk(2, -1)
    return add + F.linear(F.silu(gate) * up, layer.down_proj.weight.to(x.dtype))


def _float64_swiglu(layer, x, add):
    """The same function in float64 on the same bf16 inputs and weights."""
    gate, up = F.linear(x.double(), layer.gate_up_proj.weight.bfloat16().double()).chunk(2, -1)
    return add.double() + F.linear(F.silu(gate) * up, layer.down_proj.weight.bfloat16().double())


def _rms_error(t, exact):
    return (t.double() - exact).pow(2).mean().sqrt().item()


def _swiglu_case(seed):
    g = torch.Generator().manual_seed(seed)
    layer = SwiGLU(64, 4.0)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * p.shape[-1] ** -0.5)
    x, add = (torch.randn(3, 11, 64, generator=g).bfloat16() for _ in range(2))
    return layer, x, add


@needs_onednn
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bf16_swiglu_without_gradient_runs_inside_onednn_and_is_as_accurate(seed):
    layer, x, add = _swiglu_case(seed)
    with torch.no_grad():
        with _OpsRun() as ops:
            ours = layer(x, add=add)
        official = _official_swiglu(layer, x, add)
    assert "mkldnn._linear_pointwise.binary" in ops.names and "aten.silu.default" not in ops.names
    exact = _float64_swiglu(layer, x, add)
    assert _rms_error(ours, exact) <= _rms_error(official, exact)  # fewer roundings to bf16: about 0.75x
    torch.testing.assert_close(ours.float(), official.float(), atol=2e-2 * exact.abs().max().item(), rtol=0)


def test_swiglu_runs_the_official_ops_with_gradient_in_fp32_and_without_onednn(monkeypatch):
    layer, x, add = _swiglu_case(3)
    with torch.no_grad():
        assert torch.equal(layer(x.float(), add=add.float()), _official_swiglu(layer, x.float(), add.float()))
    x_grad = x.clone().requires_grad_(True)
    assert torch.equal(layer(x_grad, add=add).detach(), _official_swiglu(layer, x, add))
    monkeypatch.setattr(layers, "ONEDNN_BF16", False)
    with torch.no_grad():
        assert torch.equal(layer(x, add=add), _official_swiglu(layer, x, add))


@pytest.fixture
def fused_ops_unread(monkeypatch):
    """The fused-ops setting as in a fresh process (read from TRMZOO_FUSED_OPS at first use), restored after."""
    monkeypatch.setattr(layers, "_fused_ops", None)


@needs_onednn
@pytest.mark.parametrize("turn_off", ["variable", "function"])
def test_bf16_without_the_fused_ops_runs_the_official_ops_bit_for_bit(turn_off, fused_ops_unread, monkeypatch):
    layer, x, add = _swiglu_case(5)
    mixer = tiny_model(hidden_size=32, seq_len=9, vocab_size=7, backbone={"kind": "mlp"}, pos_encodings="none",
                       forward_dtype="bfloat16").recursion.net.layers[0].mixer
    h = torch.randn(5, mixer.gate_up_proj.weight.shape[1], 32, generator=torch.Generator().manual_seed(6)).bfloat16()
    with torch.no_grad():
        fused_mixer = mixer(h)
        if turn_off == "variable":
            monkeypatch.setattr(layers, "_fused_ops", None)
            monkeypatch.setenv("TRMZOO_FUSED_OPS", "Off")
        else:
            trmzoo.use_fused_ops(False)
        with _OpsRun() as ops:
            ours, linear = layer(x, add=add), layer.down_proj(layer.gate_up_proj(x)[..., :256], add=add)
            plain_mixer = mixer(h)
        assert "mkldnn._linear_pointwise.binary" not in ops.names and "aten.silu.default" in ops.names
        assert torch.equal(ours, _official_swiglu(layer, x, add))
        assert torch.equal(linear, add + F.linear(layer.gate_up_proj(x)[..., :256], layer.down_proj.weight.bfloat16()))
        with torch.enable_grad():  # the mixer's path with gradient is the official form
            assert torch.equal(plain_mixer, mixer(h))
        assert not torch.equal(plain_mixer, fused_mixer)
        trmzoo.use_fused_ops(True)
        with _OpsRun() as ops:
            assert torch.equal(mixer(h), fused_mixer)
        assert "mkldnn._linear_pointwise.binary" in ops.names


@pytest.mark.parametrize("value, fused", [("", True), ("1", True), ("yes", True), (" ON ", True), ("0", False),
                                          ("False", False), ("no", False)])
def test_the_fused_ops_variable_is_read_once_at_first_use(value, fused, fused_ops_unread, monkeypatch):
    monkeypatch.setenv("TRMZOO_FUSED_OPS", value)
    assert layers.fused_ops_enabled() is fused
    monkeypatch.setenv("TRMZOO_FUSED_OPS", "1" if not fused else "0")
    assert layers.fused_ops_enabled() is fused
    trmzoo.use_fused_ops(not fused)  # the function overrides the variable
    assert layers.fused_ops_enabled() is (not fused)


@pytest.mark.parametrize("value", ["maybe", "2", "offf"])
def test_a_mistyped_fused_ops_variable_is_an_error_naming_it(value, fused_ops_unread, monkeypatch):
    monkeypatch.setenv("TRMZOO_FUSED_OPS", value)
    with pytest.raises(TrmzooError, match=f"^TRMZOO_FUSED_OPS='{value}': expected one of 1, true, yes, on, 0, "):
        layers.fused_ops_enabled()


@pytest.mark.parametrize("dtype", DTYPES)
def test_casted_linear_adds_the_residual_in_the_official_order(dtype):
    g = torch.Generator().manual_seed(4)
    layer = CastedLinear(24, 16, bias=True)
    x, add = torch.randn(5, 24, generator=g).to(dtype), torch.randn(5, 16, generator=g).to(dtype)
    with torch.no_grad():
        layer.bias.normal_(generator=g)
        ours, official = layer(x, add=add), add + F.linear(x, layer.weight.to(dtype), layer.bias.to(dtype))
    if dtype == torch.float32 or not layers.ONEDNN_BF16:
        assert torch.equal(ours, official)
    else:  # added inside oneDNN's product, before its one rounding to bf16
        exact = add.double() + F.linear(x.double(), layer.weight.bfloat16().double(), layer.bias.bfloat16().double())
        assert _rms_error(ours, exact) <= _rms_error(official, exact)
    x_grad, add_grad = x.clone().requires_grad_(True), add.clone().requires_grad_(True)
    layer(x_grad, add=add_grad).sum().backward()
    assert torch.equal(add_grad.grad, torch.ones_like(add)) and x_grad.grad is not None


@needs_onednn
def test_bf16_mlp_token_mixer_without_gradient_runs_inside_onednn_and_is_as_accurate(monkeypatch):
    mixer = tiny_model(hidden_size=32, seq_len=9, vocab_size=7, backbone={"kind": "mlp"}, pos_encodings="none",
                       forward_dtype="bfloat16").recursion.net.layers[0].mixer
    g = torch.Generator().manual_seed(5)
    h = torch.randn(5, mixer.gate_up_proj.weight.shape[1], 32, generator=g).bfloat16()

    def transposed(t, dtype):  # the official form: [B, D, L], SwiGLU over L, residual, RMSNorm over L
        rows = t.transpose(1, 2).to(dtype)
        gate, up = F.linear(rows, mixer.gate_up_proj.weight.bfloat16().to(dtype)).chunk(2, -1)
        mixed = rows + F.linear(F.silu(gate) * up, mixer.down_proj.weight.bfloat16().to(dtype))
        if dtype == torch.bfloat16:
            mixed = mixed.float()
        return (mixed * torch.rsqrt(mixed.square().mean(-1, keepdim=True) + 1e-5)).transpose(1, 2)

    exact = transposed(h, torch.float64)
    official = transposed(h, torch.bfloat16).bfloat16()
    for samples in (1, 2, 100):  # a few samples at a time, as without gradient
        monkeypatch.setattr(trmzoo_mlp, "SLICE_TOKENS", samples * h.shape[1])
        with torch.no_grad():
            with _OpsRun() as ops:
                ours = mixer(h)
        assert "mkldnn._linear_pointwise.binary" in ops.names and "aten.silu.default" not in ops.names
        assert ours.shape == h.shape and ours.is_contiguous()
        assert _rms_error(ours, exact) <= _rms_error(official, exact)
