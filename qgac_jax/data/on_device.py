"""The last step of a batch, on the accelerator: uint8 pixels to floats, tables to Q-maps.

Why: at a GPU's pace (docs/performance.md) the host's main
process cannot also turn every batch into float32 images and tiled Q-maps
(a 6 MB batch) and keep the device fed. The pipelines therefore hand over
the compact form (uint8 images, [2, 8, 8] tables: a quarter of the bytes),
which travels, and `prepare` finishes it inside one jitted call on the
devices, where it costs microseconds. `quantization.qmap` is the reference
the tiling here is tested against.
"""

from __future__ import annotations

from typing import Callable, Dict

import jax
import jax.numpy as jnp

from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax.data.options import DataConfig


def qmap(tables: jax.Array, height: int, width: int, grey: bool, subsampling: str) -> jax.Array:
    """[B, 2, 8, 8] (luma, chroma) steps -> [B, H, W, K] float32 Q-maps (K = 1 grey, 2 colour)."""
    def tile(table, sv, sh):  # table[(i // sv) % 8, (j // sh) % 8] at pixel (i, j)
        block = jnp.repeat(jnp.repeat(table, sv, axis=1), sh, axis=2)  # [B, 8 sv, 8 sh]
        reps = (1, -(-height // (8 * sv)), -(-width // (8 * sh)))
        return jnp.tile(block, reps)[:, :height, :width]

    tables = tables.astype(jnp.float32)
    channels = [tile(tables[:, 0], 1, 1)]
    if not grey:
        channels.append(tile(tables[:, 1], *qz.SUBSAMPLING_FACTORS[subsampling]))
    return jnp.stack(channels, axis=-1) * jnp.float32(qz.QMAP_SCALE)


def make_prepare(config: DataConfig) -> Callable[[Dict[str, jax.Array]], Dict[str, jax.Array]]:
    """compact batch -> model batch: 'compressed' / 'target' uint8 -> float32 in [0, 1]; 'guide_tables' -> 'qmap'.

    Other fields pass through. Traceable: call it inside the jitted function that consumes the batch,
    or jit it alone.
    """
    p = config.patch_size

    def prepare(batch):
        out = dict(batch)
        for key in ("compressed", "target"):
            if key in out and out[key].dtype == jnp.uint8:
                out[key] = out[key].astype(jnp.float32) / 255.0
        if "qmap" in out:  # a codec mix's examples carry their own Q-maps
            out.pop("guide_tables", None)
        elif "guide_tables" in out:
            out["qmap"] = qmap(out.pop("guide_tables"), p, p, config.grey, config.subsampling)
        return out

    return prepare
