"""The self-ensemble: 8 flips and transposes, each undone and told the Q-map of its own grid."""

import numpy as np

from qgac_jax import Restorer
from qgac_jax.codecs import jpeg


class _Spy:
    """A stand-in network: records the Q-maps it is given and returns its input (an identity)."""

    channels = 3

    def __init__(self):
        self.qmaps = []

    def apply(self, variables, y, q):
        self.qmaps.append(np.asarray(q))
        return y


def test_ensemble_undoes_every_move_and_tells_each_pass_its_own_grid():
    spy = _Spy()
    r = Restorer(spy, {}, tile=1024)
    r._network = lambda y, q: spy.apply(None, y, q)  # no jit: the spy must see every call
    luma = np.arange(1, 65, dtype=np.int32).reshape(8, 8)  # asymmetric: a transpose shows
    quantization = jpeg.JpegQuantization(luma, luma + 100, "4:2:2")
    pixels = np.random.default_rng(0).random((37, 50, 3)).astype(np.float32)
    out = r.restore_compressed(pixels, quantization, "file", ensemble=True)
    np.testing.assert_allclose(out, pixels, atol=1e-6)  # every flip and transpose undone
    assert len(spy.qmaps) == 8
    for q in spy.qmaps:
        steps = np.round(q[0, ..., 0] * 255).astype(int)
        straight, transposed = np.array_equal(steps[:8, :8], luma), np.array_equal(steps[:8, :8], luma.T)
        assert straight != transposed  # each pass sees a table tiled on its own grid, never a flipped one
        if transposed:  # 4:2:2 transposed is 4:4:0: chroma blocks 16 rows by 8 columns
            chroma = np.round(q[0, ..., 1] * 255).astype(int)
            assert chroma.shape[0] % 16 == 0 and chroma[0, 0] == chroma[1, 0] != chroma[0, 1]
    assert sum(np.array_equal(np.round(q[0, :8, :8, 0] * 255), luma.T) for q in spy.qmaps) == 4


def test_a_webps_segments_move_with_its_macroblocks_and_its_4x4_frequencies_stay_put():
    from qgac_jax.codecs import webp

    rows, cols = 3, 4
    segments = np.array([[0, 1, 2, 3], [1, 1, 0, 2], [3, 0, 0, 1]])  # no flip or transpose maps it onto itself
    quantization = webp.WebpQuantization(16 * cols, 16 * rows, 60, (0, 0, 0, 0, 0), (20, 50, 80, 110),
                                         segments.astype(np.uint8), np.zeros((rows, cols), bool))
    spy = _Spy()
    r = Restorer(spy, {}, tile=1024)
    r._network = lambda y, q: spy.apply(None, y, q)
    pixels = np.random.default_rng(0).random((16 * rows - 5, 16 * cols - 3, 3)).astype(np.float32)
    out = r.restore_compressed(pixels, quantization, "file", ensemble=True)
    np.testing.assert_allclose(out, pixels, atol=1e-6)
    assert len(spy.qmaps) == 8
    ac = {s: quantization.steps(s)["y_ac"] / 2 for s in range(4)}  # orthonormal-equivalent AC steps
    moved = set()
    for q in spy.qmaps:
        steps = q[0, ..., 0] * 255
        # each 4x4 block's DC at its top left, AC elsewhere: the frequency layout never flips
        assert (steps[0::4, 0::4] != steps[1::4, 1::4]).all()
        per_mb = steps[1::16, 1::16]  # an AC position of each macroblock: its segment's step
        segment = np.vectorize({v: k for k, v in ac.items()}.get)(np.round(per_mb, 4))
        moved.add(segment.tobytes() + bytes(segment.shape))
        candidates = [m for t in (segments, segments.T) for m in (t, t[::-1], t[:, ::-1], t[::-1, ::-1])]
        assert any(np.array_equal(segment, m) for m in candidates)
    assert len(moved) == 8  # eight different placements of the segments: each pass got its own
