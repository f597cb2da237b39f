"""SwiGLU's gating as one hand-written C++ kernel against PyTorch's ops: what native fusion could save.

Eager PyTorch runs ``silu(gate) * up`` as two kernels forward (and the backward as three), each over the
whole tensor; a fused kernel reads each input once. This script builds such a kernel for bf16 on an
AVX-512 CPU (``torch.utils.cpp_extension.load_inline``, g++; PyTorch's own vector types, so its SiLU
uses the same SLEEF exponential as PyTorch's and the outputs are the same bits), then times

* the gating alone, forward without gradient and forward plus backward, on a block's shapes (channel
  SwiGLU [B, L, 2 x 1536], TRM-MLP's sequence mixer [2 x 512, B x 512]): PyTorch's ops as trmzoo
  calls them against the kernel, and forward PyTorch's SiLU of the gate alone (the exponentials'
  own cost, which no kernel with these numerics avoids);
* a bf16 training step of the Sudoku models as the trainer runs it (benchmarks/throughput.py's
  ``step_functions``: one supervision step, stablemax loss, backward, AdamATan2, EMA), with trmzoo's gating
  and with the kernel swapped in (in this process only), interleaved rounds.

Freed memory is kept (``trmzoo.keep_freed_memory()``), as trmzoo's commands run. It checks that the kernel
gives PyTorch's outputs and gradients, and a step's loss and gradients, bit for bit. Nothing here is used by
trmzoo itself.

    python benchmarks/native_swiglu.py --threads 1 --batch 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

import trmzoo
import trmzoo.core.layers as layers
from trmzoo.core.supervision import supervision_loss

sys.path.insert(0, str(Path(__file__).parent))
from elementwise import PHASES, repeated  # noqa: E402
from throughput import random_batch, step_functions  # noqa: E402
from vs_official import interleaved, loadavg  # noqa: E402

CPU = torch.device("cpu")
PYTORCH_GATE = layers.silu_gate  # trmzoo's gating, on PyTorch's ops

# gate_up is viewed as [outer, 2, inner]: the gate is each row's first half, up its second.
KERNELS = r"""
#include <torch/extension.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/cpu/vec/functional.h>

using BF = c10::BFloat16;
using Vec = at::vec::Vectorized<float>;
using BVec = at::vec::Vectorized<BF>;

static inline std::tuple<Vec, Vec> widen(const BF* p) { return at::vec::convert_to_float<BF>(BVec::loadu(p)); }
static inline BVec narrow(const Vec& a, const Vec& b) { return at::vec::convert_from_float<BF>(a, b); }

// out = bf16(bf16(silu(gate)) * up), as PyTorch's silu then mul; the rounded silu is kept for the backward.
torch::Tensor gate_forward(torch::Tensor gate_up, int64_t outer, int64_t inner, c10::optional<torch::Tensor> keep) {
  auto out = torch::empty({outer * inner}, gate_up.options());
  const BF* src = gate_up.data_ptr<BF>();
  BF* dst = out.data_ptr<BF>();
  BF* act = keep ? keep->data_ptr<BF>() : nullptr;
  const Vec one(1.0f);
  for (int64_t o = 0; o < outer; ++o) {
    const BF* g = src + o * 2 * inner; const BF* u = g + inner; BF* y = dst + o * inner;
    int64_t j = 0;
    for (; j + BVec::size() <= inner; j += BVec::size()) {
      auto [x0, x1] = widen(g + j);
      BVec s = narrow(x0 / (one + x0.neg().exp()), x1 / (one + x1.neg().exp()));
      if (act) s.store(act + o * inner + j);
      auto [s0, s1] = at::vec::convert_to_float<BF>(s);
      auto [u0, u1] = widen(u + j);
      narrow(s0 * u0, s1 * u1).store(y + j);
    }
    for (; j < inner; ++j) {
      float x = g[j]; BF s = x / (1.0f + std::exp(-x));
      if (act) act[o * inner + j] = s;
      y[j] = float(s) * float(u[j]);
    }
  }
  return out;
}

// d gate = silu'(gate) * bf16(grad * up), d up = grad * silu(gate), as aten's silu_backward and mul.
torch::Tensor gate_backward(torch::Tensor grad, torch::Tensor gate_up, torch::Tensor act, int64_t outer, int64_t inner) {
  auto out = torch::empty({outer * 2 * inner}, grad.options());
  const BF* dy = grad.data_ptr<BF>(); const BF* src = gate_up.data_ptr<BF>(); const BF* a = act.data_ptr<BF>();
  BF* dst = out.data_ptr<BF>();
  const Vec one(1.0f);
  for (int64_t o = 0; o < outer; ++o) {
    const BF* g = src + o * 2 * inner; const BF* u = g + inner; const BF* d = dy + o * inner; const BF* s = a + o * inner;
    BF* dg = dst + o * 2 * inner; BF* du = dg + inner;
    int64_t j = 0;
    for (; j + BVec::size() <= inner; j += BVec::size()) {
      auto [d0, d1] = widen(d + j);
      auto [u0, u1] = widen(u + j);
      auto [p0, p1] = at::vec::convert_to_float<BF>(narrow(d0 * u0, d1 * u1));
      auto [x0, x1] = widen(g + j);
      Vec g0 = one / (one + x0.neg().exp()), g1 = one / (one + x1.neg().exp());
      narrow(p0 * g0 * (one + x0 * (one - g0)), p1 * g1 * (one + x1 * (one - g1))).store(dg + j);
      auto [s0, s1] = widen(s + j);
      narrow(d0 * s0, d1 * s1).store(du + j);
    }
    for (; j < inner; ++j) {
      float dj = d[j]; float p = BF(dj * float(u[j])); float x = g[j]; float sg = 1.0f / (1.0f + std::exp(-x));
      dg[j] = p * sg * (1.0f + x * (1.0f - sg)); du[j] = dj * float(s[j]);
    }
  }
  return out;
}
"""


def build():
    """The two kernels, compiled for this AVX-512 CPU (about 20 s the first time, cached after)."""
    from torch.utils.cpp_extension import load_inline

    flags = ["-O3", "-DCPU_CAPABILITY_AVX512", "-DCPU_CAPABILITY=AVX512", "-mavx512f", "-mavx512bw", "-mavx512vl",
             "-mavx512dq", "-mfma"]
    return load_inline("trmzoo_native_swiglu", cpp_sources=KERNELS, functions=["gate_forward", "gate_backward"],
                       extra_cflags=flags)


def halves(gate_up: torch.Tensor, dim: int) -> tuple[int, int, list[int]]:
    """(outer, inner, output shape) for gating over ``dim``, which is the last one or the first."""
    shape = list(gate_up.shape)
    shape[dim] //= 2
    if dim in (-1, gate_up.dim() - 1):
        return gate_up.numel() // (2 * shape[-1]), shape[-1], shape
    if dim != 0:
        raise ValueError(f"gating over dim {dim}: only the first or the last")
    return 1, gate_up.numel() // 2, shape


def native_gate(ext):
    """``silu_gate`` on the kernels, with gradient through an autograd function."""

    class NativeGate(torch.autograd.Function):
        @staticmethod
        def forward(ctx, gate_up, dim):
            gate_up = gate_up.contiguous()
            outer, inner, shape = halves(gate_up, dim)
            act = gate_up.new_empty(outer * inner)  # the kernel keeps the rounded SiLU here for the backward
            out = ext.gate_forward(gate_up, outer, inner, act)
            ctx.save_for_backward(gate_up, act)
            ctx.sizes = (outer, inner)
            return out.view(shape)

        @staticmethod
        def backward(ctx, grad):
            gate_up, act = ctx.saved_tensors
            return ext.gate_backward(grad.contiguous(), gate_up, act, *ctx.sizes).view(gate_up.shape), None

    def gate(gate_up: torch.Tensor, dim: int) -> torch.Tensor:
        if gate_up.dtype != torch.bfloat16:
            return PYTORCH_GATE(gate_up, dim)
        if torch.is_grad_enabled() and gate_up.requires_grad:
            return NativeGate.apply(gate_up, dim)
        gate_up = gate_up.contiguous()
        outer, inner, shape = halves(gate_up, dim)
        return ext.gate_forward(gate_up, outer, inner, None).view(shape)

    return gate


def use_gate(gate) -> None:
    """Point every module that calls ``silu_gate`` (the layers and the MLP plugin) at ``gate``."""
    import trmzoo_mlp

    layers.silu_gate = trmzoo_mlp.silu_gate = gate


def op_table(gate, args) -> None:
    g = torch.Generator().manual_seed(0)
    cases = {  # name: (gate_up, dim)
        f"channel SwiGLU [{args.batch}, 97, 2 x 1536]": (torch.randn(args.batch, 97, 3072, generator=g), -1),
        f"sequence mixer [2 x 512, {args.batch} x 512]": (torch.randn(1024, args.batch * 512, generator=g), 0),
    }
    pytorch = PYTORCH_GATE
    print("| gating | pass | PyTorch ms | native ms | PyTorch / native | SiLU of the gate alone ms | same bits |")
    print("|---|---|---|---|---|---|---|")
    for name, (x, dim) in cases.items():
        x = (2 * x).bfloat16()
        leaf = x.clone().requires_grad_(True)
        upstream = pytorch(x, dim).detach().normal_(generator=g)
        for phase in PHASES:
            def call(fn, phase=phase, dim=dim):
                return repeated(lambda t: fn(t, dim), x, leaf, upstream, phase, args.calls)
            if phase == PHASES[0]:
                with torch.no_grad():
                    same = torch.equal(pytorch(x, dim), gate(x, dim))
            else:
                grads = []
                for fn in (pytorch, gate):
                    leaf.grad = None
                    fn(leaf, dim).backward(upstream)
                    grads.append(leaf.grad.clone())
                same = torch.equal(*grads)
            sides = {"pytorch": call(pytorch), "native": call(gate)}
            if phase == PHASES[0]:  # the exponentials' own cost: SiLU of the gate alone, contiguous
                gate_only = x.chunk(2, dim)[0].contiguous()
                sides["silu"] = call(lambda _x, _dim: torch.nn.functional.silu(gate_only))
            times = interleaved(sides, args.rounds, 1, CPU)
            med = {side: statistics.median(t) / args.calls * 1e3 for side, t in times.items()}
            silu = f"{med['silu']:.3f}" if "silu" in med else "-"
            print(f"| {name} | {phase} | {med['pytorch']:.3f} | {med['native']:.3f} |"
                  f" {med['pytorch'] / med['native']:.2f}x | {silu} | {'yes' if same else 'NO'} |")


def step_table(gate, args) -> None:
    pytorch = PYTORCH_GATE
    print("| model | batch | PyTorch s (median / best) | native s (median / best) | PyTorch / native (median) | same loss and gradients |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        torch.manual_seed(0)
        model = trmzoo.create_model(name, forward_dtype="bfloat16").train()
        batch = random_batch(model, args.batch, CPU)

        def first_step(fn):
            use_gate(fn)
            model.zero_grad(set_to_none=True)
            carry, out = model.step(model.initial_carry(batch), batch)
            loss, _ = supervision_loss(out, carry.data["labels"], model.halting)
            loss.backward()
            return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]

        (loss_a, grads_a), (loss_b, grads_b) = first_step(pytorch), first_step(gate)
        same = torch.equal(loss_a, loss_b) and all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
        train_step, _ = step_functions(model, batch)

        def train(fn):
            def run():
                use_gate(fn)
                train_step()
            return run

        times = interleaved({"pytorch": train(pytorch), "native": train(gate)}, args.step_rounds, 1, CPU)
        use_gate(pytorch)
        med = {side: statistics.median(t) for side, t in times.items()}
        print(f"| {name} | {args.batch} | {med['pytorch']:.3f} / {min(times['pytorch']):.3f} |"
              f" {med['native']:.3f} / {min(times['native']):.3f} | {med['pytorch'] / med['native']:.2f}x |"
              f" {'yes' if same else 'NO'} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of --calls calls, per gating case")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--models", nargs="*", default=["trm_sudoku_mlp", "trm_sudoku_att"])
    parser.add_argument("--step-rounds", type=int, default=8, help="interleaved training steps per side")
    args = parser.parse_args()
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists() or "avx512bw" not in cpuinfo.read_text():
        sys.exit("native_swiglu.py: the kernels need an x86 CPU with AVX-512 (BW, VL, DQ) and Linux's /proc/cpuinfo")
    torch.set_num_threads(args.threads)
    trmzoo.keep_freed_memory()  # as every trmzoo command does: freed blocks are reused, not faulted in again
    print(f"threads {args.threads}, torch {torch.__version__}, load average before {loadavg()}")
    try:
        gate = native_gate(build())
    except (RuntimeError, OSError, ImportError) as error:
        sys.exit(f"native_swiglu.py: building the kernels failed (they need g++ and ninja): {str(error).splitlines()[0]}")
    op_table(gate, args)
    if args.models:
        step_table(gate, args)
    print(f"load average after {loadavg()}")


if __name__ == "__main__":
    main()
