#!/usr/bin/env bash
# Time to accuracy at the paper's scale on one CUDA GPU with no internet: the official Sudoku-Extreme MLP
# settings (benchmarks/time_to_accuracy/sudoku9_paper.yaml) against recipes/fast/sudoku_mlp.yaml, both at
# width 512 in bf16, for the same minutes of training each, on generated 9x9 puzzles (minimal, at least one
# guess, 1000 to train, 1000 held out by canonical form), through benchmarks/time_to_accuracy.py. Prints and
# writes both curves (held-out exact accuracy against training time, steps and samples) and samples/s.
#
#   bash benchmarks/gpu_time_to_accuracy.sh                  # one GPU, 4 minutes of training each
#   SMOKE=1 bash benchmarks/gpu_time_to_accuracy.sh          # the same path on a CPU: width 64, fp32, 5 s each
#
# Settings (environment): BUDGET_S training seconds per recipe (240); DEVICE cuda|cpu (cuda); WORK the run
# folder (runs/gpu_tta); DATA the dataset folder (WORK/data); RESULTS where the results go (OUT when set, else
# WORK/results); ONLY=official or ONLY=fast to run one recipe and merge it into WORK's results (two commands
# of under 10 minutes each); DATA_ONLY=1 to build the data and stop; FAST_STEPS the fast variant's schedule
# length (BUDGET_S / 0.32: the GPU table's 0.493 s per full-depth step x 0.65, the curriculum's mean share of
# the network calls); THREADS torch CPU threads (8); PYTHON (python3).
#
# Time on one H200: about 3 minutes to generate the puzzles on one core (50 ms per minimal 9x9 puzzle, about
# half need a guess), then BUDGET_S plus about 40 s of set-up and evaluation per recipe. To save the 3 minutes
# on the GPU machine, build the data beforehand on any machine (DATA_ONLY=1 DATA=gpu_data ..., under 1 MB) and
# copy that folder along. A CUDA image without pydantic: copy its wheels along in .whl/ (docs/performance.md);
# this script installs them and trmzoo into /tmp/site when trmzoo cannot be imported.
#
# The fast variant's schedule is fitted to the budget (its recipe's 65,104 steps would leave a 4-minute run in
# the warm-up): max_steps FAST_STEPS, the warm-up and the curriculum stages at the recipe's fractions (3%,
# 30%, 60%). The official settings run as they are (65,104 steps, 2,000 warm-up steps), as the official run's
# first minutes would.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [[ "${SMOKE:-0}" == 1 ]]; then
    DEVICE=${DEVICE:-cpu} BUDGET_S=${BUDGET_S:-5} WIDTH=${WIDTH:-64}
    NUM_TRAIN=${NUM_TRAIN:-40} NUM_TEST=${NUM_TEST:-20} BATCH=${BATCH:-16} THREADS=${THREADS:-1} DTYPE=${DTYPE:-float32}
    EVAL_AT=${EVAL_AT:-"2 4"} EVAL_PUZZLES=${EVAL_PUZZLES:-10} WORK=${WORK:-runs/gpu_tta_smoke}
fi
DEVICE=${DEVICE:-cuda}
BUDGET_S=${BUDGET_S:-240}
THREADS=${THREADS:-8}
EVAL_AT=${EVAL_AT:-"30 60 120 180"}
EVAL_PUZZLES=${EVAL_PUZZLES:-200}
WORK=${WORK:-runs/gpu_tta}
DATA=${DATA:-$WORK/data}
RESULTS=${RESULTS:-${OUT:-$WORK/results}}
PAPER=benchmarks/time_to_accuracy/sudoku9_paper.yaml
FAST=recipes/fast/sudoku_mlp.yaml
mkdir -p "$WORK" "$RESULTS"
exec > >(tee -a "$RESULTS/log.txt") 2>&1

NEEDS=pydantic
source benchmarks/gpu_setup.sh

# One task for both recipes, from the official settings' file; the smoke run shrinks it.
TASK=$("$PY" -c "import sys, yaml; print(yaml.safe_dump(yaml.safe_load(open(sys.argv[1]))['task'], default_flow_style=True, width=10**6).strip())" "$PAPER")
SETS=(--set-all "task=$TASK" --set-all "train.device=$DEVICE")
if [[ -n "${NUM_TRAIN:-}" ]]; then SETS+=(--set-all "task.num_train=$NUM_TRAIN"); fi
if [[ -n "${NUM_TEST:-}" ]]; then SETS+=(--set-all "task.num_test=$NUM_TEST"); fi
if [[ -n "${WIDTH:-}" ]]; then SETS+=(--set-all "model.hidden_size=$WIDTH" --set-all "model.puzzle_emb_ndim=$WIDTH"); fi
if [[ -n "${DTYPE:-}" ]]; then SETS+=(--set-all "model.forward_dtype=$DTYPE"); fi
if [[ -n "${BATCH:-}" ]]; then SETS+=(--set-all "train.global_batch_size=$BATCH" --set-all "eval.batch_size=$BATCH"); fi

echo "== $(date -u +%FT%TZ) device $DEVICE, $BUDGET_S s of training per recipe, data $DATA"
if [[ "$DEVICE" == cuda ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"

# The data, built once and timed apart (time_to_accuracy.py then finds them built).
"$PY" - "$PAPER" "$DATA" "${SETS[@]}" <<'EOF'
import json, sys, time
from pathlib import Path
from trmzoo.factory import create_task
from trmzoo.recipe import validate_recipe
from trmzoo.train.trainer import prepare_data
from trmzoo.yamlio import read_yaml

path, data, *rest = sys.argv[1:]
sets = [rest[i + 1] for i in range(0, len(rest), 2) if rest[i] == "--set-all"]
recipe = validate_recipe(read_yaml(path), path, (*sets, f"data.dir={data}"))
built = (Path(data) / "train" / "dataset.json").exists()
started = time.perf_counter()
prepare_data(recipe, create_task(recipe.task), progress=False)
seconds = time.perf_counter() - started
print(f"data: {data} " + ("already built" if built else f"built in {seconds:.0f} s (one process)"))
if not built:
    Path(data, "build_seconds.json").write_text(json.dumps({"build_s": round(seconds, 1)}))
EOF
if [[ "${DATA_ONLY:-0}" == 1 ]]; then exit 0; fi

# The fast variant's schedule, fitted to the budget at its recipe's fractions.
FAST_STEPS=${FAST_STEPS:-$("$PY" -c "print(max(10, round($BUDGET_S / 0.32)))")}
read -r WARMUP STAGE1 STAGE2 < <("$PY" -c "s=$FAST_STEPS; a=max(1, int(0.3*s)); print(max(1, round(s*2000/65104)), a, max(a+1, int(0.6*s)))")
CURRICULUM="[{until_step: $STAGE1, H_cycles: 1, L_cycles: 2, max_steps: 8}, {until_step: $STAGE2, H_cycles: 2, L_cycles: 4}]"
FAST_SETS=(--set "fast:train.max_steps=$FAST_STEPS" --set "fast:train.lr_warmup_steps=$WARMUP"
           --set "fast:train.curriculum=$CURRICULUM")
echo "fast schedule: $FAST_STEPS steps, warm-up $WARMUP, curriculum $CURRICULUM"

SPECS=(official="$PAPER" fast="$FAST")
MERGE=()
case "${ONLY:-}" in
    "") ;;
    official) SPECS=(official="$PAPER"); FAST_SETS=(); MERGE=(--merge) ;;
    fast) SPECS=(fast="$FAST"); MERGE=(--merge) ;;
    *) echo "error: ONLY is official or fast"; exit 2 ;;
esac
# shellcheck disable=SC2086
PYTHONUNBUFFERED=1 "$PY" benchmarks/time_to_accuracy.py "${SPECS[@]}" "${SETS[@]}" "${FAST_SETS[@]}" "${MERGE[@]}" \
    --budget-s "$BUDGET_S" --eval-at $EVAL_AT --eval-puzzles "$EVAL_PUZZLES" --threads "$THREADS" \
    --levels 0.1 0.25 0.5 0.8 --baseline official --data-dir "$DATA" --out "$WORK"

# The two curves and samples/s, printed and written beside the benchmark's JSON and PNG.
"$PY" - "$WORK" "$RESULTS" "$DATA" <<'EOF'
import json, shutil, sys
from pathlib import Path

work, results, data = map(Path, sys.argv[1:])
saved = json.loads((work / "tta.json").read_text())
build = data / "build_seconds.json"
lines = ["# Time to accuracy at width 512 (benchmarks/gpu_time_to_accuracy.sh)", "",
         f"machine: {saved['invocations'][-1]['machine']}", f"command: {saved['invocations'][-1]['command']}",
         f"data build: {json.loads(build.read_text())['build_s']} s" if build.exists() else "data: built earlier", ""]
for run in saved["runs"]:
    final = run["points"][-1]
    rate = final["samples"] / final["train_s"] if final["train_s"] else 0.0
    lines += [f"## {run['label']} (seed {run['seed']}): {run['recipe']}", "",
              f"{run['train_steps']} steps, {final['samples']} samples in {final['train_s']:.0f} s of training: "
              f"{rate:.0f} samples/s, {run['train_steps'] / max(final['train_s'], 1e-9):.2f} steps/s; "
              f"evaluation {run['eval_s']} s; load {run['loadavg_before']} -> {run['loadavg_after']}", "",
              "| train s | steps | samples | exact | cells | test puzzles |", "|---|---|---|---|---|---|"]
    lines += [f"| {p['train_s']:.0f} | {p['steps']} | {p['samples']} | {100 * p['exact']:.1f}% | "
              f"{100 * p['token']:.1f}% | {p['puzzles']} |" for p in run["points"]]
    lines.append("")
text = "\n".join(lines)
print(text)
(results / "summary.md").write_text(text + "\n")
for name in ("tta.json", "tta.png"):
    if (work / name).exists() and (work / name).resolve() != (results / name).resolve():
        shutil.copy(work / name, results / name)
print(f"wrote {results / 'summary.md'}, {results / 'tta.json'}, {results / 'tta.png'}")
EOF
