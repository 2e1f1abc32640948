#!/usr/bin/env bash
# The Colab install path: a fresh environment that already has `tensorflow` (as Colab's image
# has), then the package installed as the notebook installs it (the `train` extra, no TensorFlow). pip must report no
# conflict, there must be one TensorFlow distribution, and TF, tfds and the package import together.
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1 TF_CPP_MIN_LOG_LEVEL=2
venv=$(mktemp -d)/colab
trap 'rm -rf "$(dirname "$venv")"' EXIT
python3 -m venv "$venv"
"$venv/bin/pip" install -q tensorflow
"$venv/bin/pip" install -q '.[train]'
"$venv/bin/pip" check
tf_dists=$("$venv/bin/pip" list --format=freeze | grep -ciE '^(tensorflow|tensorflow-cpu|tensorflow-intel)==' || true)
if [ "$tf_dists" != 1 ]; then
  echo "colab install: $tf_dists TensorFlow distributions side by side:" >&2
  "$venv/bin/pip" list | grep -i tensorflow >&2
  exit 1
fi
"$venv/bin/python" -c "
import tensorflow as tf, tensorflow_datasets as tfds, qgac_jax
from qgac_jax import Restorer
from qgac_jax.models import shipped
assert shipped.default_checkpoint() is not None, 'the shipped models are missing from the installed package'
print('colab install: tensorflow', tf.__version__, 'tfds', tfds.__version__, 'qgac_jax', qgac_jax.__version__)
"
