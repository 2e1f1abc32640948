"""What runs the network: JAX, or ONNX Runtime in float32 or int8. One set of flags and rules for the CLIs
that restore (restore, evaluate, the web page)."""

from __future__ import annotations

import argparse
import os
from typing import Optional

BACKENDS = ("auto", "jax", "onnxruntime")  # what --backend and $QGAC_BACKEND accept
PRECISIONS = ("float32", "int8")  # what --precision accepts; int8 runs `int8_graph` in ONNX Runtime


def requested_backend(flag: Optional[str]) -> str:
    """--backend, else $QGAC_BACKEND (any case, spaces ignored, empty meaning unset), else 'auto'; a ValueError
    naming a value that is none of BACKENDS."""
    if flag is not None:
        return flag
    env = os.environ.get("QGAC_BACKEND", "").strip().lower() or "auto"
    if env not in BACKENDS:
        raise ValueError(f"QGAC_BACKEND={os.environ['QGAC_BACKEND']!r}: use auto, jax or onnxruntime")
    return env


def choose_backend(requested: str, onnx_file: bool) -> str:
    """'jax' or 'onnxruntime' for --backend: auto picks ONNX Runtime on a CPU when it is installed."""
    if onnx_file or requested == "onnxruntime":
        return "onnxruntime"
    if requested == "jax":
        return "jax"
    import jax

    from qgac_jax import onnx_graph

    return "onnxruntime" if jax.default_backend() == "cpu" and onnx_graph.available() else "jax"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="what runs the network: 'auto' (default; $QGAC_BACKEND overrides) ONNX Runtime on a CPU "
                             "when the extra `onnx` is installed (faster there; each model is converted once and "
                             "cached), else JAX")
    parser.add_argument("--precision", choices=PRECISIONS, default="float32",
                        help="float32 (default), or int8: ONNX Runtime runs a quantized graph of the model, about "
                             "1.9x faster on a CPU with VNNI, at a measured cost in PSNR against float32 of 0.015-"
                             "0.028 dB on cbsd68 and up to 0.19 dB on sharp city photos (urban100) with the shipped "
                             "colour model (docs/performance.md)")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace, onnx_file: bool = False) -> None:
    """Fills in args.backend ($QGAC_BACKEND, --onnx, --precision int8) and rejects combinations that cannot run
    (parser.error)."""
    if args.precision == "int8" and args.backend == "jax":
        parser.error("--precision int8 runs ONNX Runtime; drop --backend jax")
    if args.backend is None:
        try:
            args.backend = "onnxruntime" if onnx_file else requested_backend(None)
        except ValueError as err:
            parser.error(str(err))
        if args.precision == "int8":  # a flag outweighs $QGAC_BACKEND
            args.backend = "onnxruntime"
    if args.precision == "int8" and onnx_file:
        parser.error("--precision int8 quantizes the graph converted from a checkpoint; for an ONNX file, export it "
                     "with `python -m qgac_jax.export --precision int8`")


def backend(args: argparse.Namespace, onnx_file: bool = False) -> str:
    """The backend that will run (choose_backend), or a ValueError saying which extra is missing."""
    from qgac_jax import onnx_graph

    chosen = choose_backend(args.backend, onnx_file)
    if (chosen == "onnxruntime" or args.precision == "int8") and not onnx_graph.available():
        flag = "--precision int8" if args.precision == "int8" else "--backend onnxruntime"
        raise ValueError(f"{flag} needs the extra: pip install -e '.[onnx]'")
    return "onnxruntime" if args.precision == "int8" else chosen
