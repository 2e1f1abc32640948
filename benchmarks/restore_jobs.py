"""Photos restored at once (`restore --jobs`) against the cores: images/s of a folder on 1 and 2 cores.

    python benchmarks/restore_jobs.py [--images DIR] [--count 40] [--quality 30] [--megapixels 0]

Saves --count photos of DIR (default: scikit-image's colour photos, repeated
under other crops) as JPEGs of --quality (enlarged to --megapixels first when
given, to see large photos), then times `python -m qgac_jax.restore FOLDER
--output OUT` pinned to 1 core and to 2 cores (`taskset`), with --jobs 1 and
--jobs 2, each a process of its own after one warm-up run (graphs cached), in
one run so that the rows compare. Linux only (taskset).
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]


def photos(folder, count: int):
    """`count` RGB arrays: the photos of `folder`, else scikit-image's, cropped differently when repeated."""
    if folder:
        files = sorted(p for p in pathlib.Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))
        images = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    else:
        import skimage.data

        images = [getattr(skimage.data, n)() for n in ("astronaut", "chelsea", "coffee", "rocket", "retina")]
    for i in range(count):
        image = images[i % len(images)]
        shift = (i // len(images)) * 8
        yield image[shift:, shift:]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", help="a folder of photos (default: scikit-image's)")
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--quality", type=int, default=30)
    parser.add_argument("--megapixels", type=float, default=0.0, help="enlarge each photo to this size first")
    args = parser.parse_args()
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is needed to pin the cores")
    with tempfile.TemporaryDirectory(prefix="qgac-jobs-") as tmp:
        src = pathlib.Path(tmp) / "in"
        src.mkdir()
        pixels = 0
        for i, image in enumerate(photos(args.images, args.count)):
            im = Image.fromarray(image)
            if args.megapixels:
                scale = (args.megapixels * 1e6 / (im.width * im.height)) ** 0.5
                im = im.resize((int(im.width * scale) // 8 * 8, int(im.height * scale) // 8 * 8), Image.LANCZOS)
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=args.quality)
            (src / f"{i:03d}.jpg").write_bytes(buf.getvalue())
            pixels += im.width * im.height
        print(f"{args.count} JPEGs of quality {args.quality}, {pixels / 1e6:.1f} MP in all, {os.cpu_count()} cores "
              f"here\n\n| cores | --jobs | seconds | images/s | MP/s | network |\n|---|---|---|---|---|---|")
        for cores, jobs in ((1, 1), (1, 2), (2, 1), (2, 2)):
            if cores > (os.cpu_count() or 1):
                continue
            out = pathlib.Path(tmp) / f"out{cores}{jobs}"
            command = ["taskset", "-c", ",".join(map(str, range(cores))), sys.executable, "-m", "qgac_jax.restore",
                       str(src), "--output", str(out), "--jobs", str(jobs), "--show-quality"]
            subprocess.run(command[:-1] + [str(src / "000.jpg")], cwd=ROOT, capture_output=True)  # warm-up
            shutil.rmtree(out, ignore_errors=True)
            start = time.perf_counter()
            proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if proc.returncode:
                sys.exit(proc.stderr[-2000:])
            network = proc.stdout.splitlines()[0].removeprefix("network: ")
            print(f"| {cores} | {jobs} | {seconds:.1f} | {args.count / seconds:.2f} | {pixels / 1e6 / seconds:.3f} | "
                  f"{network} |", flush=True)


if __name__ == "__main__":
    main()
