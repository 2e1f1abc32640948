#!/usr/bin/env bash
# Assembles a Hugging Face Space in OUT: app.py, the Space's README (its settings), the package as a wheel
# (the shipped models and their ONNX graphs inside), and a requirements.txt that installs that wheel with the
# page's extra. Push OUT to a Space of the Gradio SDK.
#   bash deploy/huggingface_space/build.sh OUT
set -euo pipefail
out=${1:?usage: build.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-python3}
mkdir -p "$out"
cp "$here/app.py" "$here/README.md" "$out/"
rm -f "$out"/qgac_jax-*.whl
"$python" -m pip wheel -q --no-deps -w "$out" "$root"
wheel=$(cd "$out" && ls qgac_jax-*.whl)
printf '%s\n' "./${wheel}[app]" > "$out/requirements.txt"  # (the page's extra: Gradio, and JAX for the slider's blends)
echo "Space assembled in $out ($wheel)"
