"""Faithful by construction: a restored JPEG projected back into the quantization bins its file records.

A JPEG stores, for each 8x8 block of each component, integers k: the
block's DCT coefficients divided by the quantization step and rounded. The
original photo's coefficient was therefore somewhere in [(k - 1/2) q,
(k + 1/2) q]. `project` moves each coefficient of the restored image into
that bin (a little inside it, so that rounding the output to 8 bits does
not push it out), leaving everything the file does not contradict as the
network made it: the output, saved again with the file's tables and
sampling, gives the file's coefficients. The coefficients are read by
jpeglib (libjpeg's own decoder, the extra `consistent`); subsampled chroma
is projected on the encoder's grid (a box average of the full plane) and the
correction spread back over the full-resolution plane.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Tuple

import numpy as np

from qgac_jax.codecs.jpeg import rgb_to_ycbcr, ycbcr_to_rgb

MARGIN = 0.2  # of a bin, kept clear of its edges: 8-bit rounding moves a coefficient by much less

_N = np.arange(8)
DCT = np.where(_N[:, None] == 0, np.sqrt(1 / 8), np.sqrt(2 / 8)) * np.cos((2 * _N[None] + 1) * _N[:, None] * np.pi / 16)
# (JPEG's 8x8 DCT is the orthonormal DCT-II: coefficients = DCT @ block @ DCT.T)


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("jpeglib") is not None


def read(source) -> Tuple[list, list]:
    """([coefficients [bh, bw, 8, 8] int per component], [its quantization table [8, 8]]) of a JPEG's path or
    bytes; ValueError for what is not a baseline JPEG jpeglib reads."""
    try:
        import jpeglib
    except ImportError:
        raise ValueError("--consistent needs jpeglib: pip install '.[consistent]'") from None
    in_memory = isinstance(source, (bytes, bytearray))
    with contextlib.ExitStack() as stack:
        if in_memory:  # (jpeglib reads files by name: bytes go to a temporary one, a path is read where it is)
            head, path = bytes(source[:2]), stack.enter_context(_temporary_file(source))
        else:
            path = os.fspath(source)
            with open(path, "rb") as f:
                head = f.read(2)
        if head != b"\xff\xd8":
            raise ValueError("--consistent projects JPEGs only (this file is not one)")
        try:
            jpeg = jpeglib.read_dct(path)
            planes = [jpeg.Y] + ([jpeg.Cb, jpeg.Cr] if jpeg.has_chrominance else [])
            tables = [np.asarray(jpeg.qt[n], np.float64) for n in jpeg.quant_tbl_no[:len(planes)]]
        except (OSError, RuntimeError, IndexError) as err:
            raise ValueError(f"jpeglib could not read its coefficients ({err})") from None
    return [np.asarray(p, np.float64) for p in planes], tables


@contextlib.contextmanager
def _temporary_file(data: bytes):
    fd, path = tempfile.mkstemp(suffix=".jpg")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path
    finally:
        os.unlink(path)


def project(pixels: np.ndarray, coefficients: list, tables: list) -> np.ndarray:
    """[H, W, C] float in [0, 1] (stored orientation, C 1 or 3) -> the same with every DCT coefficient inside
    the bin the file records (`read`'s coefficients and tables)."""
    height, width = pixels.shape[:2]
    pixels = pixels.astype(np.float64)
    levels = pixels * 255.0 if len(coefficients) == 1 else rgb_to_ycbcr(pixels) * 255.0  # JPEG's YCbCr, 0..255
    planes = [levels[..., k] for k in range(levels.shape[-1])]
    if pixels.shape[-1] == 1 and len(coefficients) == 3:  # grey pixels of a colour-coded file: luma alone
        planes, coefficients = planes[:1], coefficients[:1]
    out = []
    for plane, coef, q in zip(planes, coefficients, tables):
        fy = max(1, round(coefficients[0].shape[0] / coef.shape[0]))  # subsampling, from the block counts
        fx = max(1, round(coefficients[0].shape[1] / coef.shape[1]))
        small = _box(plane, fy, fx)
        fixed = _project_plane(small, coef, q) - small
        out.append(plane + np.repeat(np.repeat(fixed, fy, 0), fx, 1)[:height, :width])
    result = np.stack(out, -1) / 255.0
    return np.clip(result if len(out) == 1 else ycbcr_to_rgb(result), 0.0, 1.0).astype(np.float32)


def _box(plane: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """The plane on a grid `fy` x `fx` coarser: the mean of each cell (the edge replicated to fill the last)."""
    if fy == fx == 1:
        return plane
    h, w = -(-plane.shape[0] // fy) * fy, -(-plane.shape[1] // fx) * fx
    padded = np.pad(plane, ((0, h - plane.shape[0]), (0, w - plane.shape[1])), mode="edge")
    return padded.reshape(h // fy, fy, w // fx, fx).mean(axis=(1, 3))


def _project_plane(plane: np.ndarray, coef: np.ndarray, q: np.ndarray) -> np.ndarray:
    bh, bw = coef.shape[:2]
    h, w = plane.shape
    padded = np.pad(plane, ((0, bh * 8 - h), (0, bw * 8 - w)), mode="edge") - 128.0
    blocks = padded.reshape(bh, 8, bw, 8).transpose(0, 2, 1, 3)  # [bh, bw, 8, 8]
    freq = np.einsum("uy,abyx,vx->abuv", DCT, blocks, DCT)
    freq = np.clip(freq, (coef - 0.5 + MARGIN) * q, (coef + 0.5 - MARGIN) * q)
    back = np.einsum("uy,abuv,vx->abyx", DCT, freq, DCT) + 128.0
    return back.transpose(0, 2, 1, 3).reshape(bh * 8, bw * 8)[:h, :w]

