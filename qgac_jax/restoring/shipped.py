"""The models shipped inside the package, and where they live.

pretrained/colour and pretrained/grey are restoration exports ('small'
variant); pretrained/estimator is the quality estimator both use for
recompressed JPEGs, and pretrained/estimator_codecs the one continued on
WebP, AVIF and HEIC files, which finds the JPEG such a file was converted
from (it reads double JPEGs less well, so JPEGs stay with the first one).
A colour model restores grey images too and the reverse (see Restorer's
policy), so each lookup falls back to the other.
"""

from __future__ import annotations

import pathlib
from typing import Optional

ROOT = pathlib.Path(__file__).parents[1] / "pretrained"  # qgac_jax/pretrained


def _export(name: str) -> Optional[pathlib.Path]:
    path = ROOT / name
    return path if (path / "model").is_dir() else None


def default_checkpoint(channels: int = 3) -> Optional[pathlib.Path]:
    """The shipped restoration export for `channels` (else the other one), or None when none ships."""
    preferred = ("colour", "grey") if channels == 3 else ("grey", "colour")
    for name in preferred:
        if _export(name) is not None:
            return _export(name)
    return None


def estimator_checkpoint() -> Optional[pathlib.Path]:
    """The shipped quality estimator's export, or None."""
    return _export("estimator")


def codec_estimator_checkpoint() -> Optional[pathlib.Path]:
    """The shipped estimator of WebP, AVIF and HEIC files, or None."""
    return _export("estimator_codecs")
