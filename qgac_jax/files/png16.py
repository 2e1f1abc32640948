"""16-bit colour PNGs, which Pillow hands over at 8 bits and cannot write: read in two passes of Pillow's
decoder, written through pypng with our metadata chunks.

Grey 16-bit PNGs go through Pillow ("I;16"); RGB and RGBA at 16 bits per
channel are read and written here, so a 16-bit photo comes out 16-bit.
Pillow's C decoder inflates and unfilters such a file, then keeps one byte
of each sample: the high one ("RGB;16B", its default) or, told the
little-endian raw mode, the low one; two passes give both (pypng's pure
Python unfiltering, the tests' reference, took 18 s for a 16-megapixel file,
which a few hundred bytes can ask for). The iCCP, eXIf and iTXt chunks of
`metadata.png_options` are spliced in before the image data, as Pillow's
writer places them.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import Optional

import numpy as np

from qgac_jax.files.metadata import Metadata


def is_16_bit_colour(img) -> bool:
    """A Pillow PNG whose pixels are 16-bit RGB or RGBA (Pillow would hand over 8 bits of them)."""
    return img.format == "PNG" and any(tile.args in ("RGB;16B", "RGBA;16B") for tile in img.tile)


def read(data: bytes) -> np.ndarray:
    """uint16 [H, W, 3 or 4] of a 16-bit colour PNG; ValueError when its data is broken or cut."""
    from PIL import Image

    halves = []
    for byte in ("B", "L"):  # the high bytes, then the low ones
        with Image.open(io.BytesIO(data)) as img:
            raw = f"{img.mode};16{byte}"  # RGB;16B / RGB;16L, RGBA;16B / RGBA;16L
            img.tile = [tile._replace(args=raw) for tile in img.tile]
            try:
                img.load()
            except (OSError, SyntaxError, ValueError) as err:
                raise ValueError(f"the image data is broken ({err})") from None
            halves.append(np.asarray(img))
    return (halves[0].astype(np.uint16) << 8) | halves[1]


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def encode(pixels: np.ndarray, meta: Optional[Metadata] = None) -> bytes:
    """PNG bytes of uint16 [H, W, 3 or 4], carrying `meta`."""
    import png

    height, width, planes = pixels.shape
    out = io.BytesIO()
    png.Writer(width, height, greyscale=False, alpha=planes == 4, bitdepth=16).write(
        out, pixels.reshape(height, width * planes))
    data = out.getvalue()
    extra = b""
    if meta is not None and meta.icc_profile:
        extra += _chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(meta.icc_profile))
    if meta is not None and meta.exif is not None:
        raw = meta.exif.tobytes()
        extra += _chunk(b"eXIf", raw[6:] if raw.startswith(b"Exif\x00\x00") else raw)
    if meta is not None and meta.xmp:
        extra += _chunk(b"iTXt", b"XML:com.adobe.xmp\x00\x00\x00\x00\x00" + meta.xmp)
    first_idat = data.index(b"IDAT") - 4
    return data[:first_idat] + extra + data[first_idat:]
