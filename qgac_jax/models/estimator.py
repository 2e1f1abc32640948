"""The quality estimator: which IJG quality explains the artifacts, from pixels and the file's luma table.

Why: a recompressed photo carries the tables of its last save, while its
worst artifacts come from an earlier, coarser one. The estimator looks at the
decoded luma and at the file's luma table and predicts the *effective*
quality: the IJG quality nearest the elementwise max of every table the image
went through (`quantization.equivalent_quality`). For a photo saved once it
should return the file's own quality; for one saved at 20 and again at 75,
about 20. Restore then guides the network with max(file tables, IJG tables of
the estimate).

Design:
- Grid alignment first. A photo re-saved after a crop carries the blocking
  of its first save on an 8x8 grid shifted by (dy, dx); the estimator finds
  the dominant grid (the pixel-column and pixel-row phases, mod 8, with the
  largest mean absolute difference across them: blocking edges) and crops the
  input so that grid starts at (0, 0). Single JPEGs and aligned double JPEGs
  keep (0, 0); the input loses 8 rows and columns either way.
- Two full-resolution 3x3 convolutions, then space-to-depth by 8 so every
  feature knows its position inside a block (a learned block transform),
  1x1 and 3x3 convolutions at 1/8 and 1/16 resolution, a global mean, and an
  MLP that also sees the log of the file's luma table.
Input sides must be 8 more than a multiple of 16 (136 in training); restore
takes the median over several crops.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from qgac_jax.models.grid import LUMA_WEIGHTS, MARGIN, MULTIPLE, grid_phase, luma  # noqa: F401 - (re-exported)

def align_to_grid(y: jax.Array, shift=None) -> jax.Array:
    """[B, H, W, 1] -> [B, H - 8, W - 8, 1], each image cropped so its grid starts at (0, 0).

    `shift` [B, 2] (dy, dx) says where the grid starts; None: `grid_phase` of each image.
    """
    b, h, w, _ = y.shape
    shift = grid_phase(y[..., 0]) if shift is None else jnp.asarray(shift, jnp.int32)  # [B, 2]
    crop = lambda img, s: jax.lax.dynamic_slice(img, (s[0], s[1], 0), (h - MARGIN, w - MARGIN, 1))  # noqa: E731
    return jax.vmap(crop)(y, shift)


class QualityEstimator(nn.Module):
    """(image [B, H, W, 1 or 3] in [0, 1], file luma table [B, 8, 8] of steps) -> quality [B] in [1, 100].

    H and W are 8 more than a multiple of 16 (see the module docstring). `shift` [B, 2]: where
    the blocking grid starts, when known from more of the image than the input (restore detects it
    on the whole photo); None: detected on the input.
    """

    stem: int = 16
    widths: Sequence[int] = (128, 128)
    hidden: int = 128
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, image: jax.Array, luma_table: jax.Array, shift=None, aligned: bool = False) -> jax.Array:
        """`aligned`: `image` is already luma cropped to its grid, [B, H - 8, W - 8, 1] (what restore feeds, having
        found the grid on the whole photo: `quality_estimate`, and the estimator's ONNX graph)."""
        b, h, w = image.shape[:3]
        margin = 0 if aligned else MARGIN
        symbolic = not isinstance(h, int)  # (the ONNX conversion's sides, which its caller checks)
        if not symbolic and ((h - margin) % MULTIPLE or (w - margin) % MULTIPLE or min(h, w) < margin + MULTIPLE):
            raise ValueError(f"estimator input sides must be {margin} more than a multiple of {MULTIPLE} "
                             f"(e.g. {128 + margin}), got {h}x{w}")
        if aligned:
            x = image.astype(jnp.float32)
        else:
            x = align_to_grid(luma(image.astype(jnp.float32)), shift)  # [B, H - 8, W - 8, 1]
            h, w = h - MARGIN, w - MARGIN
        x = (x - 0.5).astype(self.dtype)
        x = nn.relu(nn.Conv(self.stem, (3, 3), dtype=self.dtype, name="stem0")(x))
        x = nn.relu(nn.Conv(self.stem, (3, 3), dtype=self.dtype, name="stem1")(x))
        x = x.reshape(b, h // 8, 8, w // 8, 8, self.stem).transpose(0, 1, 3, 2, 4, 5)
        x = x.reshape(b, h // 8, w // 8, 64 * self.stem)  # [B, H/8, W/8, 64 * stem]: one vector per block
        x = nn.relu(nn.Conv(self.widths[0], (1, 1), dtype=self.dtype, name="block")(x))
        for i, width in enumerate(self.widths):
            x = nn.relu(nn.Conv(width, (3, 3), dtype=self.dtype, name=f"conv{i}")(x))
            if i < len(self.widths) - 1:
                x = nn.relu(nn.Conv(self.widths[i + 1], (3, 3), strides=(2, 2), dtype=self.dtype,
                                    name=f"down{i}")(x))
        pooled = jnp.mean(x.astype(jnp.float32), axis=(1, 2))  # [B, C]
        table = jnp.log(jnp.clip(luma_table.reshape(b, 64).astype(jnp.float32), 1.0, 255.0)) / jnp.log(255.0)
        hidden = nn.relu(nn.Dense(self.hidden, name="mlp0")(jnp.concatenate([pooled, table], -1)))
        hidden = nn.relu(nn.Dense(self.hidden, name="mlp1")(hidden))
        return 1.0 + 99.0 * nn.sigmoid(nn.Dense(1, name="out")(hidden)[:, 0])  # [B]
