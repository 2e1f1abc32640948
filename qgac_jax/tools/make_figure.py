"""Draws the documentation's before / after figures: JPEG, restored and original crops.

    python -m qgac_jax.tools.make_figure --out docs/before_after.png [--checkpoint PATH]
        [--image PATH] [--quality 10] [--crop Y,X,SIZE]
    python -m qgac_jax.tools.make_figure --out docs/recompressed.png --first 20 --quality 75 --shift 4

Defaults: the shipped checkpoint, scikit-image's 'chelsea' photo, quality 10.
With --first Q1 the photo is saved at Q1, cut by --shift pixels, and saved
again at --quality (a recompressed photo): the figure then shows the restore
told only the file's tables beside the default one (tables and estimate).
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


def main(argv):
    del argv
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import skimage.data

    from qgac_jax import Restorer, metrics
    from qgac_jax.eval_protocol import Case
    from qgac_jax.shipped import default_checkpoint

    checkpoint = FLAGS.checkpoint or default_checkpoint()
    if checkpoint is None:
        sys.exit("error: no shipped checkpoint in this version; pass --checkpoint")
    clean = np.asarray(Image.open(FLAGS.image).convert("RGB")) if FLAGS.image else skimage.data.chelsea()
    try:
        case = Case(FLAGS.quality, FLAGS.first, FLAGS.shift)
    except ValueError as err:
        sys.exit(f"error: {err}")
    jpeg, clean, _, data = case.apply(clean)
    restorer = Restorer.from_checkpoint(checkpoint)
    panels = [("JPEG", jpeg)]
    if FLAGS.first is not None:
        panels.append(("restored, told the file's tables", restorer.restore(data, quality="file")))
    panels += [("restored (QGAC)" if FLAGS.first is None else "restored (default: tables + estimate)",
                restorer.restore(data)), ("original", clean)]
    y, x, size = (int(v) for v in FLAGS.crop.split(","))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.4))
    for ax, (title, img) in zip(axes, panels):
        psnr = "" if img is clean else f"\nPSNR {float(metrics.psnr(clean, img)[0]):.2f}, " \
                                       f"PSNR-B {float(metrics.psnr_b(clean, img)[0]):.2f} dB"
        ax.imshow(img[y:y + size, x:x + size], interpolation="nearest")
        ax.set_title(f"{title}{psnr}", fontsize=10)
        ax.axis("off")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    saved = f"saved at quality {FLAGS.first}, cut by {FLAGS.shift} px, saved again at {FLAGS.quality}" \
        if FLAGS.first is not None else f"JPEG quality {FLAGS.quality}"
    fig.text(0.5, 0.02, f"{saved}; {size}x{size} crop of a {clean.shape[1]}x{clean.shape[0]} image; metrics over "
             "the whole image", ha="center", fontsize=10)
    fig.savefig(FLAGS.out, dpi=110)
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
