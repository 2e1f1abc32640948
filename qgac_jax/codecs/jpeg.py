"""JPEG: the quantization tables and chroma subsampling a file records (the tables themselves, the IJG
family and the Q-map's tiling are `quantization`'s)."""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Optional, Union

import numpy as np

from qgac_jax.codecs import jpeg_tables as qz


def sniff(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


@dataclasses.dataclass(frozen=True)
class JpegQuantization:
    """What a decoder needs to know about how a JPEG was quantized.

    Attributes:
      luma: [8, 8] int32 table of the first (Y or grey) component.
      chroma: [8, 8] int32 chroma table (Cb's; the elementwise max of Cb's and Cr's where they differ); None for grey.
      subsampling: "4:2:0", "4:2:2", "4:4:4", ... for colour; None for grey.
    """

    luma: qz.Table
    chroma: Optional[qz.Table] = None
    subsampling: Optional[str] = None

    def __post_init__(self):
        object.__setattr__(self, "luma", qz.validate_table(self.luma, "luma table"))
        if self.chroma is not None:
            object.__setattr__(self, "chroma", qz.validate_table(self.chroma, "chroma table"))
            if self.subsampling not in qz.SUBSAMPLING_FACTORS:
                raise ValueError(
                    f"unknown chroma subsampling {self.subsampling!r}; "
                    f"expected one of {sorted(qz.SUBSAMPLING_FACTORS)}"
                )
        elif self.subsampling is not None:
            raise ValueError("a grey (luma-only) quantization has no chroma subsampling")

    @property
    def is_grey(self) -> bool:
        return self.chroma is None

    @classmethod
    def from_quality(cls, quality: int, grey: bool = False, subsampling: str = "4:2:0"):
        luma, chroma = qz.ijg_tables(quality)
        return cls(luma) if grey else cls(luma, chroma, subsampling)

    def qmap(self, height: int, width: int) -> np.ndarray:
        """The [height, width, K] Q-map of this quantization (see `qmap`)."""
        return qz.qmap(self.luma, self.chroma, height, width, self.subsampling)

    codec = "jpeg"

    @property
    def block(self) -> int:
        """Flips and transposes of an image padded to this keep its (chroma) blocks whole."""
        return 8 * max(qz.SUBSAMPLING_FACTORS.get(self.subsampling, (1, 1)))

    def transformed(self, transpose: bool, flip_v: bool, flip_h: bool) -> "JpegQuantization":
        """The quantization of the image flipped and transposed: a flipped block keeps its table (its
        coefficients only change sign), a transposed one has the transposed table and swapped subsampling.
        None when the transposed subsampling has no name (4:1:1)."""
        if not transpose:
            return self
        if self.chroma is None:
            return JpegQuantization(self.luma.T)
        swapped = {f: n for n, f in qz.SUBSAMPLING_FACTORS.items()}.get(qz.SUBSAMPLING_FACTORS[self.subsampling][::-1])
        return None if swapped is None else JpegQuantization(self.luma.T, self.chroma.T, swapped)

    def describe(self) -> str:
        return f"JPEG tables of quality {qz.equivalent_quality(self.luma)}"


def _subsampling_name(layers) -> str:
    """Names the subsampling from Pillow's per-component (id, h, v, table) layer list."""
    (_, h0, v0, _), (_, h1, v1, _) = layers[0], layers[1]
    if 0 in (h0, v0, h1, v1):
        raise ValueError(f"a damaged JPEG: sampling factors of 0 {[layer[1:3] for layer in layers]}")
    if h0 % h1 or v0 % v1:
        raise ValueError(f"unsupported JPEG sampling factors {[layer[1:3] for layer in layers]}")
    factors = (v0 // v1, h0 // h1)
    for name, f in qz.SUBSAMPLING_FACTORS.items():
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
    except Image.DecompressionBombError:  # the tables are read whatever size the header claims (no pixels are)
        img = JpegImagePlugin.JpegImageFile(io.BytesIO(bytes(source)) if isinstance(
            source, (bytes, bytearray, memoryview)) else source)
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

        def table_of(component: int) -> qz.Table:
            index = layers[component][3]
            if index not in tables:
                raise ValueError(f"{name}: component {component} uses missing table {index}")
            return np.asarray(tables[index], np.int32).reshape(8, 8)

        if len(layers) == 1:
            return JpegQuantization(table_of(0))
        # One chroma channel in the Q-map: where Cb and Cr have tables of their own, the coarser step at each
        # frequency (the artifacts follow it).
        return JpegQuantization(table_of(0), np.maximum(table_of(1), table_of(2)), _subsampling_name(layers))


CHROMA_CENTRE = 128 / 255  # JPEG's chroma zero (128 of 0..255), on [0, 1]


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """JPEG's full-range BT.601 YCbCr (JFIF), on [0, 1] floats: times 255, the levels a JPEG encoder transforms."""
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
    ycc = rgb @ m.T
    ycc[..., 1:] += CHROMA_CENTRE
    return ycc


def ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - CHROMA_CENTRE, ycc[..., 2] - CHROMA_CENTRE
    return np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
