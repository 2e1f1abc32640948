"""The quantization lossy codecs record in their files, one module per codec: `jpeg`, `webp` (VP8), `heic`
(HEVC) and `avif` (AV1), the last two inside HEIF (`heif`).

The contract: a codec module has `sniff(data) -> bool` and `read_quantization(data)`, which returns an object
with
  codec          "jpeg", "webp", "heic" or "avif"
  is_grey        whether the file holds one channel
  qmap(h, w)     the network's guide, float32 [h, w, K] (K = 1 grey, 2 colour): luma and chroma steps / 255
  block          flips and transposes of an image padded to a multiple of this keep the codec's blocks whole
  transformed(transpose, flip_v, flip_h)
                 the quantization of the image so moved (the self-ensemble's), or None when it has none
  describe()     one line for people: "VP8 quantizer index 52 (segments 52, 45, 37, 28)"
(`Quantization` below) and raises ValueError (with the reason) for a file it cannot read, `Damaged` for one
whose recorded quantization is impossible (a quantizer outside its standard's range, a size its own headers
contradict): such a file is refused whatever the network is to be told. A module may also
have `read_header(data)`, a cheaper read whose result only describes itself (WebP: the frame header without
walking the macroblocks), for when the quantization is not used. A fifth codec is one more such module,
named in `CODECS`.

One scale for every codec: the Q-map holds *orthonormal-equivalent* steps, the step a coefficient of an
orthonormal transform of the same block would have had. JPEG's DCT (T.81 A.3.3) and HEVC's steps (2^((QP-4)/6),
H.265 8.6.2) are defined that way already; VP8's 4x4 transform gives coefficients twice orthonormal and its
second-order Y2 transform doubles the luma DCs again (RFC 6386 14.3, 14.4), so its steps are halved and Y2's
quartered; 8-bit AV1 coefficients are 8 times orthonormal (the AC table ends at 1828 = 8 x 228.5, HEVC QP 51's
step), so its steps are divided by 8. Equal map values then mean equal quantization noise per pixel, and what
tells the codecs apart is the map's pattern: an 8x8 period (JPEG), a 4x4 period with macroblock segments (WebP),
flat (HEVC and AV1, whose transforms vary in size from block to block). docs/codecs.md has the details.
"""

from __future__ import annotations

import importlib
from typing import Optional, Protocol

import numpy as np

CODECS = ("jpeg", "webp", "avif", "heic")


class Damaged(ValueError):
    """A file whose recorded quantization cannot be right: refused, never averaged into a map or restored."""


class Quantization(Protocol):
    """What every codec's `read_quantization` returns (the contract above)."""

    codec: str
    is_grey: bool
    block: int

    def qmap(self, height: int, width: int) -> np.ndarray: ...

    def transformed(self, transpose: bool, flip_v: bool, flip_h: bool) -> Optional["Quantization"]: ...

    def describe(self) -> str: ...


def module(codec: str):
    """The module that reads `codec`'s files."""
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}: one of {', '.join(CODECS)}")
    return importlib.import_module(f"qgac_jax.codecs.{codec}")


def sniff(data: bytes):
    """The codec of a file's bytes (one of CODECS), or None for anything else (PNG, lossless WebP, ...)."""
    for codec in CODECS:
        if module(codec).sniff(data):
            return codec
    return None


def read_quantization(source):
    """The quantization a JPEG, lossy WebP, AVIF or HEIC file (a path or its bytes) records (the contract above);
    ValueError otherwise."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as err:
            raise ValueError(f"cannot read {source}: {err.strerror or err}") from None
    codec = sniff(data)
    if codec is None:
        raise ValueError("not a JPEG, lossy WebP, AVIF or HEIC file")
    return module(codec).read_quantization(data)
