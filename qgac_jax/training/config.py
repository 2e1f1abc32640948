"""Training configs: the defaults every config file starts from, loading a file, and overrides.

A config file (`configs/*.py`) has `get_config(arg="")`, which starts from
`defaults()` (the typed sections' own defaults, `sections`) and changes
what its experiment needs: one level, readable on its own. `load("configs/cpu.py:grey")` runs it by path (no `sys.path`
edits); `override(config, "optim.lr", "3e-4")` sets one field from the
command line, refusing a key the config does not have and a value of the
wrong type with one line that names it.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import os
import textwrap
from typing import Any, Sequence

from qgac_jax.models import shipped
from qgac_jax.training import sections

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))  # the checkout
PRETRAINED = str(shipped.ROOT)  # where configs that continue a shipped model find it
# $QGAC_DATA, else ../shared/data beside the checkout.
SHARED = os.environ.get("QGAC_DATA") or os.path.join(os.path.dirname(ROOT), "shared", "data")
COLOUR_SETS = ("t91", "bsds500_train", "wiki49", "urban100_20", "mcmaster18")


def defaults() -> sections.TrainingConfig:
    """Every field a training config has, at its one default (`sections`): the full recipe, `configs/base.py`."""
    return sections.TrainingConfig()


def l1_only(c: sections.TrainingConfig) -> None:
    """The PSNR model's loss: L1 alone, no VGG, no discriminator."""
    c.loss.l1, c.loss.perceptual, c.loss.adversarial = 1.0, 0.0, 0.0
    c.loss.gan_start_step = 10**12
    c.optim.lr = 2e-4


def local_data(c: sections.TrainingConfig, grey: bool) -> None:
    """Training folders of ../shared/data (or $QGAC_DATA) that exist, plus the built-in photos; 8 images of
    cbsd68 / bsd68 for validation (the built-in photos when absent)."""
    c.model.channels = 1 if grey else 3
    folders = [os.path.join(SHARED, s) for s in COLOUR_SETS + (("train400",) if grey else ())]
    c.data.sources = tuple(f"folder:{f}" for f in folders if os.path.isdir(f)) + ("builtin",)
    c.data.grey = grey
    c.eval.source = os.path.join(SHARED, "bsd68" if grey else "cbsd68")
    if not os.path.isdir(c.eval.source):
        c.eval.source = "builtin"
    c.eval.max_images = 8


def codec_mix(c: sections.TrainingConfig, grey: bool) -> None:
    """The shipped models' fine-tuning set-up: 'small' in float32 from the shipped model of that colour, batch 8
    of 96x96 on `local_data`, JPEG (40%) beside WebP, AVIF and HEIC (20% each) at qualities 5..95 (Pillow)."""
    local_data(c, grey)
    c.model.variant, c.model.dtype = "small", "float32"
    c.data.patch_size, c.data.batch_size = 96, 8
    c.data.pipeline, c.data.workers = "pillow", 1
    c.data.codecs, c.data.codec_weights = ("jpeg", "webp", "avif", "heic"), (0.4, 0.2, 0.2, 0.2)
    c.data.codec_q_min, c.data.codec_q_max = 5, 95
    c.train.init_from = os.path.join(PRETRAINED, "grey" if grey else "colour")


def parse_arg(arg, **spec):
    """A config file's argument (after `:`): `parse_arg("grey,steps=500", grey=False, steps=1000)`.

    Comma-separated; a bare name sets a boolean to True; a name not in `spec` is an error naming the
    valid ones, so a typo (`:gray`) cannot silently train the wrong model.
    """
    values = dict(spec)
    for item in filter(None, (a.strip() for a in (arg or "").split(","))):
        name, eq, text = item.partition("=")
        if name not in spec:
            valid = ", ".join(sorted(spec)) or "none"
            raise ValueError(f"unknown config argument {name!r}; this config takes: {valid}")
        default = spec[name]
        if not eq:
            if not isinstance(default, bool):
                raise ValueError(f"config argument {name!r} needs a value ({name}=...)")
            values[name] = True
        elif isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(f"config argument {name}={text!r} must be true or false")
            values[name] = text.lower() in ("true", "1")
        else:
            try:
                values[name] = type(default)(text)
            except ValueError:
                raise ValueError(f"config argument {name}={text!r} is not a valid {type(default).__name__}") from None
    return values


def load(spec: str) -> sections.TrainingConfig:
    """`path/to/config.py[:arg]` -> its `get_config(arg)`; a ValueError with one line when it cannot."""
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        names = sorted(f"configs/{n}" for n in os.listdir(os.path.join(ROOT, "configs")) if n.endswith(".py")
                         and not n.startswith("_")) if os.path.isdir(os.path.join(ROOT, "configs")) else []
        raise ValueError(f"config file {path} does not exist (shipped configs: {', '.join(names) or 'none'})")
    name = "qgac_config_" + hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:12]
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"{path} has no get_config(arg) function")
    config = module.get_config(arg)
    if not isinstance(config, sections.TrainingConfig):
        raise ValueError(f"{path}: get_config must return a TrainingConfig (config.defaults()), "
                         f"not {type(config).__name__}")
    return config


def _value(text: str, current: Any, key: str):
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text  # a bare word: a string
    if isinstance(current, bool) or isinstance(value, bool):
        if not (isinstance(current, bool) and isinstance(value, bool)):
            raise ValueError(f"--config.{key}={text}: expected {type(current).__name__}")
        return value
    if isinstance(current, float) and isinstance(value, int):
        return float(value)
    if isinstance(current, (tuple, list)) and isinstance(value, (tuple, list)):
        return tuple(value)
    if current is None or isinstance(value, type(current)):
        return value
    raise ValueError(f"--config.{key}={text}: expected {type(current).__name__}, got {type(value).__name__}")


def override(c: sections.TrainingConfig, key: str, text: str) -> None:
    """Sets `key` ("optim.lr") to the value `text` reads as (a Python literal, else a string)."""
    node = c
    *parents, leaf = key.split(".")
    for i, part in enumerate(parents):
        if not dataclasses.is_dataclass(node) or part not in {f.name for f in dataclasses.fields(node)}:
            raise ValueError(f"unknown config key {'.'.join(parents[:i + 1])} (in --config.{key})")
        node = getattr(node, part)
    if not dataclasses.is_dataclass(node) or leaf not in {f.name for f in dataclasses.fields(node)} or \
            dataclasses.is_dataclass(getattr(node, leaf)):
        raise ValueError(f"unknown config key {key}")
    setattr(node, leaf, _value(text, getattr(node, leaf), key))


def apply_overrides(c: sections.TrainingConfig, argv: Sequence[str]) -> None:
    """`--config.a.b=value` (or `--config.a.b value`) arguments, in order."""
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith("--config."):
            raise ValueError(f"unrecognised argument {arg}")
        key, eq, text = arg[len("--config."):].partition("=")
        if not eq:
            if not args:
                raise ValueError(f"{arg} needs a value")
            text = args.pop(0)
        override(c, key, text)


def shipped_configs() -> list:
    """'configs/NAME.py: first docstring line, Cost: ...' of each config file beside the package (a checkout)."""
    folder = os.path.join(ROOT, "configs")
    if not os.path.isdir(folder):
        return []
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py") and not name.startswith("_"):
            with open(os.path.join(folder, name)) as f:
                doc = ast.get_docstring(ast.parse(f.read())) or ""
            paragraphs = [" ".join(p.split()) for p in doc.split("\n\n")]
            cost = next((p for p in paragraphs if p.startswith("Cost:")), "")
            line = f"configs/{name}: {doc.splitlines()[0] if doc else ''} {cost}".strip()
            out.append(textwrap.fill(line, 110, subsequent_indent="      "))
    return out


def command_line(argv: Sequence[str], prog: str, description: str):
    """(typed config, workdir) of `--config=FILE[:ARG] --workdir=DIR [--config.KEY=VALUE ...]`; argparse exits 2
    with one line on a mistake (an unknown key, a bad value, a missing file)."""
    import argparse

    class OneLineParser(argparse.ArgumentParser):
        def error(self, message):  # one line, no usage block: the mistake is what the user needs to see
            self.exit(2, f"{self.prog}: error: {message}\n")

    parser = OneLineParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="shipped configs (cost in each file's docstring):\n  " + "\n  ".join(shipped_configs()))
    parser.add_argument("--config", required=True, metavar="FILE[:ARG]", help="a config file, e.g. configs/smoke.py")
    parser.add_argument("--workdir", help="checkpoints, TensorBoard and the export go here (required)")
    args, rest = parser.parse_known_args(argv)
    try:
        config = load(args.config)
        apply_overrides(config, rest)
        config = sections.training(config)  # every key known and typed; the data is checked when training starts
    except ValueError as err:
        parser.error(str(err))
    if not args.workdir:  # after the config: a mistake in it is named first
        parser.error("the following argument is required: --workdir")
    return config, args.workdir
