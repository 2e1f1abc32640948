import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qgac_jax import models
from qgac_jax.models import QGABlock, create_model, init_params, qmap_channels


def _inputs(key, b, h, w, c, k):
    ky, kq = jax.random.split(key)
    return jax.random.uniform(ky, (b, h, w, c)), jax.random.uniform(kq, (b, h, w, k))


@pytest.mark.parametrize("k", [1, 2])
def test_qga_attention_is_one_channel_in_unit_interval(k):
    f, q = _inputs(jax.random.key(0), 2, 12, 10, 16, k)
    f = f * 50 - 25  # large features push the sigmoid to its limits
    block = QGABlock(hidden=8)
    variables = block.init(jax.random.key(1), f, q)
    (out, att), state = block.apply(variables, f, q, mutable=["intermediates"])
    assert att.shape == (2, 12, 10, 1)
    assert float(att.min()) >= 0.0 and float(att.max()) <= 1.0
    np.testing.assert_allclose(out, att * f, rtol=1e-6)
    np.testing.assert_array_equal(state["intermediates"]["attention"][0], att)
    assert ("qmap_proj" in variables["params"]) == (k > 1)


def test_qga_returns_exactly_a_times_f_when_attention_is_forced():
    f, q = _inputs(jax.random.key(2), 1, 8, 8, 4, 1)
    block = QGABlock(hidden=4)
    params = flax.core.unfreeze(block.init(jax.random.key(3), f, q))["params"]
    # Zero the last conv's kernel: the logit is its bias everywhere, so A = sigmoid(bias).
    params["att_conv2"]["kernel"] = jnp.zeros_like(params["att_conv2"]["kernel"])
    for bias, expect in [(0.0, 0.5), (40.0, 1.0), (-40.0, 0.0)]:
        params["att_conv2"]["bias"] = jnp.full((1,), bias)
        out, att = block.apply({"params": params}, f, q)
        np.testing.assert_allclose(att, expect, atol=1e-6)
        np.testing.assert_allclose(out, expect * f, atol=1e-6)


def test_qga_attention_depends_on_the_qmap():
    f, q = _inputs(jax.random.key(4), 1, 8, 8, 4, 1)
    block = QGABlock(hidden=4)
    variables = block.init(jax.random.key(5), f, q)
    _, a1 = block.apply(variables, f, q)
    _, a2 = block.apply(variables, f, q * 0.1)
    assert float(jnp.abs(a1 - a2).max()) > 1e-4


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(37, 53), (1, 1), (8, 8), (513, 771)])
def test_any_size_returns_input_shape_and_identity_with_zero_head(channels, size):
    model = create_model("tiny", channels=channels)
    params = init_params(model, jax.random.key(0))
    y, q = _inputs(jax.random.key(1), 1, *size, channels, qmap_channels(channels))
    out = jax.jit(model.apply)({"params": params}, y, q)
    assert out.shape == y.shape and out.dtype == jnp.float32
    np.testing.assert_array_equal(out, y)  # zero head: X = Y + 0


def test_nonzero_head_changes_output_and_attention_is_sown():
    model = create_model("tiny", channels=3, zero_head=False, upsample="pixel_shuffle", fuse="add")
    params = init_params(model, jax.random.key(0))
    y, q = _inputs(jax.random.key(1), 2, 24, 40, 3, 2)
    out, state = model.apply({"params": params}, y, q, mutable=["intermediates"])
    assert out.shape == y.shape
    assert float(jnp.abs(out - y).mean()) > 1e-3
    att = state["intermediates"]
    assert att["qga0"]["attention"][0].shape == (2, 12, 20, 1)
    assert att["qga1"]["attention"][0].shape == (2, 6, 10, 1)


def test_output_is_per_image_and_translation_consistent_in_the_interior():
    # Batch elements must not leak into each other.
    model = create_model("tiny", channels=1, zero_head=False)
    params = init_params(model, jax.random.key(0))
    y, q = _inputs(jax.random.key(1), 2, 16, 16, 1, 1)
    both = model.apply({"params": params}, y, q)
    first = model.apply({"params": params}, y[:1], q[:1])
    np.testing.assert_allclose(both[:1], first, atol=1e-6)


def test_bfloat16_compute_keeps_float32_params_and_output():
    model = create_model("tiny", channels=3, dtype="bfloat16", zero_head=False)
    params = init_params(model, jax.random.key(0))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
    y, q = _inputs(jax.random.key(1), 1, 16, 16, 3, 2)
    out = model.apply({"params": params}, y, q)
    ref = create_model("tiny", channels=3, zero_head=False).apply({"params": params}, y, q)
    assert out.dtype == jnp.float32
    assert float(jnp.abs(out - ref).max()) < 0.05


def test_gradients_reach_every_parameter():
    model = create_model("tiny", channels=3, zero_head=False)
    params = init_params(model, jax.random.key(0))
    y, q = _inputs(jax.random.key(1), 1, 16, 16, 3, 2)
    grads = jax.grad(lambda p: jnp.mean((model.apply({"params": p}, y, q) - 0.5) ** 2))(params)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert float(jnp.abs(g).max()) > 0, jax.tree_util.keystr(path)


def test_model_stats_match_a_hand_count():
    model = create_model("tiny", channels=1, widths=(8, 16), blocks=1, bottleneck_blocks=0, qga_hidden=4)
    stats = models.model_stats(model, 64, 64)
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    expected = (
        conv(3, 2, 8)  # stem (image + Q-map)
        + 2 * conv(3, 8, 8)  # enc0 res block
        + conv(3, 8, 16)  # down0
        + conv(3, 16, 4) + conv(3, 4, 1)  # qga0 (K = 1: broadcast, no projection)
        + conv(1, 32, 16)  # fuse1
        + 2 * conv(3, 16, 16)  # dec1 res block
        + conv(2, 16, 8)  # up0 (transposed)
        + conv(1, 16, 8)  # fuse0
        + 2 * conv(3, 8, 8)  # dec0 res block
        + conv(3, 8, 1)  # head
    )
    assert stats["params"] == expected
    # Multiply-adds of the full-resolution 3x3 convs alone: a lower bound on FLOPs.
    full_res_macs = 9 * (2 * 8 + 4 * 8 * 8 + 8 * 1) + 16 * 8
    assert stats["gflops_per_mp"] > 2 * full_res_macs / 1e3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(variant="huge"), "unknown model variant"),
        (dict(channels=2), "channels"),
        (dict(dtype="float16"), "dtype"),
        (dict(widths_typo=(1,)), "unknown model options"),
    ],
)
def test_bad_model_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        create_model(**kwargs)


def test_wrong_input_shapes_raise():
    model = create_model("tiny", channels=3)
    params = init_params(model, jax.random.key(0))
    with pytest.raises(ValueError, match="expected image"):
        model.apply({"params": params}, jnp.zeros((1, 8, 8, 1)), jnp.zeros((1, 8, 8, 2)))
    with pytest.raises(ValueError, match="Q-map"):
        model.apply({"params": params}, jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 4, 8, 2)))


TOY_ARCHITECTURE = '''"""A toy restoration architecture: one hidden convolution over image and Q-map, a residual."""
from typing import Any, ClassVar, Tuple

import flax.linen as nn
import jax.numpy as jnp

VARIANTS = {"one": dict(features=8)}


class Toy(nn.Module):
    channels: int = 3
    features: int = 8
    dtype: Any = jnp.float32
    int8: str = ""
    KEEP_FLOAT: ClassVar[Tuple[str, ...]] = ()

    @nn.compact
    def __call__(self, y, qmap):
        h = nn.relu(nn.Conv(self.features, (3, 3), dtype=self.dtype)(jnp.concatenate([y, qmap], -1)))
        return y + nn.Conv(self.channels, (3, 3), dtype=self.dtype)(h)


MODEL = Toy
'''


def test_a_new_architecture_is_one_module_and_one_registry_line(tmp_path, monkeypatch):
    """Trained by the train step, exported, and restoring a JPEG, with nothing else touched."""
    import importlib
    import io
    import os

    from PIL import Image

    from qgac_jax.models import exports
    from qgac_jax.restoring.restorer import Restorer
    from qgac_jax.training import config as config_lib
    from qgac_jax.training import sections
    from qgac_jax.training import step as train_step

    (tmp_path / "toy_architecture.py").write_text(TOY_ARCHITECTURE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(models.ARCHITECTURES, "toy", importlib.import_module("toy_architecture"))  # the one line

    config = config_lib.load(os.path.join(config_lib.ROOT, "configs", "smoke.py"))
    config.model.architecture, config.model.variant, config.model.overrides = "toy", "one", {}
    typed = sections.training(config)
    parts = train_step.make_parts(typed)
    assert type(parts.model).__name__ == "Toy" and parts.model.features == 8
    state = train_step.init_state(parts, jax.random.key(0))
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(8, 32, 32, 3)).astype(np.float32)
    batch = {"compressed": jnp.asarray(x), "target": jnp.asarray(x), "qmap": jnp.ones((8, 32, 32, 2))}
    state, metrics = jax.jit(train_step.make_step(parts, adversarial=False))(state, batch, {})
    assert np.isfinite(float(metrics["loss"]))

    exports.export_params(tmp_path / "export", jax.device_get(state.ema_params), train_step.model_config(typed))
    restorer = Restorer.from_checkpoint(tmp_path / "export", estimator=None)
    assert type(restorer.model).__name__ == "Toy"
    buf = io.BytesIO()
    Image.fromarray((x[0] * 255).astype(np.uint8)).save(buf, format="JPEG", quality=30)
    out = restorer.restore(buf.getvalue())
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    with pytest.raises(ValueError, match="unknown model architecture 'nope'"):
        models.create_model("one", architecture="nope")
