"""JPEG quantization tables and the quantization guide map (Q-map).

Everything here is NumPy on the host: tables are tiny and the Q-map is built
once per image, so there is no reason to trace it.

Conventions (used throughout the package):
- Tables are ``int32`` arrays of shape [8, 8] in *natural* (row-major
  frequency) order, as Pillow's ``Image.quantization`` returns them and as
  ``Image.save(qtables=...)`` takes them; entry [u, v] is the step of vertical
  frequency u and horizontal frequency v. Baseline JPEG steps lie in 1..255.
- Chroma subsampling is named as usual ("4:4:4", "4:2:2", "4:2:0", ...) and
  described by the (vertical, horizontal) number of luma pixels one chroma
  sample covers: 4:2:0 -> (2, 2), 4:2:2 -> (1, 2), 4:4:4 -> (1, 1).
- The Q-map holds ``step * QMAP_SCALE`` with ``QMAP_SCALE = 1 / 255``, so it
  lies in (0, 1] like the images the network sees.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import os
from typing import Optional, Tuple, Union

import numpy as np

# The Q-map holds steps divided by 255 (the largest baseline step): the
# network then sees Q-map and image on the same [0, 1] scale.
QMAP_SCALE = 1.0 / 255.0

# ITU-T T.81 Annex K, table K.1 (luminance) and K.2 (chrominance), natural order.
ANNEX_K_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int32,
)
ANNEX_K_CHROMA = np.array(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
        [99, 99, 99, 99, 99, 99, 99, 99],
    ],
    dtype=np.int32,
)

# Subsampling name -> (vertical, horizontal) luma pixels per chroma sample.
SUBSAMPLING_FACTORS = {
    "4:4:4": (1, 1),
    "4:4:0": (2, 1),
    "4:2:2": (1, 2),
    "4:2:0": (2, 2),
    "4:1:1": (1, 4),
}
# Pillow's `subsampling=` save argument for the names it can write.
PILLOW_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}

Table = np.ndarray  # [8, 8] int32, natural order


def validate_table(table, name: str = "quantization table") -> Table:
    """Returns `table` as an [8, 8] int32 array, or raises a ValueError naming the problem."""
    arr = np.asarray(table)
    if arr.size == 64 and arr.shape in ((64,), (8, 8)):
        arr = arr.reshape(8, 8)
    else:
        raise ValueError(f"{name} must have 64 entries as [8, 8] or [64], got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        raise ValueError(f"{name} must hold whole numbers")
    if arr.min() < 1:
        raise ValueError(f"{name} has step {arr.min()} < 1; JPEG steps are 1..255")
    if arr.max() > 255:
        raise ValueError(f"{name} has step {arr.max()} > 255; baseline JPEG steps are 1..255")
    return arr.astype(np.int32)


def validate_quality(quality) -> int:
    if isinstance(quality, bool) or not float(quality).is_integer():
        raise ValueError(f"JPEG quality must be a whole number in 1..100, got {quality!r}")
    q = int(quality)
    if not 1 <= q <= 100:
        raise ValueError(f"JPEG quality must be in 1..100, got {q}")
    return q


def ijg_scale(quality: int) -> int:
    """The IJG percentage scale factor of a quality (libjpeg's jpeg_quality_scaling)."""
    q = validate_quality(quality)
    return 5000 // q if q < 50 else 200 - 2 * q


def scale_table(base: Table, scale_percent: int) -> Table:
    """Scales a base table as libjpeg does (force_baseline: steps clamped to 1..255)."""
    steps = (np.asarray(base, np.int64) * int(scale_percent) + 50) // 100
    return np.clip(steps, 1, 255).astype(np.int32)


def ijg_tables(quality: int) -> Tuple[Table, Table]:
    """(luma, chroma) tables that libjpeg (Pillow, TensorFlow) writes for `quality`."""
    scale = ijg_scale(quality)
    return scale_table(ANNEX_K_LUMA, scale), scale_table(ANNEX_K_CHROMA, scale)


@functools.lru_cache(maxsize=1)
def _ijg_log_luma() -> np.ndarray:
    """[100, 8, 8] float64: log steps of the IJG luma table of quality 1..100."""
    return np.log(np.stack([ijg_tables(q)[0] for q in range(1, 101)]).astype(np.float64))


def equivalent_quality(luma) -> int:
    """The IJG quality (1..100) whose luma table is nearest to `luma` (mean absolute log-step difference).

    Exact for IJG tables; for other tables (cameras, editors, random training
    tables, the effective table of a twice-compressed image) the one number a
    user can read and pass back as `--quality`.
    """
    log_t = np.log(validate_table(luma, "luma table").astype(np.float64))
    return int(np.argmin(np.abs(_ijg_log_luma() - log_t).mean(axis=(1, 2)))) + 1


def effective_tables(file_tables, first_tables):
    """Elementwise max of two (luma, chroma) table pairs: the quantization a twice-compressed image has seen.

    An image saved with steps q1 and then with q2 has lost at least what the
    coarser of the two removed at each frequency, so the guide map of a
    recompressed photo is max(q1, q2) per entry (exactly the file's tables for
    an image compressed once).
    """
    return tuple(None if f is None else np.maximum(validate_table(f), validate_table(s)).astype(np.int32)
                 for f, s in zip(file_tables, first_tables))


@dataclasses.dataclass(frozen=True)
class JpegQuantization:
    """What a decoder needs to know about how a JPEG was quantized.

    Attributes:
      luma: [8, 8] int32 table of the first (Y or grey) component.
      chroma: [8, 8] int32 chroma table (Cb's; the elementwise max of Cb's and Cr's where they differ); None for grey.
      subsampling: "4:2:0", "4:2:2", "4:4:4", ... for colour; None for grey.
    """

    luma: Table
    chroma: Optional[Table] = None
    subsampling: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "luma", validate_table(self.luma, "luma table"))
        if self.chroma is not None:
            object.__setattr__(self, "chroma", validate_table(self.chroma, "chroma table"))
            if self.subsampling not in SUBSAMPLING_FACTORS:
                raise ValueError(
                    f"unknown chroma subsampling {self.subsampling!r}; "
                    f"expected one of {sorted(SUBSAMPLING_FACTORS)}"
                )
        elif self.subsampling is not None:
            raise ValueError("a grey (luma-only) quantization has no chroma subsampling")

    @property
    def is_grey(self) -> bool:
        return self.chroma is None

    @classmethod
    def from_quality(cls, quality: int, grey: bool = False, subsampling: str = "4:2:0"):
        luma, chroma = ijg_tables(quality)
        return cls(luma) if grey else cls(luma, chroma, subsampling)

    def qmap(self, height: int, width: int) -> np.ndarray:
        """The [height, width, K] Q-map of this quantization (see `qmap`)."""
        return qmap(self.luma, self.chroma, height, width, self.subsampling)


def _subsampling_name(layers) -> str:
    """Names the subsampling from Pillow's per-component (id, h, v, table) layer list."""
    (_, h0, v0, _), (_, h1, v1, _) = layers[0], layers[1]
    if h0 % h1 or v0 % v1:
        raise ValueError(f"unsupported JPEG sampling factors {[layer[1:3] for layer in layers]}")
    factors = (v0 // v1, h0 // h1)
    for name, f in SUBSAMPLING_FACTORS.items():
        if f == factors:
            return name
    raise ValueError(f"unsupported JPEG chroma subsampling (vertical, horizontal) = {factors}")


Source = Union[str, os.PathLike, bytes, bytearray, memoryview]


def read_quantization(source: Source) -> JpegQuantization:
    """Reads the quantization tables and chroma subsampling of a JPEG file or byte string.

    Uses Pillow's parser (tables in natural order). Each component's own table
    index is honoured, so files that store tables in an unusual order still map
    correctly. Raises ValueError for anything that is not a readable baseline
    grey or YCbCr JPEG.
    """
    from PIL import Image, JpegImagePlugin, UnidentifiedImageError

    name = "<bytes>" if isinstance(source, (bytes, bytearray, memoryview)) else os.fspath(source)
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            img = Image.open(io.BytesIO(bytes(source)))
        else:
            img = Image.open(source)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{name}: not a readable JPEG ({err})") from err
    with img:
        if not isinstance(img, JpegImagePlugin.JpegImageFile):
            raise ValueError(f"{name}: not a JPEG file (Pillow reads it as {img.format})")
        tables = getattr(img, "quantization", None) or {}
        layers = getattr(img, "layer", None) or []
        if img.mode not in ("L", "RGB") or len(layers) not in (1, 3):
            raise ValueError(
                f"{name}: unsupported JPEG colour mode {img.mode} with {len(layers)} components "
                "(grey and YCbCr are supported)"
            )

        def table_of(component: int) -> Table:
            index = layers[component][3]
            if index not in tables:
                raise ValueError(f"{name}: component {component} uses missing table {index}")
            return np.asarray(tables[index], np.int32).reshape(8, 8)

        if len(layers) == 1:
            return JpegQuantization(table_of(0))
        # One chroma channel in the Q-map: where Cb and Cr have tables of their own, the coarser step at each
        # frequency (the artifacts follow it).
        return JpegQuantization(table_of(0), np.maximum(table_of(1), table_of(2)), _subsampling_name(layers))


def random_tables(rng: np.random.Generator, kind: str = "any") -> Tuple[Table, Table]:
    """Draws a (luma, chroma) table pair for training beyond the IJG family.

    Three families, chosen uniformly when `kind == "any"`:
    - "ijg_jitter": the IJG tables of a quality drawn from 5..95, each step
      multiplied by an independent log-uniform factor in [0.7, 1.4]: close to
      what real encoders (cameras, Photoshop) write.
    - "annex_k_power": Annex K tables scaled by a random global factor and tilted
      by (1 + (u + v) / 14) ** gamma, gamma in [-1, 1]: steps that grow faster
      or slower with frequency than IJG's.
    - "smooth": a random monotone surface a + b * ((u + v) / 14) ** p plus
      noise, independent for luma and chroma: tables no standard encoder makes.
    All steps are rounded and clamped to 1..255 (baseline).
    """
    kinds = ("ijg_jitter", "annex_k_power", "smooth")
    if kind == "any":
        kind = kinds[rng.integers(len(kinds))]
    if kind not in kinds:
        raise ValueError(f"unknown random table kind {kind!r}; expected 'any' or one of {kinds}")
    freq = (np.arange(8)[:, None] + np.arange(8)[None, :]) / 14.0  # [8, 8] in [0, 1]

    def finish(t):
        return np.clip(np.round(t), 1, 255).astype(np.int32)

    if kind == "ijg_jitter":
        luma, chroma = ijg_tables(int(rng.integers(5, 96)))
        jitter = np.exp(rng.uniform(np.log(0.7), np.log(1.4), size=(2, 8, 8)))
        return finish(luma * jitter[0]), finish(chroma * jitter[1])
    if kind == "annex_k_power":
        scale = np.exp(rng.uniform(np.log(0.1), np.log(5.0)))
        gamma = rng.uniform(-1.0, 1.0, size=2)
        tilt = [(1.0 + freq) ** g for g in gamma]
        return finish(ANNEX_K_LUMA * scale * tilt[0]), finish(ANNEX_K_CHROMA * scale * tilt[1])

    def surface():
        a = np.exp(rng.uniform(0.0, np.log(60.0)))
        b = rng.uniform(0.0, 200.0)
        p = rng.uniform(0.5, 3.0)
        noise = rng.normal(0.0, 0.1, size=(8, 8))
        return (a + b * freq**p) * np.exp(noise)

    return finish(surface()), finish(surface())


def qmap(
    luma,
    chroma=None,
    height: int = 0,
    width: int = 0,
    subsampling: Optional[str] = "4:2:0",
    scale: float = QMAP_SCALE,
) -> np.ndarray:
    """Tiles quantization tables over an image: the network's guide map.

    Channel 0 at pixel (i, j) holds luma[i % 8, j % 8]. For colour (chroma
    given) channel 1 holds chroma[(i // sv) % 8, (j // sh) % 8], where (sv, sh)
    are the subsampling factors: one chroma block covers 16x16 pixels at 4:2:0,
    8 rows x 16 columns at 4:2:2, 8x8 at 4:4:4. Values are steps * `scale`.

    Returns:
      float32 [height, width, K], K = 1 (grey) or 2 (colour).
    """
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"Q-map size must be positive, got {height}x{width}")
    height, width = int(height), int(width)

    def tile(table, sv, sh):  # table[(i // sv) % 8, (j // sh) % 8] for every pixel (i, j)
        block = np.repeat(np.repeat(table, sv, axis=0), sh, axis=1)
        return np.tile(block, (-(-height // (8 * sv)), -(-width // (8 * sh))))[:height, :width]

    channels = [tile(validate_table(luma, "luma table"), 1, 1)]
    if chroma is not None:
        chroma = validate_table(chroma, "chroma table")
        if subsampling not in SUBSAMPLING_FACTORS:
            raise ValueError(
                f"unknown chroma subsampling {subsampling!r}; expected one of {sorted(SUBSAMPLING_FACTORS)}"
            )
        channels.append(tile(chroma, *SUBSAMPLING_FACTORS[subsampling]))
    return (np.stack(channels, axis=-1) * float(scale)).astype(np.float32)  # f64 product, then round once
