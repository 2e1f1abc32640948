"""Self-ensemble: the mean restoration of the 8 flips and transposes of an image, each undone.

JPEG blocks stay JPEG blocks under these moves if the image is first padded
to whole (chroma) blocks: a flipped block has the same quantization (its DCT
coefficients only change sign), a transposed one the transposed table and
swapped subsampling. So every pass gets the Q-map of its own grid. 8 times
the work, for a small gain (docs/restoring.md).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from qgac_jax import quantization as qz

RestorePixels = Callable[[np.ndarray, np.ndarray], np.ndarray]  # [H, W, C], [H, W, K] Q-map -> [H, W, C]


def _transposed(q: qz.JpegQuantization, swapped) -> qz.JpegQuantization:
    return qz.JpegQuantization(q.luma.T, None if q.chroma is None else q.chroma.T,
                               None if q.chroma is None else swapped)


def restore_ensemble(restore_pixels: RestorePixels, pixels: np.ndarray,
                     quantization: qz.JpegQuantization) -> np.ndarray:
    """[H, W, C] float in [0, 1] -> the mean of the restorations of its 8 flips and transposes."""
    h, w = pixels.shape[:2]
    factors = qz.SUBSAMPLING_FACTORS.get(quantization.subsampling, (1, 1))
    swapped = {f: n for n, f in qz.SUBSAMPLING_FACTORS.items()}.get(factors[::-1])
    multiple = 8 * max(factors)
    padded = np.pad(pixels, ((0, (-h) % multiple), (0, (-w) % multiple), (0, 0)), mode="edge")
    total = np.zeros(padded.shape, np.float32)
    passes = 0
    for transpose in (False, True):
        if transpose and quantization.chroma is not None and swapped is None:
            continue  # a subsampling whose transpose libjpeg cannot name (4:1:1): flips only
        q = _transposed(quantization, swapped) if transpose else quantization
        for flip_v in (False, True):
            for flip_h in (False, True):
                x = padded.transpose(1, 0, 2) if transpose else padded
                x = x[::-1] if flip_v else x
                x = np.ascontiguousarray(x[:, ::-1] if flip_h else x)
                r = restore_pixels(x, q.qmap(*x.shape[:2]))
                r = r[:, ::-1] if flip_h else r
                r = r[::-1] if flip_v else r
                total += r.transpose(1, 0, 2) if transpose else r
                passes += 1
    return (total / passes)[:h, :w]
