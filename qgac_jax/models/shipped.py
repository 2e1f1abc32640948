"""The models shipped inside the package, and where they live.

pretrained/colour and pretrained/grey are restoration exports ('small'
variant) trained for PSNR (L1), the default; pretrained/perceptual_colour
(and perceptual_grey where it ships) the same network fine-tuned with VGG16
and adversarial losses to look like the photo (`--model perceptual`);
pretrained/estimator is the quality estimator both use for
recompressed JPEGs, and pretrained/estimator_codecs the one continued on
WebP, AVIF and HEIC files, which finds the JPEG such a file was converted
from (it reads double JPEGs less well, so JPEGs stay with the first one).
pretrained/int8_colour and int8_grey are the PSNR models fine-tuned with the
int8 graph's arithmetic simulated (configs/int8.py): what --precision int8
runs, their ranges written into the graph. pretrained/video_colour is the
colour PSNR model fine-tuned on frames of real video encodes beside its
photo mix (configs/video.py): what restore runs for clips (`clip_model`),
and `--model video` for anything.
A colour model restores grey images too and the reverse (see Restorer's
policy), so each lookup falls back to the other.
"""

from __future__ import annotations

import pathlib
from typing import Dict, List, Optional

ROOT = pathlib.Path(__file__).parents[1] / "pretrained"  # qgac_jax/pretrained
# The ONNX graphs of the exports beside them (`python -m qgac_jax.tools.ship_graphs`), named as the cache names them.
GRAPHS = ROOT / "graphs"


def _export(name: str) -> Optional[pathlib.Path]:
    path = ROOT / name
    return path if (path / "model").is_dir() else None


MODELS = ("psnr", "perceptual", "video")  # what --model names; psnr is the default (for clips: video)


def default_checkpoint(channels: int = 3, model: str = "psnr", precision: str = "float32") -> Optional[pathlib.Path]:
    """The shipped restoration export of `model` for `channels` (else for the other), or None when none ships;
    for int8, the PSNR model fine-tuned for it (int8_colour, int8_grey) where one ships for that colour."""
    if model not in MODELS:
        raise ValueError(f"no shipped model {model!r}; there are {', '.join(MODELS)}")
    prefix = "" if model == "psnr" else f"{model}_"
    preferred = ("colour", "grey") if channels == 3 else ("grey", "colour")
    if precision == "int8" and model == "psnr" and _export("int8_" + preferred[0]) is not None:
        return _export("int8_" + preferred[0])
    for name in preferred:
        if _export(prefix + name) is not None:
            return _export(prefix + name)
    return None


def clip_model(model: str) -> str:
    """The shipped model a clip is restored with when `model` is asked for: the PSNR model's video fine-tune
    (frames of real video encodes) where it ships, else `model` itself."""
    return "video" if model == "psnr" and _export("video_colour") is not None else model


def estimator_checkpoint() -> Optional[pathlib.Path]:
    """The shipped quality estimator's export, or None."""
    return _export("estimator")


def codec_estimator_checkpoint() -> Optional[pathlib.Path]:
    """The shipped estimator of WebP, AVIF and HEIC files, or None."""
    return _export("estimator_codecs")


def with_graphs() -> Dict[str, List[pathlib.Path]]:
    """{precision: the shipped exports whose ONNX graphs of that precision ship in GRAPHS}: every restoration
    export restore can pick by itself (each model, for each colour, at each precision) and, in float32, the quality
    estimators. What python -m qgac_jax.tools.ship_graphs builds and tests/test_ship_graphs.py holds it to."""
    picked: Dict[str, List[pathlib.Path]] = {"float32": [], "int8": []}
    for precision, exports in picked.items():
        for model in MODELS:
            for channels in (3, 1):
                path = default_checkpoint(channels, model, precision)
                if path is not None and path not in exports:
                    exports.append(path)
    picked["float32"] += [p for p in (estimator_checkpoint(), codec_estimator_checkpoint()) if p is not None]
    return picked

