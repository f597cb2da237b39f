"""The element-wise layers of trmzoo against the official forms, alone: RMSNorm, SwiGLU's gating, RoPE.

Each is timed forward without gradient and forward plus backward, on the shapes of one block of a paper
configuration at the given batch (hidden 512, SwiGLU width 1536, 8 heads of 64 read from a fused QKV
projection, as the attention plugin reads them), interleaved rounds,
medians. The official forms are written out here as the official code computes them (autograd through
the ops); trmzoo's are the functions the model calls.

    python benchmarks/elementwise.py --threads 1 --batch 4 --length 97
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from trmzoo.core.layers import RMSNorm, apply_rotary, rotary_tables, silu_gate

sys.path.insert(0, str(Path(__file__).parent))
from vs_official import interleaved, loadavg  # noqa: E402

CPU = torch.device("cpu")


def official_rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def official_gate(gate_up: torch.Tensor) -> torch.Tensor:
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate) * up


def official_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    x1, x2 = xf.chunk(2, dim=-1)
    return (xf * cos[:, None] + torch.cat((-x2, x1), dim=-1) * sin[:, None]).to(x.dtype)


PHASES = ("forward, no grad", "forward + backward")


def repeated(fn, x: torch.Tensor, leaf: torch.Tensor, upstream: torch.Tensor, phase: str, calls: int):
    """A runner of ``calls`` calls of ``fn``: on ``x`` without gradient, or on ``leaf`` with a backward of ``upstream``."""
    def run() -> None:
        for _ in range(calls):
            if phase == PHASES[0]:
                with torch.no_grad():
                    fn(x)
            else:
                leaf.grad = None
                fn(leaf).backward(upstream)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--length", type=int, default=97)
    parser.add_argument("--dtype", choices=["bfloat16", "float32"], default="bfloat16")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of --calls calls each")
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    g = torch.Generator().manual_seed(0)
    batch, length = args.batch, args.length
    hidden = torch.randn(batch, length, 512, generator=g).to(dtype)
    gate_up = torch.randn(batch, length, 2 * 1536, generator=g).to(dtype)
    qkv = torch.randn(batch, length, 3, 8, 64, generator=g).to(dtype)
    cos, sin = rotary_tables(64, length, 10000.0)
    norm = RMSNorm(512, eps=1e-5)
    cases = {  # name: (input, official, trmzoo)
        "RMSNorm [B, L, 512]": (hidden, official_rms_norm, norm),
        "SwiGLU gating [B, L, 2 x 1536]": (gate_up, official_gate, lambda t: silu_gate(t, -1)),
        "RoPE [B, L, 8, 64]": (qkv, lambda t: official_rotary(t[:, :, 0], cos, sin),
                               lambda t: apply_rotary(t[:, :, 0], cos, sin)),
    }
    print(f"batch {batch}, length {length}, {args.dtype}, threads {args.threads}, torch {torch.__version__},"
          f" load average before {loadavg()}")
    print("| layer | pass | official ms | trmzoo ms | official / trmzoo |")
    print("|---|---|---|---|---|")
    for name, (x, official, ours) in cases.items():
        leaf = x.clone().requires_grad_(True)
        upstream = official(x).detach()
        for phase in PHASES:
            sides = {side: repeated(fn, x, leaf, upstream, phase, args.calls) for side, fn in (("official", official), ("trmzoo", ours))}
            times = interleaved(sides, args.rounds, 1, CPU)
            med = {side: statistics.median(t) / args.calls * 1e3 for side, t in times.items()}
            print(f"| {name} | {phase} | {med['official']:.3f} | {med['trmzoo']:.3f} | {med['official'] / med['trmzoo']:.2f}x |")
    print(f"load average after {loadavg()}")


if __name__ == "__main__":
    main()
