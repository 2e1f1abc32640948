import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qgac_jax.training import losses
from qgac_jax.models import vgg


def test_l1_and_batch_psnr_values():
    a = jnp.zeros((2, 4, 4, 3))
    b = jnp.full((2, 4, 4, 3), 0.1)
    assert float(losses.l1(a, b)) == pytest.approx(0.1)
    assert float(losses.batch_psnr(b, a)) == pytest.approx(20.0, abs=1e-4)  # mse 0.01


def test_adversarial_losses_have_their_textbook_values():
    pos, neg = jnp.full((3,), 2.0), jnp.full((3,), -2.0)
    softplus = lambda x: float(np.log1p(np.exp(x)))  # noqa: E731
    assert float(losses.generator_adversarial(pos, "nonsaturating")) == pytest.approx(softplus(-2.0), rel=1e-5)
    assert float(losses.discriminator_adversarial(pos, neg, "nonsaturating")) == pytest.approx(
        2 * softplus(-2.0), rel=1e-5
    )
    assert float(losses.generator_adversarial(pos, "hinge")) == pytest.approx(-2.0)
    assert float(losses.discriminator_adversarial(pos, neg, "hinge")) == 0.0
    assert float(losses.discriminator_adversarial(neg, pos, "hinge")) == pytest.approx(6.0)
    with pytest.raises(ValueError, match="unknown adversarial loss"):
        losses.generator_adversarial(pos, "wgan")


def test_perceptual_is_zero_for_equal_images_and_grows_with_distortion():
    model = vgg.VGG(arch="vgg16", layers=("block1_conv2", "block2_conv2"))
    params = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 3)))["params"]
    x = jax.random.uniform(jax.random.key(1), (2, 16, 16, 3))
    small = x + 0.01 * jax.random.normal(jax.random.key(2), x.shape)
    large = x + 0.1 * jax.random.normal(jax.random.key(2), x.shape)
    f = lambda p: float(losses.perceptual(model, params, p, x, (1.0, 0.5)))  # noqa: E731
    assert f(x) == 0.0
    assert 0 < f(small) < f(large)
    # Gradients flow to the prediction only.
    g = jax.grad(lambda p: losses.perceptual(model, params, p, x, (1.0, 0.5)))(small)
    assert float(jnp.abs(g).max()) > 0
