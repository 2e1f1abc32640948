"""Restorer: a trained export applied to real images, tile by tile.

    from qgac_jax import Restorer
    r = Restorer.from_checkpoint("workdirs/cpu/export")   # or a workdir holding export/
    out = r.restore("photo.jpg")                          # uint8 [H, W, 3] (or [H, W] for grey)
    out = r.restore(array_or_bytes_or_path, quality=30)   # IJG tables of quality 30 instead

What a JPEG tells us is used: its quantization tables and chroma subsampling
become the Q-map. With a quality estimator (`Restorer.pretrained()` has the
shipped one), `quality="auto"` (the default) raises those tables to the
effective quality the estimator reads off the pixels, so a photo saved at 20
and re-saved at 75 is restored as the quality-20 image it looks like;
`quality="file"` uses the file's tables alone. The image is restored in its
*stored* orientation (where the 8x8 grid lies) and the EXIF orientation is
applied to the result.

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

import contextlib
import dataclasses
import io
import os
import threading
import warnings
from typing import Callable, Optional, Tuple, Union

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from qgac_jax import quality as quality_lib
from qgac_jax import quantization as qz
from qgac_jax import shipped

# A 2-core laptop with 8 GB restores 50 MP (a 45-MP camera's photos) in a few GB; larger needs max_pixels=.
DEFAULT_MAX_PIXELS = 50_000_000
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32
# The files `restore` looks for in folders.
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
            raise ValueError(f"not a JPEG ({img.format or 'unknown format'}): pass --quality to say how it was compressed")
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

    def __init__(self, model, params, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP,
                 max_pixels: int = DEFAULT_MAX_PIXELS, tile_batch: Optional[int] = None,
                 estimator: Optional[quality_lib.QualityEstimate] = None):
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
        self.estimator = estimator
        self._apply = jax.jit(lambda p, y, q: jnp.clip(model.apply({"params": p}, y, q), 0.0, 1.0))

    @classmethod
    def from_checkpoint(cls, path, estimator: Union[None, str, os.PathLike, quality_lib.QualityEstimate] = "shipped",
                        **kwargs) -> "Restorer":
        """From an export folder (or a training workdir that holds export/).

        `estimator`: "shipped" (the package's quality estimator, when it ships one), an estimator
        export's path, a QualityEstimate (any callable (pixels, quantization) -> quality), or None
        (the file's tables only).
        """
        from qgac_jax import checkpointing

        path = os.fspath(path)
        if "://" not in path and not os.path.exists(path):
            raise ValueError(f"checkpoint {path} does not exist")
        model, params, _ = checkpointing.load_restoration_export(path)
        return cls(model, params, estimator=_resolve_estimator(estimator), **kwargs)

    @classmethod
    def from_onnx(cls, path, estimator: Union[None, str, os.PathLike, quality_lib.QualityEstimate] = "shipped",
                  threads: Optional[int] = None, **kwargs) -> "Restorer":
        """From an ONNX export (`python -m qgac_jax.export`), run by ONNX Runtime on the CPU.

        The same tiling, Q-maps, estimate and colour policy as `from_checkpoint`; `threads`: ONNX
        Runtime's intra-op threads (default: all cores).
        """
        from qgac_jax.onnx_export import OnnxModel

        onnx_model = OnnxModel(path, threads)
        kwargs.setdefault("tile_batch", 1)
        restorer = cls(onnx_model, None, estimator=_resolve_estimator(estimator), **kwargs)
        restorer._apply = lambda params, y, q: onnx_model(np.asarray(y), np.asarray(q))
        return restorer

    @classmethod
    def pretrained(cls, channels: int = 3, **kwargs) -> "Restorer":
        """The model shipped inside the package: the colour one (channels=3) or the grey one (1)."""
        path = shipped.default_checkpoint(channels)
        if path is None:
            raise ValueError("this installation ships no pretrained checkpoint; use Restorer.from_checkpoint(PATH)")
        return cls.from_checkpoint(path, **kwargs)

    @property
    def channels(self) -> int:
        return self.model.channels

    def restore_pixels(self, pixels: np.ndarray, qmap: np.ndarray, progress: Optional[Callable[[int], None]] = None
                       ) -> np.ndarray:
        """[H, W, C] in [0, 1] + [H, W, K] Q-map -> [H, W, C], applying the colour policy."""
        if self.channels == 3 and pixels.shape[-1] == 1:  # grey image, colour model
            both = np.concatenate([qmap[..., :1], qmap[..., :1]], -1)  # chroma step := luma step (4:4:4)
            return self.restore_array(np.repeat(pixels, 3, -1), both, progress).mean(-1, keepdims=True)
        if self.channels == 1 and pixels.shape[-1] == 3:  # colour image, grey model: restore Y only
            ycc = _rgb_to_ycbcr(pixels)
            y = self.restore_array(ycc[..., :1], qmap[..., :1], progress)
            return _ycbcr_to_rgb(np.concatenate([y, ycc[..., 1:]], -1))
        return self.restore_array(pixels, qmap, progress)

    def restore_ensemble(self, pixels: np.ndarray, quantization: qz.JpegQuantization,
                         progress: Optional[Callable[[int], None]] = None) -> np.ndarray:
        """The mean of the restorations of the 8 flips and transposes of an image, each undone.

        JPEG blocks stay JPEG blocks under these moves if the image is first padded to whole
        (chroma) blocks: a flipped block has the same quantization (its DCT coefficients only change
        sign), a transposed one the transposed table and swapped subsampling. So every pass gets the
        Q-map of its own grid. 8 times the work, for a small gain (see the README).
        """
        h, w = pixels.shape[:2]
        factors = qz.SUBSAMPLING_FACTORS.get(quantization.subsampling, (1, 1))
        swapped = {f: n for n, f in qz.SUBSAMPLING_FACTORS.items()}.get(factors[::-1])
        multiple = 8 * max(factors)
        padded = np.pad(pixels, ((0, (-h) % multiple), (0, (-w) % multiple), (0, 0)), mode="edge")
        total = np.zeros(padded.shape, np.float32)
        passes = 0
        for transpose in (False, True):
            if transpose and quantization.chroma is not None and swapped is None:
                continue  # a subsampling whose transpose libjpeg cannot name (4:1:1): flips only
            q = quantization
            if transpose:
                q = qz.JpegQuantization(q.luma.T, None if q.chroma is None else q.chroma.T,
                                        None if q.chroma is None else swapped)
            for flip_v in (False, True):
                for flip_h in (False, True):
                    x = padded.transpose(1, 0, 2) if transpose else padded
                    x = x[::-1] if flip_v else x
                    x = np.ascontiguousarray(x[:, ::-1] if flip_h else x)
                    r = self.restore_pixels(x, q.qmap(*x.shape[:2]), progress)
                    r = r[:, ::-1] if flip_h else r
                    r = r[::-1] if flip_v else r
                    total += r.transpose(1, 0, 2) if transpose else r
                    passes += 1
        return (total / passes)[:h, :w]

    def tile_count(self, height: int, width: int) -> int:
        """How many tiles an image of this size is restored in."""
        h, w = height + (-height) % 8, width + (-width) % 8
        return len(tile_origins(h, min(self.tile, h), self.overlap)) * len(tile_origins(w, min(self.tile, w),
                                                                                        self.overlap))

    def guide(self, pixels: np.ndarray, quantization: qz.JpegQuantization, quality: Quality = None
              ) -> Tuple[qz.JpegQuantization, Optional[float]]:
        """(the quantization the network is told, the estimated quality or None) for the file's `quantization`.

        "auto" (None) with an estimator: the file's tables raised to the estimate's IJG tables;
        otherwise, and for "file", the file's tables.
        """
        if quality in (None, "auto") and self.estimator is not None:
            estimate = self.estimator(pixels, quantization)
            return quality_lib.guide_tables(quantization, estimate), estimate
        return quantization, None

    def restore_batch(self, compressed: np.ndarray, quantization: qz.JpegQuantization, quality: Quality = None,
                      ensemble: bool = False) -> np.ndarray:
        """[1, H, W, C] decoded pixels + the file's quantization -> [1, H, W, C]: the evaluation interface."""
        pixels = np.asarray(compressed[0])
        guide, _ = self.guide(pixels, quantization, quality)
        if ensemble:
            return self.restore_ensemble(pixels, guide)[None]
        return self.restore_pixels(pixels, guide.qmap(*pixels.shape[:2]))[None]

    def restore_array(self, pixels: np.ndarray, qmap: np.ndarray, progress: Optional[Callable[[int], None]] = None
                      ) -> np.ndarray:
        """[H, W, C] float in [0, 1] + [H, W, K] Q-map -> restored [H, W, C] float32, tiled.

        `progress(n)` is called after every n tiles restored.
        """
        h, w = pixels.shape[:2]
        # Pad to multiples of 8 so every tile has one shape and starts on the JPEG grid.
        ph, pw = (-h) % 8, (-w) % 8
        pixels = np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="edge")
        qmap = np.pad(qmap, ((0, ph), (0, pw), (0, 0)), mode="edge")
        H, W = pixels.shape[:2]
        th, tw = min(self.tile, H), min(self.tile, W)
        ys, xs = tile_origins(H, th, self.overlap), tile_origins(W, tw, self.overlap)
        if len(ys) == 1 and len(xs) == 1:
            out = np.asarray(self._apply(self.params, pixels[None], qmap[None])[0])[:h, :w]
            if progress is not None:
                progress(1)
            return out
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
            if progress is not None:
                progress(len(group))
        return (out / weight)[:h, :w]

    def restore(self, source: ImageSource, quality: Quality = None, ensemble: bool = False) -> np.ndarray:
        """Restores an image: uint8 (uint16 for 16-bit input) [H, W, 3] colour or [H, W] grey.

        `quality`: None / "auto" (the file's tables and the estimate), "file", or 1..100 (IJG tables).
        `ensemble`: average the 8 flips and transposes (8 times slower, slightly better).
        """
        return self.restore_decoded(decode(source, quality, self.max_pixels), quality, ensemble=ensemble)

    def restore_decoded(self, d: "Decoded", quality: Quality = None, progress: Optional[Callable[[int], None]] = None,
                        details: bool = False, ensemble: bool = False):
        """`restore` for an image `decode` already read.

        `details`: (image, the quantization the network was told, the estimated quality or None).
        `ensemble`: the mean over the 8 flips and transposes (`restore_ensemble`).
        """
        guide, estimate = self.guide(d.pixels, d.quantization, quality) if d.from_file else (d.quantization, None)
        if ensemble:
            out = self.restore_ensemble(d.pixels, guide, progress)
        else:
            out = self.restore_pixels(d.pixels, guide.qmap(*d.pixels.shape[:2]), progress)
        scale = 65535.0 if d.bit_depth == 16 else 255.0
        out = np.round(np.clip(out, 0.0, 1.0) * scale).astype(np.uint16 if d.bit_depth == 16 else np.uint8)
        if out.shape[-1] == 1:
            out = out[..., 0]
        if d.orientation in _ORIENTATION:
            out = np.asarray(Image.fromarray(out).transpose(_ORIENTATION[d.orientation]))
        return (out, guide, estimate) if details else out


def _resolve_estimator(estimator):
    """"shipped", a path, a QualityEstimate (any callable) or None -> a callable or None."""
    if isinstance(estimator, str) and estimator == "shipped":
        estimator = shipped.estimator_checkpoint()
    if isinstance(estimator, (str, os.PathLike)):
        estimator = quality_lib.QualityEstimate.from_checkpoint(estimator)
    return estimator


def _rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """JPEG's full-range BT.601 YCbCr, on [0, 1] floats (chroma centred on 0.5)."""
    m = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
    ycc = rgb @ m.T
    ycc[..., 1:] += 0.5
    return ycc


def _ycbcr_to_rgb(ycc: np.ndarray) -> np.ndarray:
    y, cb, cr = ycc[..., 0], ycc[..., 1] - 0.5, ycc[..., 2] - 0.5
    return np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)
