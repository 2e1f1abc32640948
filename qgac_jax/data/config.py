"""DataConfig: what the training stream is made of (mirrors `config.data` in configs/)."""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from qgac_jax import quantization as qz

PIPELINES = ("tf.data", "pillow")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Sources, patch and batch, and the JPEG degradation recipe.

    Single JPEG: quality uniform in [q_min, q_max] (IJG tables), or random
    tables with probability p_random_table. Double JPEG (probability
    p_double): first saved at a quality in [first_q_min, first_q_max] (or
    random tables, same probability), with probability p_shift cropped by
    (dy, dx) != (0, 0) in 0..7 so the two 8x8 grids do not align, then saved
    again as a single JPEG is. The file holds the second save's tables.
    """

    sources: Tuple[str, ...] = ("builtin",)
    weights: Optional[Tuple[float, ...]] = None  # per source; None = by image count
    patch_size: int = 128
    batch_size: int = 16  # global; each host yields batch_size // process_count
    grey: bool = False
    q_min: int = 10
    q_max: int = 95
    p_random_table: float = 0.0
    p_double: float = 0.0
    first_q_min: int = 10
    first_q_max: int = 95
    p_shift: float = 0.5
    subsampling: str = "4:2:0"
    seed: int = 0
    max_pixels: int = 64_000_000  # per source image; larger files are refused as bombs
    pipeline: str = "tf.data"  # or "pillow": worker processes, no TensorFlow (see pillow_pipeline)
    workers: int = 0  # processes of the "pillow" pipeline; 0 = one per CPU core

    def __post_init__(self):
        if isinstance(self.sources, str):
            object.__setattr__(self, "sources", (self.sources,))
        object.__setattr__(self, "sources", tuple(self.sources))
        if not self.sources:
            raise ValueError("data.sources is empty; give at least one of builtin, folder:<path>, tfds:<name>:<split>")
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
            if len(self.weights) != len(self.sources) or min(self.weights) < 0 or sum(self.weights) <= 0:
                raise ValueError(
                    f"data.weights {self.weights} must give one non-negative weight per source "
                    f"({len(self.sources)}) with a positive sum"
                )
        for low, high in (("q_min", "q_max"), ("first_q_min", "first_q_max")):
            for name in (low, high):
                try:
                    qz.validate_quality(getattr(self, name))
                except ValueError as err:
                    raise ValueError(f"data.{name}: {err}") from None
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"data.{low} ({getattr(self, low)}) is above data.{high} ({getattr(self, high)})")
        for name in ("p_random_table", "p_double", "p_shift"):
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

    @property
    def channels(self) -> int:
        return 1 if self.grey else 3

    @property
    def crop_size(self) -> int:
        """Side of the crop taken from a photo: 8 more than the patch when shifted double JPEG needs the room."""
        return self.patch_size + (8 if self.p_double > 0 and self.p_shift > 0 else 0)

    @classmethod
    def from_config(cls, config) -> "DataConfig":
        """From an ml_collections ConfigDict (or dict) holding these fields."""
        d = dict(config)
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise ValueError(f"unknown data options {sorted(unknown)}; known: {sorted(fields)}")
        return cls(**d)
