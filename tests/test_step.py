"""training/step.py: L1 first (the warm-up is L1 alone), then L1 + VGG + GAN, in one jitted step."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qgac_jax.training import config as config_lib
from qgac_jax.training import losses, sections
from qgac_jax.training import step as train_step


def _parts():
    config = config_lib.load(os.path.join(config_lib.ROOT, "configs", "smoke.py") + ":gan")
    config.loss.allow_random_vgg = True  # the VGG's weights do not matter here, only whether its term is added
    config.loss.vgg_layers, config.loss.vgg_layer_weights = ("block1_conv2",), (1.0,)
    config.model.overrides = dict(config.model.overrides, zero_head=False)  # a non-trivial prediction
    typed = sections.training(config)
    parts = train_step.make_parts(typed)
    vgg_params = parts.vgg.init(jax.random.key(1), jnp.zeros((1, 32, 32, 3)))["params"]
    return typed, parts, vgg_params


def _batch():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, (8, 32, 32, 3)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.05, x.shape), 0, 1).astype(np.float32)
    q = np.full((8, 32, 32, 2), 0.2, np.float32)
    return {"compressed": jnp.asarray(y), "target": jnp.asarray(x), "qmap": jnp.asarray(q)}


def test_the_warm_up_is_l1_alone_and_the_gan_stage_adds_vgg_and_gan():
    config, parts, vgg_params = _parts()
    assert config.loss.perceptual > 0 and config.loss.adversarial > 0 and config.loss.gan_start_step > 0
    state = train_step.init_state(parts, jax.random.key(0))
    batch = _batch()

    _, warm = jax.jit(train_step.make_step(parts, adversarial=False))(state, batch, vgg_params)
    assert "perceptual" not in warm and "g_adv" not in warm and "d_loss" not in warm
    np.testing.assert_allclose(float(warm["loss"]), config.loss.l1 * float(warm["l1"]), rtol=1e-6)

    _, gan = jax.jit(train_step.make_step(parts, adversarial=True))(state, batch, vgg_params)
    assert float(gan["perceptual"]) > 0 and "g_adv" in gan and "d_loss" in gan
    expected = (config.loss.l1 * float(gan["l1"]) + config.loss.perceptual * float(gan["perceptual"])
                + config.loss.adversarial * float(gan["g_adv"]))
    np.testing.assert_allclose(float(gan["loss"]), expected, rtol=1e-5)
    assert float(gan["l1"]) == pytest.approx(float(warm["l1"]), rel=1e-6)  # the same generator, the same L1


def test_the_perceptual_term_is_the_vgg_feature_distance():
    _, parts, vgg_params = _parts()
    a = jnp.asarray(np.random.default_rng(1).uniform(size=(1, 32, 32, 3)), jnp.float32)
    assert float(losses.perceptual(parts.vgg, vgg_params, a, a, (1.0,))) == 0.0
    assert float(losses.perceptual(parts.vgg, vgg_params, a, 1 - a, (1.0,))) > 0.0
