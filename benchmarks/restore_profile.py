"""Where a photo-sized restore spends its time: decode, estimate, Q-map, network, tiles, PNG, write.

    python benchmarks/restore_profile.py [--megapixels 12] [--quality 50] [--backend auto] [--tile 512]
                                         [--overlap 32] [--png-levels 1,6] [--json OUT]

Makes a photo-sized JPEG (scikit-image's coffee, enlarged to the size asked,
saved at --quality), then restores it as `python -m qgac_jax.restore` does by
default (the shipped colour model, the quality estimate, the backend `auto`
picks, tiles of --tile with --overlap) and times each stage in one run: the
network's calls are timed where they are made, so 'tiles and blending' is
what the tiling costs beyond them; the pixels the network computes beyond the
photo's own are the overlap recomputed. The PNG is encoded at each of
--png-levels (Pillow's zlib level; restore uses `restore_jobs.PNG_LEVEL`) to
show time against size. Also prints the peak resident memory.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402


def photo_jpeg(megapixels: float, quality: int) -> bytes:
    """A photo-sized JPEG: a real photo enlarged to `megapixels` at 4:3, with sensor-like noise."""
    import skimage.data

    width = int(round((megapixels * 1e6 * 4 / 3) ** 0.5 / 8)) * 8
    height = int(round(width * 3 / 4 / 8)) * 8
    big = Image.fromarray(skimage.data.coffee()).resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.asarray(big, np.float32) + np.random.default_rng(0).normal(0, 3, (height, width, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--quality", type=int, default=50)
    parser.add_argument("--backend", default="auto", choices=("auto", "jax", "onnxruntime"))
    parser.add_argument("--tile", type=int, default=None, help="default: restore's")
    parser.add_argument("--overlap", type=int, default=None, help="default: restore's")
    parser.add_argument("--png-levels", default="1,6", help="zlib levels to encode the PNG at")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    from qgac_jax import restore_jobs, tiling
    from qgac_jax.image_io import decode, to_output

    settings = restore_jobs.Settings(backend=args.backend, tile=args.tile or tiling.DEFAULT_TILE,
                                     overlap=tiling.DEFAULT_OVERLAP if args.overlap is None else args.overlap)
    backend = restore_jobs.choose_backend(settings.backend, False)
    figures = {"backend": backend, "tile": settings.tile, "overlap": settings.overlap, "cpu_count": os.cpu_count()}
    data = photo_jpeg(args.megapixels, args.quality)
    split = {}

    start = time.perf_counter()
    models = restore_jobs.Models(settings, backend)
    restorer = models(False)  # loads (and on first use converts) the model: not part of a photo's time
    figures["model_load_s"] = time.perf_counter() - start

    t = time.perf_counter()
    decoded = decode(data, None, settings.max_pixels)
    split["read and decode"] = time.perf_counter() - t
    h, w = decoded.pixels.shape[:2]
    t = time.perf_counter()
    guide, estimate = restorer.guide(decoded.pixels, decoded.quantization, None)
    split["quality estimate"] = time.perf_counter() - t
    t = time.perf_counter()
    guide.qmap(h, w)
    split["Q-map (once)"] = time.perf_counter() - t

    network, computed = [0.0], [0]
    inner = restorer._network

    def timed_network(y, q):
        t0 = time.perf_counter()
        out = inner(y, q)
        network[0] += time.perf_counter() - t0
        computed[0] += y.shape[0] * y.shape[1] * y.shape[2]
        return out

    restorer._network = timed_network
    t = time.perf_counter()
    restored = restorer._restore_float(decoded.pixels, guide, None, False)
    total = time.perf_counter() - t
    split["network"] = network[0]
    split["tiles and blending (Q-map included)"] = total - network[0]
    t = time.perf_counter()
    out = to_output(restored, decoded)
    split["to 8 bits, upright"] = time.perf_counter() - t

    pngs = {}
    for level in (int(v) for v in args.png_levels.split(",")):
        buf = io.BytesIO()
        t = time.perf_counter()
        Image.fromarray(out).save(buf, format="PNG", compress_level=level)
        pngs[level] = (time.perf_counter() - t, len(buf.getvalue()))
    level = restore_jobs.PNG_LEVEL
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        restore_jobs.write_png_atomically(out, pathlib.Path(tmp) / "out.png", decoded.metadata)
        split[f"PNG encode (level {level}) and write"] = time.perf_counter() - t

    end_to_end = sum(split.values())
    print(f"{w}x{h} ({w * h / 1e6:.1f} MP) JPEG quality {args.quality}, estimate {estimate:.1f}; backend {backend}, "
          f"tile {settings.tile}, overlap {settings.overlap}, {os.cpu_count()} cores; model load "
          f"{figures['model_load_s']:.1f} s (not counted)\n")
    print("| stage | seconds | share |")
    print("|---|---|---|")
    for stage, seconds in split.items():
        print(f"| {stage} | {seconds:.2f} | {seconds / end_to_end:.0%} |")
    print(f"| **end to end** | **{end_to_end:.2f}** | |")
    overlap = computed[0] / (h * w) - 1
    print(f"\nnetwork: {h * w / 1e6 / network[0]:.3f} MP/s of the photo; {overlap:.0%} more pixels computed than the "
          f"photo has (tile overlap and padding)")
    for lv, (seconds, size) in pngs.items():
        print(f"PNG at zlib level {lv}: {seconds:.2f} s, {size / 1e6:.1f} MB")
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak resident memory: {peak_gib:.2f} GiB")
    figures.update(split=split, end_to_end_s=end_to_end, overlap_fraction=overlap, png=pngs, peak_rss_gib=peak_gib,
                   megapixels=h * w / 1e6)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
