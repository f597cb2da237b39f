"""The TRM paper's Tables 1, 2 and 4 (Sudoku column), shrunk to run on a 2-core CPU.

Every method starts from the same registered model as its paper-scale recipe in
recipes/paper/ (same recursion, halting, layer counts), narrowed to ``--hidden``
and trained on small generated Sudoku for the same wall-clock budget, with
several seeds. The paper's figures are printed beside ours for the ordering only:
the scale, data and training length are far from the paper's.

    python benchmarks/paper_tables_cpu.py                     # 12 methods x 3 seeds x 60 s: under an hour
    python benchmarks/paper_tables_cpu.py --budget-s 20 --seeds 1 --tables 1

Writes ``paper_tables.md`` and ``paper_tables.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from trmzoo.recipe import validate_recipe
from trmzoo.factory import create_task
from trmzoo.train.trainer import Trainer, prepare_data


@dataclass(frozen=True)
class Method:
    key: str
    model: dict
    train: dict = field(default_factory=dict)


# One entry per distinct configuration; a table row points at one of these.
METHODS = {m.key: m for m in (
    Method("trm", {"preset": "trm_sudoku_mlp"}),
    Method("act", {"preset": "trm_sudoku_mlp", "halting": {"kind": "q_learning"}}),
    Method("separate", {"preset": "trm_sudoku_mlp", "recursion": {"separate_nets": True, "H_layers": 2}}),
    Method("no_ema", {"preset": "trm_sudoku_mlp"}, {"ema": False}),
    Method("4layers_n3", {"preset": "trm_sudoku_mlp", "recursion": {"L_layers": 4, "L_cycles": 3}}),
    Method("attention", {"preset": "trm_sudoku_att"}),
    Method("T2_n2", {"preset": "trm_sudoku_mlp", "recursion": {"H_cycles": 2, "L_cycles": 2}}),
    Method("one_step", {"preset": "trm_sudoku_mlp", "recursion": {"gradient": "one_step"}}),
    Method("hrm", {"preset": "hrm_sudoku"}),
    Method("multiscale", {"preset": "trm_sudoku_mlp", "recursion": {"latents": "multiscale"}}),
    Method("single_z", {"preset": "trm_sudoku_mlp", "recursion": {"latents": "single"}}),
    # 12 heads do not split a small width into even head sizes (rope): 8 heads here.
    Method("direct", {"preset": "direct_sudoku", "backbone": {"num_heads": 8}}),
    *(Method(f"hrm_k{k}_T{t}", {"preset": "hrm_sudoku", "recursion": {"H_cycles": t, "L_cycles": k}})
      for k, t in ((1, 1), (3, 3), (4, 4))),
    *(Method(f"trm_k{k}_T{t}", {"preset": "trm_sudoku_mlp", "recursion": {"H_cycles": t, "L_cycles": 2 * k}})
      for k, t in ((1, 1), (2, 2), (4, 4))),
)}

# (table, row as the paper names it, the paper's Sudoku-Extreme figure, method key), in the paper's order.
ROWS = [
    (1, "HRM", 55.0, "hrm"), (1, "TRM (T=3, n=6)", 87.4, "trm"), (1, "w/ ACT", 86.1, "act"),
    (1, "w/ separate fH, fL", 82.4, "separate"), (1, "no EMA", 79.9, "no_ema"),
    (1, "w/ 4 layers, n=3", 79.5, "4layers_n3"), (1, "w/ self-attention", 74.7, "attention"),
    (1, "w/ T=2, n=2", 73.7, "T2_n2"), (1, "w/ 1-step gradient", 56.5, "one_step"),
    (2, "y, z (2 features)", 87.4, "trm"), (2, "multi-scale z (7 features)", 77.6, "multiscale"),
    (2, "single z", 71.9, "single_z"),
    (3, "HRM k=1 T=1", 46.4, "hrm_k1_T1"), (3, "HRM k=2 T=2", 55.0, "hrm"), (3, "HRM k=3 T=3", 61.6, "hrm_k3_T3"),
    (3, "HRM k=4 T=4", 59.5, "hrm_k4_T4"), (3, "TRM k=1 T=1", 63.2, "trm_k1_T1"), (3, "TRM k=2 T=2", 81.9, "trm_k2_T2"),
    (3, "TRM k=3 T=3", 87.4, "trm"), (3, "TRM k=4 T=4", 84.2, "trm_k4_T4"),
    (4, "Direct pred", 0.0, "direct"), (4, "HRM", 55.0, "hrm"), (4, "TRM-Att", 74.7, "attention"),
    (4, "TRM-MLP", 87.4, "trm"),
]
TITLES = {1: "Table 1: ablations", 2: "Table 2: latent features", 3: "Table 3: recursion depth",
          4: "Table 4: Sudoku column"}


def recipe_for(method: Method, args, seed: int, data_dir: Path) -> dict:
    """The method's paper-scale model, narrowed, with the shared small task and training setup."""
    model = {
        **method.model, "vocab_size": 0, "seq_len": 0,  # from the generated dataset
        "hidden_size": args.hidden, "puzzle_emb_ndim": args.hidden, "forward_dtype": "float32",
    }
    if method.model["preset"].startswith("trm_"):
        model["puzzle_emb_len"] = args.prefix  # TRM's 16 prefix slots, scaled down; HRM and direct keep ceil = 1
    train = {
        "global_batch_size": args.batch, "max_steps": 1_000_000, "time_budget_s": args.budget_s,
        "lr": args.lr, "lr_warmup_steps": args.warmup, "weight_decay": 0.1, "puzzle_emb_lr": args.lr,
        "puzzle_emb_weight_decay": 0.1, "ema": True, "ema_rate": args.ema_rate, "log_interval": 50, "device": "cpu",
        "seed": seed, **method.train,
    }
    return {"model": model, "task": task_config(args), "data": {"dir": str(data_dir)}, "train": train,
            "eval": {"batch_size": args.num_test}}  # one batch: the test split is padded to whole batches


def task_config(args) -> dict:
    rows, cols = (2, 2) if args.size == 4 else (2, 3)
    config = {"name": "sudoku", "source": "generate", "box_rows": rows, "box_cols": cols,
              "num_train": args.num_train, "num_test": args.num_test, "num_aug": 8, "seed": 0}
    if args.size == 4:
        config["givens"] = [5, 10]  # minimal 4x4 puzzles are too few to fill a training set
    return config


def run_one(method: Method, args, seed: int, data_dir: Path) -> dict:
    recipe = validate_recipe(recipe_for(method, args, seed, data_dir), f"{method.key} (seed {seed})")
    run_dir = args.out / "runs" / f"{method.key}-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    started = time.perf_counter()
    trainer = Trainer(recipe, run_dir, progress=False)
    full = trainer.fit()  # official evaluation: every sample runs all supervision steps
    trainer.recipe.eval.early_exit = True  # then let the halting head stop each sample
    early = trainer.evaluate()
    return {
        "method": method.key, "seed": seed, "exact_accuracy": full["exact_accuracy"],
        "token_accuracy": full["token_accuracy"],
        "exact_accuracy_early_exit": early["exact_accuracy"], "mean_steps_early_exit": early["mean_steps"],
        "params": trainer.model.parameter_counts()[0], "train_steps": trainer.state.step,
        "wall_s": time.perf_counter() - started,
    }


def _mean_sd(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    return f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else f"{mean:.1f}"


def summarise(results: list[dict], tables: list[int]) -> tuple[str, list[dict]]:
    by_method: dict[str, list[dict]] = {}
    for r in results:
        by_method.setdefault(r["method"], []).append(r)
    lines, rows = [], []
    for table in tables:
        lines += [f"### {TITLES[table]}", "",
                  "| Row | Paper % | Exact % (all steps) | Cells % | Exact % (early exit) | Mean steps (early exit) "
                  "| Params | Train steps | Wall s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for t, row, paper, key in ROWS:
            if t != table or key not in by_method:
                continue
            runs = by_method[key]
            summary = {
                "table": t, "row": row, "paper": paper, "method": key, "seeds": len(runs),
                "exact_accuracy": [r["exact_accuracy"] for r in runs],
                "token_accuracy": [r["token_accuracy"] for r in runs],
                "exact_accuracy_early_exit": [r["exact_accuracy_early_exit"] for r in runs],
                "mean_steps_early_exit": statistics.fmean(r["mean_steps_early_exit"] for r in runs),
                "params": runs[0]["params"], "train_steps": statistics.fmean(r["train_steps"] for r in runs),
                "wall_s": statistics.fmean(r["wall_s"] for r in runs),
            }
            rows.append(summary)
            lines.append(
                f"| {row} | {paper:.1f} | {_mean_sd(summary['exact_accuracy'])} | {_mean_sd(summary['token_accuracy'])} "
                f"| {_mean_sd(summary['exact_accuracy_early_exit'])} | {summary['mean_steps_early_exit']:.1f} "
                f"| {summary['params']:,} | {summary['train_steps']:.0f} | {summary['wall_s']:.0f} |")
        lines.append("")
    return "\n".join(lines), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-s", type=float, default=60.0, help="Training wall-clock seconds per run.")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tables", default="1,2,4", help="Comma-separated tables among 1,2,3,4.")
    parser.add_argument("--only", help="Comma-separated method keys to run (default: every row of --tables).")
    parser.add_argument("--size", type=int, choices=(4, 6), default=4, help="Sudoku side: 4 (2x2 boxes) or 6 (2x3).")
    parser.add_argument("--num-train", type=int, default=3000)
    parser.add_argument("--num-test", type=int, default=200)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--prefix", type=int, default=2, help="Puzzle prefix slots for TRM (paper: 16).")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--warmup", type=int, default=20, help="Warm-up steps (short runs: keep it small).")
    parser.add_argument("--ema-rate", type=float, default=0.98, help="EMA decay (paper: 0.999 over 65k steps).")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads.")
    parser.add_argument("--out", type=Path, default=Path("runs/paper_tables_cpu"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tables = sorted({int(t) for t in args.tables.split(",")})
    keys = list(dict.fromkeys(key for t, _, _, key in ROWS if t in tables))
    if args.only:
        keys = [key for key in keys if key in args.only.split(",")]

    data_dir = args.out / f"data-sudoku{args.size}-{args.num_train}-{args.num_test}"
    task_recipe = validate_recipe({"model": {}, "task": task_config(args), "data": {"dir": str(data_dir)}})
    prepare_data(task_recipe, create_task(task_recipe.task), progress=True)

    total = len(keys) * args.seeds
    print(f"{len(keys)} methods x {args.seeds} seeds, {args.budget_s:.0f} s of training each ({total} runs)")
    results = []
    for seed in range(args.seeds):
        for key in keys:
            result = run_one(METHODS[key], args, seed, data_dir)
            results.append(result)
            print(f"[{len(results)}/{total}] {key} seed {seed}: exact {100 * result['exact_accuracy']:.1f}% "
                  f"(early exit {100 * result['exact_accuracy_early_exit']:.1f}%, "
                  f"{result['mean_steps_early_exit']:.1f} steps), cells {100 * result['token_accuracy']:.1f}%, "
                  f"{result['train_steps']} train steps, {result['wall_s']:.0f} s", flush=True)

    table, rows = summarise(results, tables)
    machine = f"{platform.processor() or platform.machine()}, {args.threads} torch thread(s), torch {torch.__version__}"
    setup = (f"{args.size}x{args.size} Sudoku (generated, {args.num_train} train with 8 augmentations, "
             f"{args.num_test} test), hidden {args.hidden}, batch {args.batch}, lr {args.lr} "
             f"(warm-up {args.warmup}), EMA {args.ema_rate}, "
             f"{args.budget_s:.0f} s of training per run, {args.seeds} seed(s); {machine}")
    markdown = f"{setup}\n\n{table}"
    print("\n" + markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "paper_tables.md").write_text(markdown)
    (args.out / "paper_tables.json").write_text(json.dumps(
        {"setup": setup, "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows, "runs": results},
        indent=2))
    print(f"wrote {args.out / 'paper_tables.md'} and {args.out / 'paper_tables.json'}")


if __name__ == "__main__":
    main()
