"""How well the quality estimator reads the effective JPEG quality of whole photos.

    python benchmarks/estimator_accuracy.py --images ../shared/data/cbsd68 [--estimator PATH|codecs]
        [--qualities 10,20,...,90] [--double 20:75,20:75:4,30:90,10:50:3] [--max-images N] [--json OUT]

Each clean image is saved as evaluation saves it (docs/conventions.md) and the
shipped estimator (or --estimator) is run as restore runs it. Prints, per
case, the mean absolute error in quality units and the share of images within
5 of the effective quality, then the same over all single-JPEG cases.
--double also takes other codecs' cases (webp:50, 20:webp:75): a file saved
once should read 100, one converted from a JPEG that JPEG's quality.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

import numpy as np  # noqa: E402

from qgac_jax.evaluation import protocol as eval_protocol  # noqa: E402
from qgac_jax.models import shipped
from qgac_jax.models.quality_estimate import QualityEstimate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True)
    parser.add_argument("--estimator", help="an estimator export, or 'codecs': the shipped one of WebP, AVIF and "
                                            "HEIC files (default: the shipped JPEG one)")
    parser.add_argument("--qualities", default="10,20,30,40,50,60,70,80,90")
    parser.add_argument("--double", default="20:75,20:75:4,30:90,10:50:3")
    parser.add_argument("--max-images", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    path = shipped.codec_estimator_checkpoint() if args.estimator == "codecs" else \
        args.estimator or shipped.estimator_checkpoint()
    if path is None:
        sys.exit("error: this version ships no quality estimator; pass --estimator")
    estimate = QualityEstimate.from_checkpoint(path)
    cases = [eval_protocol.Case.parse(c) for c in f"{args.qualities},{args.double}".split(",") if c.strip()]
    errors = {c.name: [] for c in cases}
    for ex in eval_protocol.eval_examples(args.images, cases, max_images=args.max_images):
        errors[ex["case"].name].append(estimate(ex["compressed"], ex["quantization"]) - ex["case"].effective_quality)
    rows = {}
    print(f"{'case':>10} {'effective':>9} {'images':>6} {'MAE':>6} {'within 5':>9}")
    for case in cases:
        e = np.abs(errors[case.name])
        rows[case.name] = {"effective": case.effective_quality, "images": len(e), "mae": float(e.mean()),
                           "within5": float(np.mean(e <= 5))}
        print(f"{case.name:>10} {case.effective_quality:>9} {len(e):>6} {e.mean():>6.2f} {np.mean(e <= 5):>9.0%}")
    single = np.abs(np.concatenate([errors[c.name] for c in cases if c.first is None and c.codec == "jpeg"]
                                   or [np.zeros(0)]))
    if single.size:
        print(f"single JPEG, all qualities: MAE {single.mean():.2f}, within 5: {np.mean(single <= 5):.0%}")
        rows["single"] = {"mae": float(single.mean()), "within5": float(np.mean(single <= 5))}
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"estimator": str(path), "images": args.images, "cases": rows}, f, indent=1)


if __name__ == "__main__":
    main()
