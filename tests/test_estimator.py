"""The quality estimator: grid detection on real double JPEGs, shapes, its training run, and guide tables."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data

from qgac_jax.evaluation import protocol as eval_protocol
from qgac_jax.models import quality_estimate
from qgac_jax.codecs import jpeg
from qgac_jax.models import create_model_from_config, dummy_inputs
from qgac_jax.models.estimator import QualityEstimator, align_to_grid, grid_phase, luma


@pytest.mark.parametrize("case, want", [("40", (0, 0)), ("10:90:3", (5, 5)), ("15:80:6", (2, 2)), ("20:75", (0, 0))])
def test_grid_phase_finds_the_coarser_saves_grid(case, want):
    photo = skimage.data.astronaut()[:256, :256]
    decoded, _, _, _ = eval_protocol.Case.parse(case).apply(photo)
    y = luma(jnp.asarray(decoded[None], jnp.float32) / 255.0)[..., 0]
    assert tuple(int(v) for v in np.asarray(grid_phase(y))[0]) == want


def test_align_to_grid_crops_where_the_grid_starts():
    y = jnp.arange(2 * 24 * 40, dtype=jnp.float32).reshape(2, 24, 40, 1)
    out = align_to_grid(y, jnp.array([[0, 0], [3, 5]]))
    assert out.shape == (2, 16, 32, 1)
    np.testing.assert_array_equal(out[1], y[1, 3:19, 5:37])
    np.testing.assert_array_equal(out[0], y[0, :16, :32])


def test_estimator_shapes_and_range():
    model = QualityEstimator(stem=4, widths=(8, 8), hidden=8)
    image, table = dummy_inputs(model, 40, 56)
    assert image.shape == (1, 40, 56, 1)  # sides 8 more than a multiple of 16
    params = model.init(jax.random.key(0), image, table)["params"]
    out = model.apply({"params": params}, jnp.ones((3, 40, 56, 3)) * 0.5, jnp.full((3, 8, 8), 20.0))
    assert out.shape == (3,) and bool(jnp.all((out >= 1) & (out <= 100)))
    with pytest.raises(ValueError, match="8 more than a multiple of 16"):
        model.apply({"params": params}, jnp.ones((1, 32, 32, 1)), jnp.ones((1, 8, 8)))
    assert isinstance(create_model_from_config({"kind": "estimator", "dtype": "float32",
                                                "overrides": {"widths": [8, 8]}}), QualityEstimator)


def test_crops_cover_the_image_on_the_grid_and_tiny_images_work():
    origins = quality_estimate.crop_origins(321, 481, (136, 136))
    assert len(origins) == 16 and all(y % 8 == 0 and x % 8 == 0 for y, x in origins)
    assert max(y for y, _ in origins) + 136 <= 321 and max(x for _, x in origins) + 136 <= 481
    model = QualityEstimator(stem=4, widths=(8, 8), hidden=8)
    params = model.init(jax.random.key(0), *dummy_inputs(model, 40, 40))["params"]
    estimator = quality_estimate.QualityEstimate.of_model(model, params)
    for h, w in ((1, 1), (20, 30), (300, 200)):
        value = estimator(np.full((h, w, 3), 0.5, np.float32), jpeg.JpegQuantization.from_quality(50))
        assert 1.0 <= value <= 100.0


def test_short_estimator_training_writes_an_export_restore_loads(tmp_path):
    from qgac_jax.training import estimation as training

    config = importlib.import_module("configs.estimator").get_config("steps=3")
    config.data.sources = ("builtin",)
    config.data.batch_size, config.data.pipeline, config.data.workers = 4, "pillow", 1
    config.model.overrides = dict(stem=4, widths=(8, 8), hidden=8)
    config.eval.source, config.eval.qualities, config.eval.double, config.eval.max_images = \
        "builtin", (30,), ("20:75:4",), 1
    config.train.log_every, config.train.eval_every, config.train.checkpoint_every = 1, 3, 3
    state, metrics = training.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 3 and np.isfinite(metrics["loss"]) and "eval_mae_20:75:4" in metrics
    estimator = quality_estimate.QualityEstimate.from_checkpoint(tmp_path / "export")
    assert 1.0 <= estimator(np.full((64, 64, 3), 0.5, np.float32), jpeg.JpegQuantization.from_quality(30)) <= 100.0
    with pytest.raises(ValueError, match="quality estimator, not a restoration model"):
        from qgac_jax import Restorer

        Restorer.from_checkpoint(tmp_path / "export")


def test_grid_tolerance_prefers_a_shifted_grid_that_is_nearly_as_strong():
    y = np.cumsum(np.where(np.arange(64) % 8 == 3, 1.00, 0.0)[None, None, :] * np.ones((1, 64, 1)), axis=2) \
        + np.cumsum(np.where(np.arange(64) % 8 == 0, 1.04, 0.0)[None, None, :] * np.ones((1, 64, 1)), axis=2)
    y = jnp.asarray(y, jnp.float32)  # column steps of 1.04 at the file's grid, 1.00 at a grid shifted by 3
    assert int(grid_phase(y)[0, 1]) == 0  # argmax: the file's grid
    assert int(grid_phase(y, 0.05)[0, 1]) == 3  # within 5%: the shifted one
    assert int(grid_phase(y, 0.05)[0, 0]) == 0  # rows: no blocking at all, the file's grid
