"""Restorer: a trained export applied to real images, tile by tile.

    from qgac_jax import Restorer
    r = Restorer.from_checkpoint("workdirs/cpu/export")   # or a workdir holding export/
    out = r.restore("photo.jpg")                          # uint8 [H, W, 3] (or [H, W] for grey)
    out = r.restore(array_or_bytes_or_path, quality=30)   # IJG tables of quality 30 instead

What a JPEG tells us is used: its quantization tables and chroma subsampling
become the Q-map. The image is restored in its *stored* orientation (where
the 8x8 grid lies) and the EXIF orientation is applied to the result.

Policy when image and model disagree in colour:
- grey image, colour model: the grey channel is replicated to RGB, the chroma
  Q-map channel repeats the luma table, and the result is averaged back to grey.
- colour image, grey model: the luma (Y of YCbCr) is restored with the luma
  table; the decoded chroma is kept.

Large images are cut into overlapping tiles aligned to the 8x8 grid and
blended with linear ramps, so memory stays bounded; the jitted network is
compiled once per tile shape and reused.
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Optional, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from qgac_jax import quantization as qz

DEFAULT_MAX_PIXELS = 100_000_000
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


@dataclasses.dataclass
class Decoded:
    """An input image ready for the network."""

    pixels: np.ndarray  # [H, W, C] float32 in [0, 1], stored orientation
    quantization: qz.JpegQuantization
    bit_depth: int  # 8 or 16: the depth of the output
    orientation: int  # EXIF orientation, 1 = none
    is_grey: bool


def _open(source) -> Tuple[Image.Image, Optional[bytes]]:
    """A PIL image and, for JPEG sources, the bytes the tables are read from."""
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
        img = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"not an image Pillow can read ({err})") from None
    return img, data


def decode(source: ImageSource, quality: Optional[int] = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Reads pixels and quantization of a path, bytes, PIL image or array; ValueError on bad input."""
    if quality is not None:
        qz.ijg_scale(quality)  # validates 1..100
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
                       1, grey)

    img, data = _open(source)
    with img:
        if img.width * img.height > max_pixels:
            raise ValueError(f"{img.width}x{img.height} pixels exceeds the limit of {max_pixels:,} "
                             "(a decompression bomb?); raise --max-pixels to allow it")
        is_jpeg = isinstance(img, JpegImagePlugin.JpegImageFile)
        if is_jpeg and img.mode not in ("L", "RGB"):
            raise ValueError(f"{img.mode} JPEGs are not supported (grey and YCbCr colour are)")
        orientation = int(img.getexif().get(0x0112, 1) or 1)
        if quality is None and not is_jpeg:
            raise ValueError(f"not a JPEG ({img.format or 'unknown format'}): pass --quality to say how it was compressed")
        try:
            img.load()
        except (OSError, SyntaxError) as err:
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
    return Decoded(arr, tables, bit_depth, orientation, grey)


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blending weights of one tile: linear ramps over the overlaps it shares."""
    w = np.ones(n, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if not at_start:
            w[:overlap] = ramp
        if not at_end:
            w[n - overlap:] = ramp[::-1]
    return w


def tile_origins(size: int, tile: int, overlap: int):
    """Tile starts along one axis: multiples of 8, the last tile flush with the end."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


class Restorer:
    """Applies a QGAC model to images; see the module docstring for the policies."""

    def __init__(self, model, params, tile: int = 512, overlap: int = 32, max_pixels: int = DEFAULT_MAX_PIXELS,
                 tile_batch: Optional[int] = None):
        if tile % 8 or tile < 16 or overlap % 8 or not 0 <= overlap < tile // 2:
            raise ValueError(f"tile ({tile}) must be a multiple of 8 >= 16 and overlap ({overlap}) a multiple of 8 "
                             f"below half the tile")
        if tile_batch is None:  # an accelerator wants many tiles per call; a CPU gains nothing and pays memory
            tile_batch = 1 if jax.default_backend() == "cpu" else 4
        if tile_batch < 1:
            raise ValueError(f"tile_batch must be at least 1, got {tile_batch}")
        self.model, self.params = model, params
        self.tile, self.overlap, self.max_pixels = int(tile), int(overlap), int(max_pixels)
        self.tile_batch = int(tile_batch)
        self._apply = jax.jit(lambda p, y, q: jnp.clip(model.apply({"params": p}, y, q), 0.0, 1.0))

    @classmethod
    def from_checkpoint(cls, path, **kwargs) -> "Restorer":
        """From an export folder (or a training workdir that holds export/)."""
        from qgac_jax import checkpointing

        path = os.fspath(path)
        if "://" not in path and not os.path.exists(path):
            raise ValueError(f"checkpoint {path} does not exist")
        if os.path.isdir(os.path.join(path, "export")):
            path = os.path.join(path, "export")
        model, params, _ = checkpointing.load_export(path)
        return cls(model, params, **kwargs)

    @classmethod
    def pretrained(cls, channels: int = 3, **kwargs) -> "Restorer":
        """The model shipped inside the package: the colour one (channels=3) or the grey one (1)."""
        from qgac_jax.restore import default_checkpoint

        path = default_checkpoint(channels)
        if path is None:
            raise ValueError("this installation ships no pretrained checkpoint; use Restorer.from_checkpoint(PATH)")
        return cls.from_checkpoint(path, **kwargs)

    @property
    def channels(self) -> int:
        return self.model.channels

    def restore_pixels(self, pixels: np.ndarray, qmap: np.ndarray) -> np.ndarray:
        """[H, W, C] in [0, 1] + [H, W, K] Q-map -> [H, W, C], applying the colour policy."""
        if self.channels == 3 and pixels.shape[-1] == 1:  # grey image, colour model
            both = np.concatenate([qmap[..., :1], qmap[..., :1]], -1)  # chroma step := luma step (4:4:4)
            return self.restore_array(np.repeat(pixels, 3, -1), both).mean(-1, keepdims=True)
        if self.channels == 1 and pixels.shape[-1] == 3:  # colour image, grey model: restore Y only
            ycc = _rgb_to_ycbcr(pixels)
            y = self.restore_array(ycc[..., :1], qmap[..., :1])
            return _ycbcr_to_rgb(np.concatenate([y, ycc[..., 1:]], -1))
        return self.restore_array(pixels, qmap)

    def restore_batch(self, compressed: np.ndarray, qmap: np.ndarray) -> np.ndarray:
        """[1, H, W, C], [1, H, W, K] -> [1, H, W, C]: the evaluation interface."""
        return self.restore_pixels(np.asarray(compressed[0]), np.asarray(qmap[0]))[None]

    def restore_array(self, pixels: np.ndarray, qmap: np.ndarray) -> np.ndarray:
        """[H, W, C] float in [0, 1] + [H, W, K] Q-map -> restored [H, W, C] float32, tiled."""
        h, w = pixels.shape[:2]
        # Pad to multiples of 8 so every tile has one shape and starts on the JPEG grid.
        ph, pw = (-h) % 8, (-w) % 8
        pixels = np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="edge")
        qmap = np.pad(qmap, ((0, ph), (0, pw), (0, 0)), mode="edge")
        H, W = pixels.shape[:2]
        th, tw = min(self.tile, H), min(self.tile, W)
        ys, xs = tile_origins(H, th, self.overlap), tile_origins(W, tw, self.overlap)
        if len(ys) == 1 and len(xs) == 1:
            return np.asarray(self._apply(self.params, pixels[None], qmap[None])[0])[:h, :w]
        out = np.zeros(pixels.shape, np.float32)
        weight = np.zeros((H, W, 1), np.float32)
        tiles = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
        for first in range(0, len(tiles), self.tile_batch):
            group = tiles[first:first + self.tile_batch]
            padded = group + [group[-1]] * (self.tile_batch - len(group))  # one batch shape: one compilation
            y_in = np.stack([pixels[ys[i]:ys[i] + th, xs[j]:xs[j] + tw] for i, j in padded])  # [T, th, tw, C]
            q_in = np.stack([qmap[ys[i]:ys[i] + th, xs[j]:xs[j] + tw] for i, j in padded])
            restored = np.asarray(self._apply(self.params, y_in, q_in))
            for (i, j), tile in zip(group, restored):
                wy = _ramp(th, self.overlap, i == 0, i == len(ys) - 1)
                wx = _ramp(tw, self.overlap, j == 0, j == len(xs) - 1)
                wt = (wy[:, None] * wx[None, :])[..., None]
                out[ys[i]:ys[i] + th, xs[j]:xs[j] + tw] += tile * wt
                weight[ys[i]:ys[i] + th, xs[j]:xs[j] + tw] += wt
        return (out / weight)[:h, :w]

    def restore(self, source: ImageSource, quality: Optional[int] = None) -> np.ndarray:
        """Restores an image: uint8 (uint16 for 16-bit input) [H, W, 3] colour or [H, W] grey."""
        return self.restore_decoded(decode(source, quality, self.max_pixels))

    def restore_decoded(self, d: "Decoded") -> np.ndarray:
        """`restore` for an image `decode` already read."""
        out = self.restore_pixels(d.pixels, d.quantization.qmap(*d.pixels.shape[:2]))
        scale = 65535.0 if d.bit_depth == 16 else 255.0
        out = np.round(np.clip(out, 0.0, 1.0) * scale).astype(np.uint16 if d.bit_depth == 16 else np.uint8)
        if out.shape[-1] == 1:
            out = out[..., 0]
        if d.orientation in _ORIENTATION:
            out = np.asarray(Image.fromarray(out).transpose(_ORIENTATION[d.orientation]))
        return out


def _rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """JPEG's full-range BT.601 YCbCr, on [0, 1] floats (chroma centred on 0.5)."""
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
    ycc = rgb @ m.T
    ycc[..., 1:] += 0.5
    return ycc


def _ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 0.5, ycc[..., 2] - 0.5
    return np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
