"""Graphs in ONNX Runtime: sessions on the CPU, the restoration model run as Restorer calls a Flax model (its
tiles several at once, a session per core), and the quality estimator run from its graph (`estimate`).

Needs ONNX Runtime alone, which every install brings: no JAX is imported here.
"""

from __future__ import annotations

import functools
import json
import os
import queue
import threading
from typing import Dict, Optional

import numpy as np

from qgac_jax.graphs import onnx_graph
from qgac_jax.models.quality_estimate import QualityEstimate


def session(path, threads: int = 0):
    """An ONNX Runtime session of the graph at `path` on the CPU, on `threads` cores (0: all); a ValueError where
    it cannot be loaded."""
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise ValueError(f"ONNX Runtime, which every install of qgac_jax brings, is missing: {err}") from None
    options = ort.SessionOptions()
    options.enable_mem_pattern = False  # (a memory plan cached per input shape: a folder's sizes each kept one)
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - ONNX Runtime raises its own classes for unreadable files
        raise ValueError(f"{path} is not an ONNX model ONNX Runtime can load: {err}") from None


@functools.lru_cache(maxsize=1)
def _shrinking():
    """Run options that hand the arena's memory back at the end of the run: a session otherwise keeps the largest
    input's activations for good, each session of each model a folder loads (`OnnxModel._run` asks for it where
    the input size changes; docs/performance.md#the-restore-install-size-start-up-memory)."""
    import onnxruntime as ort

    options = ort.RunOptions()
    options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
    return options


MAX_WORKERS = 4  # each worker holds a tile's activations: a bound on memory for machines with many cores


def cores() -> int:
    """The cores this process may run on (a container's or `taskset`'s share, not the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS, Windows
        return os.cpu_count() or 1


def default_workers(threads: Optional[int] = None) -> int:
    """Tiles restored at once: one per core up to MAX_WORKERS, the cores shared out among them. One ONNX
    Runtime session per core restores more pixels per second than one session on all cores
    (docs/performance.md)."""
    return max(1, min(int(threads or cores()), MAX_WORKERS))


def default_jobs(available: Optional[int] = None) -> int:
    """Photos restored at once (restore --jobs): one per MAX_WORKERS cores, at least one. One photo's tiles
    keep at most MAX_WORKERS sessions busy; the cores beyond them take other photos (docs/performance.md)."""
    return max(1, int(available or cores()) // MAX_WORKERS)


class OnnxModel:
    """An exported model in an ONNX Runtime session, called as Restorer calls a Flax model.

    `__call__(y [B, H, W, C], qmap [B, H, W, K]) -> [B, H, W, C]` in [0, 1], NHWC like the rest of
    the package; the transposes to the graph's NCHW happen here.
    """

    def __init__(self, path, threads: Optional[int] = None, workers: int = 1):
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ValueError(f"ONNX model {path} does not exist")
        self.path, self.threads = path, int(threads or 0)  # 0: ONNX Runtime's default, all cores
        self.session = self._session(self.threads)
        self.workers = max(1, int(workers))
        self._idle: "queue.SimpleQueue" = queue.SimpleQueue()  # worker sessions, made on first use
        self._made = 0
        self._lock = threading.Lock()
        self._shapes: Dict[int, tuple] = {}  # id(session) -> the input shape it ran last
        names = [i.name for i in self.session.get_inputs()]
        if names != ["image", "qmap"]:
            raise ValueError(f"{path} has inputs {names}; restore takes the two-input export (image, qmap), not "
                             "one exported with --quality")
        self.channels = int(self.session.get_inputs()[0].shape[1])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.precision = meta.get("qgac_jax.precision", "float32").split()[0]  # int8 graphs say so (int8_graph)

    def _session(self, threads: int):
        return session(self.path, threads)

    def _run(self, session, y: np.ndarray, qmap: np.ndarray) -> np.ndarray:
        feed = {"image": np.ascontiguousarray(np.transpose(y, (0, 3, 1, 2)), np.float32),
                "qmap": np.ascontiguousarray(np.transpose(qmap, (0, 3, 1, 2)), np.float32)}
        # The arena is handed back where the input's size changes (another photo, an edge tile): a folder's
        # memory does not grow from photo to photo, and a photo's tiles of one size reuse it (handing it back
        # after every tile cost int8 a third of its speed: docs/performance.md).
        changed = self._shapes.get(id(session)) != feed["image"].shape
        self._shapes[id(session)] = feed["image"].shape  # (a session runs in one thread at a time)
        return np.transpose(session.run(["restored"], feed, _shrinking() if changed else None)[0], (0, 2, 3, 1))

    def __call__(self, y: np.ndarray, qmap: np.ndarray) -> np.ndarray:
        return self._run(self.session, y, qmap)

    def in_worker(self, y: np.ndarray, qmap: np.ndarray) -> np.ndarray:
        """As __call__, from one of `workers` threads at once: each call takes a session of its own, with the
        cores shared out (ONNX Runtime runs one tile per core faster than one tile on all cores)."""
        try:
            session = self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                self._made += 1
                if self._made > self.workers:
                    raise RuntimeError(f"more than {self.workers} concurrent calls") from None
            session = self._session(max(1, (self.threads or cores()) // self.workers))
        try:
            return self._run(session, y, qmap)
        finally:
            self._idle.put(session)


def estimate(path, threads: Optional[int] = None) -> QualityEstimate:
    """A quality estimator's export (or its graph's path) run by ONNX Runtime: the graph as the package ships it,
    else converted once and cached (`onnx_graph.cached`)."""
    graph = path if os.fspath(path).endswith(".onnx") else onnx_graph.cached(path)
    estimator = session(graph, threads or 0)
    config = json.loads(estimator.get_modelmeta().custom_metadata_map.get("qgac_jax.model_config", "{}"))
    if config.get("kind") != "estimator":
        raise ValueError(f"{path} holds a restoration model, not a quality estimator")

    def predict(x, t):  # NHWC -> the graph's NCHW
        feed = {"luma": np.ascontiguousarray(x.transpose(0, 3, 1, 2), np.float32), "table": t.astype(np.float32)}
        return estimator.run(["quality"], feed)[0]

    return QualityEstimate(predict, tuple(config.get("codecs", ("jpeg",))), "ONNX Runtime")
