"""Training entry point: config -> train_and_evaluate(config, workdir).

    python -m qgac_jax.train --config=configs/base.py --workdir=DIR [--config.train.steps=...]

Restarting with the same workdir resumes from the latest checkpoint with the
same data stream. SIGTERM (TPU preemption) saves and exits 0. A non-finite
loss stops the run with a message and leaves the last good checkpoint.
Several processes: set up by jax on TPU VMs / SLURM, or by
QGAC_COORDINATOR, QGAC_NUM_PROCESSES, QGAC_PROCESS_ID (see sharding.py).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Dict, Tuple

import jax
import jax.numpy as jnp

from qgac_jax import checkpointing, data, evaluation, loop, sharding, train_step
from qgac_jax.data import on_device, tf_pipeline
from qgac_jax.models import vgg as vgg_lib
from qgac_jax.prefetch import to_devices
from qgac_jax.restorer import Restorer

log = logging.getLogger("qgac_jax.train")
SYNC_EVERY = 32  # wait on a result at least this often (CPU collectives time out otherwise)
# What travels to the devices (compact: uint8 images, guide tables); on_device.make_prepare makes the
# step's 'compressed', 'target' (float) and 'qmap' of them there. Nothing else is transferred.
STEP_KEYS = ("compressed", "target", "guide_tables")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; the last saved checkpoint is the last good state."""


def validate_config(config) -> None:
    """Start-up checks that would otherwise fail hours into a run (data first: it is the usual culprit)."""
    sources = (config.data.sources,) if isinstance(config.data.sources, str) else config.data.sources
    for source in sources:
        data.check_source(source)
    for key in ("log_every", "checkpoint_every", "eval_every", "steps"):
        if int(config.train[key]) < 1:
            raise ValueError(f"train.{key} must be at least 1, got {config.train[key]}")
    if int(config.train.get("profile_steps", 0)) < 0:
        raise ValueError(f"train.profile_steps must be 0 (off) or more, got {config.train.profile_steps}")
    if config.loss.perceptual > 0 and not config.loss.vgg_weights and not config.loss.allow_random_vgg:
        raise ValueError(
            "loss.perceptual > 0 needs VGG weights: make them with "
            f"`python -m qgac_jax.tools.convert_vgg --arch {config.loss.vgg} --out {config.loss.vgg}.npz` "
            f"and pass --config.loss.vgg_weights={config.loss.vgg}.npz (or set loss.perceptual=0)")
    if config.loss.vgg_weights and not os.path.exists(config.loss.vgg_weights) and "://" not in config.loss.vgg_weights:
        raise ValueError(f"loss.vgg_weights file {config.loss.vgg_weights} does not exist")
    if len(config.loss.vgg_layers) != len(config.loss.vgg_layer_weights):
        raise ValueError("loss.vgg_layers and loss.vgg_layer_weights must have the same length")
    if config.loss.gan not in ("nonsaturating", "hinge"):
        raise ValueError(f"loss.gan must be 'nonsaturating' or 'hinge', got {config.loss.gan!r}")
    if config.eval.source:
        data.source_files(config.eval.source, False)  # raises when missing or empty
    if config.model.channels != (1 if config.data.grey else 3):
        raise ValueError(f"model.channels={config.model.channels} does not match data.grey={config.data.grey}")


def warn_if_accelerator_job_on_cpu(config) -> None:
    """A config sized for accelerators (bf16, or a large variant) that landed on CPU is most likely a set-up slip."""
    if jax.default_backend() == "cpu" and (config.model.dtype == "bfloat16" or config.model.variant == "base"):
        log.warning("training %s (%s) on CPU: this config is sized for a GPU/TPU, where JAX found none "
                    "(install jax for your accelerator: see the README's set-up section)",
                    config.model.variant, config.model.dtype)


def load_vgg_params(trainer, config, key):
    if trainer.vgg is None:
        return {}
    if config.loss.vgg_weights:
        return vgg_lib.load_params(config.loss.vgg_weights, config.loss.vgg)
    log.warning("perceptual loss with RANDOM VGG weights (loss.allow_random_vgg): for tests only")
    return trainer.vgg.init(key, jnp.zeros((1, 32, 32, 3)))["params"]


def _initial_state(config, trainer, ckpt, repl, workdir):
    """The latest checkpoint's state, else one initialised (from `train.init_from` when set)."""
    state = jax.device_put(train_step.init_state(trainer, jax.random.key(config.train.seed)), repl)
    restored = ckpt.restore_latest(state)
    if restored is not None:
        state, _ = restored
        log.info("resumed from step %d in %s", int(jax.device_get(state.step)), workdir)
    elif config.train.init_from:  # e.g. the GAN stage starting from a PSNR model's export
        _, params, _ = checkpointing.load_export(config.train.init_from)
        params = jax.device_put(params, repl)
        state = state.replace(g_params=params, ema_params=jax.tree.map(jnp.copy, params),
                              g_opt=jax.device_put(trainer.g_tx.init(params), repl))
        log.info("generator initialised from %s", config.train.init_from)
    return state


def _evaluate(config, restorer: Restorer, state, done: int, writer, ckpt, meta) -> Dict[str, float]:
    # The EMA parameters go to one device once per evaluation, not once per tile.
    restorer.params = jax.device_put(jax.device_get(state.ema_params), jax.local_devices()[0])
    result = evaluation.evaluate_images(restorer.restore_batch, config.eval.source or "builtin",
                                        config.eval.qualities, config.data.grey, config.eval.max_images)
    metrics, triplet = evaluation.flat_metrics(result), result["example"]
    if jax.process_index() == 0:
        log.info("eval step %d: JPEG %.3f dB -> model %.3f dB (PSNR-B %.3f -> %.3f)", done, metrics["jpeg_psnr"],
                 metrics["model_psnr"], metrics["jpeg_psnr_b"], metrics["model_psnr_b"])
    images = dict(zip(("eval/compressed", "eval/restored", "eval/clean"), triplet)) if triplet else {}
    writer.write(done, {f"eval/{k}": v for k, v in metrics.items()}, images)
    ckpt.save_best(done, state, meta | {"step": done}, metrics["model_psnr"])
    return metrics


def train_and_evaluate(config, workdir: str) -> Tuple[train_step.TrainState, Dict[str, float]]:
    """Trains (or resumes) in `workdir`; returns the final state and the last logged and evaluated metrics."""
    validate_config(config)
    warn_if_accelerator_job_on_cpu(config)
    data_config = data.DataConfig.from_config(config.data)
    if data_config.pipeline == "tf.data":
        tf_pipeline.import_tf()  # TF sees no accelerator, before anything else touches it
    mesh = sharding.make_mesh()
    sharding.check_batch(data_config.batch_size, mesh)
    trainer = train_step.make_trainer(config)
    repl = sharding.param_sharding(mesh)
    ckpt = checkpointing.Checkpointer(workdir, keep=config.train.keep_checkpoints)
    state = _initial_state(config, trainer, ckpt, repl, workdir)
    start, total = int(jax.device_get(state.step)), int(config.train.steps)
    vgg_params = jax.device_put(load_vgg_params(trainer, config, jax.random.key(config.train.seed + 1)), repl)
    steps = {adversarial: train_step.jit_step(trainer, adversarial, mesh) for adversarial in (False, True)}
    restorer = Restorer(trainer.model, None)  # evaluation, tiled like inference; params set at each eval
    writer = loop.SummaryWriter(os.path.join(workdir, "tensorboard"))
    preemption = loop.Preemption()
    profile_steps = int(config.train.get("profile_steps", 0))
    profile_from = start + 2 if profile_steps else -1  # after compilation, which the first steps pay
    tracing = False
    meta = {"config": config.to_json_best_effort() if hasattr(config, "to_json_best_effort") else str(config)}
    train_cfg = config.train
    metrics: Dict[str, float] = {}
    last_eval: Dict[str, float] = {}
    t0, t0_step = time.perf_counter(), start
    batches = to_devices(data.train_batches(data_config, start_step=start, compact=True), mesh, STEP_KEYS,
                         on_device.make_prepare(data_config))
    try:
        with batches:
            for step in range(start, total):
                if step == profile_from:
                    jax.profiler.start_trace(os.path.join(workdir, "profile"))
                    tracing = True
                with jax.profiler.StepTraceAnnotation("train", step_num=step):
                    batch = next(batches)
                    with jax.transfer_guard("disallow"):  # every transfer in the loop is an explicit one
                        state, step_metrics = steps[step >= config.loss.gan_start_step](state, batch, vgg_params)
                done = step + 1
                if tracing and (done == profile_from + profile_steps or done == total):
                    jax.block_until_ready(state.step)
                    jax.profiler.stop_trace()
                    tracing = False
                    log.info("profile of steps %d..%d written to %s/profile", profile_from + 1, done, workdir)
                if loop.itstime(done, train_cfg.log_every, total):
                    metrics = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
                    if not all(math.isfinite(v) for v in metrics.values()):
                        raise NonFiniteLossError(
                            f"non-finite loss at step {done}: {metrics}. The last good checkpoint in "
                            f"{workdir}/checkpoints is step {ckpt.latest_step()}; lower optim.lr or check the data.")
                    rate = (done - t0_step) / (time.perf_counter() - t0)
                    if jax.process_index() == 0:
                        eta = time.strftime("%H:%M:%S", time.gmtime((total - done) / max(rate, 1e-9)))
                        log.info("step %d/%d  loss %.5f  l1 %.5f  psnr %.2f (jpeg %.2f)  %.2f steps/s  ETA %s",
                                 done, total, metrics["loss"], metrics["l1"], metrics["psnr"],
                                 metrics["jpeg_psnr"], rate, eta)
                    writer.write(done, {f"train/{k}": v for k, v in metrics.items()} | {"train/steps_per_s": rate})
                elif done % SYNC_EVERY == 0:
                    jax.block_until_ready(state.step)
                if loop.itstime(done, train_cfg.eval_every, total):
                    last_eval = _evaluate(config, restorer, state, done, writer, ckpt, meta)
                stop = preemption.agreed() if loop.itstime(done, train_cfg.log_every, total) else False
                if loop.itstime(done, train_cfg.checkpoint_every, total) or stop:
                    ckpt.save(done, state, meta | {"step": done}, force=stop or done == total)
                if stop:
                    log.warning("preempted: saved step %d, exiting", done)
                    break
            # Finished or preempted: the export holds the latest EMA parameters (a resumed run replaces it).
            checkpointing.export_params(os.path.join(workdir, "export"), jax.device_get(state.ema_params),
                                        train_step.model_config(config))
    finally:
        if tracing:
            jax.profiler.stop_trace()
        ckpt.wait()
        ckpt.close()
        writer.close()
        preemption.restore()
    return state, metrics | last_eval


def main(argv):
    del argv
    from absl import flags
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)  # Orbax and TF are chatty at INFO
    logging.getLogger("qgac_jax").setLevel(logging.INFO)
    FLAGS = flags.FLAGS
    sharding.initialize_distributed()
    try:
        train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except (ValueError, NonFiniteLossError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    from qgac_jax.config_path import config_root_on_path

    config_root_on_path(sys.argv)

    config_flags.DEFINE_config_file("config", None, "Training config file (configs/*.py).", lock_config=True)
    flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard and export go here.")
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
