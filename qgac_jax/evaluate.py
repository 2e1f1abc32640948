"""Measure a checkpoint against the JPEG baseline (SPEC section 6 conventions).

    python -m qgac_jax.evaluate --checkpoint PATH --images DIR [--qualities 10,20,30,40] [--grey]
                                [--json OUT.json] [--plot OUT.png]

Each clean image is saved by Pillow at each quality (IJG tables, 4:2:0 for
colour), decoded by Pillow, restored, and PSNR / SSIM / PSNR-B are taken on
uint8 levels against the clean image for both JPEG and model. Grey (--grey)
uses ITU-R BT.601 luma of colour images (Pillow's convert("L")).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Dict, Optional, Sequence

import numpy as np

METRICS = ("psnr", "ssim", "psnr_b", "mae")  # mae: mean absolute error in uint8 levels (validation L1)


def evaluate_images(restore: Callable[[np.ndarray, np.ndarray], np.ndarray], source: str,
                    qualities: Sequence[int], grey: bool = False, max_images: int = 0,
                    progress: bool = False) -> Dict:
    """Mean metrics per quality for JPEG and model.

    `restore(compressed [1, H, W, C] in [0, 1], qmap [1, H, W, K]) -> [1, H, W, C]`.
    Returns {'images': n, 'qualities': {q: {'bpp': .., 'jpeg': {metric: ..}, 'model': {...}}},
    'example': (compressed, restored, clean) of the first image}.
    """
    import jax.numpy as jnp

    from qgac_jax import input_pipeline, metrics

    sums: Dict[int, Dict[str, list]] = {q: {} for q in qualities}
    counts = {q: 0 for q in qualities}
    example = None
    examples = input_pipeline.eval_examples(source, qualities, grey)
    if progress:
        from tqdm import tqdm

        examples = tqdm(examples, desc="evaluating", unit="image")
    for ex in examples:
        q = int(ex["quality"][0])
        if max_images and counts[q] >= max_images:
            continue
        counts[q] += 1
        restored = np.clip(np.asarray(restore(ex["compressed"], ex["qmap"])), 0.0, 1.0)
        levels = lambda a: jnp.round(jnp.asarray(a) * 255.0)  # noqa: E731 - metrics on uint8 levels
        clean = levels(ex["target"])
        for who, img in (("jpeg", ex["compressed"]), ("model", restored)):
            values = metrics.all_metrics(clean, levels(img))
            values["mae"] = jnp.mean(jnp.abs(clean - levels(img)), axis=(1, 2, 3))
            for name, value in values.items():
                sums[q].setdefault(f"{who}/{name}", []).append(float(value[0]))
        sums[q].setdefault("bpp", []).append(ex["bpp"])
        if example is None:
            example = (ex["compressed"][0], restored[0], ex["target"][0])
    if not any(counts.values()):
        raise ValueError(f"no readable images in {source}")
    out = {"images": counts[qualities[0]], "qualities": {}, "example": example}
    for q in qualities:
        mean = {k: float(np.mean(v)) for k, v in sums[q].items()}
        out["qualities"][q] = {"bpp": mean["bpp"],
                               **{who: {m: mean[f"{who}/{m}"] for m in METRICS} for who in ("jpeg", "model")}}
    return out


def flat_metrics(result: Dict) -> Dict[str, float]:
    """{'jpeg_psnr_q10': .., 'model_ssim': (mean over qualities), ...} for logging."""
    flat = {}
    for q, r in result["qualities"].items():
        for who in ("jpeg", "model"):
            for m in METRICS:
                flat[f"{who}_{m}_q{q}"] = r[who][m]
    for who in ("jpeg", "model"):
        for m in METRICS:
            flat[f"{who}_{m}"] = float(np.mean([r[who][m] for r in result["qualities"].values()]))
    return flat


def markdown_table(result: Dict) -> str:
    rows = ["| quality | bpp | PSNR JPEG | PSNR model | gain | SSIM JPEG | SSIM model | PSNR-B JPEG | PSNR-B model | gain |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for q, r in result["qualities"].items():
        j, m = r["jpeg"], r["model"]
        rows.append(f"| {q} | {r['bpp']:.3f} | {j['psnr']:.2f} | {m['psnr']:.2f} | {m['psnr'] - j['psnr']:+.2f} | "
                    f"{j['ssim']:.4f} | {m['ssim']:.4f} | {j['psnr_b']:.2f} | {m['psnr_b']:.2f} | "
                    f"{m['psnr_b'] - j['psnr_b']:+.2f} |")
    return "\n".join(rows)


def plot(result: Dict, path: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qs = list(result["qualities"])
    bpp = [result["qualities"][q]["bpp"] for q in qs]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, x, label in ((axes[0], qs, "JPEG quality"), (axes[1], bpp, "bits per pixel")):
        for who, style in (("jpeg", "o--"), ("model", "o-")):
            ax.plot(x, [result["qualities"][q][who]["psnr"] for q in qs], style, label=who)
        ax.set_xlabel(label)
        ax.set_ylabel("PSNR (dB)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or f"{result['images']} images")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _qualities(text: str):
    try:
        qs = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"qualities must be integers separated by commas, got {text!r}") from None
    if not qs or any(not 1 <= q <= 100 for q in qs):
        raise argparse.ArgumentTypeError(f"qualities must lie in 1..100, got {text!r}")
    return qs


def run(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qgac_jax.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", help="export folder or training workdir (default: the shipped model)")
    parser.add_argument("--images", required=True, help="folder of clean images, or 'builtin'")
    parser.add_argument("--qualities", type=_qualities, default=[10, 20, 30, 40])
    parser.add_argument("--grey", action="store_true", help="evaluate on grey versions of the images")
    parser.add_argument("--max-images", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--json", help="write the numbers here")
    parser.add_argument("--plot", help="draw PSNR against quality and bits per pixel here (PNG)")
    args = parser.parse_args(argv)

    from qgac_jax.restore import default_checkpoint
    from qgac_jax.restorer import Restorer

    checkpoint = args.checkpoint or default_checkpoint(1 if args.grey else 3)
    if checkpoint is None:
        parser.error("this version ships no pretrained checkpoint: pass --checkpoint")
    try:
        restorer = Restorer.from_checkpoint(checkpoint)
        result = evaluate_images(restorer.restore_batch, args.images, args.qualities, args.grey, args.max_images,
                                 progress=True)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{result['images']} images from {args.images} ({'grey' if args.grey else 'colour'}), "
          f"checkpoint {checkpoint}\n")
    print(markdown_table(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": str(checkpoint), "images": result["images"], "source": args.images,
                       "grey": args.grey, "qualities": result["qualities"]}, f, indent=2)
    if args.plot:
        plot(result, args.plot, f"{args.images} ({result['images']} images)")
    return 0


def main():
    sys.exit(run())


if __name__ == "__main__":
    main()
