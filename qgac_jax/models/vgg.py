"""VGG16/VGG19 feature extractor for the perceptual loss, with Keras' layer names.

Parameters come from `python -m qgac_jax.tools.convert_vgg` (Keras ImageNet
weights -> .npz); the preprocessing is Keras' "caffe" mode, which those weights
expect: RGB in [0, 255] -> BGR minus the ImageNet channel means.
"""

from __future__ import annotations

from typing import Dict, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

# Convolutions per block.
CONFIGS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)


def layer_names(arch: str):
    return [f"block{b + 1}_conv{i + 1}" for b, n in enumerate(CONFIGS[arch]) for i in range(n)]


def preprocess(rgb01: jax.Array) -> jax.Array:
    """[B, H, W, 1 or 3] RGB in [0, 1] -> Keras caffe input (BGR, 0..255, mean removed)."""
    if rgb01.shape[-1] == 1:
        rgb01 = jnp.repeat(rgb01, 3, axis=-1)
    return rgb01[..., ::-1] * 255.0 - CAFFE_BGR_MEAN


class VGG(nn.Module):
    """Returns {layer name: activation after ReLU} for the requested layers.

    Stops after the deepest requested layer, so block5 costs nothing when only
    block3 is used.
    """

    arch: str = "vgg19"
    layers: Sequence[str] = ("block5_conv4",)
    dtype: object = jnp.float32

    @nn.compact
    def __call__(self, x) -> Dict[str, jax.Array]:
        if self.arch not in CONFIGS:
            raise ValueError(f"unknown VGG {self.arch!r}; use one of {sorted(CONFIGS)}")
        names = layer_names(self.arch)
        missing = set(self.layers) - set(names)
        if missing:
            raise ValueError(f"{self.arch} has no layers {sorted(missing)}; it has {names}")
        last = max(names.index(n) for n in self.layers)
        out, k = {}, 0
        x = x.astype(self.dtype)
        for b, n in enumerate(CONFIGS[self.arch]):
            for i in range(n):
                name = f"block{b + 1}_conv{i + 1}"
                x = nn.relu(nn.Conv(WIDTHS[b], (3, 3), dtype=self.dtype, name=name)(x))
                if name in self.layers:
                    out[name] = x.astype(jnp.float32)
                if k == last:
                    return out
                k += 1
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        return out


def load_params(path: str, arch: str):
    """Flax params of `arch` from a convert_vgg .npz, checking every layer and shape."""
    with np.load(path) as data:
        stored_arch = str(data["arch"]) if "arch" in data else None
        if stored_arch and stored_arch != arch:
            raise ValueError(f"{path} holds {stored_arch} weights, the config asks for {arch}")
        params = {}
        for name in layer_names(arch):
            try:
                params[name] = {
                    "kernel": jnp.asarray(data[f"{name}/kernel"]),
                    "bias": jnp.asarray(data[f"{name}/bias"]),
                }
            except KeyError:
                raise ValueError(f"{path} lacks layer {name} of {arch}") from None
    return params
