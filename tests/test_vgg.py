"""VGG features and the Keras -> .npz conversion (offline: random Keras weights)."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qgac_jax.models import vgg
from qgac_jax.tools import convert_vgg


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_converted_keras_weights_give_the_same_features(arch, tmp_path):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    keras = convert_vgg.keras_model(arch, None)  # random weights: no download
    path = tmp_path / f"{arch}.npz"
    np.savez(path, **convert_vgg.convert(keras, arch))
    params = vgg.load_params(path, arch)
    layers = ("block1_conv2", "block3_conv3", "block5_conv3" if arch == "vgg16" else "block5_conv4")
    rgb = np.random.default_rng(0).random((2, 48, 40, 3)).astype(np.float32)
    ours = vgg.VGG(arch=arch, layers=layers).apply({"params": params}, vgg.preprocess(jnp.asarray(rgb)))
    # Keras' own preprocessing on 0..255 RGB, then its own layers.
    x = tf.keras.applications.vgg16.preprocess_input(rgb * 255.0)
    probe = tf.keras.Model(keras.input, [keras.get_layer(n).output for n in layers])
    for name, want in zip(layers, probe(x)):
        want = want.numpy()
        scale = np.abs(want).max()
        assert scale > 0
        np.testing.assert_allclose(np.asarray(ours[name]) / scale, want / scale, atol=1e-4, err_msg=name)


def test_grey_input_is_replicated_and_load_checks_arch(tmp_path):
    grey = jnp.full((1, 8, 8, 1), 0.5)
    np.testing.assert_allclose(vgg.preprocess(grey)[0, 0, 0], 127.5 - vgg.CAFFE_BGR_MEAN, rtol=1e-6)
    path = tmp_path / "v.npz"
    np.savez(path, arch=np.array("vgg16"))
    with pytest.raises(ValueError, match="holds vgg16 weights"):
        vgg.load_params(path, "vgg19")
    with pytest.raises(ValueError, match="lacks layer block1_conv1"):
        vgg.load_params(path, "vgg16")
    with pytest.raises(ValueError, match="has no layers"):
        vgg.VGG(arch="vgg16", layers=("block9_conv1",)).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))


@pytest.mark.slow
def test_convert_cli_from_a_local_keras_file_and_refuses_to_overwrite(tmp_path):
    import tensorflow as tf

    tf.keras.utils.set_random_seed(1)
    weights = tmp_path / "vgg16.weights.h5"
    convert_vgg.keras_model("vgg16", None).save_weights(weights)
    out = tmp_path / "out.npz"
    cmd = [sys.executable, "-m", "qgac_jax.tools.convert_vgg", "--arch=vgg16", f"--keras={weights}", f"--out={out}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with np.load(out) as data:
        assert str(data["arch"]) == "vgg16" and data["block5_conv3/kernel"].shape == (3, 3, 512, 512)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "exists; pass --overwrite" in again.stderr
    missing = subprocess.run(cmd[:-2] + [f"--keras={tmp_path / 'none.h5'}", f"--out={tmp_path / 'x.npz'}"],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 1 and "could not load vgg16 weights" in missing.stderr
    assert "Traceback" not in missing.stderr
