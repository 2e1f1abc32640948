"""The command-line arguments every face of the restorer shares: the guide's mode and the size limit.

restore, evaluate, the web page and the archive job parse them here, so a
value means the same everywhere and is refused with the same one line.
"""

from __future__ import annotations

import argparse
import math

from qgac_jax.restoring import guide
from qgac_jax.restoring.image_io import DEFAULT_MAX_PIXELS


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
