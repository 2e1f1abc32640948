"""What runs the network: JAX, or ONNX Runtime in float32 or int8. One set of flags and rules for the CLIs
that restore (restore, evaluate, the web page, the archive job), and `Models`, which loads each model a run
needs once.

--precision auto, the default, runs int8 where it pays: ONNX Runtime on a CPU with int8 dot-product
instructions (VNNI, AMX, Arm's dot product), where the int8 graph is faster at a few thousandths of a dB
(docs/performance.md#int8-by-default); float32 elsewhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import platform
import sys
import threading
from typing import Dict, Optional

from qgac_jax.models import jax_installed, realism, shipped

BACKENDS = ("auto", "jax", "onnxruntime")  # what --backend and $QGAC_BACKEND accept
PRECISIONS = ("auto", "float32", "int8")  # what --precision accepts; int8 runs `int8_graph` in ONNX Runtime
DEFAULT_PRECISION = "auto"  # int8 holds float32's quality on every set measured: docs/performance.md#int8-by-default
_BUILDING = threading.Lock()
INT8_FLAGS = {"amx_int8": "AMX", "avx512_vnni": "AVX-512 VNNI", "avx_vnni": "AVX-VNNI", "asimddp": "Arm dot product"}


def fast_int8(cpuinfo: Optional[str] = None) -> Optional[str]:
    """The CPU's int8 dot-product instructions that ONNX Runtime's int8 kernels use (AMX, VNNI, Arm's dot
    product), named; None where it has none (AVX2 alone, where int8 is not faster and may saturate).
    `cpuinfo`: /proc/cpuinfo's text (read here on Linux); Apple silicon always has them."""
    if cpuinfo is None:
        if platform.system() == "Darwin":
            return "Arm dot product" if platform.machine() == "arm64" else None
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    flags = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(value.split())
    return next((name for flag, name in INT8_FLAGS.items() if flag in flags), None)


def requested_backend(flag: Optional[str]) -> str:
    """--backend, else $QGAC_BACKEND (any case, spaces ignored, empty meaning unset), else 'auto'; a ValueError
    naming a value that is none of BACKENDS."""
    if flag is not None:
        return flag
    env = os.environ.get("QGAC_BACKEND", "").strip().lower() or "auto"
    if env not in BACKENDS:
        raise ValueError(f"QGAC_BACKEND={os.environ['QGAC_BACKEND']!r}: use auto, jax or onnxruntime")
    return env


def choose_backend(requested: str) -> str:
    """'jax' or 'onnxruntime' for --backend: auto picks ONNX Runtime on a CPU when it is installed."""
    if requested in ("jax", "onnxruntime"):
        return requested
    if not jax_installed():  # the restore-only install
        return "onnxruntime"
    import jax

    from qgac_jax.graphs import onnx_graph

    return "onnxruntime" if jax.default_backend() == "cpu" and onnx_graph.available() else "jax"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="what runs the network: 'auto' (default; $QGAC_BACKEND overrides) ONNX Runtime on a CPU "
                             "or where JAX is not installed (faster there; the shipped models' graphs come with the "
                             "package, a checkpoint's own is converted once and cached), else JAX")
    parser.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                        help="auto (default): int8 where ONNX Runtime runs on a CPU with int8 dot-product "
                             "instructions (VNNI, AMX, Arm's), float32 elsewhere; int8: a quantized graph in ONNX "
                             "Runtime (of the shipped model fine-tuned for it where one ships), faster on such CPUs "
                             "and within 0.02 dB of float32's PSNR on average on the sets measured "
                             "(docs/performance.md); float32: the exact float network")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace, onnx_file: bool = False) -> None:
    """Rejects --backend / --precision / $QGAC_BACKEND combinations that cannot run (parser.error, one line).
    Nothing is decided here: `decide` is the one place backend and precision are chosen."""
    if args.precision == "int8" and args.backend == "jax":
        parser.error("--precision int8 runs ONNX Runtime; drop --backend jax")
    if args.precision == "int8" and onnx_file:
        parser.error("--precision int8 quantizes the graph converted from a checkpoint; for an ONNX file, export it "
                     "with `python -m qgac_jax.export --precision int8`")
    if onnx_file and args.backend == "jax":
        parser.error("--onnx runs ONNX Runtime; drop --backend jax")
    try:
        requested_backend(args.backend)
    except ValueError as err:
        parser.error(str(err))


@dataclasses.dataclass(frozen=True)
class Engine:
    """What runs the network, decided once per run by `decide`."""

    backend: str  # jax | onnxruntime
    precision: str  # float32 | int8
    why: str  # the reason for the precision, for --show-quality and evaluate's header


def decide(settings) -> Engine:
    """The backend and precision a run restores with: --onnx and --precision int8 run ONNX Runtime; --backend
    (else $QGAC_BACKEND, else auto: ONNX Runtime on a CPU where the extra is installed); --precision auto is int8
    where ONNX Runtime runs on a CPU with fast int8 instructions, float32 elsewhere. A ValueError names a missing
    extra. The one place this is decided (`Models` only falls back from an int8 graph that cannot be built)."""
    from qgac_jax.graphs import onnx_graph

    onnx_file, precision = bool(settings.onnx), settings.precision
    requested = requested_backend(settings.backend)
    if onnx_file or precision == "int8" or requested == "onnxruntime":
        if not onnx_graph.available():
            flag = "--onnx" if onnx_file else "--precision int8" if precision == "int8" else "--backend onnxruntime"
            raise ValueError(f"{flag} needs ONNX Runtime, which every install brings: reinstall qgac_jax")
        backend = "onnxruntime"
    else:
        backend = choose_backend(requested)
    if backend == "jax" and not jax_installed():
        raise ValueError("--backend jax needs JAX, which this install left out: pip install '.[jax]' "
                         "(or drop --backend jax: ONNX Runtime restores without it)")
    if precision != "auto":
        return Engine(backend, precision, f"--precision {precision}")
    if onnx_file:
        return Engine(backend, "float32", "auto: an ONNX file runs as it is")
    if backend != "onnxruntime":
        return Engine(backend, "float32", "auto: int8 runs in ONNX Runtime, not JAX")
    instructions = fast_int8()
    if instructions is None:
        return Engine(backend, "float32", "auto: this CPU has no fast int8 instructions (VNNI, AMX)")
    return Engine(backend, "int8", f"auto: this CPU has {instructions}")


class Models:
    """Each model a folder needs, loaded once: --checkpoint / --onnx for every image, else the shipped grey
    model for grey files and the colour one for colour files (for int8, the ones fine-tuned for it)."""

    def __init__(self, settings, engine: Optional[Engine] = None):  # a jobs.Settings; engine: decide(settings)
        engine = decide(settings) if engine is None else engine
        self.settings, self.backend = settings, engine.backend
        self.precision, self.why = engine.precision, engine.why
        self._loaded: Dict[tuple, object] = {}  # (path, with the estimator) -> Restorer

    def describe(self) -> str:
        """What runs the network and why, for --show-quality: 'ONNX Runtime int8 (auto: this CPU has AMX)'."""
        engine = "ONNX Runtime" if self.backend == "onnxruntime" or self.settings.onnx else "JAX"
        return f"{engine} {self.precision} ({self.why})"

    def path(self, grey: bool, clip: bool = False):
        """The model a file of that colour (a clip's, with `clip`) is restored with: --onnx, --checkpoint, else the
        shipped one (for clips, the video fine-tune where it ships: `shipped.clip_model`)."""
        args = self.settings
        model = shipped.clip_model(args.model) if clip else args.model
        return args.onnx or args.checkpoint or realism.checkpoint(
            args.realism, 1 if grey else 3, model, self.precision, log=functools.partial(print, file=sys.stderr))

    def __call__(self, grey: bool, clip: bool = False):
        from qgac_jax.restoring.restorer import Restorer

        args = self.settings
        path = self.path(grey, clip)
        # the quality estimator reads photos; a clip's frames are told their own quantizers (`restoring.video`)
        estimate = args.quality == "auto" and not clip
        if (path, estimate) in self._loaded:
            return self._loaded[path, estimate]
        kwargs = dict(tile=args.tile, overlap=args.overlap, max_pixels=args.max_pixels,
                      estimator="shipped" if estimate else None)
        threads = args.threads  # ONNX Runtime's cores (an archive job's actor: its CPUs; restore --jobs)
        if args.onnx:
            restorer = Restorer.from_onnx(path, threads=threads, **kwargs)
        elif self.backend == "onnxruntime":
            restorer = self._onnx_runtime(path, threads, kwargs)
            if restorer is None:  # auto's int8 could not be built: float32 (another path) instead
                return self(grey, clip)
        else:
            restorer = Restorer.from_checkpoint(path, **kwargs)
        self._loaded[path, estimate] = restorer
        return restorer

    def _onnx_runtime(self, path, threads, kwargs):
        """The model in ONNX Runtime at self.precision. What auto chose falls back with a warning (int8 to
        float32: None; float32 to JAX); an explicit --backend onnxruntime or --precision int8 fails instead."""
        from qgac_jax.graphs import int8_graph, onnx_graph
        from qgac_jax.restoring.restorer import Restorer

        args = self.settings
        try:
            with _BUILDING:  # restore --jobs: one thread converts, the others then find the graph cached
                graph = (int8_graph if self.precision == "int8" else onnx_graph).cached(
                    path, log=functools.partial(print, file=sys.stderr))
            return Restorer.from_onnx(graph, threads=threads, **kwargs)
        except Exception as err:  # noqa: BLE001 - the float32 and JAX paths still work
            if self.precision == "int8" and args.precision == "auto":
                print(f"warning: no int8 graph for {path} ({err}); restoring in float32", file=sys.stderr)
                self.precision, self.why = "float32", "auto: the int8 graph could not be built"
                return None
            if requested_backend(args.backend) != "auto" or self.precision == "int8":
                raise ValueError(f"cannot run {path} with ONNX Runtime: {err}") from None
            print(f"warning: {err}; using JAX" if isinstance(err, onnx_graph.CacheNotWritable) else
                  f"warning: ONNX Runtime unavailable for {path} ({err}); using JAX", file=sys.stderr)
            return Restorer.from_checkpoint(path, **kwargs)
