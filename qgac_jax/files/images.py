"""Reading photos for restoration: pixels, quantization, orientation, and the size limit.

`decode` turns a path, bytes, a PIL image or an array into `Decoded`: float
pixels in the *stored* orientation (where the JPEG's 8x8 grid lies), what
the file records of its quantization (or why nothing), the EXIF orientation
to apply to the result, and the output bit depth. What the network is told
of it is `guide`'s. Every user-facing problem (not an image, truncated, a
header claiming a huge size) is a ValueError with a one-line reason.
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

from qgac_jax import codecs
from qgac_jax.codecs import heif, jpeg
from qgac_jax.files import metadata, png16
from qgac_jax.files.metadata import Metadata

# A 2-core laptop with 8 GB restores 50 MP (a 45-MP camera's photos) in a few GB; larger needs max_pixels=.
DEFAULT_MAX_PIXELS = 50_000_000
# The files `restore` looks for in folders, and training in `folder:` sources.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp", ".avif", ".heic", ".heif")
ImageSource = Union[str, os.PathLike, bytes, bytearray, np.ndarray, Image.Image]


@dataclasses.dataclass
class Decoded:
    """An input image ready for the network."""

    pixels: np.ndarray  # [H, W, C] float32 in [0, 1], stored orientation
    recorded: Optional[codecs.Quantization]  # what the file records of its quantization (None: nothing read)
    bit_depth: int  # 8 or 16: the depth of the output
    orientation: int  # EXIF orientation, 1 = none
    is_grey: bool
    format: str = "JPEG"  # what the file is, for messages: "JPEG", "WEBP (lossy)", "lossless PNG", "array"
    unread: Optional[str] = None  # why a lossy file's quantization could not be read (recorded is None)
    alpha: Optional[np.ndarray] = None  # [H, W] uint8 / uint16, stored orientation: passed through untouched
    metadata: Optional[Metadata] = None  # ICC profile, EXIF, XMP: written on the output


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


def too_large(width: int, height: int, max_pixels: int) -> str:
    return (f"{width}x{height} pixels exceeds the limit of {max_pixels:,} (a decompression bomb?); raise "
            "--max-pixels to allow it")


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
    size = heif.image_size(data) if data[4:8] == b"ftyp" else None
    if size and size[0] * size[1] > max_pixels:  # before libheif or libavif allocate anything
        raise ValueError(too_large(*size, max_pixels))
    if heif.is_heic(data) and not heif.register_pillow_plugin():  # (restore does not need pillow-heif)
        raise ValueError(f"HEIC ({_heic_quantizer(data)}): its pixels need pillow-heif: pip install pillow-heif")
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


def decode(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS, full: bool = True) -> Decoded:
    """Reads pixels and what the file records of a path, bytes, PIL image or array.

    `full`: the quantization itself (a WebP's macroblocks walked); otherwise only what describes it, read more
    cheaply where the codec allows (`guide.needs_file` says which a mode needs). Whatever a file does to the
    readers and decoders below, only a ValueError with a one-line reason comes out.
    """
    try:
        return _decode(source, max_pixels, full)
    except ValueError:
        raise
    except MemoryError:
        raise ValueError("out of memory decoding it (lower --max-pixels)") from None
    except Exception as err:  # noqa: BLE001 - a decoder's own failure on a damaged file (libheif, libavif, Pillow)
        raise ValueError(f"a damaged or unsupported file ({_plain(err)})") from None


def _plain(err: BaseException) -> str:
    """A decoder's exception as a few words: its message, else its kind."""
    text = " ".join(str(err).split())
    return (text[:200] if text else type(err).__name__)


def _decode(source: ImageSource, max_pixels: int, full: bool) -> Decoded:
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.ndim != 3 or arr.shape[-1] not in (1, 3) or arr.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"arrays must be uint8/uint16 [H, W], [H, W, 1] or [H, W, 3], got {arr.dtype} {arr.shape}")
        return Decoded(arr.astype(np.float32) / (65535.0 if arr.dtype == np.uint16 else 255.0), None,
                       16 if arr.dtype == np.uint16 else 8, 1, arr.shape[-1] == 1, format="array",
                       unread="an array carries no quantization tables; pass quality=")

    img, data = _open(source, max_pixels)
    with img:
        deep = data is not None and png16.is_16_bit_colour(img)  # before anything loads the pixels at 8 bits
        if img.width * img.height > max_pixels:
            raise ValueError(too_large(img.width, img.height, max_pixels))
        is_jpeg = isinstance(img, JpegImagePlugin.JpegImageFile)
        if is_jpeg and img.mode not in ("L", "RGB"):
            raise ValueError(f"{img.mode} JPEGs are not supported (grey and YCbCr colour are)")
        if is_jpeg:
            recorded, unread = (jpeg.read_quantization(data) if data is not None else None), None
        else:
            recorded, unread = read_recorded(data, full)
        kind = "JPEG" if is_jpeg else describe_format(img, data)
        orientation = _orientation(img)
        meta = metadata.read(img, orientation_applied=orientation in range(2, 9))
        arr, alpha, bit_depth, grey = _pixels(img, data if deep else None, max_pixels)
    return Decoded(arr, recorded, bit_depth, orientation, grey, kind, unread, alpha, meta)


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation 1..8; one that is no such number (text, a negative SSHORT) is ignored with a warning,
    and the pixels are restored as stored."""
    value = img.getexif().get(0x0112, 1)
    try:
        orientation = int(value if not isinstance(value, (tuple, list)) else value[0])
    except (TypeError, ValueError, IndexError):
        orientation = -1
    if orientation in range(1, 9):
        return orientation
    warnings.warn(f"its EXIF orientation {value!r} is not one of 1..8: ignored (the photo is written as stored)")
    return 1


LOSSLESS_FORMATS = ("PNG", "BMP", "TIFF", "GIF", "PPM", "TGA")


def describe_format(img: Image.Image, data: Optional[bytes] = None) -> str:
    """'lossless PNG', 'lossless WEBP', 'WEBP (lossy)', ...: what a file is, for a one-line message."""
    name = img.format or "unknown format"
    if name == "HEIF":  # pillow-heif's plugin, when registered, calls HEVC-coded HEIF files HEIF
        name = "HEIC"
    if name == "WEBP" and data is not None:  # the first image chunk says: VP8L lossless, VP8 lossy
        lossless, lossy = data.find(b"VP8L", 12), data.find(b"VP8 ", 12)
        return "lossless WEBP" if lossless >= 0 and (lossy < 0 or lossless < lossy) else "WEBP (lossy)"
    return f"lossless {name}" if name in LOSSLESS_FORMATS else name


def read_recorded(data: Optional[bytes], full: bool = True):
    """(what a lossy WebP, AVIF or HEIC file records (`codecs`), None) or (None, why not: the reason a reader
    gave, or None for formats that record none: PNG, TIFF...). `full`: the quantization itself; otherwise what
    describes it, read more cheaply where the codec allows (`read_header`)."""
    codec = codecs.sniff(data) if data is not None else None
    if codec in (None, "jpeg"):
        return None, None
    reader = codecs.module(codec)
    try:
        return (reader.read_quantization if full else getattr(reader, "read_header", reader.read_quantization))(
            data), None
    except codecs.Damaged:
        raise  # an impossible quantizer: the file is refused, whatever the network would be told
    except ValueError as err:
        return None, str(err)


def _heic_quantizer(data: bytes) -> Optional[str]:
    """'HEVC QP 27': what an HEIC file records (`codecs.heic`), or the reason it cannot be read (restore tells
    the one without the other where pillow-heif is missing)."""
    from qgac_jax.codecs import heic

    try:
        return heic.read_quantization(data).describe()
    except ValueError as err:
        return str(err)


def _pixels(img: Image.Image, deep_png: Optional[bytes], max_pixels: int):
    """(float [H, W, C] in [0, 1], alpha [H, W] or None, bit depth, grey) of an opened image; `deep_png`: the
    bytes of a 16-bit colour PNG, which Pillow would read at 8 bits."""
    if deep_png is not None:
        with _pillow_pixel_limit(max_pixels):
            raw = png16.read(deep_png)  # [H, W, 3 or 4] uint16
        alpha = raw[..., 3].copy() if raw.shape[-1] == 4 else None
        return raw[..., :3].astype(np.float32) / 65535.0, alpha, 16, False
    try:
        with _pillow_pixel_limit(max_pixels):
            img.load()
    except (OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"the image data is broken ({err})") from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        return np.asarray(img, np.float32)[..., None] / 65535.0, None, 16, True
    alpha = None
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        alpha = np.asarray(img.convert("RGBA").getchannel("A"))
    grey = img.mode in ("L", "LA", "La", "1") or (img.mode in ("P", "PA") and img.palette.mode == "L")
    arr = np.asarray(img.convert("L" if grey else "RGB"), np.float32) / 255.0
    return (arr[..., None] if grey else arr), alpha, 8, grey


def to_output(pixels: np.ndarray, d: Decoded) -> np.ndarray:
    """Restored float [H, W, C] -> uint8/uint16 [H, W, 3 or 4] or [H, W] (grey, no alpha), displayed upright
    (EXIF orientation); the input's alpha channel comes back as it was."""
    scale = 65535.0 if d.bit_depth == 16 else 255.0
    out = np.round(np.clip(pixels, 0.0, 1.0) * scale).astype(np.uint16 if d.bit_depth == 16 else np.uint8)
    if d.alpha is not None:  # decoded at the depth of the colour channels
        out = np.concatenate([out, d.alpha.astype(out.dtype)[..., None]], -1)
    if out.shape[-1] == 1:
        out = out[..., 0]
    return upright(out, d.orientation)


def upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """[H, W, ...] in stored orientation -> as displayed (what ImageOps.exif_transpose does, for any dtype)."""
    moves = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.swapaxes(0, 1), 6: lambda a: a.swapaxes(0, 1)[:, ::-1],
             7: lambda a: a.swapaxes(0, 1)[::-1, ::-1], 8: lambda a: a.swapaxes(0, 1)[::-1]}
    return np.ascontiguousarray(moves[orientation](pixels)) if orientation in moves else pixels
