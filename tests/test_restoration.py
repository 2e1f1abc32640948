"""Training for int8 (configs/int8.py): the ranges' own learning rate, and where the fine-tune starts."""

import importlib

import jax
import numpy as np
import pytest

from qgac_jax.models import exports, int8
from qgac_jax.models import shipped
from qgac_jax.training import step as train_step
from qgac_jax.training import loop, restoration, sections


def _config(arg=""):
    return importlib.import_module("configs.int8").get_config(arg)


def test_int8_ranges_learn_at_their_own_rate():
    parts = train_step.make_parts(sections.training(_config()))
    params = {"conv": {"kernel": np.ones((3, 3), np.float32), "output": {int8.RANGE: np.array([-1.0, 1.0])}}}
    grads = jax.tree.map(np.ones_like, params)
    opt = parts.g_tx.init(params)
    for _ in range(60):  # past the warm-up
        updates, opt = parts.g_tx.update(grads, opt, params)
    weight, ranges = np.abs(updates["conv"]["kernel"]).mean(), np.abs(updates["conv"]["output"][int8.RANGE]).mean()
    assert ranges / weight == pytest.approx(_config().optim.range_lr_scale, rel=1e-3) and weight > 0
    frozen = train_step.make_parts(sections.training(_config("frozen")))  # the ranges alone
    opt = frozen.g_tx.init(params)
    for _ in range(60):
        updates, opt = frozen.g_tx.update(grads, opt, params)
    assert np.all(updates["conv"]["kernel"] == 0) and np.abs(updates["conv"]["output"][int8.RANGE]).min() > 0


@pytest.mark.slow
def test_the_int8_fine_tune_starts_from_the_shipped_model_with_calibrated_ranges_and_exports_them(tmp_path):
    """configs/int8.py at learning rate 0: the export is the shipped model's weights plus the ranges calibrated
    on the run's first batches, under a config that rebuilds the int8 simulation."""
    config = _config("steps=2")
    config.optim.lr, config.train.eval_every, config.eval.max_images = 0.0, 2, 1
    config.data.codecs, config.data.codec_weights = ("jpeg",), (1.0,)
    config.data.sources, config.eval.source = ("builtin",), "builtin"
    config.data.batch_size, config.data.patch_size, config.eval.qualities = 2, 48, (10,)  # calibration on 32 crops
    state, result = restoration.train_and_evaluate(config, str(tmp_path))
    assert int(state.step) == 2 and result["model_psnr"] > result["jpeg_psnr"]
    assert exports.read_model_config(tmp_path / "export")["overrides"] == {"int8": "fake"}
    _, shipped_params, _ = exports.load_restoration_export(shipped.default_checkpoint(3))
    model, params, _ = exports.load_restoration_export(tmp_path / "export")
    assert model.int8 == ""  # restores as a float network too
    pairs = restoration.calibration_pairs(sections.training(config).data, loop.default_batches)
    assert len(pairs) == restoration.CALIBRATION_BATCHES * config.data.batch_size
    expected = int8.ranges(int8.calibrate(model, shipped_params, pairs, spread=restoration.CALIBRATION_SPREAD))
    learned = int8.ranges(params)
    assert set(learned) == set(expected) and len(learned) == 46
    for name, value in learned.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-5)
    for x, y in zip(jax.tree.leaves(int8.float_params(params)), jax.tree.leaves(shipped_params)):
        np.testing.assert_array_equal(x, y)
