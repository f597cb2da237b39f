"""Time to accuracy: recipes trained one after the other for the same wall-clock budget, on the same
machine, threads and data, with held-out exact accuracy measured at regular points in time.

The clock of a curve is training wall time: the sum of the optimizer steps' durations (batch loading
included), **excluding** the evaluations and the set-up (model building; the data are built once, before
any recipe, and timed apart). Each point also records optimizer steps and samples seen (steps x global
batch: each step supervises every slot of the batch once). A recipe reaches a level at the first point
whose accuracy is at or above it, so times to a level are upper bounds by at most one interval.

    python benchmarks/time_to_accuracy.py \\
        new=recipes/fast/sudoku6_cpu.yaml \\
        today=benchmarks/time_to_accuracy/sudoku6_today.yaml \\
        paper=benchmarks/time_to_accuracy/sudoku6_paper.yaml \\
        --budget-s 600 --eval-every-s 30 --seeds 0 --baseline today --out runs/tta

``--replot`` prints the table and draws the figure again from ``--out``/tta.json without training.
``--merge`` adds this invocation's runs to an existing ``--out``/tta.json (same label and seed
replaced), so recipes may be run in separate invocations on the same data (a CPU lock held at most
15 minutes); the summary and the PNG always cover every run in the file. ``--end-to-end`` instead runs
``trmzoo train RECIPE`` as a subprocess per seed and records its whole wall time (data generation and
final evaluation included) and the final held-out exact accuracy it printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from trmzoo.factory import create_task
from trmzoo.recipe import validate_recipe
from trmzoo.train.trainer import Trainer, prepare_data
from trmzoo.yamlio import read_yaml

RESULTS = "tta.json"
FIGURE = "tta.png"


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return "unknown"


def machine(threads: int) -> str:
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {threads} torch thread(s), " \
           f"torch {torch.__version__}"


def parse_specs(specs: list[str], sets: list[str], set_all: list[str]) -> dict[str, tuple[str, list[str]]]:
    """``LABEL=RECIPE`` specs and ``LABEL:KEY=VALUE`` overrides -> {label: (recipe path, overrides)}."""
    runs: dict[str, tuple[str, list[str]]] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            sys.exit(f"error: {spec!r}: expected LABEL=RECIPE")
        runs[label] = (path, list(set_all))
    for assignment in sets:
        label, sep, rest = assignment.partition(":")
        if not sep or label not in runs:
            sys.exit(f"error: --set {assignment!r}: expected LABEL:KEY=VALUE with a LABEL among {sorted(runs)}")
        runs[label][1].append(rest)
    return runs


# -- training curves -----------------------------------------------------------------------------
def curve(label: str, path: str, overrides: list[str], seed: int, args) -> dict:
    """Train one recipe for ``args.budget_s`` seconds of training, evaluating every ``eval_every_s``."""
    sets = (*overrides, f"train.seed={seed}", f"data.dir={args.data_dir}")
    recipe = validate_recipe(read_yaml(path), path, sets)
    run_dir = args.out / "runs" / f"{label}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    trainer = Trainer(recipe, run_dir, progress=False)
    batch = recipe.train.global_batch_size
    points, train_s, eval_s, load_before = [], 0.0, 0.0, loadavg()

    def evaluate(final: bool = False) -> None:
        nonlocal eval_s
        started = time.perf_counter()
        trainer.recipe.eval.max_puzzles = None if final else args.eval_puzzles
        metrics = trainer.evaluate()
        eval_s += time.perf_counter() - started
        points.append({"train_s": round(train_s, 2), "steps": trainer.state.step,
                       "samples": trainer.state.step * batch, "exact": metrics["exact_accuracy"],
                       "token": metrics["token_accuracy"], "puzzles": int(metrics["count"])})
        print(f"  {label} seed {seed}: {train_s:6.1f} s, step {trainer.state.step:5d}, "
              f"exact {100 * metrics['exact_accuracy']:5.1f}%, cells {100 * metrics['token_accuracy']:5.1f}%",
              flush=True)

    times = args.label_eval_at.get(label) or args.eval_at or \
        [args.eval_every_s * i for i in range(1, int(args.budget_s / args.eval_every_s) + 1)]
    pending = [t for t in times if t < args.budget_s]
    while train_s < args.budget_s and trainer.state.step < trainer.max_steps:
        started = time.perf_counter()
        trainer.train_step()
        train_s += time.perf_counter() - started
        if pending and train_s >= pending[0]:
            evaluate()
            pending = [t for t in pending if t > train_s]
    evaluate(final=True)  # always on every test puzzle
    return {"label": label, "recipe": path, "overrides": list(overrides), "seed": seed, "points": points,
            "eval_s": round(eval_s, 1), "train_steps": trainer.state.step,
            "params": trainer.model.parameter_counts()[0], "loadavg_before": load_before, "loadavg_after": loadavg()}


def time_to(points: list[dict], level: float) -> float | None:
    """Training seconds of the first point at or above ``level`` (None: never reached)."""
    return next((p["train_s"] for p in points if p["exact"] >= level), None)


def _median(values: list[float | None]) -> float | None:
    """Median over seeds; a seed that never reached the level counts as infinitely slow."""
    if not values:
        return None
    ranked = sorted(float("inf") if v is None else v for v in values)
    middle = statistics.median(ranked)
    return None if middle == float("inf") else middle


def summarise(runs: list[dict], levels: list[float], baseline: str | None) -> tuple[str, dict]:
    labels = list(dict.fromkeys(r["label"] for r in runs))
    by_label = {label: [r for r in runs if r["label"] == label] for label in labels}
    table = {}
    for label, group in by_label.items():
        table[label] = {
            "seeds": [r["seed"] for r in group],
            "final_exact": statistics.median(r["points"][-1]["exact"] for r in group),
            "final_train_s": statistics.median(r["points"][-1]["train_s"] for r in group),
            "final_steps": statistics.median(r["train_steps"] for r in group),
            "time_to": {f"{level:g}": _median([time_to(r["points"], level) for r in group]) for level in levels},
        }
    fmt = lambda t: "not reached" if t is None else f"{t:.0f} s"  # noqa: E731
    head = "| recipe | seeds | final exact | train s | steps | " + " | ".join(f"to {100 * lv:g}%" for lv in levels) + " |"
    lines = [head, "|" + "---|" * (5 + len(levels))]
    for label, row in table.items():
        lines.append(f"| {label} | {len(row['seeds'])} | {100 * row['final_exact']:.1f}% | {row['final_train_s']:.0f} "
                     f"| {row['final_steps']:.0f} | " + " | ".join(fmt(row["time_to"][f"{lv:g}"]) for lv in levels) + " |")
    if baseline in table:
        # The reference is the baseline's accuracy at the end of its budget and the training time of that
        # final point (for example "what today's recipe reaches at 10 minutes"), not the first earlier point
        # that happened to score as high on a subset of the test puzzles.
        base = table[baseline]
        target, base_time = base["final_exact"], base["final_train_s"]
        lines += ["", f"Speed-up over {baseline} (its time / the recipe's time to the same accuracy):", "",
                  "| recipe | " + " | ".join(f"{100 * lv:g}%" for lv in levels)
                  + f" | {baseline}'s final {100 * target:.1f}% (at {base_time:.0f} s) |",
                  "|" + "---|" * (2 + len(levels))]
        for label, row in table.items():
            cells = []
            for lv in levels:
                mine, theirs = row["time_to"][f"{lv:g}"], base["time_to"][f"{lv:g}"]
                cells.append("-" if mine is None or theirs is None else f"{theirs / max(mine, 1e-9):.1f}x")
            mine = _median([time_to(r["points"], target) for r in by_label[label]])
            row["time_to_baseline_final"] = mine
            speedup = None if mine is None or target <= 0 else base_time / max(mine, 1e-9)
            row["speedup_at_baseline_final"] = speedup
            if target <= 0:  # every recipe "reaches" 0% at its first point: no ratio to give
                cells.append(f"- ({baseline} never rose above 0%)")
            else:
                cells.append("not reached" if speedup is None else f"{speedup:.1f}x ({fmt(mine)} vs {fmt(base_time)})")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines), table


def draw(runs: list[dict], path: Path, title: str) -> None:
    """Held-out exact accuracy (left) and cell accuracy (right) against training time, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    colours = {}
    for run in runs:
        colour = colours.setdefault(run["label"], f"C{len(colours)}")
        xs = [p["train_s"] / 60 for p in run["points"]]
        first = sum(r["label"] == run["label"] for r in runs[: runs.index(run)]) == 0
        for ax, key in zip(axes, ("exact", "token")):
            ax.plot(xs, [100 * p[key] for p in run["points"]], marker=".", color=colour,
                    label=run["label"] if first else None, alpha=0.85)
    for ax, what in zip(axes, ("exact accuracy (whole puzzle right)", "cell accuracy")):
        ax.set_xlabel("training wall time, minutes (evaluation excluded)")
        ax.set_ylabel(f"held-out {what}, %")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# -- end to end ----------------------------------------------------------------------------------
def end_to_end(path: str, overrides: list[str], seed: int, args) -> dict:
    """``trmzoo train RECIPE`` in a fresh process with its own new data folder: the user's wall time."""
    out = args.out / "e2e" / f"seed{seed}"
    data = args.out / "e2e" / f"data-seed{seed}"
    command = [sys.executable, "-m", "trmzoo", "train", path, "--out", str(out), "--overwrite", "--quiet",
               f"--set=train.seed={seed}", f"--set=data.dir={data}", *(f"--set={s}" for s in overrides)]
    if data.exists():
        import shutil

        shutil.rmtree(data)
    before = loadavg()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    final = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    final = [r for r in final if "eval/exact_accuracy" in r][-1]
    result = {"recipe": path, "overrides": overrides, "seed": seed, "wall_s": round(wall, 1),
              "exact": final["eval/exact_accuracy"], "token": final["eval/token_accuracy"], "step": final["step"],
              "loadavg_before": before, "loadavg_after": loadavg(), "command": " ".join(command)}
    print(f"  end to end, seed {seed}: {wall:.0f} s, exact {100 * result['exact']:.1f}% (step {result['step']}); "
          f"load before {before}, after {result['loadavg_after']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("recipes", nargs="*", metavar="LABEL=RECIPE")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="LABEL:KEY=VALUE",
                        help="An override for one recipe.")
    parser.add_argument("--set-all", action="append", default=[], metavar="KEY=VALUE",
                        help="An override for every recipe.")
    parser.add_argument("--budget-s", type=float, default=600.0, help="Training seconds per run (evaluation excluded).")
    parser.add_argument("--eval-every-s", type=float, default=30.0, help="Training seconds between evaluations.")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="train.seed values (the data stay the same).")
    parser.add_argument("--eval-at", type=float, nargs="+",
                        help="Training seconds at which to evaluate (instead of every --eval-every-s).")
    parser.add_argument("--label-eval-at", action="append", default=[], metavar="LABEL=T1,T2,...",
                        help="Training seconds at which to evaluate one recipe (instead of --eval-at), "
                             "for a recipe whose evaluation is slow.")
    parser.add_argument("--eval-puzzles", type=int,
                        help="Evaluate the points before the last on the first N test puzzles (default: all).")
    parser.add_argument("--levels", type=float, nargs="+", default=[0.5, 0.8, 0.95])
    parser.add_argument("--baseline", help="The label the speed-up ratios are taken against.")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads.")
    parser.add_argument("--data-dir", type=Path, help="Shared dataset folder (default: OUT/data).")
    parser.add_argument("--out", type=Path, default=Path("runs/time_to_accuracy"))
    parser.add_argument("--merge", action="store_true", help="Add to the runs already in OUT/tta.json.")
    parser.add_argument("--stop-below", type=float, default=0.0,
                        help="--end-to-end: stop after a seed whose accuracy is below this.")
    parser.add_argument("--replot", action="store_true",
                        help="Print the table and draw the figure again from OUT/tta.json (no training).")
    parser.add_argument("--end-to-end", action="store_true",
                        help="Time `trmzoo train` of the one recipe given, per seed, from nothing to its final evaluation.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    try:
        args.label_eval_at = {lab: [float(t) for t in ts.split(",")]
                              for lab, _, ts in (x.partition("=") for x in args.label_eval_at)}
    except ValueError:
        sys.exit("error: --label-eval-at expects LABEL=T1,T2,... (seconds)")
    if not args.recipes and not args.replot:
        sys.exit("error: give at least one LABEL=RECIPE")
    specs = parse_specs(args.recipes, args.sets, args.set_all)
    for label in args.label_eval_at:
        if label not in specs:
            sys.exit(f"error: --label-eval-at {label}=...: expected a LABEL among {sorted(specs)}")
    results_path = args.out / RESULTS
    saved = json.loads(results_path.read_text()) if (args.merge or args.replot) and results_path.exists() else {}

    if args.replot:
        if "runs" not in saved:
            sys.exit(f"error: --replot: no curves in {results_path}")
        report(saved, args)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    if args.end_to_end:
        if len(specs) != 1:
            sys.exit("error: --end-to-end takes one LABEL=RECIPE")
        (label, (path, overrides)), = specs.items()
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
        runs = []
        for seed in args.seeds:
            runs.append(end_to_end(path, overrides, seed, args))
            if runs[-1]["exact"] < args.stop_below:
                print(f"  seed {seed} is below {100 * args.stop_below:g}%: the other seeds are not run")
                break
        previous = [r for r in saved.get("end_to_end", {}).get(label, []) if r["seed"] not in args.seeds]
        saved.setdefault("end_to_end", {})[label] = previous + runs
        every = saved["end_to_end"][label]
        walls = sorted(r["wall_s"] for r in every)
        print(f"{label}: {len(every)} seed(s), median wall {statistics.median(walls):.0f} s "
              f"(all: {', '.join(f'{w:.0f}' for w in walls)}), median exact "
              f"{100 * statistics.median(r['exact'] for r in every):.1f}%")
        results_path.write_text(json.dumps(saved, indent=1))
        return

    args.data_dir = args.data_dir or args.out / "data"
    tasks = set()
    for label, (path, overrides) in specs.items():
        recipe = validate_recipe(read_yaml(path), path, (*overrides, f"data.dir={args.data_dir}"))
        tasks.add(json.dumps(recipe.task.model_dump(mode="json"), sort_keys=True))
    if len(tasks) != 1:
        sys.exit("error: the recipes describe different tasks; give them the same task (--set-all task....)")
    started = time.perf_counter()
    built = not (args.data_dir / "train" / "dataset.json").exists()
    prepare_data(recipe, create_task(recipe.task), progress=False)
    data_s = time.perf_counter() - started
    print(f"data: {args.data_dir} ({'built in %.0f s' % data_s if built else 'already built'})")

    before = loadavg()
    runs = []
    for seed in args.seeds:
        for label, (path, overrides) in specs.items():
            runs.append(curve(label, path, overrides, seed, args))
            (args.out / "partial.json").write_text(json.dumps(runs, indent=1))  # kept if the invocation is cut short
    after = loadavg()
    invocation = {"command": " ".join(sys.argv), "machine": machine(args.threads), "budget_s": args.budget_s,
                  "eval_every_s": args.eval_every_s, "eval_puzzles": args.eval_puzzles,
                  "eval_at": args.eval_at, "label_eval_at": args.label_eval_at, "loadavg_before": before, "loadavg_after": after,
                  "labels": list(specs), "seeds": args.seeds,
                  "data": {"dir": str(args.data_dir), "task": json.loads(tasks.pop()),
                           "build_s": round(data_s, 1) if built else None}}
    keep = [r for r in saved.get("runs", []) if (r["label"], r["seed"]) not in {(r2["label"], r2["seed"]) for r2 in runs}]
    saved["runs"] = keep + runs
    saved.setdefault("invocations", []).append(invocation)
    print(f"\nload before {before}, after {after}")
    report(saved, args)


def report(saved: dict, args) -> None:
    """The summary table (printed and kept in the JSON) and the figure of every run in ``saved``."""
    table, summary = summarise(saved["runs"], args.levels, args.baseline)
    saved["summary"] = summary
    results_path = args.out / RESULTS
    results_path.write_text(json.dumps(saved, indent=1))
    last = saved["invocations"][-1]
    draw(saved["runs"], args.out / FIGURE, f"{last['budget_s']:.0f} s of training per run; {last['machine']}")
    print(f"\n{table}\n\nwrote {results_path} and {args.out / FIGURE}")


if __name__ == "__main__":
    main()
