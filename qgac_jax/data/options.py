"""DataConfig: what the training stream is made of (`config.data` in configs/; the defaults are the full recipe)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax.codecs import CODECS
from qgac_jax.data.motion import VIDEO_CODECS

ALL_CODECS = CODECS + VIDEO_CODECS  # a training example's 'codec' is its index here

PIPELINES = ("tf.data", "pillow")


@dataclasses.dataclass
class DataConfig:
    """Sources, patch and batch, and the JPEG degradation recipe.

    Single JPEG: quality uniform in [q_min, q_max] (IJG tables), or random
    tables with probability p_random_table. Double JPEG (probability
    p_double): first saved at a quality in [first_q_min, first_q_max] (or
    random tables, same probability), with probability p_shift cropped by
    (dy, dx) != (0, 0) in 0..7 so the two 8x8 grids do not align, then saved
    again as a single JPEG is. The file holds the second save's tables.

    Other codecs: each example is first given a codec from `codecs`, drawn by
    `codec_weights` (None: equally); JPEG then follows the recipe above,
    WebP, AVIF and HEIC are saved once by their encoders (libwebp, libavif,
    x265) at an encoder quality uniform in [codec_q_min, codec_q_max] and
    guided by the Q-map their files record (`qgac_jax.codecs`). With
    probability codec_p_jpeg_first such a save is of a photo first saved as
    a JPEG (a double JPEG's first save: quality, tables and shift as above):
    the guide is then the max of the file's map and that JPEG's, and the
    effective quality the JPEG's (100 for a codec file saved once). Only the
    "pillow" pipeline runs those encoders.
    """

    sources: Tuple[str, ...] = ("tfds:div2k/bicubic_x2:train",)
    weights: Optional[Tuple[float, ...]] = None  # per source; None = by image count
    patch_size: int = 128
    batch_size: int = 32  # global; each host yields batch_size // process_count
    grey: bool = False
    q_min: int = 10
    q_max: int = 95
    p_random_table: float = 0.2
    p_double: float = 0.5
    first_q_min: int = 10
    first_q_max: int = 95
    p_shift: float = 0.5
    subsampling: str = "4:2:0"
    codecs: Tuple[str, ...] = ("jpeg",)  # of ALL_CODECS: photos' codecs, and frames of clips (data/motion.py)
    codec_weights: Optional[Tuple[float, ...]] = None  # per codec; None = equally
    codec_q_min: int = 10  # the encoder quality of WebP, AVIF and HEIC saves
    codec_q_max: int = 90
    codec_p_jpeg_first: float = 0.0  # of the WebP, AVIF and HEIC examples: converted from an earlier JPEG
    seed: int = 0
    max_pixels: int = 64_000_000  # per source image; larger files are refused as bombs
    pipeline: str = "tf.data"  # or "pillow": worker processes, no TensorFlow (see pillow_pipeline)
    workers: int = 0  # processes of the "pillow" pipeline; 0 = one per CPU core

    def __post_init__(self):
        for name in ("sources", "codecs"):
            value = getattr(self, name)
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        if not self.sources:
            raise ValueError("data.sources is empty; give at least one of builtin, folder:<path>, tfds:<name>:<split>")
        self._check_weights("weights", "sources")
        self._check_weights("codec_weights", "codecs")
        unknown = [c for c in self.codecs if c not in ALL_CODECS]
        if not self.codecs or unknown or len(set(self.codecs)) != len(self.codecs):
            raise ValueError(f"data.codecs {self.codecs} must name each of {', '.join(ALL_CODECS)} at most once")
        if self.mixes_codecs and self.pipeline != "pillow":
            raise ValueError(f"data.codecs {self.codecs} need data.pipeline='pillow' (TensorFlow has no WebP, AVIF "
                             "or HEIC encoder)")
        for low, high in (("q_min", "q_max"), ("first_q_min", "first_q_max"), ("codec_q_min", "codec_q_max")):
            for name in (low, high):
                try:
                    qz.validate_quality(getattr(self, name))
                except ValueError as err:
                    raise ValueError(f"data.{name}: {err}") from None
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"data.{low} ({getattr(self, low)}) is above data.{high} ({getattr(self, high)})")
        for name in ("p_random_table", "p_double", "p_shift", "codec_p_jpeg_first"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"data.{name} must lie in [0, 1], got {getattr(self, name)}")
        if self.subsampling not in qz.PILLOW_SUBSAMPLING:
            raise ValueError(
                f"data.subsampling must be one of {sorted(qz.PILLOW_SUBSAMPLING)}, got {self.subsampling!r}"
            )
        if self.patch_size < 8 or self.patch_size % 8:
            raise ValueError(f"data.patch_size must be a positive multiple of 8, got {self.patch_size}")
        if self.batch_size < 1:
            raise ValueError(f"data.batch_size must be positive, got {self.batch_size}")
        if self.pipeline not in PIPELINES:
            raise ValueError(f"data.pipeline must be one of {PIPELINES}, got {self.pipeline!r}")
        if self.workers < 0:
            raise ValueError(f"data.workers must be 0 (one per core) or more, got {self.workers}")

    def _check_weights(self, name: str, of: str) -> None:
        weights = getattr(self, name)
        if weights is None:
            return
        object.__setattr__(self, name, tuple(float(w) for w in weights))
        if len(getattr(self, name)) != len(getattr(self, of)) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"data.{name} {getattr(self, name)} must give one non-negative weight per {of[:-1]} "
                             f"({len(getattr(self, of))}) with a positive sum")

    @property
    def mixes_codecs(self) -> bool:
        """Whether examples come from codecs other than JPEG: then each carries its own Q-map ('qmap')."""
        return self.codecs != ("jpeg",)

    @property
    def codec_probs(self):
        weights = self.codec_weights or (1.0,) * len(self.codecs)
        return tuple(w / sum(weights) for w in weights)

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3

    @property
    def crop_size(self) -> int:
        """Side of the crop taken from a photo: 8 more than the patch when a shifted first JPEG save needs the room."""
        first_saves = self.p_double > 0 or (self.mixes_codecs and self.codec_p_jpeg_first > 0)
        return self.patch_size + (8 if first_saves and self.p_shift > 0 else 0)

    @classmethod
    def from_config(cls, config) -> "DataConfig":
        """From a DataConfig (a copy) or a mapping holding these fields."""
        d = dataclasses.asdict(config) if isinstance(config, DataConfig) else dict(config)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown data options {sorted(unknown)}; known: {sorted(fields)}")
        return cls(**d)
