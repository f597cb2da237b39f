"""bf16 on a CPU: SwiGLU's gating and the residuals inside oneDNN's products, against the plain ops.

Without gradient in bf16 on a CPU, trmzoo's SwiGLU computes ``silu(gate) * up`` as post-ops of oneDNN's
two products and adds the block's residual inside the last one (``trmzoo.core.layers``); TRM-MLP's mixer
takes the [B*D, L] layout there to do the same. This script turns that off and on again with
``trmzoo.use_fused_ops`` (off: the element-wise ops after the products, the residual added after, the
mixer's weight-left form, as the official code computes them) and times both, interleaved:

* an evaluation step (one supervision step without gradient);
* a training step as the trainer runs it (``benchmarks/throughput.py``'s ``step_functions``), whose
  first T-1 rounds run without gradient.

It also gives each variant's distance from the fp32 step of the same weights (one evaluation step, the
root mean square of the logits' differences): the fused path rounds to bf16 less often, so it should be
no farther.

    python benchmarks/fused_products.py --threads 1 --batch 4 32
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

import trmzoo
import trmzoo.core.layers as layers

sys.path.insert(0, str(Path(__file__).parent))
from throughput import random_batch, step_functions  # noqa: E402
from vs_official import interleaved, loadavg  # noqa: E402

CPU = torch.device("cpu")


def distance_from_fp32(name: str, batch_size: int) -> dict[str, float]:
    torch.manual_seed(0)
    low = trmzoo.create_model(name, forward_dtype="bfloat16").eval()
    full = trmzoo.create_model(name, forward_dtype="float32").eval()
    full.load_state_dict(low.state_dict())
    batch = random_batch(low, batch_size, CPU)
    with torch.no_grad():
        reference = full.step(full.initial_carry(batch), batch)[1].logits.float()
        distances = {}
        for fused in (False, True):
            trmzoo.use_fused_ops(fused)
            logits = low.step(low.initial_carry(batch), batch)[1].logits.float()
            distances["fused" if fused else "plain"] = (logits - reference).pow(2).mean().sqrt().item()
    distances["scale"] = reference.pow(2).mean().sqrt().item()
    return distances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 32])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8, help="interleaved steps per side and phase")
    parser.add_argument("--models", nargs="+", default=["trm_sudoku_mlp", "trm_sudoku_att"])
    args = parser.parse_args()
    if not layers.ONEDNN_BF16:
        sys.exit("fused_products.py: this torch or CPU has no oneDNN bf16 linear, so there is nothing to compare")
    torch.set_num_threads(args.threads)
    trmzoo.keep_freed_memory()  # as every trmzoo command does
    print(f"threads {args.threads}, torch {torch.__version__}, load average before {loadavg()}")
    print("| model | batch | phase | plain s (median / best) | fused s (median / best) | plain / fused (median) |"
          " logits from fp32, rms: plain / fused (logits' rms) |")
    print("|---|---|---|---|---|---|---|")
    for name in args.models:
        for batch_size in args.batch:
            distances = distance_from_fp32(name, batch_size)
            torch.manual_seed(0)
            model = trmzoo.create_model(name, forward_dtype="bfloat16")
            train_step, eval_step = step_functions(model, random_batch(model, batch_size, CPU))
            for phase, step in (("eval", eval_step), ("train", train_step)):
                def run(fused, step=step):
                    def timed():
                        trmzoo.use_fused_ops(fused)
                        step()
                    return timed
                times = interleaved({"plain": run(False), "fused": run(True)}, args.rounds, 1, CPU)
                med = {side: statistics.median(t) for side, t in times.items()}
                print(f"| {name} | {batch_size} | {phase} | {med['plain']:.3f} / {min(times['plain']):.3f} |"
                      f" {med['fused']:.3f} / {min(times['fused']):.3f} | {med['plain'] / med['fused']:.2f}x |"
                      f" {distances['plain']:.4f} / {distances['fused']:.4f} ({distances['scale']:.2f}) |", flush=True)
    trmzoo.use_fused_ops(True)
    print(f"load average after {loadavg()}")


if __name__ == "__main__":
    main()
