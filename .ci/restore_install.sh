#!/usr/bin/env bash
# The README's install for restoring, verbatim, in a fresh clone: it must restore a JPEG, a WebP and an AVIF with
# the console script from the graphs that ship (no JAX installed, nothing converted), and its virtual environment
# must stay under 400 MB (no JAX, no TensorFlow, no test tools, no Ray).
# Then a script beside the clone imports the package (the clone's folder, also named qgac_jax, must not hide
# it), and the documented extras for HEIC and the web page install on top in either order with `pip check` clean.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
command=$(awk '$0 == "<!-- restore-install -->" {found=1; next} found && !/^```/ {print; exit}' README.md)
clone=$(mktemp -d)/qgac_jax
trap 'rm -rf "$(dirname "$clone")"' EXIT
git clone -q . "$clone"
cd "$clone"
echo "+ $command"
eval "$command" >/dev/null
.venv/bin/pip check
for heavy in jax flax orbax tensorflow pytest ray; do  # (Ray comes with the extra `cluster` only)
  if .venv/bin/python -c "import $heavy" 2>/dev/null; then
    echo "restore install: $heavy came with it" >&2
    exit 1
  fi
done
.venv/bin/python -c "
import numpy as np
from PIL import Image
y, x = np.mgrid[0:96, 0:128]
photo = Image.fromarray(np.stack([x * 2, y * 2, (x + y) % 256], -1).astype(np.uint8))
photo.save('photo.jpg', quality=20)
photo.save('web.webp', quality=20)
photo.save('phone.avif', quality=30)
"
export QGAC_ONNX_CACHE="$PWD/onnx-cache"
.venv/bin/qgac-restore photo.jpg web.webp phone.avif --output restored/ 2>restore.err || { cat restore.err >&2; exit 1; }
cat restore.err >&2
for name in photo web phone; do test -s "restored/$name.png" || { ls restored >&2; exit 1; }; done
if [ -e onnx-cache ] || grep -q converting restore.err; then
  echo "restore install: a graph was converted; the shipped ones should have served" >&2
  exit 1
fi
size_mb=$(du -sm .venv | cut -f1)
echo "restore install: ${size_mb} MB in .venv; qgac-restore restored a JPEG, a WebP and an AVIF without JAX"
if [ "$size_mb" -gt 400 ]; then
  echo "restore install: ${size_mb} MB is over 400 MB" >&2
  exit 1
fi
cd "$(dirname "$clone")"  # beside the clone, whose folder is named like the package
"$clone/.venv/bin/python" -c "from qgac_jax import Restorer; import qgac_jax; assert qgac_jax.__file__, 'shadowed'"
echo "restore install: a script beside the clone imports qgac_jax"
cd "$clone"
for extras in "$(grep -o "pip install '\.\[heic\]'" README.md)" "$(grep -o "pip install '\.\[app\]'" README.md)"; do
  test -n "$extras"
  echo "+ .venv/bin/$extras"
  eval ".venv/bin/$extras" >/dev/null
  .venv/bin/pip check
done
