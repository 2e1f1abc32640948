"""Averages the parameters of two exports of one architecture (WiSE-FT): a fine-tuned model and the one it
started from, so that the fine-tune's new skill comes with less of its forgetting.

    python -m qgac_jax.tools.average_exports BASE FINETUNED --weight 0.5 --out DIR

`--weight` is the fine-tuned model's share (0: BASE, 1: FINETUNED). Exports or training workdirs; the output
is an export (a folder that exists is kept unless --overwrite). docs/model_cards.md says which shipped models
were made this way, with which weight.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional, Sequence

import jax
import numpy as np


def average(base, finetuned, weight: float):
    """(1 - weight) * base + weight * finetuned, leaf by leaf (float32)."""
    return jax.tree.map(lambda a, b: ((1.0 - weight) * np.asarray(a, np.float32)
                                      + weight * np.asarray(b, np.float32)).astype(np.asarray(a).dtype),
                        base, finetuned)


def run(argv: Optional[Sequence[str]] = None) -> int:
    from qgac_jax.models import exports

    parser = argparse.ArgumentParser(prog="python -m qgac_jax.tools.average_exports",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("base", help="the export (or workdir) the fine-tune started from")
    parser.add_argument("finetuned", help="the fine-tuned export (or workdir)")
    parser.add_argument("--weight", type=float, default=0.5, help="the fine-tuned model's share, 0..1 (default 0.5)")
    parser.add_argument("--out", required=True, help="the averaged export's folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    if not 0.0 <= args.weight <= 1.0:
        parser.error(f"--weight must lie in 0..1, got {args.weight}")
    if os.path.exists(args.out) and not args.overwrite:
        parser.error(f"--out {args.out} exists (pass --overwrite to replace it)")
    try:
        _, base, config = exports.load_restoration_export(args.base)
        _, tuned, tuned_config = exports.load_restoration_export(args.finetuned)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if config != tuned_config or jax.tree.structure(base) != jax.tree.structure(tuned):
        print(f"error: {args.base} and {args.finetuned} are different models ({config} vs {tuned_config})",
              file=sys.stderr)
        return 2
    exports.export_params(os.path.abspath(args.out), average(base, tuned, args.weight), config)
    print(f"wrote {args.out}: {1 - args.weight:g} x {args.base} + {args.weight:g} x {args.finetuned}")
    return 0


if __name__ == "__main__":
    sys.exit(run())
