"""The training stream without TensorFlow: worker processes running NumPy + Pillow (libjpeg).

The recipe is `degrade`'s, each example a pure function of (seed, host,
index) drawn from NumPy's generator: deterministic and resumable like the
tf.data stream, though the two streams differ (equally distributed).
Python holds the GIL for most of an example, so threads would not scale:
`config.workers` processes each build whole batches, mapping the image bank
from one temporary .npy file instead of copying it.
"""

from __future__ import annotations

import os
from typing import Dict, Iterator, Optional

import numpy as np

from qgac_jax.data.options import DataConfig
from qgac_jax.data.degrade import degrade, finish_batch
from qgac_jax.data.sources import ImageBank, host_share


def example(config: DataConfig, bank: ImageBank, process_index: int, index: int,
            keep_jpeg: bool = False) -> Dict[str, np.ndarray]:
    """Example `index` of host `process_index` in compact form (see `degrade.degrade`).

    Image drawn by weight, random crop, one of 8 rotations/flips, then the
    JPEG recipe of the config (single or double, IJG or random tables).
    """
    rng = np.random.default_rng([config.seed, process_index, index])
    size = config.crop_size
    img = bank.image(int(rng.choice(len(bank), p=bank.probs)))
    y = int(rng.integers(img.shape[0] - size + 1))
    x = int(rng.integers(img.shape[1] - size + 1))
    turn = int(rng.integers(8))
    crop = np.rot90(img[y: y + size, x: x + size], turn % 4)
    crop = np.ascontiguousarray(crop[:, ::-1] if turn >= 4 else crop)  # [S, S, C] uint8
    return degrade(config, crop, rng, keep_jpeg)


def _batch(config: DataConfig, bank: ImageBank, process_index: int, local_batch: int, step: int,
           keep_jpeg: bool) -> Dict[str, np.ndarray]:
    """Compact batch `step` (uint8 images: a sixth of the bytes to pass between processes)."""
    examples = [example(config, bank, process_index, step * local_batch + j, keep_jpeg) for j in range(local_batch)]
    return {k: np.array([e[k] for e in examples], object) if k == "jpeg" else np.stack([e[k] for e in examples])
            for k in examples[0]}


_WORKER: Dict[str, object] = {}  # the state of one pipeline worker process


def _init_worker(config: DataConfig, flat_path: str, offsets, shapes, probs, process_index, local_batch, keep_jpeg):
    import multiprocessing
    import multiprocessing.connection
    import signal
    import threading

    # Stopping is the parent's decision: a SIGTERM or Ctrl-C sent to the whole process group (SLURM,
    # `timeout`, a terminal) must let the parent save its checkpoint, not break the pool under it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:  # and a parent killed outright (SIGKILL, OOM) takes its workers with it
        threading.Thread(target=lambda: (multiprocessing.connection.wait([parent.sentinel]), os._exit(0)),
                         daemon=True).start()
    flat = np.load(flat_path, mmap_mode="r")  # shared with the parent through the page cache, not copied
    _WORKER.update(config=config, bank=ImageBank(flat, offsets, shapes, probs), process_index=process_index,
                   local_batch=local_batch, keep_jpeg=keep_jpeg)


def _worker_batch(step: int) -> Dict[str, np.ndarray]:
    w = _WORKER
    return _batch(w["config"], w["bank"], w["process_index"], w["local_batch"], step, w["keep_jpeg"])


def train_batches(
    config: DataConfig,
    start_step: int = 0,
    process_index: Optional[int] = None,
    process_count: Optional[int] = None,
    bank: Optional[ImageBank] = None,
    keep_jpeg: bool = False,
    threads: Optional[int] = None,
    compact: bool = False,
) -> Iterator[Dict[str, np.ndarray]]:
    """This host's batches from `start_step` on; batch s of host p depends only on (seed, p, s).

    `config.workers` (or `threads`) processes; batches come out in order, a
    few steps ahead. Closing the generator shuts the pool down. `compact`:
    uint8 images and guide tables, for `on_device.make_prepare` to finish.
    """
    finish = (lambda c, b: b) if compact else finish_batch
    import collections
    import concurrent.futures
    import multiprocessing
    import tempfile

    process_index, local_batch, bank = host_share(config, process_index, process_count, bank)
    workers = int(threads or config.workers or os.cpu_count() or 1)
    if workers == 1:
        step = start_step
        while True:
            yield finish(config, _batch(config, bank, process_index, local_batch, step, keep_jpeg))
            step += 1

    with tempfile.TemporaryDirectory(prefix="qgac-bank-") as tmp:
        flat_path = os.path.join(tmp, "flat.npy")
        np.save(flat_path, bank.flat)
        pool = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"),  # no fork of a threaded JAX process
            initializer=_init_worker,
            initargs=(config, flat_path, bank.offsets, bank.shapes, bank.probs, process_index, local_batch, keep_jpeg))
        try:
            ahead = collections.deque(
                pool.submit(_worker_batch, s) for s in range(start_step, start_step + 2 * workers)
            )
            step = start_step + 2 * workers
            while True:
                result = ahead.popleft().result()
                ahead.append(pool.submit(_worker_batch, step))
                step += 1
                yield finish(config, result)
        finally:  # the consumer stopped (or the generator was collected): drop the work queued ahead
            pool.shutdown(wait=True, cancel_futures=True)
