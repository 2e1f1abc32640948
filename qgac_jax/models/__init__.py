"""Model factory: named QGAC variants, and their size and cost.

    model = create_model("small", channels=3)
    params = init_params(model, jax.random.key(0))
    restored = model.apply({"params": params}, y, qmap)  # y, qmap: [B, H, W, C], [B, H, W, K]

Variants (colour; float32; parameters and forward GFLOPs per megapixel as
printed by `python -m qgac_jax.models`):

| variant | widths            | blocks | params  | GFLOP/MP |
|---------|-------------------|--------|---------|----------|
| tiny    | 16, 32, 64        | 1      | 0.25 M  | 70.6     |
| small   | 32, 64, 128       | 2      | 1.79 M  | 495.6    |
| base    | 64, 128, 256, 256 | 2      | 15.34 M | 2216.9   |
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict

import jax
import jax.numpy as jnp

from qgac_jax.models.estimator import QualityEstimator
from qgac_jax.models.qga import QGABlock, pool_qmap
from qgac_jax.models.qgac import QGAC, ResBlock, pad_to_multiple

VARIANTS: Dict[str, Dict[str, Any]] = {
    "tiny": dict(widths=(16, 32, 64), blocks=1, bottleneck_blocks=1, qga_hidden=16),
    "small": dict(widths=(32, 64, 128), blocks=2, bottleneck_blocks=2, qga_hidden=32),
    "base": dict(widths=(64, 128, 256, 256), blocks=2, bottleneck_blocks=4, qga_hidden=64),
}

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def qmap_channels(channels: int) -> int:
    """Q-map channels for an image of `channels`: luma only (grey) or luma + chroma."""
    return 1 if channels == 1 else 2


def create_model(variant: str = "small", *, channels: int = 3, dtype: Any = "float32", **overrides) -> QGAC:
    """A QGAC of a named variant; `overrides` replace any QGAC attribute (widths=...)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; choose one of {sorted(VARIANTS)}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels}")
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
        dtype = DTYPES[dtype]
    fields = {f.name for f in dataclasses.fields(QGAC)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown model options {sorted(unknown)}")
    kwargs = {**VARIANTS[variant], **overrides}
    kwargs["widths"] = tuple(kwargs["widths"])
    return QGAC(channels=channels, dtype=dtype, **kwargs)


def create_model_from_config(config):
    """The model an export's config dict describes.

    Restoration networks: {'variant', 'channels', 'dtype', 'overrides'}; quality
    estimators: {'kind': 'estimator', 'dtype', 'overrides'}.
    """
    dtype = config.get("dtype", "float32")
    overrides = dict(config.get("overrides") or {})
    if config.get("kind", "restorer") == "estimator":
        return QualityEstimator(dtype=DTYPES[dtype], **{k: tuple(v) if isinstance(v, list) else v
                                                       for k, v in overrides.items()})
    return create_model(config["variant"], channels=int(config["channels"]), dtype=dtype, **overrides)


def dummy_inputs(model, height: int = 64, width: int = 64, batch: int = 1):
    """Zero inputs of the right shapes: (y [B, H, W, C], qmap [B, H, W, K]) for a QGAC;
    (image [B, H, W, 1], luma table [B, 8, 8]) for a quality estimator."""
    if isinstance(model, QualityEstimator):  # sides 8 more than a multiple of 16
        return (jnp.zeros((batch, height // 16 * 16 + 8, width // 16 * 16 + 8, 1), jnp.float32),
                jnp.ones((batch, 8, 8), jnp.float32))
    y = jnp.zeros((batch, height, width, model.channels), jnp.float32)
    return y, jnp.zeros((batch, height, width, qmap_channels(model.channels)), jnp.float32)


def init_params(model: QGAC, key: jax.Array, height: int = 64, width: int = 64):
    """Initial parameters (float32 whatever the compute dtype)."""
    return model.init(key, *dummy_inputs(model, height, width))["params"]


def count_params(params) -> int:
    return int(sum(x.size for x in jax.tree.leaves(params)))


def model_stats(model: QGAC, height: int = 256, width: int = 256) -> Dict[str, float]:
    """Parameter count and forward GFLOPs per megapixel (`flops`: convolutions and matrix products).

    Nothing is computed: shapes are traced only.
    """
    from qgac_jax.models.flops import count_flops

    inputs = dummy_inputs(model, height, width)
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), *inputs)["params"])
    flops = count_flops(lambda p, y, q: model.apply({"params": p}, y, q), params, *inputs)
    return {"params": count_params(params), "gflops_per_mp": flops / 1e9 / (height * width / 1e6)}


__all__ = [
    "QGAC",
    "QGABlock",
    "QualityEstimator",
    "ResBlock",
    "VARIANTS",
    "create_model",
    "create_model_from_config",
    "count_params",
    "dummy_inputs",
    "init_params",
    "model_stats",
    "pad_to_multiple",
    "pool_qmap",
    "qmap_channels",
]
