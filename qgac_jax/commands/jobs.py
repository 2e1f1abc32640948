"""One file restored as `restore` restores it, for every face of the engine (the command line, the web page).

`restore_file` decodes a file, has `engines.Models` pick the model of its
colour, restores it as `guide` says and returns the PNG's pixels with what
the network was told; each problem with one file is a ValueError whose text
(`reason`) is the one line the user sees.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import re
import warnings
from typing import Callable, List, Optional

import numpy as np

from qgac_jax.commands import engines
from qgac_jax.restoring import guide
from qgac_jax.files.images import DEFAULT_MAX_PIXELS, Decoded, decode
from qgac_jax.models.tiling import DEFAULT_OVERLAP, DEFAULT_TILE


@dataclasses.dataclass(frozen=True)
class Settings:
    """What `Models` and `restore_file` need of restore's arguments (the web page builds one of its own)."""

    model: str = "psnr"  # the shipped model (shipped.MODELS) where no checkpoint or onnx is named
    realism: Optional[float] = None  # between the PSNR (0) and perceptual (1) models (models.realism); None: model
    checkpoint: Optional[str] = None
    onnx: Optional[str] = None
    backend: Optional[str] = None  # --backend; None: $QGAC_BACKEND, else auto (engines.decide)
    precision: str = engines.DEFAULT_PRECISION
    tile: int = DEFAULT_TILE
    overlap: int = DEFAULT_OVERLAP
    max_pixels: int = DEFAULT_MAX_PIXELS
    quality: guide.Mode = "auto"
    ensemble: bool = False
    consistent: bool = False  # JPEGs projected into their files' coefficient bins (restoring.consistency)
    threads: Optional[int] = None  # ONNX Runtime's cores (None: all of them)
    video_codec: str = "x264"  # what a restored clip's video is encoded with (files.clip_output.ENCODERS)
    crf: Optional[int] = None  # its CRF (None: the codec's default)


def settings(args: argparse.Namespace, **more) -> Settings:
    """The Settings of a command's parsed arguments: the fields it parsed, the defaults for the rest, `more` on
    top. Every command line and the web page build their settings here."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Settings) if hasattr(args, f.name)}
    return Settings(**{**given, **more})


@dataclasses.dataclass
class Restored:
    pixels: np.ndarray  # what the PNG holds, upright
    decoded: Decoded
    guide: guide.Guide  # what the network was told
    notes: List[str]  # Pillow's warnings about the file


def restore_file(models, src, settings: Settings, quality: Optional[guide.Mode] = None,
                 progress: Optional[Callable[[int], None]] = None, on_decoded=None) -> Restored:
    """Decodes and restores one file as `restore` does; `quality` overrides the settings' (the page's slider).

    `on_decoded(decoded, restorer)` runs between decoding and restoring (a progress bar's total, say).
    """
    quality = settings.quality if quality is None else quality
    with warnings.catch_warnings(record=True) as caught:  # Pillow's notes on odd EXIF, named by the caller
        warnings.simplefilter("always")
        decoded = decode(src, settings.max_pixels, full=guide.needs_file(quality))
    restorer = models(decoded.is_grey)
    if on_decoded is not None:
        on_decoded(decoded, restorer)
    pixels, told = restorer.restore_decoded(decoded, quality, progress=progress, ensemble=settings.ensemble,
                                            consistent_with=src if settings.consistent else None)
    return Restored(pixels, decoded, told, list(dict.fromkeys(str(w.message) for w in caught)))


@dataclasses.dataclass
class Tally:
    """What a run did, for its last line (restore's, and the archive job's)."""

    restored: int = 0
    skipped: int = 0
    failed: int = 0
    megapixels: float = 0.0
    not_restored: collections.Counter = dataclasses.field(default_factory=collections.Counter)  # format -> files

    def line(self, seconds: float) -> str:
        kinds = ", ".join(f"{n} {name}" for name, n in sorted(self.not_restored.items()))
        skipped = f", skipped {self.skipped} (output exists)" if self.skipped else ""
        lossless = (f", not restored: {kinds} (no quantization to read; --quality Q restores them as JPEGs of "
                    "quality Q)"
                    if self.not_restored else "")
        return (f"restored {self.restored}{skipped}{lossless}, failed {self.failed}; "
                f"{self.megapixels:.2f} megapixels in {seconds:.1f} s")


def reason(err: BaseException) -> str:
    """The one line a user sees for what went wrong with one file."""
    if isinstance(err, MemoryError):
        return "out of memory (lower --max-pixels or --tile)"
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    text = re.sub(r"\s*\(0 bytes not processed\)", "", str(err)).strip()  # Pillow's aside on a cut file
    return text or type(err).__name__
