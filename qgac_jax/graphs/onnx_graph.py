"""Restoration models as ONNX graphs, and ONNX Runtime sessions that run them.

Tools that restore photos without JAX (chaiNNer, ComfyUI, VapourSynth's
vs-mlrt, OpenVINO) take ONNX. The graph is converted from the Flax model by
jax2onnx (the optional extra `onnx`), not built by hand, with dynamic batch,
height and width: the network's own edge padding to a multiple of 4 is inside
the graph, so any size works.

Tensor contract (NCHW, as those tools expect):
  image     float32 [N, C, H, W] in [0, 1]; C = 3 (RGB) or 1 (grey)
  qmap      float32 [N, K, H, W]: the Q-map of `quantization.qmap` (steps /
            255; channel 0 luma[i % 8, j % 8], channel 1 (colour only) the
            chroma table by the file's subsampling), K = 2 colour, 1 grey
  restored  float32 [N, C, H, W], clipped to [0, 1]
With `quality=Q` the graph has no `qmap` input: it tiles the IJG tables of
quality Q (4:2:0 chroma) over the image itself, for tools that feed one tensor.

A quality estimator's graph (`convert_estimator`, what restore runs on a CPU):
  luma      float32 [N, 1, H, W]: luma crops already cut on the photo's 8x8
            grid (`quality_estimate`), H and W multiples of 16
  table     float32 [N, 8, 8]: the file's luma table, steps 1..255
  quality   float32 [N]: the effective IJG quality, 1..100

Only converting needs JAX (the extra `onnx`); running a graph needs ONNX
Runtime alone, which every install brings.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import json
import logging
import os
import pathlib
import time
from typing import Any, Callable, Dict, Optional

import numpy as np

from qgac_jax.files import atomic_files
from qgac_jax.codecs import jpeg_tables as qz

OPSET = 17  # ONNX Runtime >= 1.11, OpenVINO, TensorRT 8.5+ and vs-mlrt all read it
ESTIMATOR_OPSET = 18  # (its global mean converts to ReduceMean with axes as an input, which opset 18 takes)
QMAP_CONVENTION = ("orthonormal-equivalent steps / 255 (qgac_jax.codecs: JPEG, WebP, AVIF, HEIC); a JPEG's channel 0 "
                   "luma[i % 8, j % 8], colour: channel 1 chroma[(i // sv) % 8, (j // sh) % 8] with (sv, sh) the "
                   "file's subsampling factors (2, 2 at 4:2:0)")


def missing_extra(err: ImportError) -> ValueError:
    return ValueError(f"converting a model to ONNX needs the optional extra: pip install '.[onnx]' ({err})")


def _in_graph_qmap(image, luma: np.ndarray, chroma: Optional[np.ndarray]):
    """[N, K, H, W] Q-map of fixed tables for an image [N, C, H, W] of any (symbolic) size.

    Equal to `quantization.qmap(luma, chroma, H, W, "4:2:0")` per image: the map repeats every
    16 pixels, so one 16x16 tile is broadcast over a grid the size of the image padded to 16 and
    cut back. Built from padding, reshapes and slices, which the converter keeps exact for
    dynamic H and W.
    """
    import jax
    import jax.numpy as jnp

    from qgac_jax.models.qgac import pad_to_multiple

    n, _, h, w = image.shape
    period = qz.qmap(luma, chroma, 16, 16, "4:2:0")  # [16, 16, K]
    k = period.shape[-1]
    zeros = jnp.zeros_like(jnp.transpose(jax.lax.slice_in_dim(image, 0, 1, axis=1), (0, 2, 3, 1)))  # [N, H, W, 1]
    zeros = pad_to_multiple(zeros, 16)  # [N, Hp, Wp, 1]
    hp, wp = zeros.shape[1:3]
    grid = zeros.reshape(n, hp // 16, 16, wp // 16, 16, 1) + period.reshape(1, 1, 16, 1, 16, k)
    grid = jax.lax.slice_in_dim(jax.lax.slice_in_dim(grid.reshape(n, hp, wp, k), 0, h, axis=1), 0, w, axis=2)
    return jnp.transpose(grid, (0, 3, 1, 2))  # [N, K, H, W]


def _package_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("qgac_jax")
    except metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        return "unknown"


@contextlib.contextmanager
def _quiet_logger():
    """jax2onnx logs a warning with a traceback for each optional plugin that does not import, and onnx_ir a
    warning for each value whose shape it cannot name: nothing a user can act on."""
    loggers = [logging.getLogger(name) for name in ("jax2onnx", "onnx_ir", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _converter():
    """(jax.numpy, onnx, jax2onnx.to_onnx), imported with their chatter kept off the terminal; a ValueError naming
    the extra where they are not installed."""
    quiet = contextlib.ExitStack()
    quiet.enter_context(_quiet_logger())  # the converter prints debugging lines and tracebacks of plugins it skips
    quiet.enter_context(contextlib.redirect_stdout(io.StringIO()))
    quiet.enter_context(contextlib.redirect_stderr(io.StringIO()))
    try:
        with quiet:
            import jax.numpy as jnp
            import onnx
            from jax2onnx import to_onnx
    except ImportError as err:
        raise missing_extra(err) from None
    return jnp, onnx, to_onnx


def _to_onnx(to_onnx, fn, inputs, names, outputs, model_name: str, opset: int):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), _quiet_logger():
        return to_onnx(fn, inputs=inputs, model_name=model_name, opset=opset, input_names=names, output_names=outputs)


def _label(onnx, proto, meta: Dict[str, str]):
    """The producer and `meta` written into the graph (what `metadata` and a session's model meta read)."""
    proto.producer_name, proto.producer_version = "qgac_jax", _package_version()
    del proto.metadata_props[:]
    for key, value in {**meta, "qgac_jax.converter": "jax2onnx"}.items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return proto


def convert(model, params, quality: Optional[int] = None, model_config: Optional[Dict[str, Any]] = None):
    """The ONNX ModelProto of a restoration model (see the module docstring for its tensors)."""
    jnp, onnx, to_onnx = _converter()
    channels = model.channels
    k = 2 if channels == 3 else 1

    def restore(image, qmap):  # [N, C, H, W], [N, K, H, W] -> [N, C, H, W]
        y = jnp.transpose(image, (0, 2, 3, 1))
        q = jnp.transpose(qmap, (0, 2, 3, 1))
        return jnp.transpose(jnp.clip(model.apply({"params": params}, y, q), 0.0, 1.0), (0, 3, 1, 2))

    if quality is None:
        fn, inputs, names = restore, [("N", channels, "H", "W"), ("N", k, "H", "W")], ["image", "qmap"]
    else:
        luma, chroma = qz.ijg_tables(qz.validate_quality(quality))

        def fn(image):
            return restore(image, _in_graph_qmap(image, luma, chroma if channels == 3 else None))

        inputs, names = [("N", channels, "H", "W")], ["image"]
    proto = _to_onnx(to_onnx, fn, inputs, names, ["restored"], f"qgac_{(model_config or {}).get('variant', 'model')}",
                     OPSET)
    return _label(onnx, proto, {
        "qgac_jax.model_config": json.dumps(model_config or {}, sort_keys=True),
        "qgac_jax.channels": str(channels),
        "qgac_jax.qmap": "built in: IJG tables of quality %d, 4:2:0" % quality if quality else QMAP_CONVENTION,
        "qgac_jax.quality": str(quality or ""),
    })


def convert_estimator(model, params, model_config: Dict[str, Any]):
    """The ONNX ModelProto of a quality estimator (the module docstring's second contract)."""
    jnp, onnx, to_onnx = _converter()

    def estimate(luma, table):  # [N, 1, H, W], [N, 8, 8] -> [N]
        return model.apply({"params": params}, jnp.transpose(luma, (0, 2, 3, 1)), table, aligned=True)

    proto = _to_onnx(to_onnx, estimate, [("N", 1, "H", "W"), ("N", 8, 8)], ["luma", "table"], ["quality"],
                     "qgac_quality_estimator", ESTIMATOR_OPSET)
    return _label(onnx, proto, {"qgac_jax.model_config": json.dumps(model_config, sort_keys=True)})


def save(proto, path) -> None:
    """Writes the model to `path` whole or not at all (`atomic_files`)."""
    atomic_files.write_bytes(path, proto.SerializeToString())


def available() -> bool:
    """Whether ONNX Runtime is installed (it comes with every install; converting a checkpoint of one's own needs
    the extra `onnx` too: `convert`)."""
    return importlib.util.find_spec("onnxruntime") is not None


def cache_dir() -> pathlib.Path:
    """Where converted exports are kept: $QGAC_ONNX_CACHE, else $XDG_CACHE_HOME (~/.cache)/qgac_jax/onnx."""
    if os.environ.get("QGAC_ONNX_CACHE"):
        return pathlib.Path(os.environ["QGAC_ONNX_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "qgac_jax" / "onnx"


class CacheNotWritable(ValueError):
    """The ONNX cache folder cannot take a new graph (a read-only home, say)."""


def _sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _intact(graph: pathlib.Path) -> bool:
    """Whether a cached graph is the one its sidecar hash was written for (not truncated, not replaced)."""
    sidecar = graph.with_name(graph.name + ".sha256")
    try:
        return sidecar.read_text().strip() == _sha256(graph)
    except OSError:
        return False


def build_cached(out: pathlib.Path, build: Callable[[pathlib.Path], None], what: str,
                 log: Callable[..., None] = print) -> pathlib.Path:
    """`out` if it is intact, else `build(out)` there and a hash sidecar after it. A graph that does not match
    its hash is built again (with a note); a cache that cannot be written raises CacheNotWritable before any
    work. A build is one line: `what` and where, flushed at once, then its time."""
    if out.is_file() and _intact(out):
        return out
    damaged = out.exists() and out.with_name(out.name + ".sha256").exists()  # (an older cache has no hash)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(out.parent, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        raise CacheNotWritable(f"the ONNX cache {out.parent} is not writable (set QGAC_ONNX_CACHE to a writable "
                               "folder)")
    start = time.perf_counter()
    note = "the cached ONNX graph was damaged; " if damaged else ""
    log(f"{note}{what} once (kept at {out}) ...", end="", flush=True)
    try:
        build(out)
        atomic_files.write_bytes(out.with_name(out.name + ".sha256"), _sha256(out).encode())
    finally:
        log(f" {time.perf_counter() - start:.0f} s", flush=True)
    return out


def shipped_graph(name: str) -> Optional[pathlib.Path]:
    """The graph of that cache name that ships in the package (`shipped.GRAPHS`, built by `python -m
    qgac_jax.tools.ship_graphs`: one for each shipped export, named by its digest as the cache names it), or None."""
    from qgac_jax.models import shipped

    path = shipped.GRAPHS / name
    return path if path.is_file() else None


def cached(export_path, log: Callable[..., None] = print) -> pathlib.Path:
    """The ONNX graph of an export or training workdir (a restoration model's or a quality estimator's): the one
    the package ships for it (`shipped_graph`), else converted on first use and kept in `cache_dir()` beside a
    hash of its bytes (`build_cached`)."""
    from qgac_jax.models import exports

    export_path = exports.export_dir(export_path)
    name = f"{exports.digest(export_path)}.onnx"
    shipped = shipped_graph(name)
    if shipped is not None:
        return shipped

    def build(out):
        _converter()  # (one line naming the extra where it is missing, before reading the export with JAX)
        with _quiet_logger():
            if exports.read_model_config(export_path).get("kind") == "estimator":
                save(convert_estimator(*exports.load_export(export_path)), out)
            else:
                model, params, config = exports.load_restoration_export(export_path)
                save(convert(model, params, None, config), out)

    return build_cached(cache_dir() / name, build,
                        f"converting {export_path} to ONNX", log)


def metadata(path) -> Dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(os.fspath(path), load_external_data=False).metadata_props}
