"""A folder restore's jobs: which files, which output paths, which model, written how.

`restore` (the command line) walks its inputs with `collect_inputs`, loads
each model once through `Models`, and writes each PNG with
`write_png_atomically`; each problem with one file is a ValueError whose text
is the one line the user sees.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import glob
import pathlib
import sys
import tempfile
import warnings
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from qgac_jax import atomic_files, codecs, metadata, shipped
from qgac_jax import quantization as qz
from qgac_jax.image_io import DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, Decoded, Quality, decode
from qgac_jax.metadata import Metadata
from qgac_jax.tiling import DEFAULT_OVERLAP, DEFAULT_TILE

RECOMPRESSED_MARGIN = 5  # quality units: how far below the file's tables an estimate says "recompressed"
# A WebP, AVIF or HEIC estimated below this is said to come from an earlier JPEG (one saved once reads about 100;
# a JPEG above 90 leaves nothing its re-save did not cover).
EARLIER_JPEG_BELOW = 90


@dataclasses.dataclass(frozen=True)
class Job:
    src: pathlib.Path
    rel: pathlib.Path  # the output's path below --output
    walked: bool  # found in a folder or by a glob, not named: a lossless file there is listed, not an error


def _inside(path: pathlib.Path, folder: pathlib.Path) -> bool:
    return path == folder or folder in path.parents


def collect_inputs(patterns: List[str], out_root: Optional[pathlib.Path] = None) -> Tuple[List[Job], List[str]]:
    """The jobs and the one-line errors of files, directories and globs; each file once however often named.

    Walking never enters the output tree: an output folder inside an input folder is not searched, and
    where input and output are the same folder its PNGs are earlier outputs, not inputs.
    """
    out = out_root.resolve() if out_root is not None else None
    jobs: List[Job] = []
    errors: List[str] = []
    seen = set()

    def add(f: pathlib.Path, rel: pathlib.Path, walked: bool):
        key = f.resolve()
        if walked and out is not None and _inside(key, out) and key.suffix.lower() == ".png":
            return  # an earlier output (input and output the same folder, or a glob reaching into --output)
        if key not in seen:
            seen.add(key)
            jobs.append(Job(f, rel, walked))

    for pattern in patterns:
        path = pathlib.Path(pattern)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and not (out is not None and out != path.resolve() and _inside(p.resolve(), out)))
            before = len(jobs)
            for f in files:
                add(f, f.relative_to(path).with_suffix(".png"), True)
            if not files and len(jobs) == before:
                errors.append(f"{pattern}: no images in this directory")
        elif path.is_file():
            add(path, pathlib.Path(path.name).with_suffix(".png"), False)
        else:
            files = [m for m in sorted(pathlib.Path(m) for m in glob.glob(pattern, recursive=True)) if m.is_file()]
            if not files:
                errors.append(f"{pattern}: no such file, directory or matching glob")
            for f in files:
                add(f, pathlib.Path(f.name).with_suffix(".png"), True)
    return _distinct_outputs(jobs), errors


def _distinct_outputs(jobs: List[Job]) -> List[Job]:
    """Inputs whose outputs would share a name (a.jpg and a.webp -> a.png) keep their whole names instead:
    a.jpg.png and a.webp.png. (Compared without case: a.JPG and a.jpg collide on some file systems.)"""
    counts = collections.Counter(str(j.rel).lower() for j in jobs)
    return [dataclasses.replace(j, rel=j.rel.with_name(j.src.name + ".png")) if counts[str(j.rel).lower()] > 1 else j
            for j in jobs]


PNG_LEVEL = 3  # zlib level of the PNGs: docs/performance.md weighs time against size (Pillow defaults to 6)


def write_png_atomically(pixels, path: pathlib.Path, meta: Optional[Metadata] = None) -> None:
    """PNG (with `meta`), replacing `path` whole or not at all (`atomic_files`): no partial outputs, ever."""
    import io

    from PIL import Image

    from qgac_jax import png16

    if pixels.dtype == "uint16" and pixels.ndim == 3:
        data = png16.encode(pixels, meta)
    else:
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG", compress_level=PNG_LEVEL, **metadata.png_options(meta))
        data = buf.getvalue()
    atomic_files.write_bytes(path, data)


def check_output_folder(folder: pathlib.Path) -> None:
    """Creates `folder` if needed and proves it writable; a ValueError naming it otherwise."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"--output {folder} is not a writable folder ({err.strerror or err})") from None


def reason(err: BaseException) -> str:
    if isinstance(err, MemoryError):
        return "out of memory (lower --max-pixels or --tile)"
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err).strip() or type(err).__name__


def describe(decoded, guide, estimate, quality) -> str:
    """One line: what the file says and what the network was told."""
    if not decoded.from_file:
        recorded = f"{decoded.recorded}; " if decoded.recorded else ""
        return f"{recorded}told IJG tables of quality {quality} (--quality)"
    if decoded.quantization.codec != "jpeg":
        if estimate is None:
            return f"{decoded.recorded}: the file's own quantizer"
        if estimate >= EARLIER_JPEG_BELOW:
            return f"{decoded.recorded}: the file's own quantizer (no earlier JPEG seen, estimate {estimate:.0f})"
        return f"{decoded.recorded}; converted from a JPEG of about quality {guide.quality}: restored as after it"
    file_q = qz.equivalent_quality(decoded.quantization.luma)
    if estimate is None:
        return f"the file's tables (about quality {file_q})"
    assumed = qz.equivalent_quality(guide.luma)
    # Within the estimator's margin of the file's own quality, a photo was saved once (a 30 read as 29).
    note = "recompressed: restored as" if assumed < file_q - RECOMPRESSED_MARGIN else "assumed"
    return f"file tables about quality {file_q}, estimated effective quality {estimate:.0f}; {note} quality {assumed}"


@dataclasses.dataclass(frozen=True)
class Settings:
    """What `Models` and `restore_file` need of restore's arguments (the web page builds one of its own)."""

    checkpoint: Optional[str] = None
    onnx: Optional[str] = None
    backend: str = "auto"
    precision: str = "float32"
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    max_pixels: int = DEFAULT_MAX_PIXELS
    quality: Quality = "auto"
    ensemble: bool = False


@dataclasses.dataclass
class Restored:
    pixels: np.ndarray  # what the PNG holds, upright
    decoded: Decoded
    guide: codecs.Quantization  # what the network was told
    estimate: Optional[float]
    notes: List[str]  # Pillow's warnings about the file


def restore_file(models: "Models", src, settings: Settings, quality: Quality = None,
                 progress: Optional[Callable[[int], None]] = None, on_decoded=None) -> Restored:
    """Decodes and restores one file as `restore` does; `quality` overrides the settings' (the page's slider).

    `on_decoded(decoded, restorer)` runs between decoding and restoring (a progress bar's total, say).
    """
    quality = settings.quality if quality is None else quality
    with warnings.catch_warnings(record=True) as caught:  # Pillow's notes on odd EXIF, named by the caller
        warnings.simplefilter("always")
        decoded = decode(src, quality, settings.max_pixels)
    restorer = models(decoded.is_grey)
    if on_decoded is not None:
        on_decoded(decoded, restorer)
    pixels, guide, estimate = restorer.restore_decoded(decoded, quality, progress=progress, details=True,
                                                       ensemble=settings.ensemble)
    return Restored(pixels, decoded, guide, estimate, list(dict.fromkeys(str(w.message) for w in caught)))


class Models:
    """Each model a folder needs, loaded once: --checkpoint / --onnx for every image, else the shipped grey
    model for grey files and the colour one for colour files."""

    def __init__(self, settings: Settings, backend: str):  # restore's parsed arguments serve as Settings too
        self.settings, self.backend = settings, backend
        self._loaded: Dict[str, object] = {}

    def __call__(self, grey: bool):
        from qgac_jax import int8_graph, onnx_graph
        from qgac_jax.inference import Restorer

        args = self.settings
        path = args.onnx or args.checkpoint or shipped.default_checkpoint(1 if grey else 3)
        if path in self._loaded:
            return self._loaded[path]
        kwargs = dict(tile=args.tile, overlap=args.overlap, max_pixels=args.max_pixels,
                      estimator="shipped" if args.quality == "auto" else None)
        if args.onnx:
            restorer = Restorer.from_onnx(path, **kwargs)
        elif self.backend == "onnxruntime":
            to_stderr = functools.partial(print, file=sys.stderr)
            try:
                graph = (int8_graph if args.precision == "int8" else onnx_graph).cached(path, log=to_stderr)
                restorer = Restorer.from_onnx(graph, **kwargs)
            except Exception as err:  # noqa: BLE001 - the JAX path still works; an explicit request fails below
                if args.backend != "auto" or args.precision == "int8":
                    raise ValueError(f"cannot run {path} with ONNX Runtime: {err}") from None
                print(f"warning: {err}; using JAX" if isinstance(err, onnx_graph.CacheNotWritable) else
                      f"warning: ONNX Runtime unavailable for {path} ({err}); using JAX", file=sys.stderr)
                restorer = Restorer.from_checkpoint(path, **kwargs)
        else:
            restorer = Restorer.from_checkpoint(path, **kwargs)
        self._loaded[path] = restorer
        return restorer
