"""What keeping freed memory in the process (``trmzoo.keep_freed_memory()``, set by every trmzoo command) saves.

Each case runs in fresh processes, one with glibc's default malloc and one with the memory kept,
alternating: a bf16 training step (as the trainer runs it, from benchmarks/throughput.py) or evaluation step
of a registered model on a random batch. Prints the best step time, the page faults per step and the
process's peak RSS for both, and the load average.

    python benchmarks/freed_memory.py --models trm_sudoku_mlp trm_sudoku_att --batch 384 --phases eval
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

import trmzoo
from trmzoo.memory import OPT_OUT

sys.path.insert(0, str(Path(__file__).parent))
from throughput import random_batch, step_functions  # noqa: E402


def child(name: str, phase: str, batch_size: int, steps: int, keep: bool) -> dict:
    if keep and not trmzoo.keep_freed_memory():
        raise SystemExit("keep_freed_memory() changed nothing here (not glibc, or MALLOC_* settings are set)")
    torch.manual_seed(0)
    model = trmzoo.create_model(name, forward_dtype="bfloat16")
    batch = random_batch(model, batch_size, torch.device("cpu"))
    train_step, eval_step = step_functions(model, batch)
    step = train_step if phase == "train" else eval_step

    step()
    times, faults = [], []
    for _ in range(steps):
        before, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return {"best_s": min(times), "faults": faults, "max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
            "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["trm_sudoku_mlp", "trm_sudoku_att"])
    parser.add_argument("--phases", nargs="+", choices=["train", "eval"], default=["eval", "train"])
    parser.add_argument("--batch", type=int, default=384)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per process, after one untimed")
    parser.add_argument("--rounds", type=int, default=1, help="process pairs per case")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "PHASE", "KEEP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, phase, keep = args.child
        print(json.dumps(child(name, phase, args.batch, args.steps, keep == "1")))
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != OPT_OUT}
    print(f"batch {args.batch}, bf16, torch {torch.__version__}, load average before {os.getloadavg()}")
    print("| model | phase | default: best step, page faults per step (median), peak RSS | kept: the same | speed-up |")
    print("|---|---|---|---|---|")
    for name in args.models:
        for phase in args.phases:
            runs: dict[str, list[dict]] = {"0": [], "1": []}
            for _ in range(args.rounds):
                for keep in ("0", "1"):
                    command = [sys.executable, __file__, "--batch", str(args.batch), "--steps", str(args.steps),
                               "--child", name, phase, keep]
                    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
                    runs[keep].append(json.loads(done.stdout.splitlines()[-1]))
            cells = []
            for keep in ("0", "1"):
                best = min(r["best_s"] for r in runs[keep])
                faults = round(statistics.median(f for r in runs[keep] for f in r["faults"]))
                rss = max(r["max_rss_gb"] for r in runs[keep])
                cells.append((best, f"{best:.2f} s, {faults:,}, {rss:.2f} GB"))
            print(f"| {name} | {phase} | {cells[0][1]} | {cells[1][1]} | {cells[0][0] / cells[1][0]:.2f}x |")
    print(f"threads {runs['0'][0]['threads']}, load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
