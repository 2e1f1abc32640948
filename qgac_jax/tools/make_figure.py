"""Draws the documentation's before / after figures: JPEG, restored and original crops.

    python -m qgac_jax.tools.make_figure --out docs/before_after.png [--checkpoint PATH]
        [--image PATH] [--quality 10] [--crop Y,X,SIZE]
    python -m qgac_jax.tools.make_figure --out docs/recompressed.png --first 20 --quality 75 --shift 4
    python -m qgac_jax.tools.make_figure --out docs/codecs.png --codec webp,avif,heic --quality 10
    python -m qgac_jax.tools.make_figure --out docs/perceptual.png --models psnr,perceptual --lpips

Defaults: the shipped checkpoint, scikit-image's 'chelsea' photo, quality 10.
With --first Q1 the photo is saved at Q1, cut by --shift pixels, and saved
again at --quality (a recompressed photo): the figure then shows the restore
told only the file's tables beside the default one (tables and estimate).
With --codec, one row per codec saved at its encoder's --quality: the
decode, the restore told a JPEG's tables (--told, the workaround for models
that read only JPEG) and the default restore, told the file's own quantizer.
With --models, a column per shipped model (psnr, perceptual) between the JPEG
and the original; --lpips adds LPIPS (AlexNet) to each panel's numbers.
"""

from __future__ import annotations

import sys

import numpy as np
from absl import app, flags
from PIL import Image

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Output PNG.", required=True)
flags.DEFINE_string("checkpoint", None, "Export folder or workdir (default: the shipped checkpoint).")
flags.DEFINE_string("image", None, "A clean image (default: scikit-image's chelsea).")
flags.DEFINE_integer("quality", 10, "JPEG quality of the 'before' image (the last save).")
flags.DEFINE_integer("first", None, "Save first at this quality: a recompressed photo.")
flags.DEFINE_integer("shift", 0, "Pixels cut off the top and left between the two saves.")
flags.DEFINE_string("crop", "60,120,128", "Y,X,SIZE of the crop shown.")
flags.DEFINE_list("codec", [], "WebP, AVIF or HEIC rows instead of JPEG (comma-separated: webp,avif,heic).")
flags.DEFINE_integer("told", 50, "With --codec: the JPEG quality the workaround tells the model.")
flags.DEFINE_list("models", [], "Shipped models side by side (psnr,perceptual) instead of --checkpoint's one.")
flags.DEFINE_bool("lpips", False, "Also LPIPS (AlexNet; lower: closer) of each panel, over the whole image.")
MODEL_TITLES = {"psnr": "PSNR model (default)", "perceptual": "perceptual model"}


def main(argv):
    del argv
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import skimage.data

    from qgac_jax.restoring.restorer import Restorer
    from qgac_jax.evaluation import metrics
    from qgac_jax.models.shipped import default_checkpoint

    clean = np.asarray(Image.open(FLAGS.image).convert("RGB")) if FLAGS.image else skimage.data.chelsea()
    try:
        if FLAGS.models:
            if FLAGS.checkpoint or FLAGS.codec or FLAGS.first is not None:
                raise ValueError("--models compares shipped models on one JPEG: drop --checkpoint, --codec, --first")
            unknown = [m for m in FLAGS.models if m not in MODEL_TITLES]
            if unknown:
                raise ValueError(f"--models: no shipped model {', '.join(unknown)}; use {', '.join(MODEL_TITLES)}")
            paths = [default_checkpoint(3, m) for m in FLAGS.models]
            if None in paths:
                raise ValueError(f"this version ships no {FLAGS.models[paths.index(None)]} model")
            rows = [_models_row([(MODEL_TITLES[m], Restorer.from_checkpoint(p)) for m, p in zip(FLAGS.models, paths)],
                                clean)]
        else:
            checkpoint = FLAGS.checkpoint or default_checkpoint()
            if checkpoint is None:
                raise ValueError("no shipped checkpoint in this version; pass --checkpoint")
            restorer = Restorer.from_checkpoint(checkpoint)
            rows = [_codec_row(restorer, clean, codec) for codec in FLAGS.codec] if FLAGS.codec else \
                [_jpeg_row(restorer, clean)]
    except ValueError as err:
        sys.exit(f"error: {err}")
    y, x, size = (int(v) for v in FLAGS.crop.split(","))
    clean = rows[0][-1][1]
    # constrained layout keeps two-line titles inside the figure (tight_layout clipped their first line)
    fig, axes = plt.subplots(len(rows), len(rows[0]), figsize=(4 * len(rows[0]), 4.6 * len(rows)), squeeze=False,
                             layout="constrained")
    for ax_row, panels in zip(axes, rows):
        for ax, (title, img) in zip(ax_row, panels):
            psnr = "" if img is clean else f"\nPSNR {float(metrics.psnr(clean, img)[0]):.2f}, " \
                                           f"PSNR-B {float(metrics.psnr_b(clean, img)[0]):.2f} dB"
            if FLAGS.lpips and img is not clean:
                from qgac_jax.evaluation.lpips import lpips

                psnr += f", LPIPS {float(lpips(clean, img, 'alex')[0]):.3f}"
            ax.imshow(img[y:y + size, x:x + size], interpolation="nearest")
            ax.set_title(f"{title}{psnr}", fontsize=10)
            ax.axis("off")
    saved = f"saved at quality {FLAGS.first}, cut by {FLAGS.shift} px, saved again at {FLAGS.quality}" \
        if FLAGS.first is not None else f"JPEG quality {FLAGS.quality}" if not FLAGS.codec else \
        f"each encoder's quality {FLAGS.quality}"
    fig.supxlabel(f"{saved}; {size}x{size} crop of a {clean.shape[1]}x{clean.shape[0]} image; "
                  "metrics over the whole image", fontsize=10)
    fig.savefig(FLAGS.out, dpi=110, bbox_inches="tight", pad_inches=0.1)
    print(f"wrote {FLAGS.out}")


def _jpeg_row(restorer, clean):
    from qgac_jax.evaluation.protocol import Case

    jpeg, clean, _, data = Case(FLAGS.quality, FLAGS.first, FLAGS.shift).apply(clean)
    panels = [(f"JPEG quality {FLAGS.quality}" if FLAGS.first is None else "JPEG", jpeg)]
    if FLAGS.first is not None:
        panels.append(("restored, told the file's tables", restorer.restore(data, quality="file")))
    title = "restored by the shipped model" if FLAGS.first is None else "restored (default: tables + estimate)"
    return panels + [(title, restorer.restore(data)), ("original", clean)]


def _models_row(restorers, clean):
    from qgac_jax.evaluation.protocol import Case

    jpeg, clean, _, data = Case(FLAGS.quality).apply(clean)
    return [("JPEG", jpeg)] + [(title, restorer.restore(data)) for title, restorer in restorers] + \
        [("original", clean)]


def _codec_row(restorer, clean, codec):
    from qgac_jax.evaluation.protocol import Case

    decoded, clean, _, data = Case(FLAGS.quality, codec=codec.strip().lower()).apply(clean)
    name = codec.strip().upper()
    return [(f"{name} quality {FLAGS.quality}", decoded),
            (f"restored, told JPEG quality {FLAGS.told}", restorer.restore(data, quality=FLAGS.told)),
            (f"restored, told the {name} file's quantizer", restorer.restore(data)), ("original", clean)]


if __name__ == "__main__":
    app.run(main)
