"""Restoring large images in overlapping tiles, so memory stays bounded.

Tiles are aligned to the JPEG's 8x8 grid (the image is padded to multiples
of 8) and blended with linear ramps over their overlaps. Along each axis the
tile is shrunk (`fitted`) to the smallest multiple of 8 that covers the image
with as many tiles as the asked size needs: a 4000-pixel side in tiles of
512 is cut into 9 tiles of 480, not 8 of 512 and a ninth that mostly
repeats its neighbour. Every tile of an image has one shape, so a jitted
network compiles once per image size. A tiled
restore matches an untiled one to over 50 dB (tests/test_tiling.py).
"""

from __future__ import annotations

import collections
import concurrent.futures
from typing import Callable, Optional

import numpy as np

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32
Apply = Callable[[np.ndarray, np.ndarray], np.ndarray]  # [T, h, w, C], [T, h, w, K] -> [T, h, w, C]


def check(tile: int, overlap: int) -> None:
    if tile % 8 or tile < 16 or overlap % 8 or not 0 <= overlap < tile // 2:
        raise ValueError(f"tile ({tile}) must be a multiple of 8 >= 16 and overlap ({overlap}) a multiple of 8 "
                         f"below half the tile")


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D blending weights of one tile: linear ramps over the overlaps it shares."""
    w = np.ones(n, np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if not at_start:
            w[:overlap] = ramp
        if not at_end:
            w[n - overlap:] = ramp[::-1]
    return w


def tile_origins(size: int, tile: int, overlap: int):
    """Tile starts along one axis: multiples of 8, the last tile flush with the end."""
    if size <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, size - tile, stride))
    return starts + [size - tile]


def fitted(size: int, tile: int, overlap: int) -> int:
    """The tile side along an axis of `size` (a multiple of 8): as many tiles as `tile` needs, each just large
    enough to cover `size` with `overlap` shared, so the last tile does not recompute a large strip."""
    if size <= tile:
        return size
    n = len(tile_origins(size, tile, overlap))
    side = -(-(size + (n - 1) * overlap) // n)
    return min(tile, max(side + (-side) % 8, 2 * overlap + 8))


def tile_count(height: int, width: int, tile: int, overlap: int) -> int:
    """How many tiles an image of this size is restored in."""
    h, w = height + (-height) % 8, width + (-width) % 8
    th, tw = fitted(h, tile, overlap), fitted(w, tile, overlap)
    return len(tile_origins(h, th, overlap)) * len(tile_origins(w, tw, overlap))


def restore_tiled(apply: Apply, pixels: np.ndarray, qmap: np.ndarray, tile: int, overlap: int, tile_batch: int = 1,
                  progress: Optional[Callable[[int], None]] = None, workers: int = 1,
                  worker_apply: Optional[Apply] = None) -> np.ndarray:
    """[H, W, C] float in [0, 1] + [H, W, K] Q-map -> restored [H, W, C] float32.

    `apply` runs the network on `tile_batch` tiles at a time; `progress(n)` is called after every n tiles.
    With `workers` > 1 and at least that many tile groups, `worker_apply` (safe to call from several threads
    at once) runs `workers` groups at a time; the blend is the same, in the same order.
    """
    h, w = pixels.shape[:2]
    # Pad to multiples of 8 so every tile has one shape and starts on the JPEG grid.
    ph, pw = (-h) % 8, (-w) % 8
    if ph or pw:  # (a copy of a 12-megapixel photo and its Q-map is a quarter of a GB: none when not needed)
        pixels = np.pad(pixels, ((0, ph), (0, pw), (0, 0)), mode="edge")
        qmap = np.pad(qmap, ((0, ph), (0, pw), (0, 0)), mode="edge")
    H, W = pixels.shape[:2]
    th, tw = fitted(H, tile, overlap), fitted(W, tile, overlap)
    ys, xs = tile_origins(H, th, overlap), tile_origins(W, tw, overlap)
    if len(ys) == 1 and len(xs) == 1:
        out = np.asarray(apply(pixels[None], qmap[None])[0])[:h, :w]
        if progress is not None:
            progress(1)
        return out
    out = np.zeros(pixels.shape, np.float32)
    weight = np.zeros((H, W, 1), np.float32)
    tiles = [(i, j) for i in range(len(ys)) for j in range(len(xs))]
    groups = [tiles[first:first + tile_batch] for first in range(0, len(tiles), tile_batch)]

    def run(group, network):
        padded = group + [group[-1]] * (tile_batch - len(group))  # one batch shape: one compilation
        y_in = np.stack([pixels[ys[i]:ys[i] + th, xs[j]:xs[j] + tw] for i, j in padded])  # [T, th, tw, C]
        q_in = np.stack([qmap[ys[i]:ys[i] + th, xs[j]:xs[j] + tw] for i, j in padded])
        return np.asarray(network(y_in, q_in))

    if workers > 1 and worker_apply is not None and len(groups) >= workers:
        results = _in_order(lambda g: run(g, worker_apply), groups, workers)
    else:
        results = (run(g, apply) for g in groups)
    _blend(zip(groups, results), out, weight, ys, xs, th, tw, overlap, progress)
    return (out / weight)[:h, :w]


def _in_order(fn, items, workers: int):
    """fn over items in `workers` threads, yielded in order, at most 2 * workers in flight; on an exception
    (Ctrl-C included) the queued calls are cancelled and only the running ones are waited for."""
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        pending: collections.deque = collections.deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()


def _blend(results, out, weight, ys, xs, th, tw, overlap, progress) -> None:
    """Adds each restored tile group, ramp-weighted, into out [H, W, C] and weight [H, W, 1], in order."""
    for group, restored in results:
        for (i, j), tile_out in zip(group, restored):
            wy = _ramp(th, overlap, i == 0, i == len(ys) - 1)
            wx = _ramp(tw, overlap, j == 0, j == len(xs) - 1)
            wt = (wy[:, None] * wx[None, :])[..., None]
            out[ys[i]:ys[i] + th, xs[j]:xs[j] + tw] += tile_out * wt
            weight[ys[i]:ys[i] + th, xs[j]:xs[j] + tw] += wt
        if progress is not None:
            progress(len(group))
