"""Where the time goes, on both sides: ``torch.profiler`` self CPU time per op, official vs trmzoo.

Uses the pairs of models that ``benchmarks/vs_official.py`` builds (same weights, same batch) and
profiles, after warm-up calls, one training step and the first ``--eval-steps`` supervision steps of
the evaluation rollout of each side (``--repeats`` profiled calls, the fastest kept), per
configuration, dtype and mode (eager, or compiled as each code base compiles, as in ``vs_official.py``).

Per case and side it prints the top ops by self CPU time and the time in four groups:

* matrix products (``mm``, ``bmm``, ``addmm``, ``baddbmm``, oneDNN's linear), with the rate they reach inside the
  step (their FLOPs, counted from the recorded shapes, over their time) as a fraction of the peak
  matrix-multiply rate measured in the same process;
* the fused attention kernel (forward and backward);
* casts and copies (``copy_``, ``_to_copy``, ``clone``);
* everything else: element-wise work and reductions (SwiGLU, RMSNorm, RoPE, residuals, softmax,
  the loss), the optimizer, allocation; compiled, Inductor's fused kernels (the profiler books them
  to the call of the compiled graph) and the products it leaves to ``mm``, which count as products.

and two ceilings that follow from it:

* ``kernel ceiling``: the step's FLOPs (``benchmarks/throughput.py``'s count) over trmzoo's time in
  matrix products and the attention kernel, as a fraction of the peak: the fraction of the peak
  trmzoo's step would reach if everything else took no time;
* ``ratio ceiling``: the official step's time over trmzoo's time in matrix products and the
  attention kernel: the ratio trmzoo would reach against the official code if everything else in
  its step took no time and the kernels ran as they do.

Shares and ratios, not seconds, are the figures here: they hold under load. Writes ``--out`` (JSON).

    python benchmarks/profile_vs_official.py --official TinyRecursiveModels --threads 1 --batch-scale 0.0052
    python benchmarks/profile_vs_official.py --official TinyRecursiveModels --threads 1 --modes compile
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from throughput import peak_matmul, step_flops  # noqa: E402
from vs_official import CONFIGS, Sides, load_official  # noqa: E402

PRODUCTS = {"aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm", "mkldnn::_linear_pointwise"}
COPIES = {"aten::copy_", "aten::_to_copy", "aten::clone"}
GROUPS = ("matrix products", "attention kernel", "casts and copies", "element-wise and other")


def group_of(op: str) -> str:
    if op in PRODUCTS:
        return "matrix products"
    if "scaled_dot_product" in op or "flash_attention" in op:
        return "attention kernel"
    if op in COPIES:
        return "casts and copies"
    return "element-wise and other"


def product_flops(op: str, shapes: list) -> int:
    """FLOPs of one matrix product from its recorded input shapes (``addmm``'s operands follow the bias;
    oneDNN's linear takes the input and the prepacked [out, in] weight)."""
    if op == "mkldnn::_linear_pointwise":
        return 2 * math.prod(shapes[0]) * shapes[1][0]
    a, b = shapes[1:3] if op in ("aten::addmm", "aten::baddbmm") else shapes[:2]
    return 2 * math.prod(a) * b[-1]


def profile_call(fn, top: int, warmup: int, repeats: int) -> dict:
    """Times from the fastest of ``repeats`` calls profiled without shapes (one profiled call was now and
    then a third slower, the machine's noise); the products' FLOPs from one more call profiled with shapes.
    Recording shapes slowed oneDNN's linear on prepacked weights by about 40% inside an evaluation step
    (151 against 108 ms for a Sudoku attention step, whose timed length is about 240 ms), which would
    understate trmzoo's products' rate."""
    for _ in range(warmup):
        fn()
    profiled = []
    for _ in range(repeats):
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        profiled.append([e for e in prof.key_averages() if e.self_cpu_time_total > 0])
    events = min(profiled, key=lambda evs: sum(e.self_cpu_time_total for e in evs))
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as shaped:
        fn()
    flops = sum(product_flops(e.key, e.input_shapes) * e.count
                for e in shaped.key_averages(group_by_input_shape=True) if e.key in PRODUCTS)
    total = sum(e.self_cpu_time_total for e in events)
    groups = dict.fromkeys(GROUPS, 0.0)
    for e in events:
        groups[group_of(e.key)] += e.self_cpu_time_total
    ops = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return {"total_ms": total / 1e3,
            "groups_ms": {g: t / 1e3 for g, t in groups.items()},
            "product_flops": flops,
            "ops": [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total,
                     "calls": e.count} for e in ops]}


def profile_case(args, official, peaks: dict, name: str, dtype: str, mode: str, batch: int) -> list[dict]:
    """Both phases of one configuration, dtype and mode; prints each case and returns them. Compiled,
    three warm-up calls (compilation, then the recompilation a second carry can cause), eager one."""
    cases = []
    sides = Sides(name, dtype, batch, torch.device("cpu"), official, eval_steps=args.eval_steps)
    if mode == "compile":
        sides.compile()
    model_flops = step_flops(sides.ours, batch)
    for phase in args.phases:
        case = {"config": name, "dtype": dtype, "mode": mode, "phase": phase, "batch": batch,
                "flops": model_flops[phase] * (1 if phase == "train" else args.eval_steps)}
        for side, fn in sides.phase_functions(phase).items():
            case[side] = profile_call(fn, args.top, warmup=3 if mode == "compile" else 1, repeats=args.repeats)
        ours, theirs = case["trmzoo"], case["official"]
        kernels_ms = ours["groups_ms"]["matrix products"] + ours["groups_ms"]["attention kernel"]
        case["kernel_ceiling"] = case["flops"] / (kernels_ms / 1e3) / peaks[dtype]
        case["ratio_ceiling"] = theirs["total_ms"] / kernels_ms
        case["ratio_profiled"] = theirs["total_ms"] / ours["total_ms"]
        cases.append(case)
        print(f"\n## {name} {dtype} {mode} {phase} (batch {batch}): profiled ms official {theirs['total_ms']:.0f}, "
              f"trmzoo {ours['total_ms']:.0f} (ratio {case['ratio_profiled']:.2f}x); ratio ceiling "
              f"{case['ratio_ceiling']:.2f}x, kernel ceiling {100 * case['kernel_ceiling']:.0f}% of the peak")
        for side in ("official", "trmzoo"):
            p = case[side]
            rate = p["product_flops"] / (p["groups_ms"]["matrix products"] / 1e3) / peaks[dtype]
            print(f"{side:>8}: " + ", ".join(f"{g} {100 * t / p['total_ms']:.0f}%" for g, t in p["groups_ms"].items())
                  + f"; products at {100 * rate:.0f}% of the peak")
            print(f"{'':>8}  top: " + ", ".join(f"{o['op']} {100 * o['share']:.1f}%" for o in p["ops"]))
        sys.stdout.flush()
    del sides
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, type=Path)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--phases", nargs="+", default=["train", "eval"], choices=["train", "eval"])
    parser.add_argument("--modes", nargs="+", default=["eager"], choices=["eager", "compile"])
    parser.add_argument("--batch-scale", type=float, default=0.0052)
    parser.add_argument("--eval-steps", type=int, default=1, help="supervision steps of the profiled rollout")
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3, help="profiled calls per side; the fastest is kept")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peak-sizes", nargs="+", type=int, default=[2048, 3072])
    parser.add_argument("--out", default="profile_vs_official.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    official = load_official(args.official)
    peaks = {d: peak_matmul(getattr(torch, d), torch.device("cpu"), args.peak_sizes, 3) for d in args.dtypes}
    print("peak matrix-multiply rate: " + ", ".join(f"{d} {p / 1e9:.0f} GFLOP/s" for d, p in peaks.items()))
    results = []
    for mode in args.modes:
        for name in args.configs:
            batch = max(1, round(CONFIGS[name][1] * args.batch_scale))
            for dtype in args.dtypes:
                results += profile_case(args, official, peaks, name, dtype, mode, batch)
    Path(args.out).write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                          "threads": torch.get_num_threads(), "torch": torch.__version__,
                                          "peak_flops": peaks, "results": results}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
