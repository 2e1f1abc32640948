#!/usr/bin/env bash
# The README's light install for restoring, verbatim, in a fresh clone: it must restore a photo with the
# console script, and its virtual environment must stay under 1.2 GB (no TensorFlow, no test tools, no Ray).
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
for heavy in tensorflow pytest ray; do  # (Ray comes with the extra `cluster` only)
  if .venv/bin/python -c "import $heavy" 2>/dev/null; then
    echo "restore install: $heavy came with it" >&2
    exit 1
  fi
done
.venv/bin/python -c "
import numpy as np
from PIL import Image
y, x = np.mgrid[0:96, 0:128]
Image.fromarray(np.stack([x * 2, y * 2, (x + y) % 256], -1).astype(np.uint8)).save('photo.jpg', quality=20)
"
.venv/bin/qgac-restore photo.jpg --output restored/
test -s restored/photo.png
size_mb=$(du -sm .venv | cut -f1)
echo "restore install: ${size_mb} MB in .venv; qgac-restore restored photo.jpg"
if [ "$size_mb" -gt 1200 ]; then
  echo "restore install: ${size_mb} MB is over 1.2 GB" >&2
  exit 1
fi
cd "$(dirname "$clone")"  # beside the clone, whose folder is named like the package
"$clone/.venv/bin/python" -c "from qgac_jax import Restorer; import qgac_jax; assert qgac_jax.__file__, 'shadowed'"
echo "restore install: a script beside the clone imports qgac_jax"
cd "$clone"
for extras in "$(grep -o "pip install '\.\[onnx,heic\]'" README.md)" "$(grep -o "pip install '\.\[onnx,app\]'" README.md)"; do
  test -n "$extras"
  echo "+ .venv/bin/$extras"
  eval ".venv/bin/$extras" >/dev/null
  .venv/bin/pip check
done
