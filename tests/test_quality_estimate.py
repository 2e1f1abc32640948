"""models/quality_estimate.py and models/grid.py: the estimate in ONNX Runtime agrees with JAX's, and the
grid is found alike in numpy and JAX."""

import numpy as np
import pytest
import skimage.data

from qgac_jax.evaluation import protocol as eval_protocol
from qgac_jax.graphs import sessions
from qgac_jax.models import grid, quality_estimate, shipped

jnp = pytest.importorskip("jax.numpy", reason="the JAX estimator is what the ONNX one is checked against")


@pytest.mark.parametrize("case", ["10", "40", "85", "20:75", "10:90:3", "15:80:6"])
def test_the_grid_is_found_alike_in_numpy_and_jax(case):
    decoded, _, _, _ = eval_protocol.Case.parse(case).apply(skimage.data.astronaut()[:200, :232])
    y = grid.luma(np.asarray(decoded[None], np.float32) / 255.0)[..., 0]
    for tolerance in (0.0, 0.05):
        found = grid.grid_phase(y, tolerance)
        assert isinstance(found, np.ndarray)  # (numpy in, numpy out: no JAX on this path)
        np.testing.assert_array_equal(found, np.asarray(grid.grid_phase(jnp.asarray(y), tolerance)))


@pytest.mark.parametrize("name", ["estimator", "estimator_codecs"])
def test_the_shipped_estimators_run_in_onnx_runtime_as_in_jax(name, tmp_path, monkeypatch):
    path = shipped.ROOT / name
    if not (path / "model").is_dir():
        pytest.skip(f"this installation ships no {name}")
    monkeypatch.setenv("QGAC_ONNX_CACHE", str(tmp_path / "cache"))  # (the shipped graph: nothing converted)
    in_jax = quality_estimate.QualityEstimate.from_checkpoint(path)
    in_onnx = sessions.estimate(path)
    assert in_onnx.codecs == in_jax.codecs and in_onnx.engine == "ONNX Runtime"
    assert not (tmp_path / "cache").exists()
    photo = skimage.data.coffee()[:300, :420]
    estimates = []
    for case in ("10", "30", "75", "20:75", "15:80:6"):
        decoded, _, told, _ = eval_protocol.Case.parse(case).apply(photo)
        pixels = np.asarray(decoded, np.float32) / 255.0
        a, b = in_jax(pixels, told), in_onnx(pixels, told)
        assert abs(a - b) < 0.05, (case, a, b)
        estimates.append(a)
    tiny = np.full((20, 30, 3), 0.5, np.float32)  # (padded to one crop)
    assert abs(in_jax(tiny, told) - in_onnx(tiny, told)) < 0.05
    assert estimates[0] < estimates[1] < estimates[2] and estimates[3] < 40  # (and the estimates mean something)
