"""What `restore --consistent` costs or gains: PSNR and LPIPS-Alex with and without it, for the PSNR and the
perceptual model, on a folder of photos saved as JPEGs of one quality.

    python benchmarks/restore_consistent.py --images DIR [--quality 10] [--max-images N] [--json OUT]

Each photo is saved by Pillow at --quality and restored from the file's bytes
by `Restorer.pretrained` (the shipped model and estimator, as restore runs
them; JAX or ONNX Runtime as QGAC_BACKEND says), once as it is and once with
`consistent=True` (`restoring.consistency`); means over the photos.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pathlib
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from qgac_jax.evaluation.lpips import lpips  # noqa: E402
from qgac_jax.evaluation.metrics import psnr  # noqa: E402
from qgac_jax.restoring.restorer import Restorer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True)
    parser.add_argument("--quality", type=int, default=10)
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()

    files = sorted(p for p in pathlib.Path(args.images).iterdir() if p.suffix.lower() in (".png", ".jpg", ".bmp"))
    files = files[:args.max_images] if args.max_images else files
    rows = {}
    print("| model | consistent | PSNR, dB | LPIPS Alex |")
    print("|---|---|---|---|")
    for model in ("psnr", "perceptual"):
        restorer = Restorer.pretrained(model=model)
        scores = {False: [], True: []}
        for path in files:
            photo = np.asarray(Image.open(path).convert("RGB"))
            buf = io.BytesIO()
            Image.fromarray(photo).save(buf, "JPEG", quality=args.quality)
            for consistent in (False, True):
                out = restorer.restore(buf.getvalue(), consistent=consistent)
                scores[consistent].append((float(psnr(photo, out)[0]), float(lpips(photo[None], out[None])[0])))
        for consistent, values in scores.items():
            mean_psnr, distance = np.mean(values, axis=0)
            rows[f"{model} {'consistent' if consistent else 'as restored'}"] = {"psnr": mean_psnr,
                                                                                "lpips_alex": distance}
            print(f"| {model} | {'yes' if consistent else 'no'} | {mean_psnr:.2f} | {distance:.4f} |", flush=True)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"images": len(files), "quality": args.quality, **rows},
                                                      indent=1))


if __name__ == "__main__":
    main()
