"""Where the time goes, on both sides: ``torch.profiler`` self CPU time per op, official vs trmzoo.

Uses the pairs of models that ``benchmarks/vs_official.py`` builds (same weights, same batch) and
profiles, after one warm-up call each, one training step and the first ``--eval-steps``
supervision steps of the evaluation rollout of each side, eager, per configuration and dtype.
Prints, per case, the top ops by self CPU time with their share of the profiled time, and writes
everything to ``--out`` (JSON). Shares, not seconds, are the figure here: they hold under load.

    python benchmarks/profile_vs_official.py --official TinyRecursiveModels --threads 1 --batch-scale 0.0013
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from vs_official import CONFIGS, Sides, load_official  # noqa: E402


def top_ops(fn, top: int) -> dict:
    fn()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    events.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
    return {"total_ms": total / 1e3,
            "ops": [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total,
                     "calls": e.count} for e in events[:top]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", required=True, type=Path)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"], choices=["float32", "bfloat16"])
    parser.add_argument("--phases", nargs="+", default=["train", "eval"], choices=["train", "eval"])
    parser.add_argument("--batch-scale", type=float, default=0.0013)
    parser.add_argument("--eval-steps", type=int, default=2, help="supervision steps of the profiled rollout")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="profile_vs_official.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    official = load_official(args.official)
    results = []
    for name in args.configs:
        batch = max(1, round(CONFIGS[name][1] * args.batch_scale))
        for dtype in args.dtypes:
            sides = Sides(name, dtype, batch, torch.device("cpu"), official, eval_steps=args.eval_steps)
            for phase in args.phases:
                fns = sides.phase_functions(phase)
                case = {"config": name, "dtype": dtype, "phase": phase, "batch": batch}
                for side, fn in fns.items():
                    case[side] = top_ops(fn, args.top)
                results.append(case)
                print(f"\n## {name} {dtype} {phase} (batch {batch}): profiled ms official "
                      f"{case['official']['total_ms']:.0f}, trmzoo {case['trmzoo']['total_ms']:.0f}")
                for side in fns:
                    print(f"{side:>8}: " + ", ".join(f"{o['op']} {100 * o['share']:.1f}%" for o in case[side]["ops"]))
                sys.stdout.flush()
            del sides
    Path(args.out).write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                          "threads": torch.get_num_threads(), "torch": torch.__version__,
                                          "results": results}, indent=1))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
