"""16-bit colour PNGs: every filter type read back exactly (against pypng), cut files refused in one line."""

import struct
import zlib

import numpy as np
import pytest

from qgac_jax.files import png16


def _pypng(data: bytes) -> np.ndarray:
    """uint16 [H, W, planes] through pypng's pure Python decoder: the reference."""
    import png

    width, height, rows, info = png.Reader(bytes=data).asDirect()
    return np.vstack([np.asarray(row, np.uint16) for row in rows]).reshape(height, width, info["planes"])


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _filtered_png(pixels: np.ndarray, filters) -> bytes:
    """A 16-bit RGB(A) PNG whose row y is written with filter filters[y] (0 None .. 4 Paeth), by hand."""
    height, width, planes = pixels.shape
    bpp = 2 * planes
    rows = pixels.astype(">u2").view(np.uint8).reshape(height, width * bpp).astype(np.int32)
    out, prior = bytearray(), np.zeros(width * bpp, np.int32)
    for y, kind in enumerate(filters):
        row = rows[y]
        left = np.concatenate([np.zeros(bpp, np.int32), row[:-bpp]])
        upper_left = np.concatenate([np.zeros(bpp, np.int32), prior[:-bpp]])
        predicted = [0, left, prior, (left + prior) // 2, _paeth(left, prior, upper_left)][kind]
        out += bytes([kind]) + ((row - predicted) % 256).astype(np.uint8).tobytes()
        prior = row

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 6 if planes == 4 else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(out)))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("planes", [3, 4])
def test_every_filter_type_reads_back_exactly_as_pypng_reads_it(planes):
    rng = np.random.default_rng(planes)
    pixels = rng.integers(0, 65536, (25, 19, planes)).astype(np.uint16)
    pixels[:, :, 0] = np.arange(19) * 3000  # smooth rows too, where the predictors matter
    data = _filtered_png(pixels, [y % 5 for y in range(25)])
    np.testing.assert_array_equal(_pypng(data), pixels)  # the hand-made file is a valid PNG
    fast = png16.read(data)
    assert fast.dtype == np.uint16
    np.testing.assert_array_equal(fast, pixels)


def test_our_own_writer_round_trips():
    pixels = np.random.default_rng(0).integers(0, 65536, (8, 5, 3)).astype(np.uint16)
    np.testing.assert_array_equal(png16.read(png16.encode(pixels)), pixels)


def test_a_cut_file_is_refused_with_a_reason():
    pixels = np.random.default_rng(1).integers(0, 65536, (200, 120, 3)).astype(np.uint16)
    data = _filtered_png(pixels, [4] * 200)
    with pytest.raises(ValueError, match="broken|cut"):
        png16.read(data[:len(data) // 2])
