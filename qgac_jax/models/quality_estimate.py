"""The quality estimate: the effective IJG quality a trained estimator reads off a photo's pixels.

`QualityEstimate` runs the estimator network (`estimator`) on a few crops of
an image, each shown the file's luma table (another codec's map folded on
8x8), and returns the median of its predictions. For a photo saved once it
lands near the file's own quality; for a recompressed one near the coarser,
earlier save's; for a WebP, AVIF or HEIC converted from a JPEG (where the
estimator learned that codec: its export lists the codecs) near that JPEG's,
or 100 where there was none. What the network is then told is `guide`'s.

The grid and the crops are found here in numpy; the network runs in JAX
(`from_checkpoint`) or in ONNX Runtime (`graphs.sessions.estimate`, what
restoring on a CPU uses: no JAX imported), the two agreeing
(tests/test_quality_estimate.py).
"""

from __future__ import annotations

from typing import Callable, List, Tuple

import numpy as np

from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax import codecs
from qgac_jax.models.grid import MARGIN, MULTIPLE, grid_phase, luma

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


Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]  # luma on its grid [N, h, w, 1], tables [N, 8, 8] -> [N]


class QualityEstimate:
    """Callable: (pixels [H, W, C] float in [0, 1], the file's quantization) -> effective quality (float).

    `predict`: the estimator network on luma crops already cut on the photo's grid; `codecs`: the codecs whose
    files it learned to read (an export's config says; JPEG alone before the codec fine-tune).
    """

    def __init__(self, predict: Predict, codecs: Tuple[str, ...] = ("jpeg",), engine: str = "JAX"):
        self.predict, self.codecs, self.engine = predict, tuple(codecs), engine

    @classmethod
    def of_model(cls, model, params, codecs: Tuple[str, ...] = ("jpeg",)) -> "QualityEstimate":
        """The Flax estimator `model` with `params`, run by JAX."""
        import jax

        apply = jax.jit(lambda p, x, t: model.apply({"params": p}, x, t, aligned=True))
        return cls(lambda x, t: np.asarray(apply(params, x, t)), codecs)

    @classmethod
    def from_checkpoint(cls, path) -> "QualityEstimate":
        """An estimator's export, run by JAX."""
        from qgac_jax.models import exports

        model, params, config = exports.load_export(path)
        if config.get("kind") != "estimator":
            raise ValueError(f"{path} holds a restoration model, not a quality estimator")
        return cls.of_model(model, params, tuple(config.get("codecs", ("jpeg",))))

    def __call__(self, pixels: np.ndarray, quantization: codecs.Quantization) -> float:
        h, w = pixels.shape[:2]
        # Sides of each crop: CROP, or what the image allows (8 more than a multiple of 16, padded if tiny).
        size = tuple(min(CROP, max(MULTIPLE, (n - MARGIN) // MULTIPLE * MULTIPLE) + MARGIN) for n in (h, w))
        pad = ((0, max(size[0] - h, 0)), (0, max(size[1] - w, 0)), (0, 0))
        padded = np.pad(pixels, pad, mode="edge") if pad[0][1] or pad[1][1] else pixels
        y = luma(np.asarray(padded, np.float32))[..., 0]  # [H, W]
        # The grid shift from the whole image (far surer than from one crop); crops start on the 8x8 grid and are
        # cut where the photo's grid starts, 8 pixels smaller.
        dy, dx = (int(v) for v in grid_phase(y[None], GRID_TOLERANCE)[0])
        sy, sx = size[0] - MARGIN, size[1] - MARGIN
        crops = np.stack([y[oy + dy:oy + dy + sy, ox + dx:ox + dx + sx]
                          for oy, ox in crop_origins(*y.shape, size)])[..., None]  # [N, sy, sx, 1]
        table = np.broadcast_to(luma_table(quantization, h, w).astype(np.float32), (len(crops), 8, 8))
        return float(np.median(self.predict(crops, np.ascontiguousarray(table))))


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
