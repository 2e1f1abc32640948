"""Training the quality estimator: a config -> train_and_evaluate(config, workdir) (`qgac_jax.train_estimator`).

The estimator (models/estimator.py) learns the effective IJG quality of
single and double JPEG patches from the same stream as the restorer
(`data.p_double` > 0), with an L1 loss in quality units. Resume, SIGTERM,
multi-host and the export work as in the restorer's training; the export
holds the EMA parameters and {'kind': 'estimator', ...}, which `Restorer`
loads.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Sequence, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from qgac_jax.data import on_device, tf_pipeline
from qgac_jax.evaluation import protocol as eval_protocol
from qgac_jax.models import create_model_from_config, exports, init_params
from qgac_jax.models.estimator import grid_phase, luma
from qgac_jax.models.quality_estimate import QualityEstimate
from qgac_jax.training import checkpoints, compiler_options, sections, sharding
from qgac_jax.training import loop as train_loop
from qgac_jax.training import step as train_step
from qgac_jax.training.prefetch import to_devices

log = logging.getLogger("qgac_jax.train_estimator")
STEP_KEYS = ("compressed", "tables", "effective_quality", "grid_shift")


@flax.struct.dataclass
class EstimatorState:
    step: jax.Array
    params: Any
    opt: Any
    ema_params: Any


def model_config(config: sections.TrainingConfig) -> Dict:
    return {"kind": "estimator", "dtype": config.model.dtype, "overrides": dict(config.model.overrides),
            "codecs": list(config.data.codecs)}  # the files it learned to read (QualityEstimate.codecs)


def make_step(model, tx: optax.GradientTransformation, ema_decay: float, p_true_shift: float):
    """(state, batch) -> (state, metrics): L1 between predicted and effective quality.

    The first `p_true_shift` of the batch is aligned to the grid its coarser save really used, the rest
    to the grid `grid_phase` detects in the patch: the estimator learns the clean signal restore sees
    (it detects the grid on the whole photo, far more surely than on a patch) and to live with misses.
    """

    def step(state: EstimatorState, batch: Dict[str, jax.Array]):
        target = batch["effective_quality"].astype(jnp.float32)
        images = batch["compressed"]
        known = (jnp.arange(images.shape[0]) < p_true_shift * images.shape[0])[:, None]
        shift = jnp.where(known, batch["grid_shift"], grid_phase(luma(images)[..., 0]))

        def loss_fn(p):
            pred = model.apply({"params": p}, images, batch["tables"][:, 0], shift)
            return jnp.mean(jnp.abs(pred - target)), pred

        (loss, pred), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt = tx.update(grads, state.opt, state.params)
        params = optax.apply_updates(state.params, updates)
        ema = jax.tree.map(lambda e, p: ema_decay * e + (1 - ema_decay) * p, state.ema_params, params)
        metrics = {"loss": loss, "within5": jnp.mean((jnp.abs(pred - target) <= 5).astype(jnp.float32)),
                   "grad_norm": optax.tree.norm(grads)}
        return state.replace(step=state.step + 1, params=params, opt=opt, ema_params=ema), metrics

    return step


def evaluate(estimate: QualityEstimate, source: str, cases: Sequence, grey: bool, max_images: int) -> Dict[str, float]:
    """Mean absolute error and share within 5 of the effective quality, per case and overall."""
    errors: Dict[str, list] = {}
    for ex in eval_protocol.eval_examples(source, cases, grey, max_images):
        case = ex["case"]
        truth = case.effective_quality
        errors.setdefault(case.name, []).append(estimate(ex["compressed"], ex["quantization"]) - truth)
    out = {}
    for name, e in errors.items():
        out[f"mae_{name}"] = float(np.mean(np.abs(e)))
    every = np.abs(np.concatenate([np.asarray(e, np.float64) for e in errors.values()]))
    out["mae"], out["within5"] = float(every.mean()), float(np.mean(every <= 5))
    return out


def train_and_evaluate(config, workdir: str, batches: train_loop.BatchSource = train_loop.default_batches
                       ) -> Tuple[EstimatorState, Dict[str, float]]:
    """Trains (or resumes) the estimator in `workdir`; returns the final state and the last metrics.

    `batches(data_config, start_step)` gives the host batches (tests hand in their own).
    """
    config = sections.training(config)  # typed once (the command line already did: then it is returned as is)
    sections.validate_training(config, losses=False)
    schedule = train_loop.Schedule.of(config.train)
    data_config = config.data
    if data_config.pipeline == "tf.data":
        tf_pipeline.import_tf()
    mesh = sharding.make_mesh()
    sharding.check_batch(data_config.batch_size, mesh)
    repl = sharding.param_sharding(mesh)
    model = create_model_from_config(model_config(config))
    tx = optax.chain(optax.clip_by_global_norm(config.optim.clip),
                     optax.adamw(train_step.schedule(config.optim, schedule.steps), b1=config.optim.b1,
                                 b2=config.optim.b2, weight_decay=config.optim.weight_decay))
    params = init_params(model, jax.random.key(config.train.seed), 32, 32)
    fresh = jax.device_put(EstimatorState(jnp.zeros((), jnp.int32), params, tx.init(params),
                                          jax.tree.map(jnp.copy, params)), repl)

    def start_from(state, params):  # continue from an export, with a new schedule
        params = jax.device_put(params, repl)
        return state.replace(params=params, ema_params=jax.tree.map(jnp.copy, params),
                             opt=jax.device_put(tx.init(params), repl))

    ckpt = checkpoints.Checkpointer(workdir, keep=config.train.keep_checkpoints)
    state = train_loop.initial_state(fresh, ckpt, config.train.init_from, start_from, workdir)
    step_fn = jax.jit(make_step(model, tx, config.optim.ema_decay, config.estimator.p_true_shift),
                      in_shardings=(repl, sharding.batch_sharding(mesh)), out_shardings=(repl, repl),
                      donate_argnums=0, compiler_options=compiler_options.for_training(mesh.devices.flat[0].platform))
    cases = list(config.eval.qualities) + list(config.eval.double)

    def evaluate_state(state, done: int):
        estimate = QualityEstimate.of_model(model, jax.device_get(state.ema_params))
        result = evaluate(estimate, config.eval.source, cases, config.data.grey, config.eval.max_images)
        log.info("eval step %d: MAE %.2f, within 5: %.2f  %s", done, result["mae"], result["within5"],
                 {k: round(v, 1) for k, v in result.items() if k.startswith("mae_")})
        return {f"eval_{k}": v for k, v in result.items()}, {}

    def describe(done: int, m: Dict[str, float], rate: float) -> str:
        return (f"step {done}/{schedule.steps}  L1 {m['loss']:.2f} quality units  within 5: {m['within5']:.2f}  "
                f"{rate:.2f} steps/s")

    hooks = train_loop.Hooks(
        step=lambda i, state, batch: step_fn(state, batch), describe=describe,
        evaluate=evaluate_state if config.eval.source else None,
        export=lambda state: exports.export_params(os.path.join(workdir, "export"),
                                                         jax.device_get(state.ema_params), model_config(config)))
    start = int(jax.device_get(state.step))
    device_batches = to_devices(batches(data_config, start), mesh, STEP_KEYS, on_device.make_prepare(data_config))
    meta = {"config": config.to_json()}
    return train_loop.run(state, device_batches, hooks, schedule, ckpt, workdir, meta)
