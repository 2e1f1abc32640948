"""The device prefetcher: host work and device work overlap, errors travel, nothing is left running."""

import threading
import time

import jax
import numpy as np
import pytest

from qgac_jax.training import sharding
from qgac_jax.data import on_device
from qgac_jax.data.options import DataConfig
from qgac_jax.training.prefetch import DevicePrefetcher, to_devices

T_HOST = T_DEVICE = 0.15  # seconds per batch on each side
STEPS = 12


def _slow_batches(closed):
    try:
        for i in range(10**6):
            time.sleep(T_HOST)  # decoding and JPEG work on the host
            yield {"x": np.full((2, 4), i, np.float32), "unused": np.zeros(3)}
    finally:
        closed.set()


def test_fed_loop_takes_the_longer_of_host_and_device_time_not_their_sum():
    closed = threading.Event()
    with DevicePrefetcher(_slow_batches(closed), jax.device_put, ["x"]) as batches:
        next(batches)  # the pipeline's start-up, as a real run pays it once
        start = time.perf_counter()
        for i in range(1, STEPS + 1):
            batch = next(batches)
            assert float(batch["x"][0, 0]) == i and set(batch) == {"x"}  # in order; only the step's fields
            time.sleep(T_DEVICE)  # the step keeps the device (and this thread) busy
        per_step = (time.perf_counter() - start) / STEPS
    assert closed.is_set()  # closing the prefetcher closed the host iterator
    # Sequential would be T_HOST + T_DEVICE = 0.30 s a step; overlapped, about 0.15. A wide margin for 2 noisy cores.
    assert per_step < 0.8 * (T_HOST + T_DEVICE), per_step
    assert per_step >= 0.95 * max(T_HOST, T_DEVICE)


def test_pipeline_errors_reach_the_loop_and_the_thread_ends():
    def broken():
        yield {"x": np.zeros(2)}
        raise OSError("disk gone")

    batches = DevicePrefetcher(broken(), jax.device_put, ["x"])
    next(batches)
    with pytest.raises(OSError, match="disk gone"):
        next(batches)
    batches.close()
    assert not any(t.name == "qgac-prefetch" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(KeyError, match="lack \\['qmap'\\]"):
        with DevicePrefetcher(iter([{"x": np.zeros(2)}]), jax.device_put, ["qmap"]) as missing:
            next(missing)


def test_stopping_early_leaves_no_thread_behind():
    closed = threading.Event()
    batches = DevicePrefetcher(_slow_batches(closed), jax.device_put, ["x"], depth=2)
    next(batches)
    time.sleep(3 * T_HOST)  # the queue fills up and the thread blocks on it
    batches.close()
    assert closed.is_set()
    assert not any(t.name == "qgac-prefetch" and t.is_alive() for t in threading.enumerate())


def test_to_devices_shards_the_batch_and_finishes_it_on_the_devices():
    config = DataConfig(sources=("builtin",), patch_size=16, batch_size=2, grey=True)
    mesh = sharding.make_mesh()
    host = {"compressed": np.full((2, 16, 16, 1), 255, np.uint8), "target": np.zeros((2, 16, 16, 1), np.uint8),
            "guide_tables": np.full((2, 2, 8, 8), 51, np.int32)}
    with to_devices(iter([host]), mesh, ["compressed", "target", "guide_tables"], on_device.make_prepare(config)) as it:
        batch = next(it)
    assert batch["compressed"].dtype == np.float32 and float(batch["compressed"].max()) == 1.0
    np.testing.assert_allclose(np.asarray(batch["qmap"]), 0.2)  # 51 / 255
    assert batch["qmap"].shape == (2, 16, 16, 1)
    assert batch["compressed"].sharding.spec == sharding.batch_sharding(mesh).spec
