"""Draws the README's before / after figure: JPEG, restored and original crops.

    python -m qgac_jax.tools.make_figure --out docs/before_after.png [--checkpoint PATH]
        [--image PATH] [--quality 10] [--crop Y,X,SIZE]

Defaults: the shipped checkpoint, scikit-image's 'chelsea' photo, quality 10.
"""

from __future__ import annotations

import io
import sys

import numpy as np
from absl import app, flags
from PIL import Image

FLAGS = flags.FLAGS
flags.DEFINE_string("out", None, "Output PNG.", required=True)
flags.DEFINE_string("checkpoint", None, "Export folder or workdir (default: the shipped checkpoint).")
flags.DEFINE_string("image", None, "A clean image (default: scikit-image's chelsea).")
flags.DEFINE_integer("quality", 10, "JPEG quality of the 'before' image.")
flags.DEFINE_string("crop", "60,120,128", "Y,X,SIZE of the crop shown.")


def main(argv):
    del argv
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import skimage.data

    from qgac_jax import Restorer, metrics
    from qgac_jax.shipped import default_checkpoint

    checkpoint = FLAGS.checkpoint or default_checkpoint()
    if checkpoint is None:
        sys.exit("error: no shipped checkpoint in this version; pass --checkpoint")
    clean = np.asarray(Image.open(FLAGS.image).convert("RGB")) if FLAGS.image else skimage.data.chelsea()
    buf = io.BytesIO()
    Image.fromarray(clean).save(buf, format="JPEG", quality=FLAGS.quality)
    jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
    restored = Restorer.from_checkpoint(checkpoint).restore(buf.getvalue())
    y, x, size = (int(v) for v in FLAGS.crop.split(","))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for ax, (title, img) in zip(axes, [("JPEG", jpeg), ("restored (QGAC)", restored), ("original", clean)]):
        psnr = "" if img is clean else f": PSNR {float(metrics.psnr(clean, img)[0]):.2f}, " \
                                          f"PSNR-B {float(metrics.psnr_b(clean, img)[0]):.2f} dB"
        ax.imshow(img[y:y + size, x:x + size], interpolation="nearest")
        ax.set_title(f"{title}{psnr}", fontsize=10)
        ax.axis("off")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.text(0.5, 0.02, f"JPEG quality {FLAGS.quality}; {size}x{size} crop of a {clean.shape[1]}x{clean.shape[0]} "
             "image; metrics over the whole image", ha="center", fontsize=10)
    fig.savefig(FLAGS.out, dpi=110)
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
