"""Where a photo's 8x8 blocking grid starts, and the luma it is looked for in: numpy or JAX arrays alike.

The quality estimator (`estimator`) crops its input to the grid found here;
restore finds it on the whole photo first (`quality_estimate`), in numpy
where the estimator runs in ONNX Runtime and no JAX is installed, in JAX
where it is traced; training finds it in JAX. One function for all three.
"""

from __future__ import annotations

import numpy as np

# RGB -> luma as JPEG computes it (ITU-R BT.601, full range).
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
MULTIPLE = 16  # input sides, less the 8 the grid alignment takes, must be multiples of this
MARGIN = 8


def grid_phase(y, tolerance: float = 0.0):
    """[B, H, W] luma -> [B, 2] int32 (dy, dx) in 0..7: where the strongest 8x8 blocking grid starts.

    Blocking puts large differences between pixel rows (columns) 8k + d - 1 and
    8k + d; along each axis the phase with the largest mean difference wins.
    `tolerance` > 0 prefers a shifted grid (an earlier save's) unless the file's
    own grid (phase 0) is stronger by more than that fraction: when a coarse
    first save and a finer second one compete, the first one's is the one that
    matters.
    """
    xp = _module(y)

    def phase(diff, axis_len):  # diff [B, n, L - 1] along the last axis
        index = xp.arange(axis_len - 1) % 8
        onehot = (index[:, None] == xp.arange(8)[None, :]).astype(diff.dtype)  # [L - 1, 8]
        means = xp.einsum("bnl,lk->bk", diff, onehot) / (onehot.sum(0) * diff.shape[1])
        means = xp.roll(means, 1, axis=-1)  # index = where the grid starts: difference k sits before start k + 1
        shifted = 1 + xp.argmax(means[:, 1:], axis=-1).astype(xp.int32)
        best = xp.take_along_axis(means, shifted[:, None], axis=-1)[:, 0]
        return xp.where(best > (1.0 - tolerance) * means[:, 0], shifted, 0)  # ties: the file's grid

    dx = phase(xp.abs(xp.diff(y, axis=2)), y.shape[2])
    dy = phase(xp.abs(xp.diff(y, axis=1)).transpose(0, 2, 1), y.shape[1])
    return xp.stack([dy, dx], axis=-1)


def luma(image):
    """[..., 3] RGB or [..., 1] grey in [0, 1] -> [..., 1] luma."""
    xp = _module(image)
    if image.shape[-1] == 1:
        return image
    return xp.tensordot(image, xp.asarray(LUMA_WEIGHTS, image.dtype), axes=([-1], [0]))[..., None]


def _module(array):
    """numpy for numpy arrays; jax.numpy for JAX's (imported only then)."""
    if isinstance(array, (np.ndarray, np.generic)):
        return np
    import jax.numpy as jnp

    return jnp
