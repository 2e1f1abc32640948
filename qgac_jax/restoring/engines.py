"""What runs the network: JAX, or ONNX Runtime in float32 or int8. One set of flags and rules for the CLIs
that restore (restore, evaluate, the web page), and `Models`, which loads each model a run needs once."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from typing import Dict, Optional

from qgac_jax.restoring import shipped

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

    from qgac_jax.restoring import onnx_graph

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
    from qgac_jax.restoring import onnx_graph

    chosen = choose_backend(args.backend, onnx_file)
    if (chosen == "onnxruntime" or args.precision == "int8") and not onnx_graph.available():
        flag = "--precision int8" if args.precision == "int8" else "--backend onnxruntime"
        raise ValueError(f"{flag} needs the extra: pip install -e '.[onnx]'")
    return "onnxruntime" if args.precision == "int8" else chosen


class Models:
    """Each model a folder needs, loaded once: --checkpoint / --onnx for every image, else the shipped grey
    model for grey files and the colour one for colour files."""

    def __init__(self, settings, backend: str):  # a jobs.Settings, or restore's parsed arguments
        self.settings, self.backend = settings, backend
        self._loaded: Dict[str, object] = {}

    def __call__(self, grey: bool):
        from qgac_jax.restoring import int8_graph, onnx_graph
        from qgac_jax.restoring.restorer import Restorer

        args = self.settings
        path = args.onnx or args.checkpoint or shipped.default_checkpoint(1 if grey else 3, args.model)
        if path in self._loaded:
            return self._loaded[path]
        kwargs = dict(tile=args.tile, overlap=args.overlap, max_pixels=args.max_pixels,
                      estimator="shipped" if args.quality == "auto" else None)
        threads = getattr(args, "threads", None)  # ONNX Runtime's cores (an archive job's actor: its CPUs)
        if args.onnx:
            restorer = Restorer.from_onnx(path, threads=threads, **kwargs)
        elif self.backend == "onnxruntime":
            to_stderr = functools.partial(print, file=sys.stderr)
            try:
                graph = (int8_graph if args.precision == "int8" else onnx_graph).cached(path, log=to_stderr)
                restorer = Restorer.from_onnx(graph, threads=threads, **kwargs)
            except Exception as err:  # noqa: BLE001 - the JAX path still works; an explicit request fails below
                if args.backend != "auto" or args.precision == "int8":
                    raise ValueError(f"cannot run {path} with ONNX Runtime: {err}") from None
                print(f"warning: {err}; using JAX" if isinstance(err, onnx_graph.CacheNotWritable) else
                      f"warning: ONNX Runtime unavailable for {path} ({err}); using JAX", file=sys.stderr)
                restorer = Restorer.from_checkpoint(path, **kwargs)
        else:
            restorer = Restorer.from_checkpoint(path, **kwargs)
        self._loaded[path] = restorer
        return restorer
