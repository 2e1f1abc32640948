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

import functools
from typing import Optional, Tuple

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


def fold_luma(luma_map) -> Table:
    """[H, W] luma Q-map (steps * QMAP_SCALE) -> int32 [8, 8]: its mean over each position of the 8x8 period.

    The one 8x8 "table" every codec's file gives the quality estimator: a JPEG's luma table exactly (its map
    is that table tiled), a WebP's 4x4 steps averaged over its segments, HEVC's or AV1's flat step.
    """
    m = np.asarray(luma_map, np.float64)
    h, w = m.shape[0] // 8 * 8, m.shape[1] // 8 * 8
    if not h or not w:
        raise ValueError(f"a Q-map of {m.shape[0]}x{m.shape[1]} is smaller than one 8x8 block")
    folded = m[:h, :w].reshape(h // 8, 8, w // 8, 8).mean(axis=(0, 2)) / QMAP_SCALE
    return np.clip(np.round(folded), 1, 255).astype(np.int32)


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
