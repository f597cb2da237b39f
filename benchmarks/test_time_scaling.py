"""Does test-time compute buy accuracy? Exact accuracy against compute for each inference strategy.

Evaluates a trained model on its held-out test split with every strategy over a range of K or
depth, in one run, and reports exact accuracy, network rows (forward hooks on the recursion's
networks, as benchmarks/early_exit.py counts them) relative to one plain rollout (all supervision
steps, no early exit), and wall time. Strategies that use the task's ``verify`` check are marked and
drawn apart: they know the rules, a pure model does not.

    trmzoo train recipes/sudoku_cpu.yaml --set task.box_cols=3 --set "task.givens=[10, 20]" \\
        --set data.dir=data/sudoku6_att_cpu --out runs/sudoku6_att_cpu
    python benchmarks/test_time_scaling.py runs/sudoku6_att_cpu --data data/sudoku6_att_cpu --threads 2 \\
        --out tts_sudoku6.json --png tts_sudoku6.png

Writes a markdown table to stdout, everything to ``--out`` (JSON) and the curves to ``--png``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import add_model_arguments, load_model, machine_facts
from trmzoo.evaluation import evaluate


def grid(scale: float, ks: list[int], depths: list[int]) -> list[tuple[str, str, dict]]:
    """(curve, strategy, options) for every point; the curve names the line it is drawn on."""
    noise = {"scale": scale}
    top = max(ks)
    points = [("plain", "plain", {}), ("plain, early exit", "plain", {"early_exit": True})]
    points += [("depth", "depth", {"steps": d}) for d in depths]
    points += [("depth, stop when stable", "depth", {"steps": max(depths), "stop": "stable", "patience": 2})]
    points += [("noise", "noise", {"k": k, **noise}) for k in ks]
    points += [("halt_first", "halt_first", {"k": top, **noise})]
    points += [("symmetry", "symmetry", {"k": k}) for k in ks]
    if top >= 8:
        points += [("symmetry over noise", "symmetry", {"k": top // 4, "inner": "noise",
                                                        "inner_options": {"k": 4, **noise}})]
    points += [("noise+verify", "noise+verify", {"k": top, **noise}), ("symmetry+verify", "symmetry+verify", {"k": top})]
    return points


def rows_per_puzzle(strategy: str, options: dict) -> int:
    """How many rows one puzzle becomes inside the strategy (trajectories x group elements)."""
    inner = options.get("inner_options", {}).get("k", 1) if options.get("inner") in ("noise", "halt_first") else 1
    return options.get("k", 1) * inner if strategy != "depth" else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    parser.add_argument("--ks", default="4,8,16", help="trajectories / group elements per puzzle")
    parser.add_argument("--depth-factors", default="2,4", help="depth: these multiples of the trained steps")
    parser.add_argument("--scale", type=float, default=0.4, help="noise standard deviation")
    parser.add_argument("--only", help="comma-separated curve names to run (default: all)")
    parser.add_argument("--max-puzzles", type=int)
    parser.add_argument("--rows", type=int, default=256,
                        help="rows per forward: a strategy that makes K rows of a puzzle gets batches of rows/K puzzles "
                             "(so every point runs forwards of the same size; wall time compares like with like)")
    parser.add_argument("--out", default="test_time_scaling.json")
    parser.add_argument("--png", help="draw the curves here")
    args = parser.parse_args()
    model, task, load_start = load_model(args)
    trained = model.halting.max_steps
    ks = [int(k) for k in args.ks.split(",")]
    points = grid(args.scale, ks, [trained * int(f) for f in args.depth_factors.split(",")])
    if args.only:
        wanted = {name.strip() for name in args.only.split(",")} | {"plain"}
        points = [p for p in points if p[0] in wanted]
    skipped = [] if task.offers_verify else sorted({c for c, s, _ in points if "verify" in s})
    points = [p for p in points if p[0] not in skipped]

    evaluate(model, args.data, task, batch_size=args.rows, max_puzzles=args.max_puzzles)  # warm-up
    results = []
    for curve, strategy, options in points:
        batch_size = max(1, args.rows // rows_per_puzzle(strategy, options))
        start = time.perf_counter()
        metrics = evaluate(model, args.data, task, batch_size=batch_size, max_puzzles=args.max_puzzles,
                           strategy=strategy, strategy_options=options)
        seconds = time.perf_counter() - start
        results.append({"curve": curve, "strategy": strategy, "options": options, "seconds": seconds,
                        "batch_size": batch_size,
                        "uses_verify": bool(metrics["uses_verify"]), "metrics": metrics})
        print(f"{curve:32s} {json.dumps(options):60s} exact {100 * metrics['exact_accuracy']:5.1f}%  "
              f"{seconds:6.1f} s", flush=True)
        Path(args.out).write_text(json.dumps({"partial": True, "results": results}, indent=1))  # kept if stopped
    base = next(r for r in results if r["curve"] == "plain")
    for r in results:
        r["compute"] = r["metrics"]["network_rows"] / base["metrics"]["network_rows"]
        r["time_ratio"] = r["seconds"] / base["seconds"]
        r["error_ratio"] = (1 - r["metrics"]["exact_accuracy"]) / max(1 - base["metrics"]["exact_accuracy"], 1e-9)

    lines = ["| strategy | options | uses verify | exact accuracy | error / plain | network rows / plain | wall time (s) |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['curve']} | {_options(r['options'])} | {'yes' if r['uses_verify'] else 'no'} "
                     f"| {100 * r['metrics']['exact_accuracy']:.1f}% | {r['error_ratio']:.2f} | {r['compute']:.2f} "
                     f"| {r['seconds']:.1f} |")
    table = "\n".join(lines)
    pure = [r for r in results if not r["uses_verify"] and r["compute"] <= 16 + 1e-9]
    best = max(pure, key=lambda r: r["metrics"]["exact_accuracy"])
    goal = {"best_without_verify_within_16x": {k: best[k] for k in ("curve", "options", "compute", "error_ratio")},
            "plain_exact_accuracy": base["metrics"]["exact_accuracy"],
            "best_exact_accuracy": best["metrics"]["exact_accuracy"], "halves_error": best["error_ratio"] <= 0.5}
    print("\n" + table)
    print(f"\nbest without verify within 16x a plain rollout: {best['curve']} {_options(best['options'])}: "
          f"{100 * best['metrics']['exact_accuracy']:.1f}% (plain {100 * base['metrics']['exact_accuracy']:.1f}%), "
          f"error x{best['error_ratio']:.2f} at {best['compute']:.1f}x the compute; goal (error halved) "
          f"{'met' if goal['halves_error'] else 'not met'}")
    machine = machine_facts(args, load_start)
    Path(args.out).write_text(json.dumps({"machine": machine, "model": str(args.model), "data": str(args.data),
                                          "trained_steps": trained, "rows_per_forward": args.rows,
                                          "skipped_no_verify": skipped, "results": results, "goal": goal,
                                          "table": table}, indent=1))
    print(f"wrote {args.out}")
    if args.png:
        draw(results, args.png, title=f"{args.model} ({task.name})")
        print(f"wrote {args.png}")


def _options(options: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) or "-"


def draw(results: list[dict], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    curves = list(dict.fromkeys(r["curve"] for r in results))
    for ax, key, label in ((axes[0], "compute", "network rows / one plain rollout"),
                           (axes[1], "seconds", "wall time (s)")):
        for curve in curves:
            points = sorted((r[key], 100 * r["metrics"]["exact_accuracy"]) for r in results if r["curve"] == curve)
            style = "--" if "verify" in curve else "-"
            ax.plot(*zip(*points), style, marker="o", label=curve)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].axvline(16, color="grey", lw=0.8, ls=":")
    axes[0].set_ylabel("held-out exact accuracy (%)")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title + "; dashed: uses the task's verify check")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
