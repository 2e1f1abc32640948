"""Self-ensemble: the mean restoration of the 8 flips and transposes of an image, each undone.

A codec's blocks stay blocks under these moves if the image is first padded
to whole blocks (JPEG's chroma blocks, WebP's macroblocks): a flipped JPEG
block has the same quantization (its DCT coefficients only change sign), a
transposed one the transposed table and swapped subsampling; WebP's segment
map moves with the macroblocks. So every pass gets the Q-map of its own grid
(each codec's `transformed`). 8 times the work, for a small gain
(docs/restoring.md).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from qgac_jax import codecs


RestorePixels = Callable[[np.ndarray, np.ndarray], np.ndarray]  # [H, W, C], [H, W, K] Q-map -> [H, W, C]


def restore_ensemble(restore_pixels: RestorePixels, pixels: np.ndarray, quantization: codecs.Quantization
                     ) -> np.ndarray:
    """[H, W, C] float in [0, 1] -> the mean of the restorations of its 8 flips and transposes.

    `quantization`: the file's (the `codecs` contract): its `block` says what to pad to, `transformed`
    the quantization of each moved image (None: that move is skipped).
    """
    h, w = pixels.shape[:2]
    multiple = quantization.block
    padded = np.pad(pixels, ((0, (-h) % multiple), (0, (-w) % multiple), (0, 0)), mode="edge")
    total = np.zeros(padded.shape, np.float32)
    passes = 0
    for transpose in (False, True):
        for flip_v in (False, True):
            for flip_h in (False, True):
                q = quantization.transformed(transpose, flip_v, flip_h)
                if q is None:
                    continue  # e.g. a subsampling whose transpose libjpeg cannot name (4:1:1): flips only
                x = padded.transpose(1, 0, 2) if transpose else padded
                x = x[::-1] if flip_v else x
                x = np.ascontiguousarray(x[:, ::-1] if flip_h else x)
                r = restore_pixels(x, q.qmap(*x.shape[:2]))
                r = r[:, ::-1] if flip_h else r
                r = r[::-1] if flip_v else r
                total += r.transpose(1, 0, 2) if transpose else r
                passes += 1
    return (total / passes)[:h, :w]
