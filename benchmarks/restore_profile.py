"""Where a photo-sized restore spends its time: decode, estimate, Q-map, network, tiles, PNG, write.

    python benchmarks/restore_profile.py [--megapixels 12] [--quality 50] [--backend auto]
                                         [--precision float32] [--tile 512] [--overlap 32] [--png-levels 1,6]
                                         [--json OUT]

Makes a photo-sized JPEG (scikit-image's coffee, enlarged to the size asked,
saved at --quality), then restores it as `python -m qgac_jax.restore` does by
default (the shipped colour model, the quality estimate, the backend `auto`
picks at --precision, tiles of --tile with --overlap) and times each stage in one run: the
network's calls are timed where they are made, so 'tiles and blending' is
what the tiling costs beyond them; the pixels the network computes beyond the
photo's own are the overlap recomputed. The PNG is encoded at each of
--png-levels (Pillow's zlib level; restore uses `outputs.PNG_LEVEL`) to
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
    parser.add_argument("--precision", default="float32", choices=("float32", "int8"))
    parser.add_argument("--tile", type=int, default=None, help="default: restore's")
    parser.add_argument("--overlap", type=int, default=None, help="default: restore's")
    parser.add_argument("--png-levels", default="1,6", help="zlib levels to encode the PNG at")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    from qgac_jax.commands import jobs
    from qgac_jax.models import tiling

    settings = jobs.settings(args, tile=args.tile or tiling.DEFAULT_TILE,
                             overlap=tiling.DEFAULT_OVERLAP if args.overlap is None else args.overlap,
                             quality="auto")  # (--quality here is the JPEG's, not what the network is told)
    figures = profile(photo_jpeg(args.megapixels, args.quality), settings,
                      [int(v) for v in args.png_levels.split(",")])
    figures.pop("output")
    print(f"{figures['width']}x{figures['height']} ({figures['megapixels']:.1f} MP) JPEG quality {args.quality}, "
          f"estimate {figures['estimate']:.1f}; {figures['engine']}, {figures['workers']} tiles at once, tile "
          f"{settings.tile}, overlap "
          f"{settings.overlap}, {os.cpu_count()} cores; model load {figures['model_load_s']:.1f} s (not counted)\n")
    print(split_table(figures))
    print(f"\nnetwork: {figures['megapixels'] / figures['split']['network']:.3f} MP/s of the photo; "
          f"{figures['overlap_fraction']:.0%} more pixels computed than the photo has (tile overlap and padding)")
    for lv, (seconds, size) in figures["png"].items():
        print(f"PNG at zlib level {lv}: {seconds:.2f} s, {size / 1e6:.1f} MB")
    print(f"peak resident memory: {figures['peak_rss_gib']:.2f} GiB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


def split_table(figures) -> str:
    rows = ["| stage | seconds | share |", "|---|---|---|"]
    total = figures["end_to_end_s"]
    rows += [f"| {stage} | {seconds:.2f} | {seconds / total:.0%} |" for stage, seconds in figures["split"].items()]
    return "\n".join(rows + [f"| **end to end** | **{total:.2f}** | |"])


def profile(data: bytes, settings, png_levels=()) -> dict:
    """Restores the JPEG `data` as restore does with `settings`, timing each stage (see the module docstring)."""
    from qgac_jax.commands import engines
    from qgac_jax.restoring import guide
    from qgac_jax.files import outputs
    from qgac_jax.files.images import decode, to_output

    engine = engines.decide(settings)
    figures = {"backend": engine.backend, "tile": settings.tile, "overlap": settings.overlap,
               "cpu_count": os.cpu_count()}
    split = {}

    start = time.perf_counter()
    restorer = engines.Models(settings, engine)(False)  # loads (and on first use converts) the model
    figures["model_load_s"], figures["engine"] = time.perf_counter() - start, restorer.engine

    t = time.perf_counter()
    decoded = decode(data, settings.max_pixels)
    split["read and decode"] = time.perf_counter() - t
    h, w = decoded.pixels.shape[:2]
    t = time.perf_counter()
    told = guide.told(decoded, "auto", restorer.estimator)
    split["quality estimate"] = time.perf_counter() - t
    t = time.perf_counter()
    told.quantization.qmap(h, w)
    split["Q-map (once)"] = time.perf_counter() - t

    network, computed = [0.0], [0]

    def timed(inner):
        def run(y, q):
            t0 = time.perf_counter()
            out = inner(y, q)
            network[0] += time.perf_counter() - t0
            computed[0] += y.shape[0] * y.shape[1] * y.shape[2]
            return out
        return run

    restorer._network = timed(restorer._network)
    if restorer._worker_network is not None:
        restorer._worker_network = timed(restorer._worker_network)
    t = time.perf_counter()
    restored = restorer._restore_float(decoded.pixels, told.quantization, None, False)
    total = time.perf_counter() - t
    # tiles in parallel: the network's seconds summed over threads, shared out among them
    split["network"] = network[0] / restorer.workers
    split["tiles and blending (Q-map included)"] = total - split["network"]
    figures["workers"] = restorer.workers
    t = time.perf_counter()
    out = to_output(restored, decoded)
    split["to 8 bits, upright"] = time.perf_counter() - t

    pngs = {}
    for level in png_levels:
        buf = io.BytesIO()
        t = time.perf_counter()
        Image.fromarray(out).save(buf, format="PNG", compress_level=level)
        pngs[level] = (time.perf_counter() - t, len(buf.getvalue()))
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        outputs.write_png_atomically(out, pathlib.Path(tmp) / "out.png", decoded.metadata)
        split[f"PNG encode (level {outputs.PNG_LEVEL}) and write"] = time.perf_counter() - t
    figures.update(split=split, end_to_end_s=sum(split.values()), overlap_fraction=computed[0] / (h * w) - 1,
                   png=pngs, peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                   megapixels=h * w / 1e6, width=w, height=h, estimate=told.estimate, output=out)
    return figures


if __name__ == "__main__":
    main()
