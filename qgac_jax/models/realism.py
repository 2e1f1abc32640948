"""The realism dial: between the faithful (PSNR) model and the perceptual one, by blending their weights.

The perceptual model is the PSNR model fine-tuned with VGG and adversarial
losses, so the two networks' weights lie close enough that a straight line
between them restores sensibly all along (the weights interpolated, not the
outputs): R = 0 is the PSNR model, R = 1 the perceptual one, and in between
textures grow crisper and PSNR falls (docs/model_cards.md measures the
curve). A blend is written once per R (two decimals) as an ordinary export
in the cache, so every engine (JAX, and the ONNX and int8 graphs converted
from it and cached in turn) runs it as it runs a shipped model.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
from typing import Optional

import numpy as np

from qgac_jax.models import shipped

STEP = 0.01  # R is kept to two decimals: one blend (and graph) per hundredth at most


def parse(text) -> float:
    """R from a command line or a page: a number from 0 to 1, kept to two decimals; ValueError otherwise."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"the realism must be a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # (NaN fails this too)
        raise ValueError(f"the realism must be from 0 (faithful) to 1 (perceptual), got {text!r}")
    return round(value / STEP) * STEP


def cache_dir() -> pathlib.Path:
    """Where blends are kept: $QGAC_REALISM_CACHE, else $XDG_CACHE_HOME (~/.cache)/qgac_jax/realism."""
    if os.environ.get("QGAC_REALISM_CACHE"):
        return pathlib.Path(os.environ["QGAC_REALISM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "qgac_jax" / "realism"


def ends(channels: int = 3, faithful: str = "psnr"):
    """(faithful export, perceptual export) of the shipped models for `channels`, of one colour (a grey
    perceptual model does not ship: grey files blend the colour pair, as the colour model restores grey ones);
    `faithful`: the PSNR model, or for clips its video fine-tune. ValueError when a perceptual model does not ship."""
    perceptual = shipped.default_checkpoint(channels, "perceptual")
    if perceptual is None:
        raise ValueError("this installation ships no perceptual model to blend with: --realism needs one")
    colour = 3 if perceptual.name.endswith("colour") else 1
    return shipped.default_checkpoint(colour, faithful), perceptual


def checkpoint(r: Optional[float], channels: int = 3, faithful: str = "psnr", precision: str = "float32",
               log=print) -> Optional[pathlib.Path]:
    """The shipped export restore runs for realism `r` (`parse`d) and files of `channels`: with no realism or 0,
    the `faithful` model itself as it ships for `precision` (`shipped.default_checkpoint`: for int8, its
    fine-tune for int8); at 1 the perceptual model; between, the blend, written to `cache_dir()` on first use (a
    line through `log`) and found there after."""
    if not r:
        return shipped.default_checkpoint(channels, faithful, precision)
    low, high = ends(channels, faithful)
    if r >= 1.0:
        return high
    from qgac_jax.models import exports

    key = hashlib.sha256(f"{exports.digest(low)} {exports.digest(high)} {r:.2f}".encode()).hexdigest()[:20]
    out = cache_dir() / f"{low.name}-{high.name}-{r:.2f}-{key}"
    if not (out / "model").is_dir():
        log(f"blending {low.name} and {high.name} at realism {r:.2f} once (kept at {out})", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        blend(low, high, r, out)
    return out


def blend(low, high, r: float, out) -> None:
    """Writes the export whose weights are (1 - r) * low's + r * high's (one architecture, variant and channels)."""
    try:
        import jax
    except ImportError:
        raise ValueError("a realism between 0 and 1 blends the two models' weights, which needs JAX: pip install "
                         "'.[jax]' (0 and 1 restore without it)") from None

    from qgac_jax.models import exports

    _, a, config = exports.load_restoration_export(low)
    _, b, other = exports.load_restoration_export(high)
    def network(c):  # (an export from before the registry names no architecture: qgac)
        return c.get("architecture", "qgac"), c.get("variant"), c.get("channels"), c.get("overrides") or {}

    if network(config) != network(other):
        raise ValueError(f"{low} and {high} are different networks: their weights cannot be blended")
    mixed = jax.tree.map(lambda x, y: ((1.0 - r) * np.asarray(x, np.float32) + r * np.asarray(y, np.float32)
                                       ).astype(np.asarray(x).dtype), a, b)
    exports.export_params(out, mixed, {**config, "realism": round(r, 2), "blended_from": [str(low), str(high)]})
