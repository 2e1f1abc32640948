"""Writes the calibration crops the int8 graphs are calibrated on (qgac_jax/pretrained/calibration).

    python -m qgac_jax.tools.make_calibration [--out qgac_jax/pretrained/calibration]

Crops of 128x128 from scikit-image's sample photos that carry no copyright
restriction (astronaut and rocket: NASA, public domain; chelsea and coffee:
CC0), saved as JPEG at quality 95 so that they ship small; `int8_graph`
compresses them again at qualities 10..90 before calibrating. Needs the extra
`train` (scikit-image).
"""

from __future__ import annotations

import argparse
import io
import os

import numpy as np
from PIL import Image

from qgac_jax.graphs import int8_graph

PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")
SIDE = 128
PER_PHOTO = 8


def crops(photo: np.ndarray, n: int, rng: np.random.Generator):
    """n crops of SIDE x SIDE at positions on the 8x8 grid, drawn by rng."""
    h, w = photo.shape[:2]
    for _ in range(n):
        y, x = (int(rng.integers(0, d - SIDE + 1)) // 8 * 8 for d in (h, w))
        yield photo[y:y + SIDE, x:x + SIDE]


def main(argv=None):
    import skimage.data

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(int8_graph.CALIBRATION))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    root = os.path.dirname(skimage.data.__file__)
    rng = np.random.default_rng(0)
    for name in PHOTOS:
        photo = np.asarray(Image.open(os.path.join(root, name)).convert("RGB"))
        for i, crop in enumerate(crops(photo, PER_PHOTO, rng)):
            buf = io.BytesIO()
            Image.fromarray(np.ascontiguousarray(crop)).save(buf, "JPEG", quality=95)
            path = os.path.join(args.out, f"{os.path.splitext(name)[0]}_{i}.jpg")
            with open(path, "wb") as f:
                f.write(buf.getvalue())
            print(path, len(buf.getvalue()))


if __name__ == "__main__":
    main()
