"""ConvTranspose2x2 computes what flax's nn.ConvTranspose((2, 2), strides=(2, 2)) does, from the same parameters."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qgac_jax.models import create_model, init_params
from qgac_jax.models.conv_transpose import ConvTranspose2x2


def _random(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


@pytest.mark.parametrize("shape, features", [((2, 5, 7, 6), 4), ((1, 1, 1, 3), 8), ((3, 4, 2, 16), 16)])
def test_outputs_and_gradients_equal_flax(shape, features):
    x = _random(shape, 5)
    ours, theirs = ConvTranspose2x2(features), nn.ConvTranspose(features, (2, 2), strides=(2, 2))
    params = theirs.init(jax.random.key(3), x)
    ours_params = ours.init(jax.random.key(3), x)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), params, ours_params))  # same init
    params = jax.tree.map(lambda p: p + _random(p.shape, 6), params)  # a non-zero bias too
    out = ours.apply(params, x)
    assert out.shape == (shape[0], 2 * shape[1], 2 * shape[2], features)
    np.testing.assert_allclose(out, theirs.apply(params, x), rtol=1e-5, atol=1e-5)

    def loss(module):
        return lambda p, x: jnp.sum(jnp.tanh(module.apply(p, x)) * jnp.arange(out.size).reshape(out.shape) / out.size)

    ours_g = jax.jit(jax.grad(loss(ours), (0, 1)))(params, x)
    theirs_g = jax.grad(loss(theirs), (0, 1))(params, x)
    for a, b in zip(jax.tree.leaves(ours_g), jax.tree.leaves(theirs_g)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_output_tile_takes_the_flipped_kernel_tap():
    """Pixel (2i + a, 2j + b) is x[i, j] @ K[1 - a, 1 - b]: checked on one-hot kernels."""
    x = _random((1, 2, 3, 2), 7)
    for a in range(2):
        for b in range(2):
            kernel = jnp.zeros((2, 2, 2, 1)).at[1 - a, 1 - b, :, 0].set(jnp.array([1.0, 10.0]))
            out = ConvTranspose2x2(1).apply({"params": {"kernel": kernel, "bias": jnp.zeros(1)}}, x)[0, ..., 0]
            np.testing.assert_allclose(out[a::2, b::2], x[0, ..., 0] + 10 * x[0, ..., 1], rtol=1e-6)
            rest = out.at[a::2, b::2].set(0.0)
            assert float(jnp.abs(rest).max()) == 0.0


def test_bfloat16_compute_keeps_float32_params():
    x = _random((1, 3, 3, 4), 8)
    variables = ConvTranspose2x2(2, dtype=jnp.bfloat16).init(jax.random.key(0), x)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables))
    assert ConvTranspose2x2(2, dtype=jnp.bfloat16).apply(variables, x).dtype == jnp.bfloat16


def test_model_upsampling_keeps_flax_parameter_names_and_shapes():
    """Exports made with nn.ConvTranspose (the shipped models) load unchanged."""
    params = init_params(create_model("tiny", channels=3), jax.random.key(0))
    assert set(params["up0"]) == {"kernel", "bias"}
    assert params["up0"]["kernel"].shape == (2, 2, 32, 16)
    assert params["up1"]["kernel"].shape == (2, 2, 64, 32)
