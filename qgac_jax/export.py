"""Exports a restoration model for tools without JAX.

    python -m qgac_jax.export --format onnx --output qgac_colour.onnx [--checkpoint PATH | --model M | --realism R]
        [--channels 1|3]
        [--quality Q] [--precision float32|int8] [--overwrite]

The default model is the shipped one for --channels (3: colour). The ONNX
graph takes `image` [N, C, H, W] float32 in [0, 1] and `qmap` [N, K, H, W]
(the file's tables as steps / 255, K = 2 colour, 1 grey) and returns
`restored` [N, C, H, W]; N, H and W are free. With --quality Q the graph takes
`image` alone and tiles the IJG tables of quality Q itself. --precision int8
writes the graph `restore --precision int8` runs (`int8_graph`: quantized
convolutions, the same float32 tensors in and out). Needs the extra:
pip install '.[onnx]' (JAX and the converter).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from qgac_jax.commands import arguments, logs
from qgac_jax.models import realism, shipped


def _quality(text: str) -> int:
    from qgac_jax.codecs import jpeg_tables as qz

    try:
        return qz.validate_quality(int(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=logs.prog("qgac_jax.export"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="output format (default onnx)")
    parser.add_argument("--output", required=True, help="the file to write, e.g. qgac_colour.onnx")
    arguments.add_shipped_model(parser)
    arguments.add_checkpoint(parser, "the shipped --model for --channels")
    parser.add_argument("--channels", type=int, choices=[1, 3], help="3 colour (default), 1 grey; with --checkpoint "
                                                                     "it must match the checkpoint")
    parser.add_argument("--quality", type=_quality,
                        help="build the IJG tables of this quality (1..100) into the graph: one input, `image`")
    parser.add_argument("--precision", choices=["float32", "int8"], default="float32",
                        help="float32 (default), or int8: convolutions quantized for CPUs; of the shipped model, "
                             "the one fine-tuned for int8 (docs/onnx.md)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    args = parser.parse_args(argv)
    if os.path.exists(args.output) and not args.overwrite:
        parser.error(f"{args.output} exists; pass --overwrite to replace it")
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir) or not os.access(out_dir, os.W_OK):
        parser.error(f"cannot write into {out_dir}: not a writable folder")
    arguments.check_shipped_model(parser, args)
    arguments.require_jax(parser, "converting a model to ONNX", "onnx")
    if not args.checkpoint and shipped.default_checkpoint(args.channels or 3, args.model) is None:
        parser.error(f"this version ships no {args.model} model for those channels: pass --checkpoint")
    return args


def run(argv=None) -> int:
    args = parse_args(argv)
    from qgac_jax.models import exports
    from qgac_jax.graphs import int8_graph, onnx_graph

    start = time.perf_counter()
    try:
        path = args.checkpoint or realism.checkpoint(args.realism, args.channels or 3, args.model, args.precision)
        path = exports.export_dir(path)
        model, params, config = exports.load_restoration_export(path)
        if args.channels and model.channels != args.channels:
            raise ValueError(f"{path} is a {model.channels}-channel model, not --channels {args.channels}")
        print(f"converting {path} ({config.get('variant')}, {model.channels} channels) to ONNX ...", flush=True)
        proto = onnx_graph.convert(model, params, args.quality, config)
        if args.precision == "int8":
            with tempfile.TemporaryDirectory(prefix="qgac-export-") as tmp:
                onnx_graph.save(proto, os.path.join(tmp, "float32.onnx"))
                int8_graph.quantize(os.path.join(tmp, "float32.onnx"), args.output, model, params, args.quality)
        else:
            onnx_graph.save(proto, args.output)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    inputs = "image" if args.quality else "image, qmap"
    print(f"wrote {args.output} ({os.path.getsize(args.output) / 1e6:.1f} MB, {args.precision}, opset "
          f"{onnx_graph.OPSET}, inputs: {inputs}) in {time.perf_counter() - start:.0f} s")
    return 0


def main():
    from qgac_jax.commands.logs import run_command

    run_command(run)


if __name__ == "__main__":
    main()
