"""Restorer: a trained model applied to real photos.

    from qgac_jax import Restorer
    r = Restorer.pretrained()                              # the shipped colour model and quality estimator
    r = Restorer.from_checkpoint("workdirs/cpu")           # or an export folder / training workdir
    out = r.restore("photo.jpg")                           # uint8 [H, W, 3] (or [H, W] for grey)
    out = r.restore(array_or_bytes_or_path, quality=30)    # IJG tables of quality 30 instead
    Restorer.pretrained(model="video").restore_clip("clip.mp4", "restored/clip.mp4")  # a clip, frame by frame

What the file records of its quantization (a JPEG's tables and subsampling,
a WebP's segments, an HEIC's QP, an AVIF's quantizer) becomes the Q-map,
raised by the quality estimator where `quality="auto"` (the default) finds
the photo was saved before: what the network is told is `guide`'s. Reading
the file is `files.images`'s, cutting large images into tiles `tiling`'s, the
8-pass self-ensemble `ensemble`'s.

Policy when image and model disagree in colour:
- grey image, colour model: the grey channel is replicated to RGB, the chroma
  Q-map channel repeats the luma table, and the result is averaged back to grey.
- colour image, grey model: the luma (Y of YCbCr) is restored with the luma
  table; the decoded chroma is kept.
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Tuple

import numpy as np

from qgac_jax import codecs
from qgac_jax.restoring import ensemble as ensemble_lib
from qgac_jax.models import shipped, tiling
from qgac_jax.restoring import guide
from qgac_jax.codecs.jpeg import rgb_to_ycbcr, ycbcr_to_rgb
from qgac_jax.files.images import DEFAULT_MAX_PIXELS, Decoded, ImageSource, decode, to_output

Progress = Optional[Callable[[int], None]]


class Restorer:
    """Applies a QGAC model to images; see the module docstring for the policies."""

    def __init__(self, model, params, tile: int = tiling.DEFAULT_TILE, overlap: int = tiling.DEFAULT_OVERLAP,
                 max_pixels: int = DEFAULT_MAX_PIXELS, tile_batch: Optional[int] = None,
                 estimator: Optional[guide.Estimator] = None):
        tiling.check(tile, overlap)
        self.model, self.params = model, params
        self.workers, self._worker_network = 1, None  # tiles in parallel (ONNX Runtime: from_onnx)
        if params is None:  # a graph: from_onnx sets the network (and JAX is not imported)
            self.engine, self._network = "", None
        else:
            import jax
            import jax.numpy as jnp

            if tile_batch is None:  # an accelerator wants many tiles per call; a CPU gains nothing and pays memory
                tile_batch = 1 if jax.default_backend() == "cpu" else 4
            self.engine = f"JAX on {jax.default_backend()}"  # what runs the network, for reports
            jitted = jax.jit(lambda p, y, q: jnp.clip(model.apply({"params": p}, y, q), 0.0, 1.0))
            self._network: tiling.Apply = lambda y, q: jitted(self.params, y, q)
        tile_batch = 1 if tile_batch is None else tile_batch
        if tile_batch < 1:
            raise ValueError(f"tile_batch must be at least 1, got {tile_batch}")
        self.tile, self.overlap, self.max_pixels = int(tile), int(overlap), int(max_pixels)
        self.tile_batch = int(tile_batch)
        self.estimator = estimator

    @classmethod
    def from_checkpoint(cls, path, estimator: guide.EstimatorChoice = "shipped", **kwargs) -> "Restorer":
        """From an export folder (or a training workdir that holds export/).

        `estimator`: "shipped" (the package's quality estimator, when it ships one), an estimator
        export's path, a QualityEstimate (any callable (pixels, quantization) -> quality), or None
        (the file's tables only).
        """
        from qgac_jax.models import exports

        path = os.fspath(path)
        if "://" not in path and not os.path.exists(path):
            raise ValueError(f"checkpoint {path} does not exist")
        model, params, _ = exports.load_restoration_export(path)
        return cls(model, params, estimator=guide.resolve_estimator(estimator), **kwargs)

    @classmethod
    def from_onnx(cls, path, estimator: guide.EstimatorChoice = "shipped", threads: Optional[int] = None,
                  workers: Optional[int] = None, **kwargs) -> "Restorer":
        """From an ONNX export (`python -m qgac_jax.export`), run by ONNX Runtime on the CPU.

        The same tiling, Q-maps, estimate (its network in ONNX Runtime too: no JAX is imported) and colour policy
        as `from_checkpoint`; `threads`: ONNX
        Runtime's intra-op threads (default: all cores); `workers`: tiles restored at once, each on
        threads / workers cores (default `sessions.default_workers`).
        """
        from qgac_jax.graphs.sessions import OnnxModel, default_workers

        onnx_model = OnnxModel(path, threads, default_workers(threads) if workers is None else workers)
        kwargs.setdefault("tile_batch", 1)
        restorer = cls(onnx_model, None, estimator=guide.resolve_estimator(estimator, onnx=True), **kwargs)
        restorer._network = lambda y, q: onnx_model(np.asarray(y), np.asarray(q))
        restorer.engine = f"ONNX Runtime {onnx_model.precision}"
        restorer.workers = onnx_model.workers
        restorer._worker_network = lambda y, q: onnx_model.in_worker(np.asarray(y), np.asarray(q))
        return restorer

    @classmethod
    def pretrained(cls, channels: int = 3, model: str = "psnr", realism: Optional[float] = None,
                   **kwargs) -> "Restorer":
        """A model shipped inside the package: the colour one (channels=3) or the grey one (1), of `model`
        (shipped.MODELS: psnr, the default, perceptual or video); or with `realism` R from 0 (the PSNR model) to
        1 (the perceptual one), the two blended (`models.realism`). Run by JAX, or where JAX is not installed (the
        restore-only install) by ONNX Runtime from the graph that ships beside it."""
        if realism is not None:
            from qgac_jax.models import realism as realism_lib

            if model != "psnr":
                raise ValueError("realism chooses between the psnr (0) and perceptual (1) models: leave model out")
            path = realism_lib.checkpoint(realism_lib.parse(realism), channels)
        else:
            path = shipped.default_checkpoint(channels, model)
        if path is None:
            raise ValueError(f"this installation ships no {model} model; use Restorer.from_checkpoint(PATH)")
        from qgac_jax.models import jax_installed

        if not jax_installed():
            from qgac_jax.graphs import onnx_graph

            return cls.from_onnx(onnx_graph.cached(path), **kwargs)
        return cls.from_checkpoint(path, **kwargs)

    @property
    def channels(self) -> int:
        return self.model.channels

    def tile_count(self, height: int, width: int) -> int:
        """How many tiles an image of this size is restored in (a progress bar's total)."""
        return tiling.tile_count(height, width, self.tile, self.overlap)

    def restore(self, source: ImageSource, quality: guide.Mode = "auto", ensemble: bool = False,
                consistent: bool = False) -> np.ndarray:
        """Restores an image: uint8 (uint16 for 16-bit input) [H, W, 3] colour or [H, W] grey.

        `quality`: what the network is told (`guide`): "auto" (the file's quantization and the estimate),
        "file", or 1..100 (IJG tables). `ensemble`: average the 8 flips and transposes (8 times slower,
        slightly better). `consistent` (JPEGs): every DCT coefficient moved back into the bin the file records
        (`consistency`), so the output saved with the file's tables gives the file's coefficients.
        """
        mode = guide.parse_mode(quality)
        decoded = decode(source, self.max_pixels, full=guide.needs_file(mode))
        return self.restore_decoded(decoded, mode, ensemble=ensemble, consistent_with=source if consistent else None)[0]

    def restore_clip(self, src, dest, quality: guide.Mode = "auto", codec: str = "x264", crf: Optional[int] = None,
                     progress: Optional[Callable[[int, int], None]] = None):
        """Restores a clip (H.264, HEVC, VP9 or AV1 in MP4, MKV, MOV or WebM) into `dest`, each frame told the
        quantizers its codec recorded for it (`quality` a number: those IJG tables for every frame), encoded by
        `codec` (x264, x265, av1, ffv1) with the source's audio, subtitles and timing; returns the report
        (`video.ClipReport`: frames, seconds, frames lost to damage)."""
        from qgac_jax.restoring import video

        return video.restore_clip(self, src, dest, quality, codec, crf, progress)

    def restore_decoded(self, d: Decoded, mode: guide.Mode = "auto", progress: Progress = None,
                        ensemble: bool = False, consistent_with: Optional[ImageSource] = None
                        ) -> Tuple[np.ndarray, guide.Guide]:
        """(the restored image, what the network was told) of an image `images.decode` already read;
        `consistent_with`: the JPEG file (path or bytes) whose coefficient bins the output is projected into."""
        coefficients = None
        if consistent_with is not None:  # (read first: a file that cannot be projected costs no restoring)
            from qgac_jax.restoring import consistency

            if d.format != "JPEG":
                raise ValueError(f"--consistent projects JPEGs only (this file is {d.format})")
            coefficients = consistency.read(consistent_with)
        told = guide.told(d, mode, self.estimator)
        pixels = self._restore_float(d.pixels, told.quantization, progress, ensemble)
        if coefficients is not None:
            pixels = consistency.project(pixels, *coefficients)
        return to_output(pixels, d), told

    def restore_compressed(self, pixels: np.ndarray, quantization: codecs.Quantization, quality: guide.Mode = "auto",
                           ensemble: bool = False) -> np.ndarray:
        """Decoded [H, W, C] float in [0, 1] + the file's quantization -> restored [H, W, C] float.

        The evaluation interface: no file, no orientation, no rounding.
        """
        told = guide.of_file(pixels, quantization, guide.parse_mode(quality), self.estimator)
        return self._restore_float(pixels, told.quantization, None, ensemble)

    def _restore_float(self, pixels: np.ndarray, told: codecs.Quantization, progress: Progress,
                       ensemble: bool) -> np.ndarray:
        if ensemble:
            return ensemble_lib.restore_ensemble(lambda x, q: self._colour_policy(x, q, progress), pixels, told)
        return self._colour_policy(pixels, told.qmap(*pixels.shape[:2]), progress)

    def _colour_policy(self, pixels: np.ndarray, qmap: np.ndarray, progress: Progress) -> np.ndarray:
        """[H, W, C] + [H, W, K] Q-map -> [H, W, C] through a model of either colour."""
        if self.channels == 3 and pixels.shape[-1] == 1:  # grey image, colour model
            both = np.concatenate([qmap[..., :1], qmap[..., :1]], -1)  # chroma step := luma step (4:4:4)
            return self._tiled(np.repeat(pixels, 3, -1), both, progress).mean(-1, keepdims=True)
        if self.channels == 1 and pixels.shape[-1] == 3:  # colour image, grey model: restore Y only
            ycc = rgb_to_ycbcr(pixels)
            y = self._tiled(ycc[..., :1], qmap[..., :1], progress)
            return ycbcr_to_rgb(np.concatenate([y, ycc[..., 1:]], -1))
        if pixels.shape[-1] == 1:  # grey pixels of a file coded in colour (a WebP is always 4:2:0): its luma steps
            qmap = qmap[..., :1]
        return self._tiled(pixels, qmap, progress)

    def _tiled(self, pixels: np.ndarray, qmap: np.ndarray, progress: Progress) -> np.ndarray:
        return tiling.restore_tiled(self._network, pixels, qmap, self.tile, self.overlap, self.tile_batch, progress,
                                    self.workers, self._worker_network)

