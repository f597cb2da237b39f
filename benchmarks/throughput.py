"""Training and evaluation throughput of the paper configurations, against the machine's own peak.

For each model, dtype and (optionally) ``torch.compile`` this times one training
step (one supervision step as the trainer runs it: forward with the T-1 no-grad
rounds, deep-supervision loss, backward, AdamATan2, sparse puzzle-embedding step,
EMA) and one evaluation step (the same forward without gradient), counts the
model's matrix-multiply FLOPs from its configuration, and divides the achieved
rate (best timed step) by the peak matrix-multiply rate measured on the spot (best
of square products, same dtype, same thread count), measured again right before
and after each configuration and the higher one kept: on a shared machine the load
changes within minutes, and a stale peak would flatter or punish the model.

    python benchmarks/throughput.py                                   # CPU: small batches
    python benchmarks/throughput.py --models trm_sudoku_att --batch 32 --dtypes float32 bfloat16
    python benchmarks/throughput.py --device cuda --models trm_arc_att --batch 192 --dtypes bfloat16 --compile

Writes a markdown table to stdout and everything to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import resource
import statistics
import time
from contextlib import nullcontext
from pathlib import Path

import torch

import trmzoo
from trmzoo.core.layers import swiglu_width
from trmzoo.core.model import RecursiveModel
from trmzoo.core.supervision import supervision_loss
from trmzoo.train.optim import AdamATan2, ParameterEMA, SparseSignSGD

PAPER_MODELS = ("trm_sudoku_mlp", "trm_sudoku_att", "trm_maze_att", "trm_arc_att")
# Per-process batch of the paper recipes on GPUs (Sudoku: one GPU at 768; Maze and ARC: 768 over 4 GPUs).
GPU_BATCH = {"trm_sudoku_mlp": 768, "trm_sudoku_att": 768, "trm_maze_att": 192, "trm_arc_att": 192}
CPU_BATCH = {"trm_sudoku_mlp": 32, "trm_sudoku_att": 32, "trm_maze_att": 4, "trm_arc_att": 4}


# -- FLOPs from the configuration ---------------------------------------------------------------
def block_flops(model: RecursiveModel, batch: int) -> int:
    """Matrix-multiply FLOPs of one block on ``batch`` sequences (elementwise work not counted)."""
    cfg = model.config
    d, length = cfg.hidden_size, cfg.seq_len + model.prefix_len
    inner = swiglu_width(d, cfg.expansion)
    per_token = 2 * d * 2 * inner + 2 * inner * d  # channel SwiGLU: fused gate/up, then down
    per_sequence = 0
    kind = cfg.backbone.kind
    if kind == "attention":
        heads = cfg.backbone.num_heads
        width = heads * (d // heads)
        per_token += 2 * d * 3 * width + 2 * width * d  # fused QKV, output projection
        per_sequence += 2 * 2 * length * length * width  # scores and weighted sum
    elif kind == "mlp":
        seq_inner = swiglu_width(length, cfg.expansion)
        per_sequence += d * (2 * length * 2 * seq_inner + 2 * seq_inner * length)  # SwiGLU across positions
    else:
        raise SystemExit(f"no FLOP count for backbone kind {kind!r}")
    return batch * (length * per_token + per_sequence)


def step_flops(model: RecursiveModel, batch: int) -> dict[str, int]:
    """FLOPs of one supervision step: ``eval`` (forward only) and ``train`` (forward + 2x backward)."""
    cfg, rec = model.config, model.recursion.config
    length = cfg.seq_len + model.prefix_len
    block = block_flops(model, batch)
    heads = batch * (length * 2 * cfg.hidden_size * cfg.vocab_size + 2 * cfg.hidden_size * 2)
    if rec.kind == "trm":
        z_layers, y_layers = rec.L_layers, (rec.H_layers or rec.L_layers) if rec.separate_nets else rec.L_layers
        round_flops = block * (rec.L_cycles * z_layers + y_layers)
        forward = rec.H_cycles * round_flops
        with_grad = round_flops if rec.gradient == "last_round" else block * (z_layers + y_layers)
    elif rec.kind == "direct":
        forward = with_grad = block * rec.layers
    else:
        raise SystemExit(f"no FLOP count for recursion kind {rec.kind!r}")
    eval_flops = forward + heads
    train_flops = eval_flops + 2 * (with_grad + heads)
    if model.halting.needs_target:  # the Q-learning target's second forward
        train_flops += forward + heads
    return {"eval": eval_flops, "train": train_flops, "block": block}


# -- timing helpers -------------------------------------------------------------------------------
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return times


def peak_matmul(dtype: torch.dtype, device: torch.device, sizes: list[int], repeats: int) -> float:
    """Best FLOP/s of square products ``n x n @ n x n`` over ``sizes``."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        seconds = min(timed(lambda: torch.mm(a, b), device, repeats, warmup=1))
        best = max(best, 2 * n**3 / seconds)
        del a, b
    return best


class PeakMemory:
    """Peak resident memory (CPU: the kernel's high-water mark, reset on entry where Linux allows)
    or peak allocated device memory (CUDA) over a block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.reset_ok = False

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            try:  # hand freed heap back first, or the high-water mark starts at earlier runs' size
                gc.collect()
                ctypes.CDLL("libc.so.6").malloc_trim(0)
                Path("/proc/self/clear_refs").write_text("5")
                self.reset_ok = True
            except OSError:
                pass
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            self.bytes = torch.cuda.max_memory_allocated(self.device)
            self.kind = "cuda max_memory_allocated"
        elif self.reset_ok:
            status = Path("/proc/self/status").read_text()
            self.bytes = next(int(l.split()[1]) * 1024 for l in status.splitlines() if l.startswith("VmHWM"))
            self.kind = "VmHWM (process RSS peak, reset per run)"
        else:
            self.bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            self.kind = "ru_maxrss (process lifetime peak)"


# -- one configuration ----------------------------------------------------------------------------
def random_batch(model: RecursiveModel, size: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    cfg = model.config
    g = torch.Generator().manual_seed(seed)
    shape = (size, cfg.seq_len)
    return {
        "inputs": torch.randint(1, cfg.vocab_size, shape, generator=g, dtype=torch.int32).to(device),
        "labels": torch.randint(1, cfg.vocab_size, shape, generator=g, dtype=torch.int32).to(device),
        "puzzle_identifiers": torch.randint(0, cfg.num_puzzle_identifiers, (size,), generator=g, dtype=torch.int32).to(device),
    }


def step_functions(model: RecursiveModel, batch: dict[str, torch.Tensor], context=nullcontext):
    """``(train_step, eval_step)`` on one batch: a supervision step as the trainer runs it (forward, stablemax
    loss, backward, AdamATan2, sparse puzzle-embedding step, EMA), and one without gradient."""
    batch_size = len(batch["inputs"])
    optimizer = AdamATan2(list(model.parameters()), lr=1e-4, weight_decay=1.0)
    sparse = SparseSignSGD(model.puzzle_emb, lr=1e-4, weight_decay=1.0) if model.puzzle_emb is not None else None
    ema = ParameterEMA(model, decay=0.999)
    state = {"carry": model.initial_carry(batch)}

    def train_step():
        model.train()
        with context():
            carry, out = model.step(state["carry"], batch)
            loss, _ = supervision_loss(out, carry.data["labels"], model.halting)
        (loss / batch_size).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if sparse is not None:
            sparse.step()
        ema.update(model)
        state["carry"] = carry

    @torch.no_grad()
    def eval_step():
        model.eval()
        with context():
            state["carry"], _ = model.step(state["carry"], batch)

    return train_step, eval_step


def run_config(name: str, mode: str, compiled: bool, batch_size: int, device: torch.device, args) -> dict:
    """Time training and evaluation steps of model ``name`` in ``mode`` (float32, bfloat16 or autocast)."""
    torch.manual_seed(0)
    forward_dtype = "float32" if mode in ("float32", "autocast") else mode
    model = trmzoo.create_model(name, forward_dtype=forward_dtype).to(device)
    context = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if mode == "autocast" else nullcontext
    if compiled:
        model.compile()  # as train.compile: the whole supervision step (evaluation: below)
    batch = random_batch(model, batch_size, device)
    train_step, eval_step = step_functions(model, batch, context)
    flops = step_flops(model, batch_size)
    result = {"model": name, "mode": mode, "compile": compiled, "batch": batch_size}
    started = time.perf_counter()
    for phase, fn in (("train", train_step), ("eval", eval_step)):
        if compiled and phase == "eval":
            model.compile_for_inference()  # as `trmzoo eval --compile`: compiled for the trained weights
        with PeakMemory(device) as memory:
            times = timed(fn, device, args.repeats, args.warmup)
        seconds, best = statistics.median(times), min(times)
        result[phase] = {
            "step_s": seconds, "best_step_s": best, "step_s_all": times, "samples_per_s": batch_size / seconds,
            "flops_per_step": flops[phase], "flops_per_s": flops[phase] / best,
            "peak_memory_bytes": memory.bytes, "memory_kind": memory.kind,
        }
    result["wall_s"] = time.perf_counter() - started
    return result


def markdown(results: list[dict]) -> str:
    lines = [
        "| model | dtype | compile | batch | phase | s/step (median) | samples/s | TFLOP/step | GFLOP/s (best step)"
        " | peak GFLOP/s | % of peak | peak mem GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for phase in ("train", "eval"):
            p = r[phase]
            lines.append(
                f"| {r['model']} | {r['mode']} | {'yes' if r['compile'] else 'no'} | {r['batch']} | {phase} "
                f"| {p['step_s']:.3f} | {p['samples_per_s']:.1f} | {p['flops_per_step'] / 1e12:.3f} "
                f"| {p['flops_per_s'] / 1e9:.1f} | {r['peak_flops'] / 1e9:.0f} | {100 * p['fraction_of_peak']:.0f}% "
                f"| {p['peak_memory_bytes'] / 2**30:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(PAPER_MODELS))
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16", "autocast"])
    parser.add_argument("--batch", type=int, help="batch per step (default: per model, small on CPU, paper per-GPU on CUDA)")
    parser.add_argument("--repeats", type=int, help="timed steps per phase (default 3 on CPU, 10 on CUDA)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before timing (compile happens here)")
    parser.add_argument("--compile", action="store_true",
                        help="also time the compiled models (model.compile(): the whole supervision step)")
    parser.add_argument("--compile-only", action="store_true", help="time only the compiled models")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (CPU)")
    parser.add_argument("--peak-sizes", nargs="+", type=int, default=[2048, 3072, 4096])
    parser.add_argument("--out", default="throughput.json")
    args = parser.parse_args()

    device = torch.device(args.device)
    load_at_start = os.getloadavg()
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32, as the peak below
    args.repeats = args.repeats or (10 if device.type == "cuda" else 3)
    peak_repeats = 10 if device.type == "cuda" else 3
    peak = lambda dtype: peak_matmul(dtype, device, args.peak_sizes, peak_repeats)  # noqa: E731

    compile_modes = [True] if args.compile_only else [False, True] if args.compile else [False]
    results = []
    for name in args.models:
        size = args.batch or (GPU_BATCH if device.type == "cuda" else CPU_BATCH).get(name, 32)
        for mode in args.dtypes:
            for compiled in compile_modes:
                dtype = torch.float32 if mode == "float32" else torch.bfloat16
                before = peak(dtype)
                r = run_config(name, mode, compiled, size, device, args)
                r["peak_flops_before_after"] = [before, peak(dtype)]
                r["peak_flops"] = max(r["peak_flops_before_after"])
                for phase in ("train", "eval"):
                    r[phase]["fraction_of_peak"] = r[phase]["flops_per_s"] / r["peak_flops"]
                results.append(r)
                print(f"{name} {mode} compile={compiled} batch={size}: train {r['train']['step_s']:.3f} s/step "
                      f"({100 * r['train']['fraction_of_peak']:.0f}% of peak {r['peak_flops'] / 1e9:.0f} GFLOP/s), "
                      f"eval {r['eval']['step_s']:.3f} s/step ({100 * r['eval']['fraction_of_peak']:.0f}%)", flush=True)
    table = markdown(results)
    print()
    print(table)
    machine = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "python": platform.python_version(),
        "load_average_start": list(load_at_start), "load_average_end": list(os.getloadavg()),
    }
    Path(args.out).write_text(json.dumps(
        {"machine": machine, "results": results, "table": table}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
