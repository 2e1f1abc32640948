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
