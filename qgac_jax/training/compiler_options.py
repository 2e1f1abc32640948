"""XLA compiler options for QGAC's jitted training step on CPU.

Why: jaxlib 0.10's XLA CPU hands convolutions to YNNPACK, which runs the
batched 3x3 convolutions of a train step on one core of two and their kernel
gradients slowly; with YNNPACK's fusions off, XLA uses Eigen's convolutions
on every core and the `small` train step takes about half the time
(docs/performance.md has the figures; `python benchmarks/vs_pytorch.py`
prints both). Batch-1 inference was not faster, so `Restorer` keeps XLA's
defaults.

The options are per `jax.jit`, not process-wide: a user's own JAX code is
unaffected, and a user who sets `--xla_cpu_experimental_ynn_fusion_type` in
XLA_FLAGS keeps that choice. A jaxlib that does not know the option gets none.
"""

from __future__ import annotations

import functools
import os
from typing import Dict, Optional

import jax
import numpy as np

YNN_OPTION = "xla_cpu_experimental_ynn_fusion_type"
EIGEN_CONVOLUTIONS = {YNN_OPTION: ""}  # no YNNPACK fusions: convolutions and dots go to Eigen


@functools.lru_cache(maxsize=None)
def _cpu_accepts(options: tuple) -> bool:
    """Whether this jaxlib's CPU compiler takes `options` (checked once, on a one-op program)."""
    try:
        one = jax.device_put(np.float32(1), jax.local_devices(backend="cpu")[0])
        jax.jit(lambda x: x + 1, compiler_options=dict(options)).lower(one).compile()
    except Exception:  # noqa: BLE001 - unknown option (older or newer jaxlib) or no jit keyword: use none
        return False
    return True


def for_training(platform: Optional[str] = None) -> Optional[Dict[str, str]]:
    """Options for `jax.jit(..., compiler_options=...)` of a train step on `platform` (default: JAX's default).

    None off CPU, where XLA's defaults are kept, and where XLA_FLAGS already
    chooses the YNNPACK setting.
    """
    if (platform or jax.default_backend()) != "cpu":
        return None
    if YNN_OPTION in os.environ.get("XLA_FLAGS", ""):
        return None
    return dict(EIGEN_CONVOLUTIONS) if _cpu_accepts(tuple(EIGEN_CONVOLUTIONS.items())) else None
