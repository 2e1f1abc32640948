"""Tiles: on the 8x8 grid, covering the image, blended back without seams."""

import numpy as np

from qgac_jax.models.tiling import restore_tiled, tile_count, tile_origins


def test_tile_origins_cover_the_image_on_the_8x8_grid():
    starts = tile_origins(304, 64, 16)
    assert starts[0] == 0 and starts[-1] == 304 - 64 and all(s % 8 == 0 for s in starts)
    assert all(b - a <= 64 - 16 for a, b in zip(starts, starts[1:]))
    assert tile_origins(40, 64, 16) == [0]


def test_blending_an_identity_network_gives_the_image_back_and_counts_its_tiles():
    pixels = np.random.default_rng(0).random((150, 99, 3)).astype(np.float32)
    qmap = np.zeros((150, 99, 2), np.float32)
    calls = []

    def identity(y, q):
        calls.append(y.shape)
        return y

    seen = []
    out = restore_tiled(identity, pixels, qmap, tile=64, overlap=16, tile_batch=3, progress=seen.append)
    np.testing.assert_allclose(out, pixels, atol=1e-6)
    assert sum(seen) == tile_count(150, 99, 64, 16) == 3 * 2  # 152 rows: 0, 48, 88; 104 columns: 0, 40
    assert set(calls) == {(3, 64, 64, 3)}  # one batch shape: the last group is padded


def _position_dependent(y, q):
    """A network whose output depends on the tile's content non-linearly, so a misplaced tile shows."""
    return np.sin(7 * y) * 0.5 + q[..., :1]


def test_tiles_in_parallel_blend_to_the_serial_result_and_run_concurrently():
    import threading
    import time

    rng = np.random.default_rng(1)
    pixels = rng.random((203, 171, 3)).astype(np.float32)
    qmap = rng.random((203, 171, 2)).astype(np.float32)
    serial = restore_tiled(_position_dependent, pixels, qmap, tile=64, overlap=16)
    active, peak, lock = [0], [0], threading.Lock()

    def worker(y, q):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)  # long enough for the other worker to start
        with lock:
            active[0] -= 1
        return _position_dependent(y, q)

    seen = []
    parallel = restore_tiled(None, pixels, qmap, tile=64, overlap=16, progress=seen.append, workers=3,
                             worker_apply=worker)
    np.testing.assert_array_equal(parallel, serial)
    assert peak[0] == 3 and sum(seen) == tile_count(203, 171, 64, 16)

    def never(y, q):
        raise AssertionError("fewer tile groups than workers: the all-cores network runs them")

    small = restore_tiled(_position_dependent, pixels[:120, :100], qmap[:120, :100], tile=64, overlap=16,
                          tile_batch=4, workers=3, worker_apply=never)
    np.testing.assert_array_equal(small, restore_tiled(_position_dependent, pixels[:120, :100], qmap[:120, :100],
                                                       tile=64, overlap=16, tile_batch=4))


def test_an_error_in_a_worker_stops_the_image_without_running_the_queued_tiles():
    import pytest

    calls = []

    def failing(y, q):
        calls.append(1)
        raise RuntimeError("boom")

    pixels = np.zeros((400, 400, 3), np.float32)
    with pytest.raises(RuntimeError, match="boom"):
        restore_tiled(None, pixels, np.zeros((400, 400, 2), np.float32), tile=64, overlap=16, workers=2,
                      worker_apply=failing)
    assert len(calls) <= 4 < tile_count(400, 400, 64, 16)  # at most 2 * workers submitted
