"""Batches put on the devices ahead of the step by a background thread, so host and device overlap.

Without it the loop decodes, transfers and steps in turn, and the device
idles while the host works. With it the next `depth` batches are already on
the devices (sharded as the step wants) when the step asks. Only the fields
the step uses travel. `close()` (or the `with` block, or an error on either
side) stops the thread and closes the host iterator, which shuts pipeline
workers down: nothing is left behind.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Dict, Iterator, Sequence

import jax
import numpy as np

_POLL_S = 0.05  # how often a blocked thread looks at the stop flag


class DevicePrefetcher:
    """Iterator over `put(host_batch)`, computed `depth` batches ahead in a background thread."""

    def __init__(self, batches: Iterator[Dict[str, np.ndarray]], put: Callable, keys: Sequence[str],
                 depth: int = 2):
        if depth < 1:
            raise ValueError(f"prefetch depth must be at least 1, got {depth}")
        self._batches, self._put, self._keys = batches, put, tuple(keys)
        self._queue: "queue.Queue" = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="qgac-prefetch", daemon=True)
        self._thread.start()

    def _offer(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self):
        try:
            for host in self._batches:
                missing = [k for k in self._keys if k not in host]
                if missing:
                    raise KeyError(f"the input pipeline's batches lack {missing} (they have {sorted(host)})")
                if not self._offer(("batch", self._put({k: host[k] for k in self._keys}))):
                    return
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which re-raises it
            self._offer(("error", err))
        else:
            self._offer(("end", None))

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            try:
                kind, item = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("the prefetch thread stopped without a batch or an error") from None
        if kind == "batch":
            return item
        if kind == "end":
            raise StopIteration
        raise item

    def close(self) -> None:
        """Stops the thread, then closes the host iterator (its pipeline workers exit)."""
        self._stop.set()
        self._thread.join()
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def to_devices(batches: Iterator[Dict[str, np.ndarray]], mesh, keys: Sequence[str], prepare: Callable,
               depth: int = 2) -> DevicePrefetcher:
    """Host batches -> `prepare`d global arrays sharded along the mesh's 'data' axis, `depth` ahead.

    `keys` are the host fields that travel; `prepare` (jitted here, e.g. `data.on_device.make_prepare`)
    turns them into what the step reads, on the devices.
    """
    from qgac_jax.training import sharding

    finish = jax.jit(prepare, out_shardings=sharding.batch_sharding(mesh))
    return DevicePrefetcher(batches, lambda host: finish(sharding.global_batch(host, mesh)), keys, depth)
