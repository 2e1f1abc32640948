"""Peak memory and time of `python -m qgac_jax.restore` on a 24-megapixel JPEG.

    python benchmarks/restore_memory.py [--variant tiny] [--tile 512] [--megapixels 24]

Makes a 6000x4000 photo (scikit-image's astronaut, resized), saves it at JPEG
quality 30, exports a randomly initialised model of the given variant, runs
the restore CLI in a child process and prints its wall time and peak RSS
(the goal on CPU: within 6 GB).
"""

import argparse
import math
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np
import skimage.data
from PIL import Image

from qgac_jax import models
from qgac_jax.models import exports


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="tiny", choices=sorted(models.VARIANTS))
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--megapixels", type=float, default=24.0)
    args = parser.parse_args()

    width = int(round(math.sqrt(args.megapixels * 1e6 * 1.5) / 8) * 8)
    height = int(round(width / 1.5 / 8) * 8)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        photo = Image.fromarray(skimage.data.astronaut()).resize((width, height), Image.Resampling.BICUBIC)
        photo.save(tmp / "big.jpg", quality=30)
        model = models.create_model(args.variant, channels=3, zero_head=False)
        params = models.init_params(model, jax.random.key(0))
        exports.export_params(tmp / "export", params, {"variant": args.variant, "channels": 3,
                                                             "dtype": "float32", "overrides": {"zero_head": False}})
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "qgac_jax.restore", str(tmp / "big.jpg"), "--output",
                               str(tmp / "out"), "--checkpoint", str(tmp / "export"), "--tile", str(args.tile)],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if proc.returncode:
            sys.exit(f"restore failed:\n{proc.stderr[-3000:]}")
        peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 2**30  # Linux: KiB
        out = np.asarray(Image.open(tmp / "out" / "big.png"))
    mp = width * height / 1e6
    print("| image | variant | tile | wall s | MP/s | peak RSS GiB | within 6 GB |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {width}x{height} ({mp:.1f} MP) | {args.variant} | {args.tile} | {seconds:.1f} | {mp / seconds:.2f} | "
          f"{peak_gb:.2f} | {'yes' if peak_gb * 2**30 <= 6e9 else 'NO'} |")
    assert out.shape == (height, width, 3)


if __name__ == "__main__":
    main()
