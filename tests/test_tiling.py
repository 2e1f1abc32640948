"""Tiles: on the 8x8 grid, covering the image, blended back without seams."""

import numpy as np

from qgac_jax.tiling import restore_tiled, tile_count, tile_origins


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
