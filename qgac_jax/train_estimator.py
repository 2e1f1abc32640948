"""Training entry point of the quality estimator: config -> train_and_evaluate(config, workdir).

    python -m qgac_jax.train_estimator --config=configs/estimator.py --workdir=workdirs/estimator

The estimator (models/estimator.py) learns the effective IJG quality of
single and double JPEG patches from the same stream as the restorer
(`data.p_double` > 0), with an L1 loss in quality units. Resume, SIGTERM,
multi-host and the export work as in `qgac_jax.train`; the export holds the
EMA parameters and {'kind': 'estimator', ...}, which `Restorer` loads.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Any, Dict, Sequence, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from qgac_jax import checkpointing, compiler_options, data, evaluation, loop, sharding, train_step
from qgac_jax.data import on_device, tf_pipeline
from qgac_jax.models import create_model_from_config, init_params
from qgac_jax.models.estimator import grid_phase, luma
from qgac_jax.prefetch import to_devices
from qgac_jax.quality import QualityEstimate

log = logging.getLogger("qgac_jax.train_estimator")
STEP_KEYS = ("compressed", "tables", "effective_quality", "grid_shift")


@flax.struct.dataclass
class EstimatorState:
    step: jax.Array
    params: Any
    opt: Any
    ema_params: Any


def model_config(config) -> Dict:
    return {"kind": "estimator", "dtype": config.model.dtype, "overrides": dict(config.model.get("overrides", {}))}


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
    for ex in evaluation.eval_examples(source, cases, grey, max_images):
        case = ex["case"]
        truth = case.effective_quality
        errors.setdefault(case.name, []).append(estimate(ex["compressed"][0], ex["quantization"]) - truth)
    out = {}
    for name, e in errors.items():
        out[f"mae_{name}"] = float(np.mean(np.abs(e)))
    every = np.abs(np.concatenate([np.asarray(e, np.float64) for e in errors.values()]))
    out["mae"], out["within5"] = float(every.mean()), float(np.mean(every <= 5))
    return out


def train_and_evaluate(config, workdir: str) -> Tuple[EstimatorState, Dict[str, float]]:
    """Trains (or resumes) the estimator in `workdir`; returns the final state and the last metrics."""
    for source in config.data.sources:
        data.check_source(source)
    data_config = data.DataConfig.from_config(config.data)
    if data_config.pipeline == "tf.data":
        tf_pipeline.import_tf()
    mesh = sharding.make_mesh()
    sharding.check_batch(data_config.batch_size, mesh)
    repl = sharding.param_sharding(mesh)
    model = create_model_from_config(model_config(config))
    total = int(config.train.steps)
    tx = optax.chain(optax.clip_by_global_norm(config.optim.clip),
                     optax.adamw(train_step.schedule(config.optim, total), weight_decay=config.optim.weight_decay))
    params = init_params(model, jax.random.key(config.train.seed), 32, 32)
    state = jax.device_put(EstimatorState(jnp.zeros((), jnp.int32), params, tx.init(params),
                                          jax.tree.map(jnp.copy, params)), repl)
    ckpt = checkpointing.Checkpointer(workdir, keep=config.train.keep_checkpoints)
    restored = ckpt.restore_latest(state)
    if restored is not None:
        state = restored[0]
    elif config.train.init_from:  # continue from an export (a new schedule)
        _, params, _ = checkpointing.load_export(config.train.init_from)
        params = jax.device_put(params, repl)
        state = state.replace(params=params, ema_params=jax.tree.map(jnp.copy, params), opt=jax.device_put(tx.init(params), repl))
        log.info("estimator initialised from %s", config.train.init_from)
    start = int(jax.device_get(state.step))
    step_fn = jax.jit(make_step(model, tx, config.optim.ema_decay, config.train.p_true_shift), in_shardings=(repl, sharding.batch_sharding(mesh)),
                      out_shardings=(repl, repl), donate_argnums=0,
                      compiler_options=compiler_options.for_training(mesh.devices.flat[0].platform))
    writer = loop.SummaryWriter(os.path.join(workdir, "tensorboard"))
    preemption = loop.Preemption()
    meta = {"config": config.to_json_best_effort() if hasattr(config, "to_json_best_effort") else str(config)}
    metrics: Dict[str, float] = {}
    t0 = time.perf_counter()
    batches = to_devices(data.train_batches(data_config, start_step=start, compact=True), mesh, STEP_KEYS,
                         on_device.make_prepare(data_config))
    try:
        with batches:
            for step in range(start, total):
                with jax.transfer_guard("disallow"):
                    state, step_metrics = step_fn(state, next(batches))
                done = step + 1
                if loop.itstime(done, config.train.log_every, total):
                    metrics = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
                    if not all(math.isfinite(v) for v in metrics.values()):
                        raise ValueError(f"non-finite estimator loss at step {done}: {metrics}")
                    rate = (done - start) / (time.perf_counter() - t0)
                    log.info("step %d/%d  L1 %.2f quality units  within 5: %.2f  %.2f steps/s", done, total,
                             metrics["loss"], metrics["within5"], rate)
                    writer.write(done, {f"train/{k}": v for k, v in metrics.items()})
                elif done % 32 == 0:
                    jax.block_until_ready(state.step)
                if loop.itstime(done, config.train.eval_every, total) and config.eval.source:
                    estimate = QualityEstimate(model, jax.device_get(state.ema_params))
                    result = evaluate(estimate, config.eval.source, list(config.eval.qualities) + list(config.eval.double),
                                      config.data.grey, config.eval.max_images)
                    log.info("eval step %d: MAE %.2f, within 5: %.2f  %s", done, result["mae"], result["within5"],
                             {k: round(v, 1) for k, v in result.items() if k.startswith("mae_")})
                    writer.write(done, {f"eval/{k}": v for k, v in result.items()})
                    metrics |= {f"eval_{k}": v for k, v in result.items()}
                stop = preemption.agreed() if loop.itstime(done, config.train.log_every, total) else False
                if loop.itstime(done, config.train.checkpoint_every, total) or stop:
                    ckpt.save(done, state, meta | {"step": done}, force=stop or done == total)
                if stop:
                    log.warning("preempted: saved step %d, exiting", done)
                    break
            # Finished or preempted: the export holds the latest EMA parameters (a resumed run replaces it).
            checkpointing.export_params(os.path.join(workdir, "export"), jax.device_get(state.ema_params),
                                        model_config(config))
    finally:
        ckpt.wait()
        ckpt.close()
        writer.close()
        preemption.restore()
    return state, metrics


def main(argv):
    del argv
    from absl import flags
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("qgac_jax").setLevel(logging.INFO)
    sharding.initialize_distributed()
    try:
        train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
    except ValueError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    from qgac_jax.config_path import config_root_on_path

    config_root_on_path(sys.argv)
    config_flags.DEFINE_config_file("config", None, "Estimator config file (configs/estimator.py).", lock_config=True)
    flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard and export go here.")
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
