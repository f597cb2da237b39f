"""Does early exit save compute? Evaluation with and without it on a trained model's test split.

Runs ``trmzoo.evaluate`` on the held-out test split with the full number of
supervision steps (the official evaluation) and with ``early_exit=True``, and reports
samples/s (wall clock, data loading and scoring included), exact accuracy, mean steps,
and the rows the network actually processed (counted with a forward hook, so this
ratio does not depend on the machine's load).

    trmzoo train recipes/sudoku_cpu.yaml --out runs/sudoku_cpu
    python benchmarks/early_exit.py runs/sudoku_cpu --data data/sudoku_cpu --threads 2

Writes a markdown table to stdout and everything to ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from _common import add_model_arguments, load_model, machine_facts
from trmzoo.data import read_split
from trmzoo.evaluation import evaluate


def run(model, data_dir: Path, task, *, early_exit: bool, batch_size: int, repeats: int) -> dict:
    rows: list[int] = []
    hooks = [net.register_forward_hook(lambda module, args, out: rows.append(args[0].shape[0]))
             for net in (model.recursion.net, getattr(model.recursion, "y_net", None)) if net is not None]
    evaluate(model, data_dir, task, batch_size=batch_size, early_exit=early_exit)  # warm-up
    times = []
    for _ in range(repeats):
        rows.clear()
        start = time.perf_counter()
        metrics = evaluate(model, data_dir, task, batch_size=batch_size, early_exit=early_exit)
        times.append(time.perf_counter() - start)
    for hook in hooks:
        hook.remove()
    seconds = statistics.median(times)
    examples = int(metrics.get("count", 0)) or len(read_split(data_dir, "test", mmap=True)[1].inputs)
    return {"early_exit": early_exit, "seconds": seconds, "seconds_all": times, "samples_per_s": examples / seconds,
            "examples": examples, "net_rows": sum(rows), "metrics": metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="early_exit.json")
    args = parser.parse_args()
    model, task, load_start = load_model(args)
    data_dir = Path(args.data)
    full = run(model, data_dir, task, early_exit=False, batch_size=args.batch_size, repeats=args.repeats)
    early = run(model, data_dir, task, early_exit=True, batch_size=args.batch_size, repeats=args.repeats)

    lines = ["| evaluation | samples/s | exact accuracy | mean steps | network rows |", "|---|---|---|---|---|"]
    for name, r in (("all steps", full), ("early exit", early)):
        m = r["metrics"]
        lines.append(f"| {name} | {r['samples_per_s']:.1f} | {100 * m.get('exact_accuracy', float('nan')):.1f}% "
                     f"| {m['mean_steps']:.2f} | {r['net_rows']:,} |")
    summary = {
        "speedup": early["samples_per_s"] / full["samples_per_s"],
        "compute_ratio": full["net_rows"] / max(early["net_rows"], 1),
        "exact_accuracy_change_points": 100 * (early["metrics"].get("exact_accuracy", 0) - full["metrics"].get("exact_accuracy", 0)),
    }
    table = "\n".join(lines)
    print(table)
    print(f"\nspeed-up {summary['speedup']:.2f}x in samples/s, {summary['compute_ratio']:.2f}x fewer network rows, "
          f"exact accuracy {summary['exact_accuracy_change_points']:+.1f} points")
    machine = machine_facts(args, load_start)
    Path(args.out).write_text(json.dumps({"machine": machine, "model": str(args.model), "data": str(data_dir),
                                          "batch_size": args.batch_size, "full": full, "early_exit": early,
                                          "summary": summary, "table": table}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
