#!/usr/bin/env bash
# Trains the shipped models side by side on one GPU: the colour and grey restorers (fine-tuned from the
# shipped exports with the single + double JPEG recipe: configs/gpu.py:finetune) and the quality
# estimator (configs/estimator.py); with --recipe codecs, all three continued from the shipped exports on
# JPEG, WebP, AVIF and HEIC (configs/codecs.py:gpu, configs/estimator.py:codecs). Each run gets SIGTERM at
# the deadline, which saves a checkpoint and an export; running the script again resumes all three.
# Without TensorFlow: the pillow pipeline.
#
#   launch/train_shipped.sh --workdir DIR [--recipe jpeg|codecs] [--minutes M] [--steps N]
#                           [--estimator-steps N] [--workers C,G,E] [--dry-run]
#
#   --workdir DIR          DIR/colour, DIR/grey, DIR/estimator (resumed when present)
#   --recipe R             jpeg (default): single + double JPEG; codecs: JPEG, WebP, AVIF and HEIC
#   --minutes M            SIGTERM every run after M minutes (default 10; decimals work)
#   --steps N              restorer fine-tuning steps (default 8000)
#   --estimator-steps N    estimator steps (default 8000)
#   --workers C,G,E        pillow workers per run (default: 6,4,4 for 16 cores; codecs 6,6,3: their
#                          encoders, not the GPU, set the pace)
#   --dry-run              print the commands only
# Data: $QGAC_DATA, else ../shared/data (see configs/cpu.py).
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "$0")/common.sh"

workdir="" recipe=jpeg minutes=10 steps=8000 estimator_steps=8000 workers="" dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --workdir) need "$@"; workdir="$2"; shift 2 ;;
    --recipe) need "$@"; recipe="$2"; shift 2 ;;
    --minutes) need "$@"; minutes="$2"; shift 2 ;;
    --steps) need "$@"; steps="$2"; shift 2 ;;
    --estimator-steps) need "$@"; estimator_steps="$2"; shift 2 ;;
    --workers) need "$@"; workers="$2"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) usage 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ -n "$workdir" ] || die "--workdir is required (see --help)"
case "$recipe" in
  jpeg) workers=${workers:-6,4,4} ;;
  codecs) workers=${workers:-6,6,3} ;;
  *) die "--recipe is jpeg or codecs, not $recipe" ;;
esac
IFS=, read -r w_colour w_grey w_estimator <<<"$workers"
python=${PYTHON:-python3}
# Three JAX processes share the GPU: none may preallocate most of its memory.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.3}
seconds=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')

names=(colour grey estimator)
if [ "$recipe" = codecs ]; then
  colour="configs/codecs.py:gpu,steps=$steps" grey="configs/codecs.py:grey,gpu,steps=$steps"
  estimator="configs/estimator.py:codecs,steps=$estimator_steps"
else
  colour="configs/gpu.py:finetune,steps=$steps" grey="configs/gpu.py:grey,finetune,steps=$steps"
  estimator="configs/estimator.py:steps=$estimator_steps"
fi
commands=(
  "$python -m qgac_jax.train --config=$colour --workdir=$workdir/colour --config.data.pipeline=pillow --config.data.workers=$w_colour"
  "$python -m qgac_jax.train --config=$grey --workdir=$workdir/grey --config.data.pipeline=pillow --config.data.workers=$w_grey"
  "$python -m qgac_jax.train_estimator --config=$estimator --workdir=$workdir/estimator --config.data.pipeline=pillow --config.data.workers=$w_estimator"
)
if [ "$dry" = 1 ]; then
  for c in "${commands[@]}"; do echo "timeout -s TERM -k 120 $seconds $c"; done
  exit 0
fi
mkdir -p "$workdir"
pids=()
for i in "${!commands[@]}"; do
  # shellcheck disable=SC2086  # each command is a word list on purpose
  timeout -s TERM -k 120 "$seconds" ${commands[$i]} >"$workdir/${names[$i]}.log" 2>&1 &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
  code=0
  wait "$pid" || code=$?
  [ "$code" = 124 ] && code=0  # stopped at the deadline: SIGTERM saved a checkpoint and an export
  [ "$code" = 0 ] || status=$code
done
for f in "$workdir"/*.log; do echo "== $f"; grep -E "step [0-9]+/|eval step|error|Error|preempted" "$f" | tail -4; done
exit "$status"
