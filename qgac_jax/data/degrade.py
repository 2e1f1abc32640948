"""The JPEG degradation recipe in NumPy + Pillow (libjpeg): single and double JPEG; and single saves by the
other codecs photos come in (WebP, AVIF, HEIC), for evaluation.

Why double JPEG: photos people bring were often saved at q1, edited or
shifted, and saved again at q2. The file then holds q2's tables while the
worst artifacts are q1's, possibly on an 8x8 grid shifted by (dy, dx). The
model is trained on both, and told the *effective* quantization: the
elementwise max of the two table pairs (`quantization.effective_tables`),
which is the file's tables for a single JPEG.

A shifted double JPEG needs a crop 8 pixels larger than the patch: the first
save sees all of it, the second the patch at (dy, dx), and the clean target
is the same window of the original.
"""

from __future__ import annotations

import io
from typing import Dict, Tuple

import numpy as np
from PIL import Image

from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax import codecs
from qgac_jax.codecs import CODECS, heif  # CODECS: what `codec_encode` writes: libjpeg, libwebp, libavif, x265
from qgac_jax.data import motion
from qgac_jax.data.options import ALL_CODECS, DataConfig
from qgac_jax.data.sources import to_array


def pillow_encode(image: np.ndarray, luma: np.ndarray, chroma: np.ndarray, subsampling: str) -> bytes:
    """JPEG bytes of a uint8 [H, W, 1 or 3] image with explicit tables, through Pillow/libjpeg."""
    pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    tables = [luma.ravel().tolist()] + ([] if image.shape[-1] == 1 else [chroma.ravel().tolist()])
    buf = io.BytesIO()
    kwargs = {} if image.shape[-1] == 1 else {"subsampling": qz.PILLOW_SUBSAMPLING[subsampling]}
    pil.save(buf, format="JPEG", qtables=tables, **kwargs)
    return buf.getvalue()


def pillow_decode(data: bytes, grey: bool) -> np.ndarray:
    """uint8 [H, W, 1 or 3] pixels of JPEG bytes, decoded by Pillow as restore and evaluation decode."""
    with Image.open(io.BytesIO(data)) as img:
        return to_array(img, grey)


_PILLOW_FORMATS = {"webp": "WEBP", "avif": "AVIF", "heic": "HEIF"}


def _heif_plugin() -> None:
    """pillow-heif's HEIF reader and writer in Pillow (the extra `test` installs it), or a ValueError."""
    if not heif.register_pillow_plugin():
        raise ValueError("HEIC needs pillow-heif: pip install pillow-heif")


def codec_encode(image: np.ndarray, codec: str, quality: int) -> bytes:
    """The bytes of a uint8 [H, W, 1 or 3] image saved by `codec` at the encoder's own `quality` (1..100)."""
    if codec == "jpeg":
        return pillow_encode(image, *qz.ijg_tables(quality), "4:2:0")
    if codec not in _PILLOW_FORMATS:
        raise ValueError(f"unknown codec {codec!r}: one of {', '.join(CODECS)}")
    if codec == "heic":
        _heif_plugin()
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format=_PILLOW_FORMATS[codec],
                                                                           quality=int(quality))
    return buf.getvalue()


def codec_decode(data: bytes, grey: bool) -> np.ndarray:
    """uint8 [H, W, 1 or 3] pixels of a JPEG, WebP, AVIF or HEIC file, as Pillow (with pillow-heif) decodes them."""
    if heif.is_heic(data):
        _heif_plugin()
    return pillow_decode(data, grey)


def draw_tables(rng: np.random.Generator, quality: int, use_random: bool) -> Tuple[np.ndarray, np.ndarray]:
    """(luma, chroma): random tables, or IJG's at `quality`."""
    return qz.random_tables(rng) if use_random else qz.ijg_tables(int(quality))


def compress_twice(crop: np.ndarray, first: Tuple[np.ndarray, np.ndarray], second: Tuple[np.ndarray, np.ndarray],
                   shift: Tuple[int, int], size: Tuple[int, int], subsampling: str) -> Tuple[bytes, np.ndarray]:
    """(JPEG bytes, clean target): `crop` saved with `first`, cut at `shift` to `size`, saved with `second`."""
    dy, dx = shift
    h, w = size
    once = pillow_decode(pillow_encode(crop, *first, subsampling), crop.shape[-1] == 1)
    return pillow_encode(np.ascontiguousarray(once[dy:dy + h, dx:dx + w]), *second, subsampling), \
        np.ascontiguousarray(crop[dy:dy + h, dx:dx + w])


def draw_first(config: DataConfig, rng: np.random.Generator):
    """(first save's (luma, chroma) tables, grid shift (dy, dx)) of a double JPEG.

    The shift is (0, 0) (aligned grids) or, with probability p_shift, one of the 63 others.
    """
    quality = int(rng.integers(config.first_q_min, config.first_q_max + 1))
    tables = draw_tables(rng, quality, rng.random() < config.p_random_table)
    shift = (0, 0)
    if rng.random() < config.p_shift:
        s = int(rng.integers(1, 64))
        shift = (s // 8, s % 8)
    return tables, shift


def jpeg_pair(config: DataConfig, crop: np.ndarray, tables, double: bool, rng: np.random.Generator):
    """(JPEG bytes, clean target [P, P, C], guide tables, grid shift) of a crop saved once with `tables`, or twice.

    The grid shift [2] is where the 8x8 grid of the coarser save starts in the patch: (0, 0) unless the
    first save is the coarser one (in luma) and was shifted.
    """
    p = config.patch_size
    if not double:
        target = np.ascontiguousarray(crop[:p, :p])
        return pillow_encode(target, *tables, config.subsampling), target, tables, np.zeros(2, np.int32)
    first, (dy, dx) = draw_first(config, rng)
    data, target = compress_twice(crop, first, tables, (dy, dx), (p, p), config.subsampling)
    first_dominates = qz.equivalent_quality(first[0]) < qz.equivalent_quality(tables[0])
    grid = np.array([(8 - dy) % 8, (8 - dx) % 8] if first_dominates else [0, 0], np.int32)
    return data, target, qz.effective_tables(tables, first), grid


def degrade(config: DataConfig, crop: np.ndarray, rng: np.random.Generator, keep_jpeg: bool = False
            ) -> Dict[str, np.ndarray]:
    """One training pair from a rotated crop [S, S, C] (S = config.crop_size), drawn from `rng`.

    Returns the compact form: uint8 'compressed' and 'target' [P, P, C],
    int32 'tables' (the file's) and 'guide_tables' (effective) [2, 8, 8],
    'quality' (the file's IJG quality, 0 for random tables),
    'effective_quality' (`quantization.equivalent_quality` of the guide's luma) and
    'grid_shift' [2] (where the coarser save's 8x8 grid starts; see `jpeg_pair`).
    A config that mixes codecs adds 'codec' (its index in `options.ALL_CODECS`) and the float32 'qmap'
    [P, P, K] of the guide; a WebP, AVIF or HEIC example has its encoder's quality (`_codec_example`).
    """
    codec = config.codecs[int(rng.choice(len(config.codecs), p=config.codec_probs))] if len(config.codecs) > 1 \
        else config.codecs[0]  # (a JPEG-only stream draws nothing here: it stays what it was)
    if codec in motion.VIDEO_CODECS:
        return _frame_example(config, crop, codec, rng)
    if codec != "jpeg":
        return _codec_example(config, crop, codec, rng, keep_jpeg)
    quality = int(rng.integers(config.q_min, config.q_max + 1))
    use_random = rng.random() < config.p_random_table
    tables = draw_tables(rng, quality, use_random)
    double = rng.random() < config.p_double
    data, target, guide, grid = jpeg_pair(config, crop, tables, double, rng)
    out = {"compressed": pillow_decode(data, config.grey), "target": target,
           "tables": np.stack(tables).astype(np.int32), "guide_tables": np.stack(guide).astype(np.int32),
           "quality": np.int32(0 if use_random else quality),
           "effective_quality": np.int32(qz.equivalent_quality(guide[0])), "grid_shift": grid}
    if config.mixes_codecs:
        p = config.patch_size
        out["codec"] = np.int32(ALL_CODECS.index("jpeg"))
        out["qmap"] = qz.qmap(guide[0], None if config.grey else guide[1], p, p, config.subsampling)
    if keep_jpeg:
        out["jpeg"] = data
    return out


def _codec_example(config: DataConfig, crop: np.ndarray, codec: str, rng: np.random.Generator, keep_file: bool
                   ) -> Dict[str, np.ndarray]:
    """`degrade` for a WebP, AVIF or HEIC save, guided by the Q-map its file records; with probability
    `codec_p_jpeg_first` of a photo first saved as a JPEG, guided by the max of that map and the JPEG's.

    'tables' hold the file's luma map folded on 8x8 (`quantization.fold_luma`: what the estimator is
    shown), 'effective_quality' the first JPEG's equivalent quality or 100 where there was none.
    """
    p = config.patch_size
    quality = int(rng.integers(config.codec_q_min, config.codec_q_max + 1))
    first = None
    if config.codec_p_jpeg_first and rng.random() < config.codec_p_jpeg_first:  # (0: the stream drawn before)
        first, (dy, dx) = draw_first(config, rng)
        once = pillow_decode(pillow_encode(crop, *first, config.subsampling), crop.shape[-1] == 1)
        target, saved = (np.ascontiguousarray(a[dy:dy + p, dx:dx + p]) for a in (crop, once))
    else:
        target = saved = np.ascontiguousarray(crop[:p, :p])
    data = codec_encode(saved, codec, quality)
    qmap = codecs.module(codec).read_quantization(data).qmap(p, p)  # [P, P, K]
    qmap = qmap[..., :1] if config.grey else np.repeat(qmap, 2, -1) if qmap.shape[-1] == 1 else qmap  # K = 1 or 2
    tables = np.stack([qz.fold_luma(qmap[..., 0]), qz.fold_luma(qmap[..., -1])])
    zeros, grid, effective = np.zeros((2, 8, 8), np.int32), np.zeros(2, np.int32), 100
    if first is not None:
        qmap = np.maximum(qmap, qz.qmap(*first, p, p, config.subsampling)[..., :qmap.shape[-1]])
        grid, effective = np.array([(8 - dy) % 8, (8 - dx) % 8], np.int32), qz.equivalent_quality(first[0])
    out = {"compressed": codec_decode(data, config.grey), "target": target, "tables": tables, "guide_tables": zeros,
           "quality": np.int32(quality), "effective_quality": np.int32(effective), "grid_shift": grid,
           "codec": np.int32(ALL_CODECS.index(codec)), "qmap": np.ascontiguousarray(qmap)}
    if keep_file:
        out["jpeg"] = data
    return out


def _frame_example(config: DataConfig, crop: np.ndarray, codec: str, rng: np.random.Generator
                   ) -> Dict[str, np.ndarray]:
    """`degrade` for a frame of a clip (`motion.video_example`), guided by the quantizers its codec recorded;
    'quality' is the clip's CRF, 'tables' its luma map folded on 8x8, as a codec save's."""
    example = motion.video_example(crop, config.patch_size, codec, config.grey, rng)
    qmap = example["qmap"]
    return {"compressed": example["compressed"], "target": example["target"],
            "tables": np.stack([qz.fold_luma(qmap[..., 0]), qz.fold_luma(qmap[..., -1])]),
            "guide_tables": np.zeros((2, 8, 8), np.int32), "quality": example["quality"],
            "effective_quality": np.int32(100), "grid_shift": np.zeros(2, np.int32),
            "codec": np.int32(ALL_CODECS.index(codec)), "qmap": qmap}


def finish_batch(config: DataConfig, compact: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Stacked compact examples -> the batch format of both pipelines (floats, Q-map of the guide tables)."""
    p = config.patch_size
    guide = compact.pop("guide_tables")  # [B, 2, 8, 8]
    if "qmap" not in compact:  # (a codec mix carries each example's own)
        compact["qmap"] = np.stack([qz.qmap(t[0], None if config.grey else t[1], p, p, config.subsampling)
                                    for t in guide])
    for key in ("compressed", "target"):
        compact[key] = compact[key].astype(np.float32) / 255.0
    return compact
