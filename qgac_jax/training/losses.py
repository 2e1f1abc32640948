"""Losses: L1, VGG perceptual (squared feature distance) and adversarial.

Pure functions of arrays: the train step composes them with the weights of
the config's loss section (loss.l1 * L1 + loss.perceptual * VGG + loss.adversarial * GAN; the warm-up
before loss.gan_start_step is loss.l1 * L1 alone: training/step.py).
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import optax

from qgac_jax.models import vgg


def l1(pred: jax.Array, target: jax.Array) -> jax.Array:
    return jnp.mean(jnp.abs(pred - target))


def perceptual(vgg_model: vgg.VGG, vgg_params, pred, target, layer_weights: Sequence[float]) -> jax.Array:
    """Sum over layers of weight * mean squared distance of VGG features (the model preprocesses)."""
    both = vgg_model.apply({"params": vgg_params}, jnp.concatenate([pred, target], 0))
    total = 0.0
    for name, w in zip(vgg_model.layers, layer_weights):
        fp, ft = jnp.split(both[name], 2, axis=0)
        total = total + w * jnp.mean((fp - jax.lax.stop_gradient(ft)) ** 2)
    return total


def generator_adversarial(fake_logits: jax.Array, kind: str) -> jax.Array:
    if kind == "nonsaturating":
        return jnp.mean(optax.sigmoid_binary_cross_entropy(fake_logits, jnp.ones_like(fake_logits)))
    if kind == "hinge":
        return -jnp.mean(fake_logits)
    raise ValueError(f"unknown adversarial loss {kind!r}; use 'nonsaturating' or 'hinge'")


def discriminator_adversarial(real_logits: jax.Array, fake_logits: jax.Array, kind: str) -> jax.Array:
    if kind == "nonsaturating":
        return jnp.mean(optax.sigmoid_binary_cross_entropy(real_logits, jnp.ones_like(real_logits))) + jnp.mean(
            optax.sigmoid_binary_cross_entropy(fake_logits, jnp.zeros_like(fake_logits)))
    if kind == "hinge":
        return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))
    raise ValueError(f"unknown adversarial loss {kind!r}; use 'nonsaturating' or 'hinge'")


def batch_psnr(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean PSNR over a [0, 1] batch (clipped prediction): a cheap training signal."""
    mse = jnp.mean((jnp.clip(pred, 0, 1) - target) ** 2, axis=(1, 2, 3))
    return jnp.mean(-10.0 * jnp.log10(jnp.maximum(mse, 1e-10)))

