"""What quantization to tell the network: the file's tables, a user's quality, or the file's and an estimate.

`QualityEstimate` runs the quality estimator (models/estimator.py) on a few
crops of an image and returns the effective IJG quality it predicts;
`guide_tables` combines it with the file's tables the way training combined
the two saves of a double JPEG: the elementwise max. For a photo saved once
the estimate lands near the file's own quality and the guide stays the
file's tables; for a recompressed one it is the coarser, earlier save's.

A WebP, AVIF or HEIC converted from an earlier JPEG holds that JPEG's
8x8 blocking under its own, finer quantizer. An estimator trained on such
files (its export lists the codecs it read in training) predicts the
earlier JPEG's quality, or 100 where there was none, and `AfterJpeg`
guides the network with the elementwise max of the file's map and that
JPEG's.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from qgac_jax import quantization as qz
from qgac_jax import codecs
from qgac_jax.codecs import jpeg
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
        from qgac_jax import checkpointing

        model, params, config = checkpointing.load_export(path)
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


def ijg_quality(estimate: float) -> int:
    """An estimate as the IJG quality (1..100) whose tables the network is told."""
    return int(np.clip(round(estimate), 1, 100))


def guide_tables(quantization: jpeg.JpegQuantization, quality: float) -> jpeg.JpegQuantization:
    """The file's tables raised, entry by entry, to at least the IJG tables of `quality` (rounded)."""
    q = ijg_quality(quality)
    luma, chroma = qz.effective_tables((quantization.luma, quantization.chroma), qz.ijg_tables(q))
    return jpeg.JpegQuantization(luma, chroma, quantization.subsampling)


def luma_table(quantization: codecs.Quantization, height: int, width: int) -> qz.Table:
    """The [8, 8] luma table the estimator is shown: a JPEG's own, another codec's map folded on 8x8."""
    if quantization.codec == "jpeg":
        return quantization.luma
    return qz.fold_luma(quantization.qmap(max(height, 8), max(width, 8))[..., 0])


@dataclasses.dataclass(frozen=True)
class AfterJpeg:
    """A WebP, AVIF or HEIC file's quantization raised to that of the JPEG it was converted from.

    The Q-map is the elementwise max of the file's and the JPEG's (IJG tables of `quality`, 4:2:0, on the
    file's grid), as a double JPEG's guide is the max of its two saves' tables; the rest of the contract
    (`codecs.Quantization`) follows the file.
    """

    file: codecs.Quantization
    earlier: jpeg.JpegQuantization
    quality: int

    @classmethod
    def of(cls, quantization: codecs.Quantization, quality: float) -> "AfterJpeg":
        q = ijg_quality(quality)
        return cls(quantization, jpeg.JpegQuantization.from_quality(q, grey=quantization.is_grey), q)

    @property
    def codec(self) -> str:
        return self.file.codec

    @property
    def is_grey(self) -> bool:
        return self.file.is_grey

    @property
    def block(self) -> int:
        return int(np.lcm(self.file.block, self.earlier.block))

    def qmap(self, height: int, width: int) -> np.ndarray:
        own = self.file.qmap(height, width)  # [H, W, K]
        return np.maximum(own, self.earlier.qmap(height, width)[..., :own.shape[-1]])

    def transformed(self, transpose: bool, flip_v: bool, flip_h: bool) -> Optional["AfterJpeg"]:
        moved = (self.file.transformed(transpose, flip_v, flip_h), self.earlier.transformed(transpose, flip_v, flip_h))
        return None if None in moved else AfterJpeg(*moved, self.quality)

    def describe(self) -> str:
        return f"{self.file.describe()}, after a JPEG of about quality {self.quality}"


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
