#!/usr/bin/env bash
# trmzoo against the official TRM code on one CUDA GPU with no internet: benchmarks/vs_official.py on the
# Sudoku MLP and ARC attention configurations at the paper's per-GPU batch (768 and 192), bf16, compiled
# (each code base as its users compile it), training step and the whole 16-step evaluation rollout, with
# each side's fraction of the GPU's measured peak. Writes OUT/vs_official.json and OUT/log.txt.
#
#   OFFICIAL=TinyRecursiveModels bash benchmarks/gpu_vs_official.sh
#   SMOKE=1 OFFICIAL=TinyRecursiveModels bash benchmarks/gpu_vs_official.sh   # the same path on a CPU, batch 1
#
# OFFICIAL is a checkout of SamsungSAILMontreal/TinyRecursiveModels (never committed: keep it in an ignored
# folder, e.g. .official/, and copy it along). Its model files import einops: on a machine without internet
# carry einops' wheel in .whl/ (`pip download --no-deps -d .whl einops`, pure Python), with pydantic's
# wheels where the image has no pydantic (docs/performance.md, "GPU"). The official AdamATan2 is used on
# both sides where the adam_atan2 package imports, otherwise torch's AdamW on both (the output says which).
#
# Settings (environment): CONFIGS ("sudoku_mlp arc_att"), DTYPES (bfloat16), MODES (compile; "eager compile"
# for both), BATCH_SCALE (1: the paper's per-GPU batch), EVAL_STEPS (16), ROUNDS (3), WARMUP (2),
# PEAK_SIZES ("4096 8192"), OUT (runs/gpu_vs_official), PYTHON (python3).
# Time on one H100, estimated, not measured: under 2 minutes of compilation per configuration and side, then
# seconds per timed round; the two configurations in about 6 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
DEVICE=cuda
if [[ "${SMOKE:-0}" == 1 ]]; then
    DEVICE=cpu CONFIGS=${CONFIGS:-sudoku_mlp} BATCH_SCALE=${BATCH_SCALE:-0.0013} EVAL_STEPS=${EVAL_STEPS:-1}
    ROUNDS=${ROUNDS:-1} WARMUP=${WARMUP:-1} PEAK_SIZES=${PEAK_SIZES:-"512"} OUT=${OUT:-runs/gpu_vs_official_smoke}
fi
OFFICIAL=${OFFICIAL:-TinyRecursiveModels}
OUT=${OUT:-runs/gpu_vs_official}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1

NEEDS=einops
source benchmarks/gpu_setup.sh

echo "== $(date -u +%FT%TZ) device $DEVICE, official code in $OFFICIAL"
if [[ "$DEVICE" == cuda ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
# shellcheck disable=SC2086  # the lists are meant to split into arguments
"$PY" benchmarks/vs_official.py --official "$OFFICIAL" --device "$DEVICE" \
    --configs ${CONFIGS:-sudoku_mlp arc_att} --dtypes ${DTYPES:-bfloat16} --modes ${MODES:-compile} \
    --batch-scale "${BATCH_SCALE:-1}" --eval-steps "${EVAL_STEPS:-16}" --rounds "${ROUNDS:-3}" \
    --warmup "${WARMUP:-2}" --peak-sizes ${PEAK_SIZES:-4096 8192} --out "$OUT/vs_official.json"
