"""Training's CPU compiler options: what they are, when they apply, and that they change speed, not results."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qgac_jax.training import compiler_options
from qgac_jax.models import create_model, init_params, qmap_channels


def test_cpu_training_turns_ynnpack_off():
    assert compiler_options.for_training("cpu") == {"xla_cpu_experimental_ynn_fusion_type": ""}
    assert compiler_options.for_training() == compiler_options.for_training(jax.default_backend())


@pytest.mark.parametrize("platform", ["gpu", "tpu", "cuda", "rocm"])
def test_accelerators_keep_xla_defaults(platform):
    assert compiler_options.for_training(platform) is None


def test_a_users_xla_flags_setting_wins(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2 --xla_cpu_experimental_ynn_fusion_type=")
    assert compiler_options.for_training("cpu") is None


def test_an_option_the_compiler_rejects_gives_none(monkeypatch):
    monkeypatch.setattr(compiler_options, "EIGEN_CONVOLUTIONS", {"xla_cpu_experimental_ynn_fusion_type": "no such"})
    assert compiler_options.for_training("cpu") is None


@pytest.mark.slow
def test_train_step_compiles_without_ynnpack_and_computes_the_same_update():
    model = create_model("tiny", channels=3, zero_head=False)
    params = init_params(model, jax.random.key(0))
    rng = np.random.default_rng(0)
    y = rng.random((2, 32, 32, 3), np.float32)
    q = rng.random((2, 32, 32, qmap_channels(3)), np.float32)
    x = np.clip(y + 0.05 * rng.standard_normal(y.shape).astype(np.float32), 0, 1)

    def loss_and_grads(p):
        return jax.value_and_grad(lambda p: jnp.mean(jnp.abs(model.apply({"params": p}, y, q) - x)))(p)

    options = compiler_options.for_training("cpu")
    ours = jax.jit(loss_and_grads, compiler_options=options).lower(params).compile()
    default = jax.jit(loss_and_grads).lower(params).compile()
    assert "__ynn_fusion" in default.as_text()  # XLA CPU's default hands convolutions to YNNPACK...
    assert "__ynn_fusion" not in ours.as_text()  # ...training's options do not
    (l1, g1), (l2, g2) = ours(params), default(params)
    np.testing.assert_allclose(l1, l2, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):  # the same gradients, to float32 summation order
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * float(jnp.abs(b).max()))
