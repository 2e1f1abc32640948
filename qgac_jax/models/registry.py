"""Model factory: the architectures (one registry), their named variants, and their size and cost.

    from qgac_jax.models import create_model, init_params  # (read from here on first use)
    model = create_model("small", channels=3)  # architecture="qgac", the default
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

from qgac_jax.models import qgac
from qgac_jax.models.estimator import QualityEstimator
from qgac_jax.models.qga import QGABlock, pool_qmap  # noqa: F401 - (models/__init__ names them)
from qgac_jax.models.qgac import QGAC, ResBlock, pad_to_multiple  # noqa: F401 - (models/__init__ names them)

# The restoration architectures, by the name a config's model.architecture and an export give. Each is a module
# with VARIANTS (named sizes: {name: constructor fields}) and MODEL, a Flax module built as
# MODEL(channels=, dtype=, **fields) and applied to (y [B, H, W, C], qmap [B, H, W, K]) -> [B, H, W, C], with
# `int8` ("" for float) and KEEP_FLOAT (module name prefixes the int8 graph keeps float32) as QGAC has them.
ARCHITECTURES = {"qgac": qgac}
VARIANTS: Dict[str, Dict[str, Any]] = qgac.VARIANTS  # the default architecture's (python -m qgac_jax.models)

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def qmap_channels(channels: int) -> int:
    """Q-map channels for an image of `channels`: luma only (grey) or luma + chroma."""
    return 1 if channels == 1 else 2


def create_model(variant: str = "small", *, architecture: str = "qgac", channels: int = 3, dtype: Any = "float32",
                 **overrides):
    """A network of `architecture` (ARCHITECTURES) of a named variant; `overrides` replace any of its fields
    (widths=...)."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown model architecture {architecture!r}; choose one of {sorted(ARCHITECTURES)}")
    variants, network = ARCHITECTURES[architecture].VARIANTS, ARCHITECTURES[architecture].MODEL
    if variant not in variants:
        raise ValueError(f"unknown model variant {variant!r}; choose one of {sorted(variants)}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (colour), got {channels}")
    if isinstance(dtype, str):
        if dtype not in DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose one of {sorted(DTYPES)}")
        dtype = DTYPES[dtype]
    fields = {f.name for f in dataclasses.fields(network)}
    unknown = set(overrides) - fields
    if unknown:
        raise ValueError(f"unknown model options {sorted(unknown)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in {**variants[variant], **overrides}.items()}
    return network(channels=channels, dtype=dtype, **kwargs)


def create_model_from_config(config):
    """The model an export's config dict describes.

    Restoration networks: {'architecture' (qgac where absent), 'variant', 'channels', 'dtype', 'overrides'}; quality
    estimators: {'kind': 'estimator', 'dtype', 'overrides'}.
    """
    dtype = config.get("dtype", "float32")
    overrides = dict(config.get("overrides") or {})
    if config.get("kind", "restorer") == "estimator":
        return QualityEstimator(dtype=DTYPES[dtype], **{k: tuple(v) if isinstance(v, list) else v
                                                       for k, v in overrides.items()})
    return create_model(config["variant"], architecture=config.get("architecture", "qgac"),
                        channels=int(config["channels"]), dtype=dtype, **overrides)


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
