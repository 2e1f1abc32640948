# shellcheck shell=bash
# Sourced by the launch scripts (tpu_vm.sh, gpu_slurm.sh, train_shipped.sh): what every one of them does
# the same way. Each script's usage is its header comment, from line 2 to its `set -euo pipefail`.

# The calling script's header comment as its usage; exits with $1 (default 0).
usage() { sed -n '2,/^set /p' "$0" | sed -n 's/^# \{0,1\}//p'; exit "${1:-0}"; }

# One line on stderr and exit 2: a mistake on the command line.
die() { echo "error: $*" >&2; exit 2; }

# `need "$@"` in a flag's case: the flag must be followed by its value.
need() { [ $# -ge 2 ] || die "$1 needs a value"; }

# A command exactly as it runs (shell-quoted), after '+ ': what --dry-run prints and the tests read.
show() { printf '+'; printf ' %q' "$@"; printf '\n'; }
