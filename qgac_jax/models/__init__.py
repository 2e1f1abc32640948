"""The networks (Flax) and what names the shipped models (`shipped`, `realism`, `tiling`: no JAX).

The networks' names (`registry`'s: create_model, VARIANTS, QGAC, ...) load on first use, so that restoring in
ONNX Runtime, which reads `shipped` and `tiling`, imports no JAX: an install without it restores.
"""

__all__ = [
    "ARCHITECTURES",
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


def jax_installed() -> bool:
    """Whether JAX is installed (the full install); restoring in ONNX Runtime does without it."""
    import importlib.util

    try:
        return importlib.util.find_spec("jax") is not None
    except (ImportError, ValueError):  # (an import hook that hides it; a broken install)
        return False


def __getattr__(name):
    if name in __all__:
        from qgac_jax.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'qgac_jax.models' has no attribute {name!r}")
