"""Train state and the jitted train step (generator + discriminator + EMA).

`make_step` returns a pure function (state, batch, vgg_params) -> (state,
metrics); `jit_step` compiles it for a mesh (batch sharded, state replicated,
the CPU compiler options of `compiler_options`). L1 first, as QGAC trains:
the warm-up (steps before loss.gan_start_step) is L1 alone; from then on the
step adds loss.perceptual * VGG and loss.adversarial * GAN. The two stages
are two compilations of the same function (`adversarial` is static),
selected by step in the train loop.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional

import flax
import jax
import jax.numpy as jnp
import optax

from qgac_jax.training import compiler_options, losses, sharding, sections
from qgac_jax.models import create_model_from_config, dummy_inputs, int8
from qgac_jax.models.discriminator import PatchDiscriminator
from qgac_jax.models import vgg as vgg_lib


@flax.struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar
    g_params: Any
    g_opt: Any
    ema_params: Any  # exponential moving average of g_params: evaluated and exported
    d_params: Any
    d_opt: Any
    d_stats: Any  # spectral-norm power-iteration vectors ({} without spectral norm)


@dataclasses.dataclass(frozen=True)
class TrainParts:
    """The static parts of the train step, built once from the config: networks, optimisers, loss weights."""

    model: Any
    discriminator: Any
    g_tx: optax.GradientTransformation
    d_tx: optax.GradientTransformation
    vgg: Optional[vgg_lib.VGG]
    loss: sections.LossSection
    ema_decay: float


def schedule(optim, total_steps: int) -> optax.Schedule:
    """Linear warm-up, then cosine decay to `final_lr_ratio` of the peak."""
    warmup = min(int(optim.warmup_steps), max(total_steps - 1, 0))
    return optax.warmup_cosine_decay_schedule(
        0.0, optim.lr, warmup, max(total_steps, warmup + 1), end_value=optim.lr * optim.final_lr_ratio)


def model_config(config: sections.TrainingConfig) -> Dict:
    """The model part of a training config as the plain dict exports store (and inference reads)."""
    model = config.model
    return {"architecture": model.architecture, "variant": model.variant, "channels": model.channels,
            "dtype": model.dtype, "overrides": dict(model.overrides)}


def make_parts(config: sections.TrainingConfig) -> TrainParts:
    model = create_model_from_config(model_config(config))
    discriminator = PatchDiscriminator(widths=config.discriminator.widths,
                                       spectral_norm=config.discriminator.spectral_norm,
                                       dtype=model.dtype)
    optim = config.optim
    total = config.train.steps

    def tx(lr):  # plain Adam without weight decay: the optimiser state of earlier checkpoints keeps its shape
        adam = (optax.adamw(lr, b1=optim.b1, b2=optim.b2, weight_decay=optim.weight_decay) if optim.weight_decay
                else optax.adam(lr, b1=optim.b1, b2=optim.b2))
        return optax.chain(optax.clip_by_global_norm(optim.clip), adam)

    g_tx = tx(schedule(optim, total))
    if model.int8:  # the int8 ranges at their own pace: the weights are trained already, the ranges are not
        range_schedule = schedule(dataclasses.replace(optim, lr=optim.lr * optim.range_lr_scale), total)
        weights = optax.set_to_zero() if optim.frozen_weights else g_tx  # (frozen: the float model loses nothing)
        g_tx = optax.multi_transform({"weights": weights, "ranges": tx(range_schedule)}, _range_labels)
    vgg = None
    if config.loss.perceptual > 0:
        vgg = vgg_lib.VGG(arch=config.loss.vgg, layers=config.loss.vgg_layers, dtype=model.dtype,
                          preprocessing=vgg_lib.preprocessing_of(config.loss.vgg_weights))
    return TrainParts(model, discriminator, g_tx, tx(optax.constant_schedule(optim.d_lr)), vgg,
                      config.loss, optim.ema_decay)


def _range_labels(params):
    return jax.tree_util.tree_map_with_path(lambda path, _: "ranges" if int8.is_range(path) else "weights", params)


def init_state(parts: TrainParts, key: jax.Array) -> TrainState:
    """The step-0 state from one jitted call: run eagerly, each initialiser would compile on its own
    (hundreds of small compilations, several times slower)."""

    def init(key):
        kg, kd = jax.random.split(key)
        y, q = dummy_inputs(parts.model, 32, 32)
        g_params = parts.model.init(kg, y, q)["params"]
        d_vars = parts.discriminator.init(kd, y)
        d_params = d_vars["params"]
        return TrainState(step=jnp.zeros((), jnp.int32), g_params=g_params, g_opt=parts.g_tx.init(g_params),
                          ema_params=jax.tree.map(jnp.copy, g_params), d_params=d_params,
                          d_opt=parts.d_tx.init(d_params), d_stats=d_vars.get("batch_stats", {}))

    return jax.jit(init)(key)


def _d_vars(params, stats):
    return {"params": params, **({"batch_stats": stats} if stats else {})}


def make_step(parts: TrainParts, adversarial: bool) -> Callable:
    """(state, batch, vgg_params) -> (state, metrics); batch = {'compressed', 'target', 'qmap'}."""
    cfg = parts.loss
    ema_decay = parts.ema_decay
    use_adv = adversarial and cfg.adversarial > 0

    def step(state: TrainState, batch: Dict[str, jax.Array], vgg_params):
        y, x, q = batch["compressed"], batch["target"], batch["qmap"]
        metrics = {}
        d_params, d_opt, d_stats = state.d_params, state.d_opt, state.d_stats
        if use_adv:
            fake = jax.lax.stop_gradient(parts.model.apply({"params": state.g_params}, y, q))

            def d_loss_fn(p):
                # Real and fake in one call: one power-iteration update of the spectral norms.
                logits, new_vars = parts.discriminator.apply(
                    _d_vars(p, d_stats), jnp.concatenate([x, fake], 0), update_stats=True, mutable=["batch_stats"])
                real_logits, fake_logits = jnp.split(logits, 2, axis=0)
                loss = losses.discriminator_adversarial(real_logits, fake_logits, cfg.gan)
                return loss, new_vars.get("batch_stats", {})

            (d_loss, d_stats), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(d_params)
            d_updates, d_opt = parts.d_tx.update(d_grads, d_opt, d_params)
            d_params = optax.apply_updates(d_params, d_updates)
            metrics["d_loss"] = d_loss

        def g_loss_fn(p):
            pred = parts.model.apply({"params": p}, y, q)
            terms = {"l1": losses.l1(pred, x)}
            total = cfg.l1 * terms["l1"]
            if adversarial and parts.vgg is not None:  # (the warm-up is L1 alone)
                terms["perceptual"] = losses.perceptual(parts.vgg, vgg_params, pred, x, cfg.vgg_layer_weights)
                total = total + cfg.perceptual * terms["perceptual"]
            if use_adv:
                terms["g_adv"] = losses.generator_adversarial(
                    parts.discriminator.apply(_d_vars(d_params, d_stats), pred), cfg.gan)
                total = total + cfg.adversarial * terms["g_adv"]
            return total, (terms, pred)

        (loss, (terms, pred)), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
        updates, g_opt = parts.g_tx.update(grads, state.g_opt, state.g_params)
        g_params = optax.apply_updates(state.g_params, updates)
        ema = jax.tree.map(lambda e, p: ema_decay * e + (1 - ema_decay) * p, state.ema_params, g_params)
        metrics.update(terms)
        metrics.update(loss=loss, psnr=losses.batch_psnr(pred, x), jpeg_psnr=losses.batch_psnr(y, x),
                       grad_norm=optax.tree.norm(grads))
        new_state = state.replace(step=state.step + 1, g_params=g_params, g_opt=g_opt, ema_params=ema,
                                  d_params=d_params, d_opt=d_opt, d_stats=d_stats)
        return new_state, metrics

    return step


def jit_step(parts: TrainParts, adversarial: bool, mesh: jax.sharding.Mesh, donate: bool = True) -> Callable:
    """`make_step` jitted over `mesh`: batch split on 'data', state and VGG weights replicated."""
    repl = sharding.param_sharding(mesh)
    return jax.jit(make_step(parts, adversarial), in_shardings=(repl, sharding.batch_sharding(mesh), repl),
                   out_shardings=(repl, repl), donate_argnums=0 if donate else (),
                   compiler_options=compiler_options.for_training(mesh.devices.flat[0].platform))
