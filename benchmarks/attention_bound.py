"""What bounds PyTorch's fused CPU attention at the paper's shapes: its products, or its exponentials.

Times, for [B, 8 heads, L, 64]: the fused kernel (`F.scaled_dot_product_attention`, the kernel both the
official code and trmzoo call for Maze and ARC) forward without gradient; its two products alone
(Q K^T and P V, bf16 batched matmuls); and the B * 8 * L * L exponentials of its softmax alone (`torch.exp`
over that many fp32 values, the precision the kernel's softmax runs in). When the kernel's time is about
the products' plus the exponentials', no implementation built from PyTorch's kernels can make it much
faster: both sides of the comparison with the official code pay the same.

    python benchmarks/attention_bound.py --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from throughput import timed  # noqa: E402
from vs_official import loadavg  # noqa: E402

CPU = torch.device("cpu")


def median_ms(fn, rounds: int) -> float:
    return statistics.median(timed(fn, CPU, rounds, 1)) * 1e3


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", default=["1x916", "4x97"], help="BATCHxLENGTH")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"bf16, 8 heads of 64, threads {args.threads}, torch {torch.__version__}, load average before {loadavg()}")
    print("| B x L | fused kernel ms | Q K^T + P V (bf16) ms | exponentials (fp32) ms | products + exponentials, share of the kernel | kernel GFLOP/s |")
    print("|---|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for shape in args.shapes:
        batch, length = (int(n) for n in shape.split("x"))
        q, k, v = (torch.randn(batch * 8, length, 64, generator=g).bfloat16() for _ in range(3))
        scores = torch.randn(batch * 8, length, length, generator=g)
        probs = scores.softmax(-1).bfloat16()
        fused = median_ms(lambda: F.scaled_dot_product_attention(q[None], k[None], v[None]), args.rounds)
        products = median_ms(lambda: (torch.bmm(q, k.transpose(1, 2)), torch.bmm(probs, v)), args.rounds)
        exps = median_ms(lambda: torch.exp(scores), args.rounds)
        flops = 4 * batch * 8 * length * length * 64
        print(f"| {batch} x {length} | {fused:.2f} | {products:.2f} | {exps:.2f} | {(products + exps) / fused:.0%} |"
              f" {flops / fused / 1e6:.0f} |")
    print(f"load average after {loadavg()}")


if __name__ == "__main__":
    main()
