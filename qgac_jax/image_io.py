"""Reading photos for restoration: pixels, quantization, orientation, and the size limit.

`decode` turns a path, bytes, a PIL image or an array into `Decoded`: float
pixels in the *stored* orientation (where the JPEG's 8x8 grid lies), the
file's quantization (or the IJG tables of a quality the caller names), the
EXIF orientation to apply to the result, and the output bit depth. Every
user-facing problem (not an image, truncated, a header claiming a huge size)
is a ValueError with a one-line reason.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import threading
import warnings
from typing import Optional, Tuple, Union

import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from qgac_jax import quantization as qz

# A 2-core laptop with 8 GB restores 50 MP (a 45-MP camera's photos) in a few GB; larger needs max_pixels=.
DEFAULT_MAX_PIXELS = 50_000_000
# The files `restore` looks for in folders (training folders read the same suffixes: data.sources).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp")
QUALITY_MODES = ("auto", "file")
# EXIF orientation -> the transpose that displays the stored pixels upright (as ImageOps.exif_transpose).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
ImageSource = Union[str, os.PathLike, bytes, bytearray, np.ndarray, Image.Image]
Quality = Union[None, int, str]  # None or "auto": file + estimate; "file": the file's tables; 1..100: IJG tables


def check_quality(quality: Quality) -> Quality:
    """`quality` itself if valid (None, 'auto', 'file' or 1..100); a ValueError naming the choices otherwise."""
    if quality is None or quality in QUALITY_MODES:
        return quality
    if isinstance(quality, str):
        try:
            quality = int(quality)
        except ValueError:
            raise ValueError(f"quality must be 1..100, 'auto' or 'file', got {quality!r}") from None
    qz.ijg_scale(quality)  # validates 1..100
    return int(quality)


@dataclasses.dataclass
class Decoded:
    """An input image ready for the network."""

    pixels: np.ndarray  # [H, W, C] float32 in [0, 1], stored orientation
    quantization: qz.JpegQuantization
    bit_depth: int  # 8 or 16: the depth of the output
    orientation: int  # EXIF orientation, 1 = none
    is_grey: bool
    from_file: bool = True  # the tables are the file's (not a user's quality)


_PILLOW_LIMIT = threading.Lock()


@contextlib.contextmanager
def _pillow_pixel_limit(max_pixels: int):
    """Pillow's own bomb check at our limit (it refuses above twice it), without its warnings.

    `decode` compares the header's size with `max_pixels` itself, before decoding; this only keeps
    Pillow from refusing a `max_pixels` above its default, or warning below our message.
    """
    with _PILLOW_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max(int(max_pixels), 1)
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def _open(source, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tuple[Image.Image, Optional[bytes]]:
    """A PIL image (header read, pixels not decoded) and, for files and bytes, the bytes themselves."""
    if isinstance(source, Image.Image):
        return source, None
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data = bytes(source)
        else:
            with open(source, "rb") as f:
                data = f.read()
    except OSError as err:
        raise ValueError(f"cannot read {source}: {err.strerror or err}") from None
    if not data:
        raise ValueError("the file is empty")
    try:
        with _pillow_pixel_limit(max_pixels):
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ValueError(f"its header claims more than twice --max-pixels ({max_pixels:,}) pixels "
                         "(a decompression bomb?); raise --max-pixels to allow it") from None
    except UnidentifiedImageError:
        raise ValueError("not an image file (neither a JPEG nor another format Pillow reads)") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"its header is broken ({err})") from None
    return img, data


def decode(source: ImageSource, quality: Quality = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Reads pixels and quantization of a path, bytes, PIL image or array; ValueError on bad input.

    `quality` 1..100 gives the IJG tables of that quality; otherwise a JPEG's own tables are read.
    """
    quality = check_quality(quality)
    if not isinstance(quality, int):
        quality = None
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3) or arr.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"arrays must be uint8/uint16 [H, W], [H, W, 1] or [H, W, 3], got {arr.dtype} {arr.shape}")
        if quality is None:
            raise ValueError("an array carries no quantization tables; pass quality=")
        grey = arr.shape[-1] == 1
        return Decoded(arr.astype(np.float32) / (65535.0 if arr.dtype == np.uint16 else 255.0),
                       qz.JpegQuantization.from_quality(quality, grey=grey), 16 if arr.dtype == np.uint16 else 8,
                       1, grey, from_file=False)

    img, data = _open(source, max_pixels)
    with img:
        if img.width * img.height > max_pixels:
            raise ValueError(f"{img.width}x{img.height} pixels exceeds the limit of {max_pixels:,} "
                             "(a decompression bomb?); raise --max-pixels to allow it")
        is_jpeg = isinstance(img, JpegImagePlugin.JpegImageFile)
        if is_jpeg and img.mode not in ("L", "RGB"):
            raise ValueError(f"{img.mode} JPEGs are not supported (grey and YCbCr colour are)")
        orientation = int(img.getexif().get(0x0112, 1) or 1)
        if quality is None and not is_jpeg:
            raise ValueError(f"not a JPEG ({img.format or 'unknown format'}): "
                             "pass --quality to say how it was compressed")
        try:
            with _pillow_pixel_limit(max_pixels):
                img.load()
        except (OSError, SyntaxError, ValueError) as err:
            raise ValueError(f"the image data is broken ({err})") from None
        bit_depth = 16 if img.mode in ("I;16", "I;16B", "I;16L", "I") else 8
        if bit_depth == 16:
            arr = np.asarray(img, np.float32)[..., None] / 65535.0
            grey = True
        else:
            grey = img.mode in ("L", "LA", "1") or (img.mode == "P" and img.palette.mode == "L")
            arr = np.asarray(img.convert("L" if grey else "RGB"), np.float32) / 255.0
            if grey:
                arr = arr[..., None]
    if quality is not None:
        subsampling = "4:2:0"
        if is_jpeg and data is not None and not grey:
            subsampling = qz.read_quantization(data).subsampling
        tables = qz.JpegQuantization.from_quality(quality, grey=grey, subsampling=subsampling)
    else:
        tables = qz.read_quantization(data)
    return Decoded(arr, tables, bit_depth, orientation, grey, from_file=quality is None)


def to_output(pixels: np.ndarray, d: Decoded) -> np.ndarray:
    """Restored float [H, W, C] -> uint8/uint16 [H, W, 3] or [H, W], displayed upright (EXIF orientation)."""
    scale = 65535.0 if d.bit_depth == 16 else 255.0
    out = np.round(np.clip(pixels, 0.0, 1.0) * scale).astype(np.uint16 if d.bit_depth == 16 else np.uint8)
    if out.shape[-1] == 1:
        out = out[..., 0]
    if d.orientation in _ORIENTATION:
        out = np.asarray(Image.fromarray(out).transpose(_ORIENTATION[d.orientation]))
    return out
