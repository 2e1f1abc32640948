"""The quality estimate: the effective IJG quality a trained estimator reads off a photo's pixels.

`QualityEstimate` runs the estimator network (`estimator`) on a few crops of
an image, each shown the file's luma table (another codec's map folded on
8x8), and returns the median of its predictions. For a photo saved once it
lands near the file's own quality; for a recompressed one near the coarser,
earlier save's; for a WebP, AVIF or HEIC converted from a JPEG (where the
estimator learned that codec: its export lists the codecs) near that JPEG's,
or 100 where there was none. What the network is then told is `guide`'s.
"""

from __future__ import annotations

import os
from typing import List, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np

from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax import codecs
from qgac_jax.models.estimator import MARGIN, MULTIPLE, grid_phase, luma

CROP = 136  # the estimator's training patch (128 after its grid alignment)
# On a whole photo a shifted (earlier) grid wins unless the file's own is more than 5% stronger: it finds
# more first saves of recompressed photos and keeps single JPEGs aligned (docs/recompressed.md).
GRID_TOLERANCE = 0.05
MAX_CROPS = 16


def crop_origins(height: int, width: int, size: Tuple[int, int], count: int = MAX_CROPS) -> List[Tuple[int, int]]:
    """Up to `count` origins of `size` crops spread evenly over the image, on the 8x8 grid."""
    per_axis = max(1, int(np.sqrt(count)))

    def axis(n: int, s: int):
        return sorted({int(round(i * (n - s) / max(per_axis - 1, 1))) // 8 * 8 for i in range(per_axis)})

    return [(y, x) for y in axis(height, size[0]) for x in axis(width, size[1])]


class QualityEstimate:
    """Callable: (pixels [H, W, C] float in [0, 1], the file's quantization) -> effective quality (float).

    `codecs`: the codecs whose files it learned to read (an export's config says; JPEG alone before
    the codec fine-tune).
    """

    def __init__(self, model, params, codecs: Tuple[str, ...] = ("jpeg",)):
        self.model, self.params, self.codecs = model, params, tuple(codecs)
        self._apply = jax.jit(lambda p, x, t, s: model.apply({"params": p}, x, t, s))
        self._phase = jax.jit(lambda x: grid_phase(luma(x[None])[..., 0], GRID_TOLERANCE)[0])

    @classmethod
    def from_checkpoint(cls, path) -> "QualityEstimate":
        from qgac_jax.models import exports

        model, params, config = exports.load_export(path)
        if config.get("kind") != "estimator":
            raise ValueError(f"{path} holds a restoration model, not a quality estimator")
        return cls(model, params, tuple(config.get("codecs", ("jpeg",))))

    def __call__(self, pixels: np.ndarray, quantization: codecs.Quantization) -> float:
        h, w = pixels.shape[:2]
        # Sides of each crop: CROP, or what the image allows (8 more than a multiple of 16, padded if tiny).
        size = tuple(min(CROP, max(MULTIPLE, (n - MARGIN) // MULTIPLE * MULTIPLE) + MARGIN) for n in (h, w))
        pad = ((0, max(size[0] - h, 0)), (0, max(size[1] - w, 0)), (0, 0))
        padded = np.pad(pixels, pad, mode="edge") if pad[0][1] or pad[1][1] else pixels
        # The grid shift from the whole image (far surer than from one crop); crops start on the 8x8 grid.
        shift = np.asarray(self._phase(jnp.asarray(padded, jnp.float32)))
        crops = np.stack([padded[y:y + size[0], x:x + size[1]]
                          for y, x in crop_origins(*padded.shape[:2], size)])  # [N, sy, sx, C]
        table = np.broadcast_to(luma_table(quantization, h, w).astype(np.float32), (len(crops), 8, 8))
        shifts = np.broadcast_to(shift, (len(crops), 2))
        predictions = np.asarray(self._apply(self.params, jnp.asarray(crops, jnp.float32), table, shifts))
        return float(np.median(predictions))


def luma_table(quantization: codecs.Quantization, height: int, width: int) -> qz.Table:
    """The [8, 8] luma table the estimator is shown: a JPEG's own, another codec's map folded on 8x8."""
    if quantization.codec == "jpeg":
        return quantization.luma
    return qz.fold_luma(quantization.qmap(max(height, 8), max(width, 8))[..., 0])


class PerCodec:
    """Callable like QualityEstimate: each file to the estimator of its codec (`by_codec`: codec -> estimator).

    Why: the estimator continued on WebP, AVIF and HEIC files reads double JPEGs less well than the one
    trained for JPEG alone (docs/model_cards.md), so restore keeps each where it is best.
    """

    def __init__(self, by_codec):
        self.by_codec = dict(by_codec)
        self.codecs = tuple(self.by_codec)

    def __call__(self, pixels: np.ndarray, quantization: codecs.Quantization) -> float:
        return self.by_codec[quantization.codec](pixels, quantization)


Choice = Union[None, str, os.PathLike, "QualityEstimate"]  # what Restorer's estimator= accepts


def resolve(choice: Choice):
    """"shipped", an export's path, a QualityEstimate (any callable) or None -> a callable or None.

    "shipped": the JPEG estimator for JPEGs and, where the package ships it, the codec one for the codecs
    it read (`PerCodec`).
    """
    from qgac_jax.models import shipped

    if isinstance(choice, str) and choice == "shipped":
        jpeg_path, codec_path = shipped.estimator_checkpoint(), shipped.codec_estimator_checkpoint()
        if jpeg_path is None or codec_path is None:
            return resolve(jpeg_path)
        jpeg_estimate, codec_estimate = QualityEstimate.from_checkpoint(jpeg_path), QualityEstimate.from_checkpoint(
            codec_path)
        return PerCodec({"jpeg": jpeg_estimate, **{c: codec_estimate for c in codec_estimate.codecs if c != "jpeg"}})
    if isinstance(choice, (str, os.PathLike)):
        return QualityEstimate.from_checkpoint(choice)
    return choice
