"""Evaluation of a restorer against the JPEG baseline, with the literature's conventions.

Degradation (docs/conventions.md): Pillow `save(quality=q)` (IJG tables,
4:2:0 for colour), Pillow decode; metrics on uint8 levels [0, 255], mean over
images. A double-JPEG case "Q1:Q2[:S]" saves at Q1, decodes, crops S pixels
off the top and left (S = 0: aligned grids), and saves that at Q2; the clean
target is cropped the same way. "CODEC:Q" is a single WebP, AVIF or HEIC
save at the encoder's quality Q, and "Q1:CODEC:Q" such a save of a photo
first saved as a JPEG at Q1 (a conversion). The restorer is given what a
file gives: the decoded pixels and the quantization of the last save.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax import codecs
from qgac_jax.codecs import jpeg
from qgac_jax.data import sources
from qgac_jax.data.degrade import CODECS, codec_decode, codec_encode, compress_twice, pillow_decode, pillow_encode

log = logging.getLogger(__name__)
METRICS = ("psnr", "ssim", "psnr_b", "mae")  # mae: mean absolute error in uint8 levels (validation L1)
PSNR_CAP = 100.0  # dB: PSNR and PSNR-B of identical images (an exact reproduction), instead of infinity
MIN_SIDE = 11  # SSIM's window: smaller images are skipped with a warning
LPIPS_NAMES = {"alex": "Alex", "vgg": "VGG"}


@dataclasses.dataclass(frozen=True)
class Case:
    """One degradation: a single JPEG at `quality`, or `first` then `quality` with the grid shifted by `shift`;
    or a save by another `codec` (degrade.CODECS) at its encoder's `quality`, of the photo or (`first`) of
    its JPEG at quality `first`."""

    quality: int
    first: Optional[int] = None
    shift: int = 0
    codec: str = "jpeg"

    def __post_init__(self):
        qz.validate_quality(self.quality)
        if self.codec not in CODECS:
            raise ValueError(f"codec {self.codec!r}: one of {', '.join(CODECS)}")
        if self.first is not None:
            qz.validate_quality(self.first)
        if not 0 <= self.shift <= 7 or ((self.first is None or self.codec != "jpeg") and self.shift):
            raise ValueError(f"a grid shift lies in 0..7 and needs a first quality (JPEG twice), got {self.shift}")

    @classmethod
    def parse(cls, text: Union[str, int]) -> "Case":
        """'40' (single JPEG), 'Q1:Q2[:SHIFT]' (double JPEG), 'CODEC:Q' (another codec, e.g. webp:10) or
        'Q1:CODEC:Q' (a JPEG at Q1 re-saved by another codec, e.g. 20:webp:75)."""
        parts = [p.strip().lower() for p in str(text).strip().split(":")]
        if len(parts) in (2, 3) and parts[-2] in CODECS:
            try:
                return cls(int(parts[-1]), int(parts[0]) if len(parts) == 3 else None, codec=parts[-2])
            except ValueError:
                raise ValueError(f"{text!r}: another codec's case reads CODEC:Q or Q1:CODEC:Q (e.g. webp:10, "
                                 "20:webp:75)") from None
        try:
            numbers = [int(p) for p in parts]
        except ValueError:
            raise ValueError(f"{text!r} is not a quality (e.g. 40) or a double JPEG Q1:Q2[:SHIFT] (e.g. 20:75:4)") \
                from None
        if len(numbers) == 1:
            return cls(numbers[0])
        if len(numbers) in (2, 3):
            return cls(numbers[1], numbers[0], numbers[2] if len(numbers) == 3 else 0)
        raise ValueError(f"{text!r}: a double JPEG reads Q1:Q2[:SHIFT]")

    @property
    def effective_quality(self) -> int:
        """The IJG quality nearest the elementwise max of the saves' luma tables (what the estimator learns):
        of another codec's file, the JPEG's it was converted from, or 100 where there was none."""
        if self.codec != "jpeg":
            return 100 if self.first is None else self.first
        if self.first is None:
            return self.quality
        return qz.equivalent_quality(np.maximum(qz.ijg_tables(self.first)[0], qz.ijg_tables(self.quality)[0]))

    @property
    def name(self) -> str:
        if self.codec != "jpeg":
            return ("" if self.first is None else f"{self.first}:") + f"{self.codec} {self.quality}"
        if self.first is None:
            return str(self.quality)
        return f"{self.first}:{self.quality}" + (f":{self.shift}" if self.shift else "")

    def apply(self, clean: np.ndarray):
        """(decoded uint8, clean target, the quantization the file records (`codecs`), file bytes) of a uint8
        [H, W, C] image."""
        grey = clean.shape[-1] == 1
        if self.codec != "jpeg":
            saved = clean if self.first is None else \
                pillow_decode(pillow_encode(clean, *qz.ijg_tables(self.first), "4:2:0"), grey)
            data = codec_encode(saved, self.codec, self.quality)
            return codec_decode(data, grey), clean, codecs.module(self.codec).read_quantization(data), data
        tables = qz.ijg_tables(self.quality)
        if self.first is None:
            target, data = clean, pillow_encode(clean, *tables, "4:2:0")
        else:
            h, w = clean.shape[0] - self.shift, clean.shape[1] - self.shift
            data, target = compress_twice(clean, qz.ijg_tables(self.first), tables, (self.shift, self.shift),
                                          (h, w), "4:2:0")
        return pillow_decode(data, grey), target, jpeg.read_quantization(data), data


def eval_examples(source: str, cases: Sequence[Union[Case, int, str]], grey: bool = False, max_images: int = 0,
                  max_pixels: int = 64_000_000) -> Iterator[Dict]:
    """Whole images (no crop), case by case, image by image (the first `max_images` readable ones; 0: all).

    Yields dicts with 'case', 'compressed' and 'target' [H, W, C] float32
    in [0, 1], 'quantization' (the file's), 'bpp' and 'name'.
    """
    cases = [c if isinstance(c, Case) else Case.parse(c) for c in cases]
    chosen = []  # the readable files, found during the first case
    for i, case in enumerate(cases):
        for path in sources.source_files(source, grey) if i == 0 else chosen:
            if i == 0 and max_images and len(chosen) >= max_images:
                break
            try:
                clean = sources.load_image(path, grey, max_pixels)
            except Exception as err:  # noqa: BLE001 - one unreadable image is skipped, never fatal
                log.warning("evaluation: skipped %s (%s: %s)", path, type(err).__name__, err)
                continue
            if i == 0:
                chosen.append(path)
            compressed, target, quantization, data = case.apply(clean)
            yield {"case": case, "compressed": compressed.astype(np.float32) / 255.0,
                   "target": target.astype(np.float32) / 255.0, "quantization": quantization,
                   "bpp": 8.0 * len(data) / (target.shape[0] * target.shape[1]), "name": path.name}


RestoreFn = Callable[[np.ndarray, codecs.Quantization], np.ndarray]


def evaluate_images(restore: RestoreFn, source: str, cases: Sequence[Union[Case, int, str]], grey: bool = False,
                    max_images: int = 0, progress: bool = False, lpips: Sequence[str] = ()) -> Dict:
    """Mean metrics per case for JPEG and model (METRICS, and `lpips_alex` / `lpips_vgg` for `lpips`).

    `restore(compressed [H, W, C] in [0, 1], the file's quantization) -> [H, W, C]`.
    Returns {'images': n, 'qualities': {case name: {'bpp': .., 'jpeg': {metric: ..}, 'model': {...}}},
    'example': (compressed, restored, clean) of the first image}. Single-JPEG cases are keyed by
    their quality (int), double ones by 'Q1:Q2[:S]'. With `progress`, a bar on a terminal and a line
    per case otherwise.
    """
    import jax.numpy as jnp

    from qgac_jax.evaluation import lpips as lpips_lib
    from qgac_jax.evaluation import metrics

    min_side = max(MIN_SIDE, lpips_lib.MIN_SIDE if lpips else 0)
    names = METRICS + tuple(f"lpips_{net}" for net in lpips)
    cases = [c if isinstance(c, Case) else Case.parse(c) for c in cases]
    key = {c: (c.quality if c.first is None and c.codec == "jpeg" else c.name) for c in cases}
    sums: Dict[Case, Dict[str, list]] = {c: {} for c in cases}
    example = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="evaluating", unit="image", disable=None)
    for ex in eval_examples(source, cases, grey, max_images):
        case = ex["case"]
        if min(ex["target"].shape[:2]) < min_side:
            log.warning("evaluation: skipped %s at %s: %dx%d pixels, and %s needs at least %dx%d", ex["name"],
                        case.name, ex["target"].shape[1], ex["target"].shape[0],
                        "LPIPS" if min_side > MIN_SIDE else "SSIM", min_side, min_side)
            continue
        restored = np.clip(np.asarray(restore(ex["compressed"], ex["quantization"])), 0.0, 1.0)
        levels = lambda a: jnp.round(jnp.asarray(a)[None] * 255.0)  # noqa: E731 - [1, H, W, C] uint8 levels
        clean = levels(ex["target"])
        for who, img in (("jpeg", ex["compressed"]), ("model", restored)):
            values = metrics.all_metrics(clean, levels(img))
            values["mae"] = jnp.mean(jnp.abs(clean - levels(img)), axis=(1, 2, 3))
            for net in lpips:
                values[f"lpips_{net}"] = lpips_lib.lpips(clean, levels(img), net)
            for name, value in values.items():
                value = float(value[0])  # identical images: PSNR is capped, so means and JSON stay finite
                sums[case].setdefault(f"{who}/{name}", []).append(min(value, PSNR_CAP) if "psnr" in name else value)
        sums[case].setdefault("bpp", []).append(ex["bpp"])
        if example is None:
            example = (ex["compressed"], restored, ex["target"])
        if bar is not None:
            bar.update()
            if bar.disable and case is not cases[0] and len(sums[case]["bpp"]) == 1:  # not a terminal
                _log_case(cases[cases.index(case) - 1], sums)
    if not any(sums.values()):
        raise ValueError(f"no readable images of at least {min_side}x{min_side} pixels in {source}")
    if bar is not None:
        if bar.disable and sums[cases[-1]]:
            _log_case(cases[-1], sums)
        bar.close()
    out = {"images": max(len(s.get("bpp", ())) for s in sums.values()), "qualities": {}, "example": example}
    for c in cases:
        if not sums[c]:
            continue  # every image too small once cropped for this case: warned above
        mean = {k: float(np.mean(v)) for k, v in sums[c].items()}
        out["qualities"][key[c]] = {"bpp": mean["bpp"],
                                    **{who: {m: mean[f"{who}/{m}"] for m in names} for who in ("jpeg", "model")}}
    return out


def _log_case(case: Case, sums) -> None:
    s = sums[case]
    print(f"{case.name}: {len(s['bpp'])} images, PSNR JPEG {np.mean(s['jpeg/psnr']):.2f} -> model "
          f"{np.mean(s['model/psnr']):.2f} dB", flush=True)


def flat_metrics(result: Dict) -> Dict[str, float]:
    """{'jpeg_psnr_q10': .., 'model_ssim': (mean over cases), ...} for logging."""
    flat = {}
    for q, r in result["qualities"].items():
        for who in ("jpeg", "model"):
            for m in METRICS:
                flat[f"{who}_{m}_q{q}"] = r[who][m]
    for who in ("jpeg", "model"):
        for m in METRICS:
            flat[f"{who}_{m}"] = float(np.mean([r[who][m] for r in result["qualities"].values()]))
    return flat


def lpips_nets(result: Dict) -> List[str]:
    """The LPIPS networks an `evaluate_images` result was measured with ('alex', 'vgg'), in its order."""
    first = next(iter(result["qualities"].values()), {}).get("jpeg", {})
    return [k[len("lpips_"):] for k in first if k.startswith("lpips_")]


def markdown_table(result: Dict, baseline: str = "JPEG") -> str:
    """The result as a Markdown table; `baseline` names the compressed images' column (JPEG, WEBP...)."""
    b = baseline
    rows = [
        f"| quality | bpp | PSNR {b} | PSNR model | gain | SSIM {b} | SSIM model | PSNR-B {b} | PSNR-B model "
        "| gain |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    nets = lpips_nets(result)
    for net in nets:  # lower is better
        rows[0] += f" LPIPS {LPIPS_NAMES[net]} {b} | LPIPS {LPIPS_NAMES[net]} model |"
        rows[1] += "---|---|"
    for q, r in result["qualities"].items():
        j, m = r["jpeg"], r["model"]
        rows.append(
            f"| {q} | {r['bpp']:.3f} | {j['psnr']:.2f} | {m['psnr']:.2f} | {m['psnr'] - j['psnr']:+.2f} | "
            f"{j['ssim']:.4f} | {m['ssim']:.4f} | {j['psnr_b']:.2f} | {m['psnr_b']:.2f} | "
            f"{m['psnr_b'] - j['psnr_b']:+.2f} |" + "".join(
                f" {j[f'lpips_{n}']:.4f} | {m[f'lpips_{n}']:.4f} |" for n in nets)
        )
    return "\n".join(rows)
