#!/usr/bin/env bash
# Multi-node GPU training with SLURM: one process per node drives all of that
# node's GPUs; jax.distributed reads the coordinator, process count and rank
# from SLURM's environment (qgac_jax.training.sharding.initialize_distributed).
#
#   launch/gpu_slurm.sh --nodes 4 --gpus-per-node 8 --partition gpu \
#       --workdir /shared/qgac_base -- --config.train.init_from=/shared/qgac_psnr/export
#   launch/gpu_slurm.sh --dry-run ...   # print the sbatch command and job script, submit nothing
#
# Flags (or environment variables):
#   --nodes N             QGAC_NODES          (default: 1)
#   --gpus-per-node G     QGAC_GPUS_PER_NODE  (default: 8)
#   --partition P         QGAC_PARTITION      (default: the cluster's default)
#   --time HH:MM:SS       QGAC_TIME           (default: 24:00:00)
#   --workdir DIR         QGAC_WORKDIR        (required: a path every node sees, or gs://)
#   --config FILE         QGAC_CONFIG         (default: configs/base.py)
#   --venv DIR            QGAC_VENV           (default: .venv of this checkout; make it with
#                                             pip install -e '.[train,tf,cuda]' for CUDA 13, '.[train,tf,cuda12]' for 12)
#   --dry-run             print instead of submitting
# Arguments after `--` go to `python -m qgac_jax.train` unchanged. Submitting the
# same command again resumes from the workdir's latest checkpoint.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "$0")/common.sh"

here=$(cd "$(dirname "$0")/.." && pwd)
nodes=${QGAC_NODES:-1}
gpus=${QGAC_GPUS_PER_NODE:-8}
partition=${QGAC_PARTITION:-}
walltime=${QGAC_TIME:-24:00:00}
workdir=${QGAC_WORKDIR:-}
config=${QGAC_CONFIG:-configs/base.py}
venv=${QGAC_VENV:-$here/.venv}
dry_run=0
train_args=()


while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) need "$@"; nodes=$2; shift 2 ;;
    --gpus-per-node) need "$@"; gpus=$2; shift 2 ;;
    --partition) need "$@"; partition=$2; shift 2 ;;
    --time) need "$@"; walltime=$2; shift 2 ;;
    --workdir) need "$@"; workdir=$2; shift 2 ;;
    --config) need "$@"; config=$2; shift 2 ;;
    --venv) need "$@"; venv=$2; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; train_args=("$@"); break ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[ -n "$workdir" ] || die "--workdir is required (a folder all nodes share, or gs://)"
case "$nodes$gpus" in *[!0-9]*) die "--nodes and --gpus-per-node must be whole numbers" ;; esac

train=(python -m qgac_jax.train "--config=$config" "--workdir=$workdir")
train+=("${train_args[@]+"${train_args[@]}"}")

script="#!/usr/bin/env bash
set -euo pipefail
cd $(printf '%q' "$here")
source $(printf '%q' "$venv")/bin/activate
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.9
srun --ntasks-per-node=1 --gpus-per-node=$gpus$(printf ' %q' "${train[@]}")
"

sbatch=(sbatch --job-name=qgac --nodes="$nodes" --ntasks-per-node=1 --gpus-per-node="$gpus" --time="$walltime"
        --output="slurm-%j.out")
[ -z "$partition" ] || sbatch+=(--partition="$partition")

show "${sbatch[@]}" | tr -d '\n'; printf ' <<JOB\n%sJOB\n' "$script"
[ "$dry_run" = 1 ] || printf '%s' "$script" | "${sbatch[@]}"
