"""The guide: what the network is told about a file's quantization, and the sentence that says so.

QGAC restores what it is told was lost, so this one decision is the method's
hinge. It takes three things: what the file records (`images.decode`
reads it: JPEG tables, VP8 segments, HEVC or AV1 quantizers), the user's
mode, and the quality estimator.

- "auto" (the default): the file's quantization raised to what the
  estimator reads off the pixels. A JPEG's tables go up, entry by entry,
  to the IJG tables of the estimate (a photo saved at 20 and re-saved at 75
  is told quality 20, as training combined a double JPEG's two saves);
  another codec's map goes up to the JPEG it was converted from
  (`AfterJpeg`), where the estimator learned that codec. Without an
  estimator, as "file".
- "file": the file's own quantization alone.
- a quality 1..100: the IJG tables of that quality (4:2:0, or a colour
  JPEG's own subsampling), whatever the file holds; the only way to
  restore a PNG. A lower quality asks for a stronger correction.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional, Union

import numpy as np

from qgac_jax import codecs
from qgac_jax.codecs import jpeg
from qgac_jax.codecs import jpeg_tables as qz

MODES = ("auto", "file")
Mode = Union[str, int]  # "auto", "file" or an IJG quality 1..100
# `--quality`'s help, for every command that restores (restore, evaluate, the archive job).
HELP = ("what the network is told about the file's quantization: 'auto' (default) the file's own raised to the "
        "quality the shipped estimator reads off the pixels (photos saved more than once, or converted from a "
        "JPEG); 'file' the file's own alone; 1..100 the IJG tables of that quality, whatever the file holds "
        "(needed for PNGs; a lower value asks for a stronger correction)")
RECOMPRESSED_MARGIN = 5  # quality units: how far below the file's tables an estimate says "recompressed"
# A WebP, AVIF or HEIC estimated below this is said to come from an earlier JPEG (one saved once reads about 100;
# a JPEG above 90 leaves nothing its re-save did not cover).
EARLIER_JPEG_BELOW = 90
Estimator = Callable[[np.ndarray, codecs.Quantization], float]  # (pixels, the file's quantization) -> quality


def parse_mode(value) -> Mode:
    """None or 'auto' -> 'auto'; 'file'; a whole number 1..100 (or its text) -> int; a ValueError otherwise."""
    if value is None:
        return "auto"
    if isinstance(value, str):
        text = value.strip().lower()
        if text in MODES:
            return text
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"quality must be 1..100, 'auto' or 'file', got {value!r}") from None
    try:
        return qz.validate_quality(value)
    except (TypeError, ValueError):
        raise ValueError(f"quality must be 1..100, 'auto' or 'file', got {value!r}") from None


def needs_file(mode: Mode) -> bool:
    """Whether the mode tells the network the file's own quantization (a told quality needs only its header)."""
    return not isinstance(mode, int)


class NoQuantization(ValueError):
    """A file with nothing quantized to read (PNG, lossless WebP...), given no quality. (A lossy file our readers
    cannot follow is a plain ValueError with their reason: a failure, not a lossless file to list.)"""

    def __init__(self, format_name: str):
        super().__init__(f"no quantization to read ({format_name}); --quality Q restores it as a JPEG of quality Q")
        self.format_name = format_name


@dataclasses.dataclass(frozen=True)
class Guide:
    """What the network is told, the estimate behind it (None where none ran), and one line for people."""

    quantization: codecs.Quantization
    estimate: Optional[float]
    sentence: str


def ijg_quality(estimate: float) -> int:
    """An estimate as the IJG quality (1..100) whose tables the network is told."""
    return int(np.clip(round(estimate), 1, 100))


def raised_tables(quantization: jpeg.JpegQuantization, quality: float) -> jpeg.JpegQuantization:
    """The file's tables raised, entry by entry, to at least the IJG tables of `quality` (rounded)."""
    luma, chroma = qz.effective_tables((quantization.luma, quantization.chroma), qz.ijg_tables(ijg_quality(quality)))
    return jpeg.JpegQuantization(luma, chroma, quantization.subsampling)


def told(decoded, mode: Mode, estimator: Optional[Estimator] = None) -> Guide:
    """The guide of a file `images.decode` read; NoQuantization (a lossless file) or a ValueError (a lossy one
    our readers cannot follow) where the mode needs a quantization the file does not give."""
    recorded = decoded.recorded
    if isinstance(mode, int):
        colour_jpeg = recorded is not None and decoded.format == "JPEG" and not decoded.is_grey
        tables = jpeg.JpegQuantization.from_quality(mode, grey=decoded.is_grey,
                                                    subsampling=recorded.subsampling if colour_jpeg else "4:2:0")
        # (a WebP's header alone when the mode needs no more: `needs_file`)
        file_says = f"{decoded.format}: {recorded.describe()}; " if recorded is not None and decoded.format != "JPEG" \
            else ""
        return Guide(tables, None, f"{file_says}told IJG tables of quality {mode} (--quality)")
    if recorded is None:
        if decoded.unread and not decoded.format.startswith("lossless"):
            raise ValueError(f"{decoded.format}: {decoded.unread}; --quality Q restores it as a JPEG of quality Q")
        raise NoQuantization(decoded.format)
    return of_file(decoded.pixels, recorded, mode, estimator, decoded.format)


def of_file(pixels: np.ndarray, recorded: codecs.Quantization, mode: Mode, estimator: Optional[Estimator] = None,
            format_name: str = "") -> Guide:
    """The guide of decoded pixels [H, W, C] and the quantization their file records (the evaluation's way in)."""
    if isinstance(mode, int):
        tables = jpeg.JpegQuantization.from_quality(mode, grey=pixels.shape[-1] == 1)
        return Guide(tables, None, f"told IJG tables of quality {mode} (--quality)")
    says = f"{format_name or recorded.codec.upper()}: {recorded.describe()}"
    reads = getattr(estimator, "codecs", ("jpeg",))
    if recorded.codec == "jpeg":
        file_q = qz.equivalent_quality(recorded.luma)
        if mode == "file" or estimator is None:
            return Guide(recorded, None, f"the file's tables (about quality {file_q})")
        estimate = estimator(pixels, recorded)
        raised = raised_tables(recorded, estimate)
        assumed = qz.equivalent_quality(raised.luma)
        # Within the estimator's margin of the file's own quality, a photo was saved once (a 30 read as 29).
        note = "recompressed: restored as" if assumed < file_q - RECOMPRESSED_MARGIN else "assumed"
        return Guide(raised, estimate, f"file tables about quality {file_q}, estimated effective quality "
                                       f"{estimate:.0f}; {note} quality {assumed}")
    if mode == "file" or estimator is None or recorded.codec not in reads:
        return Guide(recorded, None, f"{says}: the file's own quantizer")
    estimate = estimator(pixels, recorded)
    after = AfterJpeg.of(recorded, estimate)
    if estimate >= EARLIER_JPEG_BELOW:
        return Guide(after, estimate,
                     f"{says}: the file's own quantizer (no earlier JPEG seen, estimate {estimate:.0f})")
    return Guide(after, estimate, f"{says}; converted from a JPEG of about quality {after.quality}: restored as "
                                  "after it")


@dataclasses.dataclass(frozen=True)
class AfterJpeg:
    """A WebP, AVIF or HEIC file's quantization raised to that of the JPEG it was converted from.

    The Q-map is the elementwise max of the file's and the JPEG's (IJG tables of `quality`, 4:2:0, on the
    file's grid), as a double JPEG's guide is the max of its two saves' tables; the rest of the contract
    (`codecs.Quantization`) follows the file.
    """

    file: codecs.Quantization
    earlier: jpeg.JpegQuantization
    quality: int

    @classmethod
    def of(cls, quantization: codecs.Quantization, quality: float) -> "AfterJpeg":
        q = ijg_quality(quality)
        return cls(quantization, jpeg.JpegQuantization.from_quality(q, grey=quantization.is_grey), q)

    @property
    def codec(self) -> str:
        return self.file.codec

    @property
    def is_grey(self) -> bool:
        return self.file.is_grey

    @property
    def block(self) -> int:
        return int(np.lcm(self.file.block, self.earlier.block))

    def qmap(self, height: int, width: int) -> np.ndarray:
        own = self.file.qmap(height, width)  # [H, W, K]
        return np.maximum(own, self.earlier.qmap(height, width)[..., :own.shape[-1]])

    def transformed(self, transpose: bool, flip_v: bool, flip_h: bool) -> Optional["AfterJpeg"]:
        moved = (self.file.transformed(transpose, flip_v, flip_h), self.earlier.transformed(transpose, flip_v, flip_h))
        return None if None in moved else AfterJpeg(*moved, self.quality)

    def describe(self) -> str:
        return f"{self.file.describe()}, after a JPEG of about quality {self.quality}"


EstimatorChoice = Union[None, str, os.PathLike, Estimator]  # what Restorer's estimator= accepts


def resolve_estimator(choice: EstimatorChoice, onnx: bool = False) -> Optional[Estimator]:
    """"shipped", an export's path, an Estimator (any callable) or None -> a callable or None; an export runs in
    ONNX Runtime with `onnx` (a restorer that does: no JAX, `graphs.sessions.estimate`), else in JAX.

    "shipped": the JPEG estimator for JPEGs and, where the package ships it, the codec one for the codecs
    it read (`quality_estimate.PerCodec`).
    """
    from qgac_jax.models import quality_estimate, shipped

    if onnx:
        from qgac_jax.graphs import sessions

        load = sessions.estimate
    else:
        load = quality_estimate.QualityEstimate.from_checkpoint
    if isinstance(choice, str) and choice == "shipped":
        jpeg_path, codec_path = shipped.estimator_checkpoint(), shipped.codec_estimator_checkpoint()
        if jpeg_path is None or codec_path is None:
            return resolve_estimator(jpeg_path, onnx)
        jpeg_estimate, codec_estimate = load(jpeg_path), load(codec_path)
        return quality_estimate.PerCodec({"jpeg": jpeg_estimate,
                                          **{c: codec_estimate for c in codec_estimate.codecs if c != "jpeg"}})
    if isinstance(choice, (str, os.PathLike)):
        return load(choice)
    return choice

