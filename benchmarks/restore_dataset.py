"""The archive job's overhead: the same folder restored by `restore` and by `restore_dataset` with 1 and 2
actors on this machine, in one run (docs/archives.md has the figures and the machine).

    python benchmarks/restore_dataset.py [--photos 200] [--source ../shared/data/cbsd68] [--quality 30]

Each command runs as a user runs it (a process of its own, start-up included: Ray's and the actors' too),
into a fresh output folder; images/s and megapixels/s of the whole command, and the ratio to `restore`.
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]


def photos(source: str, count: int, quality: int, folder: pathlib.Path) -> float:
    """`count` JPEGs of `quality` in `folder` (the source's photos, cycled, each flipped a new way); megapixels."""
    files = sorted(p for p in pathlib.Path(source).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))
    if not files:
        raise SystemExit(f"no photos in {source}")
    megapixels = 0.0
    for i in range(count):
        img = np.asarray(Image.open(files[i % len(files)]).convert("RGB"))
        img = np.rot90(img, (i // len(files)) % 4)
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img)).save(buf, "JPEG", quality=quality)
        (folder / f"p{i:04d}.jpg").write_bytes(buf.getvalue())
        megapixels += img.shape[0] * img.shape[1] / 1e6
    return megapixels


def timed(command) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{command} failed: {proc.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--source", default=str(ROOT.parent / "shared" / "data" / "cbsd68"))
    parser.add_argument("--quality", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / "src"
        src.mkdir()
        megapixels = photos(args.source, args.photos, args.quality, src)
        python = [sys.executable, "-m"]
        runs = {
            "restore": python + ["qgac_jax.restore", str(src), "--output", f"{tmp}/restore"],
            "restore_dataset, 1 actor of 2 CPUs": python + ["qgac_jax.restore_dataset", str(src), f"{tmp}/one",
                                                          "--concurrency", "1", "--cpus-per-actor", "2"],
            "restore_dataset, 2 actors of 1 CPU": python + ["qgac_jax.restore_dataset", str(src), f"{tmp}/two",
                                                          "--concurrency", "2", "--cpus-per-actor", "1"],
        }
        timed(python + ["qgac_jax.restore", str(src / "p0000.jpg"), "--output", f"{tmp}/warm"])  # ONNX graphs cached
        print(f"{args.photos} JPEGs of quality {args.quality} ({megapixels:.1f} MP) from {args.source}; "
              f"{os.cpu_count()} CPUs; whole commands, start-up included\n")
        print("| command | seconds | images/s | MP/s | vs restore |\n|---|---|---|---|---|")
        base = None
        for name, command in runs.items():
            seconds = timed(command)
            base = base or seconds
            print(f"| {name} | {seconds:.1f} | {args.photos / seconds:.2f} | {megapixels / seconds:.2f} | "
                  f"{base / seconds:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
