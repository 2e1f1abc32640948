#!/usr/bin/env bash
# Train qgac_jax on a Cloud TPU VM or pod slice: create it, install on every
# worker, run the same train command on all workers at once, stream the logs,
# and delete the TPU afterwards (also on failure or Ctrl-C).
#
#   launch/tpu_vm.sh --project my-proj --zone us-central2-b --accelerator v4-32 \
#       --workdir gs://my-bucket/qgac_base -- --config.train.init_from=gs://my-bucket/qgac_psnr/export
#   launch/tpu_vm.sh --dry-run ...      # print the exact commands, run nothing
#
# Flags (or environment variables):
#   --name NAME           QGAC_TPU_NAME      (default: qgac-$USER)
#   --project PROJECT     QGAC_PROJECT       (default: gcloud's configured project)
#   --zone ZONE           QGAC_ZONE          (default: us-central2-b)
#   --accelerator TYPE    QGAC_ACCELERATOR   (default: v4-8)
#   --runtime VERSION     QGAC_RUNTIME       (default: tpu-ubuntu2204-base)
#   --workdir GS_PATH     QGAC_WORKDIR       (required: checkpoints must outlive the VM)
#   --config FILE         QGAC_CONFIG        (default: configs/base.py)
#   --repo URL            QGAC_REPO          (default: this checkout's origin URL; every worker clones
#                                            it, so it must be reachable from them: not a local path)
#   --ref REF             QGAC_REF           (default: main)
#   --keep                keep the TPU VM after training
#   --dry-run             print the commands instead of running them
# Arguments after `--` go to `python -m qgac_jax.train` unchanged.
# Re-running with the same --workdir resumes from its latest checkpoint.
set -euo pipefail
# shellcheck source=launch/common.sh
source "$(dirname "$0")/common.sh"

name=${QGAC_TPU_NAME:-qgac-${USER:-user}}
project=${QGAC_PROJECT:-}
zone=${QGAC_ZONE:-us-central2-b}
accelerator=${QGAC_ACCELERATOR:-v4-8}
runtime=${QGAC_RUNTIME:-tpu-ubuntu2204-base}
workdir=${QGAC_WORKDIR:-}
config=${QGAC_CONFIG:-configs/base.py}
repo=${QGAC_REPO:-$(git -C "$(dirname "$0")" remote get-url origin 2>/dev/null || true)}
ref=${QGAC_REF:-main}
keep=0
dry_run=0
train_args=()


while [ $# -gt 0 ]; do
  case "$1" in
    --name) need "$@"; name=$2; shift 2 ;;
    --project) need "$@"; project=$2; shift 2 ;;
    --zone) need "$@"; zone=$2; shift 2 ;;
    --accelerator) need "$@"; accelerator=$2; shift 2 ;;
    --runtime) need "$@"; runtime=$2; shift 2 ;;
    --workdir) need "$@"; workdir=$2; shift 2 ;;
    --config) need "$@"; config=$2; shift 2 ;;
    --repo) need "$@"; repo=$2; shift 2 ;;
    --ref) need "$@"; ref=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; train_args=("$@"); break ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[ -n "$workdir" ] || die "--workdir gs://BUCKET/PATH is required (a TPU VM's disk is lost when it is deleted)"
case "$workdir" in gs://*) ;; *) die "--workdir must be a gs:// path reachable from every worker, got $workdir" ;; esac
[ -n "$repo" ] || die "--repo URL is required (no git origin found)"
case "$repo" in
  *://*|*@*:*) ;;  # https://, ssh://, git@host:path
  *) msg="--repo $repo is a local path: the TPU workers clone the repository and cannot reach this machine's disk; push it and pass its URL"
     if [ "$dry_run" = 1 ]; then echo "warning: $msg" >&2; else echo "error: $msg" >&2; exit 2; fi ;;
esac
if [ -z "$project" ] && [ "$dry_run" = 0 ]; then
  project=$(gcloud config get-value project 2>/dev/null || true)
  [ -n "$project" ] || die "--project is required (gcloud has no default project)"
fi
project=${project:-PROJECT}

# Print a command exactly as it runs; run it unless --dry-run.
run() {
  show "$@"
  [ "$dry_run" = 1 ] || "$@"
}

gcloud_tpu=(gcloud compute tpus tpu-vm)
where=(--project="$project" --zone="$zone")

install="set -e; rm -rf qgac_jax && git clone --depth 1 --branch $(printf '%q' "$ref") $(printf '%q' "$repo") qgac_jax"
install+=" && cd qgac_jax && python3 -m pip install -q -e '.[train,tf,tpu]'"  # TPU JAX, training, TensorFlow for tf.data
train="cd qgac_jax && python3 -m qgac_jax.train --config=$(printf '%q' "$config") --workdir=$(printf '%q' "$workdir")"
for arg in "${train_args[@]+"${train_args[@]}"}"; do train+=" $(printf '%q' "$arg")"; done

teardown() {
  if [ "$keep" = 0 ]; then
    run "${gcloud_tpu[@]}" delete "$name" "${where[@]}" --quiet
  else
    echo "keeping $name; delete it with: ${gcloud_tpu[*]} delete $name --project=$project --zone=$zone --quiet"
  fi
}

run "${gcloud_tpu[@]}" create "$name" "${where[@]}" --accelerator-type="$accelerator" --version="$runtime"
trap teardown EXIT
run "${gcloud_tpu[@]}" ssh "$name" "${where[@]}" --worker=all --command="$install"
run "${gcloud_tpu[@]}" ssh "$name" "${where[@]}" --worker=all --command="$train"
