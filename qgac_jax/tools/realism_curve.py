"""The realism dial measured: PSNR against LPIPS for several R between the faithful and the perceptual model.

    python -m qgac_jax.tools.realism_curve --images DIR [--values 0,0.25,0.5,0.75,1] [--qualities 10,40]
        [--lpips alex[,vgg]] [--max-images N] [--json OUT.json] [--plot OUT.png] [--overwrite]

Each R restores the folder's photos, saved as JPEGs of each quality, as
`restore --realism R` would (the same engine, estimate and blend,
`models.realism`); the means of PSNR and LPIPS (AlexNet; with VGG16 too on request: on a CPU it costs several
times AlexNet's time) are printed
as a table, written as JSON, and drawn as one curve per quality (PSNR
across, LPIPS up: a point per R, the JPEG as a cross).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from typing import Dict, List, Sequence

from qgac_jax.commands import arguments, engines, jobs, logs
from qgac_jax.evaluation.protocol import LPIPS_NAMES, Case, evaluate_images
from qgac_jax.files import atomic_files
from qgac_jax.models import realism

def _values(text: str) -> List[float]:
    try:
        values = [realism.parse(v) for v in text.split(",")]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if len(set(values)) != len(values):
        raise argparse.ArgumentTypeError(f"--values names an R twice: {text}")
    return values


def measure(images: str, values: List[float], qualities: List[int], max_images: int = 0,
            nets: Sequence[str] = ("alex",)) -> Dict:
    """{"images": n, "curve": [{"realism": R, "quality": Q, "psnr", "lpips_NET"...}], "jpeg": {Q: {...}}}."""
    keys = ("psnr",) + tuple(f"lpips_{net}" for net in nets)
    rows, jpeg, count = [], {}, 0
    for r in values:
        models = engines.Models(jobs.Settings(realism=r or None))
        restore = functools.partial(models(False).restore_compressed, quality="auto")
        result = evaluate_images(restore, images, [Case(q) for q in qualities], max_images=max_images,
                                 lpips=nets)
        count = result["images"]
        for q in qualities:
            scores = result["qualities"][q]
            rows.append({"realism": r, "quality": q, **{k: scores["model"][k] for k in keys}})
            jpeg[q] = {k: scores["jpeg"][k] for k in keys}
    return {"images": count, "source": images, "nets": list(nets), "curve": rows, "jpeg": jpeg}


def table(result: Dict) -> str:
    nets = result["nets"]
    lines = ["| quality | realism | PSNR, dB | " + " | ".join(f"LPIPS {LPIPS_NAMES[n]}" for n in nets) + " |",
             "|---|---|---|" + "---|" * len(nets)]

    def cells(scores):
        return f"{scores['psnr']:.2f} | " + " | ".join(f"{scores[f'lpips_{n}']:.4f}" for n in nets)

    for q, scores in result["jpeg"].items():
        lines.append(f"| {q} | JPEG | {cells(scores)} |")
        lines += [f"| {q} | {row['realism']:g} | {cells(row)} |" for row in result["curve"] if row["quality"] == q]
    return "\n".join(lines)


def plot(result: Dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = result["nets"]
    fig, axes = plt.subplots(1, len(nets), figsize=(5.5 * len(nets), 4.5), squeeze=False)
    for ax, net in zip(axes[0], nets):
        for q, scores in result["jpeg"].items():
            rows = [row for row in result["curve"] if row["quality"] == q]
            line, = ax.plot([row["psnr"] for row in rows], [row[f"lpips_{net}"] for row in rows], "o-",
                            label=f"quality {q}")
            for row in rows:
                ax.annotate(f"{row['realism']:g}", (row["psnr"], row[f"lpips_{net}"]), textcoords="offset points",
                            xytext=(4, 4), fontsize=8)
            ax.plot([scores["psnr"]], [scores[f"lpips_{net}"]], "x", color=line.get_color(), label=f"JPEG {q}")
        ax.set_xlabel("PSNR, dB (higher: closer to the photo)")
        ax.set_ylabel(f"LPIPS {LPIPS_NAMES[net]} (lower: looks closer)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"realism R, 0 (faithful) to 1 (perceptual): {result['images']} photos of "
                 f"{os.path.basename(result['source'].rstrip('/'))}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=logs.prog("qgac_jax.tools.realism_curve"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True, help="a folder of photos (or 'builtin')")
    parser.add_argument("--values", type=_values, default=[0.0, 0.25, 0.5, 0.75, 1.0], help="the Rs, e.g. 0,0.5,1")
    parser.add_argument("--qualities", type=arguments.qualities, default=[10, 40])
    parser.add_argument("--lpips", type=arguments.lpips_nets, default=("alex",),
                        help="LPIPS backbones: alex (default), vgg, alex,vgg")
    parser.add_argument("--max-images", type=arguments.count("--max-images", 0, " (0: all)"), default=0)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--plot", help="draw the curves here (PNG)")
    parser.add_argument("--overwrite", action="store_true", help="replace --json and --plot if they exist")
    args = parser.parse_args(argv)
    arguments.check_measuring(parser, True, bool(args.plot))
    arguments.check_outputs(parser, {"--json": args.json, "--plot": args.plot}, args.overwrite)
    try:
        result = measure(args.images, args.values, args.qualities, args.max_images, args.lpips)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(table(result))
    if args.json:
        atomic_files.write_bytes(args.json, json.dumps(result, indent=2).encode())
    if args.plot:
        plot(result, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
