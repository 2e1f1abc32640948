"""int8 against float32, photo by photo: what the int8 graphs lose on each set and case, mean and worst photo.

    .venv/bin/python benchmarks/int8_quality.py --images ../shared/data/cbsd68 [--images DIR ...]
        [--cases 10,40,20:75,20:75:4,30:90,10:50:3,webp:10,avif:10,heic:10] [--int8 EXPORT ...] [--grey]
        [--json OUT]

The float32 reference is the shipped colour (`--grey`: grey) model's graph (ONNX Runtime, as
restore runs it); each --int8 EXPORT (default: what `--precision int8` runs,
pretrained/int8_colour or int8_grey) is restored through its int8 graph (shipped, else
quantized once and cached: `int8_graph.cached`). Every photo of each folder
is compressed as `evaluate` compresses it (`protocol.eval_examples`), restored
told the file's quantization and the shipped estimator's raise, and measured
in PSNR on uint8 levels; the table gives, per set, case and int8 model, the
mean PSNR lost against float32 and the worst single photo's loss (the bars of
docs/performance.md#int8-by-default: 0.03 dB on cbsd68, 0.05 elsewhere, 0.15
for any photo).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

import numpy as np  # noqa: E402

from qgac_jax.evaluation.protocol import eval_examples  # noqa: E402
from qgac_jax.graphs import int8_graph, onnx_graph  # noqa: E402
from qgac_jax.models import shipped  # noqa: E402
from qgac_jax.restoring.restorer import Restorer  # noqa: E402


def psnr(clean: np.ndarray, restored: np.ndarray) -> float:
    """PSNR on uint8 levels, as evaluate measures (capped at 100 dB for identical images)."""
    a, b = (np.round(np.clip(x, 0, 1) * 255.0) for x in (clean, restored))
    mse = float(np.mean((a - b) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", action="append", required=True)
    parser.add_argument("--cases", default="10,40,20:75,20:75:4,30:90,10:50:3,webp:10,avif:10,heic:10")
    parser.add_argument("--int8", action="append", help="an export whose int8 graph is measured (repeatable)")
    parser.add_argument("--grey", action="store_true", help="grey photos, the grey models (int8_grey)")
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    quiet = lambda *a, **k: None  # noqa: E731
    channels = 1 if args.grey else 3
    reference = Restorer.from_onnx(onnx_graph.cached(shipped.default_checkpoint(channels), log=quiet))
    int8s = {pathlib.Path(p).name: Restorer.from_onnx(int8_graph.cached(p, log=quiet))
             for p in (args.int8 or [shipped.default_checkpoint(channels, precision="int8")])}
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    results = {}
    for folder in args.images:
        for ex in eval_examples(folder, cases, grey=args.grey, max_images=args.max_images):
            pixels, told = ex["compressed"], ex["quantization"]
            base = psnr(ex["target"], reference.restore_compressed(pixels, told))
            for name, restorer in int8s.items():
                lost = base - psnr(ex["target"], restorer.restore_compressed(pixels, told))
                results.setdefault((pathlib.Path(folder).name, ex["case"].name, name), []).append((ex["name"], lost))
            print(f"{pathlib.Path(folder).name} {ex['case'].name} {ex['name']}: float32 {base:.2f} dB", flush=True)
    print("| set | case | int8 model | photos | mean lost, dB | worst photo, dB |")
    print("|---|---|---|---|---|---|")
    for key, rows in results.items():
        lost = np.array([v for _, v in rows])
        worst = rows[int(np.argmax(lost))]
        print(f"| {' | '.join(key)} | {len(rows)} | {lost.mean():.3f} | {worst[1]:.3f} ({worst[0]}) |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({" / ".join(k): v for k, v in results.items()}, indent=1))


if __name__ == "__main__":
    main()
