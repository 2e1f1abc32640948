"""Converts Keras VGG16/VGG19 ImageNet weights into the .npz the perceptual loss loads.

    python -m qgac_jax.tools.convert_vgg --arch vgg19 --out vgg19.npz            # downloads (internet)
    python -m qgac_jax.tools.convert_vgg --arch vgg16 --keras vgg16.h5 --out vgg16.npz   # local file

Keras and Flax both store conv kernels as [kh, kw, in, out] and take NHWC
input, so the conversion is a renaming; the test checks features agree.
"""

from __future__ import annotations

import os
import sys

import numpy as np
from absl import app, flags

from qgac_jax.models import vgg

FLAGS = flags.FLAGS
flags.DEFINE_enum("arch", "vgg19", sorted(vgg.CONFIGS), "Which VGG.")
flags.DEFINE_string("keras", None, "Local .h5/.keras weights; default: Keras' ImageNet download.")
flags.DEFINE_string("out", None, "Output .npz path.", required=True)
flags.DEFINE_bool("overwrite", False, "Replace an existing output file.")


def keras_model(arch: str, weights):
    """A Keras VGG without its classifier; `weights` is 'imagenet', a file path, or None (random)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    cls = {"vgg16": tf.keras.applications.VGG16, "vgg19": tf.keras.applications.VGG19}[arch]
    if weights in (None, "imagenet"):
        return cls(include_top=False, weights=weights)
    model = cls(include_top=False, weights=None)
    model.load_weights(weights, skip_mismatch=False) if str(weights).endswith(".h5") else \
        model.set_weights(tf.keras.models.load_model(weights).get_weights())
    return model


def convert(model, arch: str) -> dict:
    """{'<layer>/kernel', '<layer>/bias', 'arch'} arrays from a Keras VGG model."""
    out = {"arch": np.array(arch)}
    for name in vgg.layer_names(arch):
        kernel, bias = model.get_layer(name).get_weights()
        out[f"{name}/kernel"] = np.asarray(kernel, np.float32)
        out[f"{name}/bias"] = np.asarray(bias, np.float32)
    return out


def main(argv):
    del argv
    if os.path.exists(FLAGS.out) and not FLAGS.overwrite:
        sys.exit(f"error: {FLAGS.out} exists; pass --overwrite to replace it")
    try:
        model = keras_model(FLAGS.arch, FLAGS.keras or "imagenet")
    except Exception as err:  # noqa: BLE001 - offline download, bad file: one line
        sys.exit(f"error: could not load {FLAGS.arch} weights from {FLAGS.keras or 'Keras ImageNet download'}: {err}")
    tmp = FLAGS.out + ".tmp.npz"
    np.savez(tmp, **convert(model, FLAGS.arch))
    os.replace(tmp, FLAGS.out)
    print(f"wrote {FLAGS.out} ({FLAGS.arch}, {len(vgg.layer_names(FLAGS.arch))} conv layers)")


if __name__ == "__main__":
    app.run(main)
