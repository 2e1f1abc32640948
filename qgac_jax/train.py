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
import signal
import sys
import time
from typing import Dict

import jax
import jax.numpy as jnp
import numpy as np

from qgac_jax import checkpointing, evaluate, input_pipeline, sharding, train_step
from qgac_jax.restorer import Restorer
from qgac_jax.models import vgg as vgg_lib

log = logging.getLogger("qgac_jax.train")
SYNC_EVERY = 32  # wait on a result at least this often (CPU collectives time out otherwise)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; the last saved checkpoint is the last good state."""


def validate_config(config) -> None:
    """Start-up checks that would otherwise fail hours into a run (data first: it is the usual culprit)."""
    sources = (config.data.sources,) if isinstance(config.data.sources, str) else config.data.sources
    for source in sources:
        input_pipeline.check_source(source)
    for key in ("log_every", "checkpoint_every", "eval_every", "steps"):
        if int(config.train[key]) < 1:
            raise ValueError(f"train.{key} must be at least 1, got {config.train[key]}")
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
    if config.eval.source and config.eval.source != "builtin":
        input_pipeline.list_images(config.eval.source.removeprefix("folder:"))  # raises when missing or empty
    if config.model.channels != (1 if config.data.grey else 3):
        raise ValueError(f"model.channels={config.model.channels} does not match data.grey={config.data.grey}")


def load_vgg_params(trainer, config, key):
    if trainer.vgg is None:
        return {}
    if config.loss.vgg_weights:
        return vgg_lib.load_params(config.loss.vgg_weights, config.loss.vgg)
    log.warning("perceptual loss with RANDOM VGG weights (loss.allow_random_vgg): for tests only")
    return trainer.vgg.init(key, jnp.zeros((1, 32, 32, 3)))["params"]


class _Preemption:
    """Turns SIGTERM into a flag the loop checks, so it can save and exit cleanly."""

    def __init__(self):
        self.requested = False
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread (a notebook helper, say): no preemption handling there
            log.warning("not in the main thread: SIGTERM will not save a checkpoint")
            self._previous = None

    def _handle(self, signum, frame):
        log.warning("SIGTERM received: saving a checkpoint and exiting")
        self.requested = True

    def agreed(self) -> bool:
        """True when any process was told to stop (all processes must stop together)."""
        if jax.process_count() == 1:
            return self.requested
        from jax.experimental import multihost_utils

        return bool(np.any(multihost_utils.process_allgather(np.array([self.requested]))))

    def restore(self):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def _summary_writer(workdir):
    """TensorBoard writer (process 0); None where TensorFlow is not installed (data.pipeline='pillow')."""
    if jax.process_index() != 0:
        return None
    try:
        import tensorflow as tf
    except ImportError:
        log.warning("TensorFlow is not installed: no TensorBoard summaries; metrics go to the log only")
        return None
    return tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))


def _write(writer, step, scalars=None, images=None):
    if writer is None:
        return
    import tensorflow as tf

    with writer.as_default(step=step):
        for k, v in (scalars or {}).items():
            tf.summary.scalar(k, v)
        for k, v in (images or {}).items():
            tf.summary.image(k, np.clip(v, 0, 1)[None], max_outputs=1)
    writer.flush()


def train_and_evaluate(config, workdir: str) -> Dict[str, float]:
    """Trains (or resumes) in `workdir`; returns the last logged and evaluated metrics."""
    validate_config(config)
    data_config = input_pipeline.DataConfig.from_config(config.data)
    if data_config.pipeline == "tf.data":
        input_pipeline._tf()  # TF sees no accelerator, before anything else touches it
    mesh = sharding.make_mesh()
    sharding.check_batch(data_config.batch_size, mesh)
    trainer = train_step.make_trainer(config)
    key_init, key_vgg = jax.random.split(jax.random.key(config.train.seed))
    repl = sharding.param_sharding(mesh)
    state = jax.device_put(train_step.init_state(trainer, key_init), repl)

    ckpt = checkpointing.Checkpointer(workdir, keep=config.train.keep_checkpoints)
    restored = ckpt.restore_latest(state)
    if restored is not None:
        state, _ = restored
        log.info("resumed from step %d in %s", int(state.step), workdir)
    elif config.train.init_from:  # e.g. the GAN stage starting from a PSNR model's export
        _, params, _ = checkpointing.load_export(config.train.init_from)
        params = jax.device_put(params, repl)
        state = state.replace(g_params=params, ema_params=jax.tree.map(jnp.copy, params),
                              g_opt=jax.device_put(trainer.g_tx.init(params), repl))
        log.info("generator initialised from %s", config.train.init_from)
    start = int(state.step)
    total = int(config.train.steps)
    vgg_params = jax.device_put(load_vgg_params(trainer, config, key_vgg), repl)

    step_fns = {}

    def compiled(adversarial):
        if adversarial not in step_fns:
            step_fns[adversarial] = train_step.jit_step(trainer, adversarial, mesh)
        return step_fns[adversarial]

    batches = input_pipeline.train_batches(data_config, start_step=start)
    restorer = Restorer(trainer.model, None)  # evaluation, tiled like inference; params set at each eval
    writer = _summary_writer(workdir)
    preemption = _Preemption()
    meta = {"config": config.to_json_best_effort() if hasattr(config, "to_json_best_effort") else str(config)}
    last_metrics: Dict[str, float] = {}
    last_eval: Dict[str, float] = {}
    t0, t0_step = time.perf_counter(), start
    try:
        for step in range(start, total):
            batch = sharding.global_batch(next(batches), mesh)
            state, step_metrics = compiled(step >= config.loss.gan_start_step)(state, batch, vgg_params)
            done = step + 1
            is_last = done == total
            if done % config.train.log_every == 0 or is_last:
                last_metrics = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
                if not all(math.isfinite(v) for v in last_metrics.values()):
                    raise NonFiniteLossError(
                        f"non-finite loss at step {done}: {last_metrics}. The last good checkpoint in "
                        f"{workdir}/checkpoints is step {ckpt.latest_step()}; lower optim.lr or check the data.")
                rate = (done - t0_step) / (time.perf_counter() - t0)
                eta = (total - done) / max(rate, 1e-9)
                if jax.process_index() == 0:
                    log.info("step %d/%d  loss %.5f  l1 %.5f  psnr %.2f (jpeg %.2f)  %.2f steps/s  ETA %s",
                             done, total, last_metrics["loss"], last_metrics["l1"], last_metrics["psnr"],
                             last_metrics["jpeg_psnr"], rate, time.strftime("%H:%M:%S", time.gmtime(eta)))
                _write(writer, done, {f"train/{k}": v for k, v in last_metrics.items()} | {"train/steps_per_s": rate})
            elif done % SYNC_EVERY == 0:
                jax.block_until_ready(state.step)
            if done % config.train.eval_every == 0 or is_last:
                restorer.params = jax.device_get(state.ema_params)
                result = evaluate.evaluate_images(restorer.restore_batch, config.eval.source or "builtin",
                                                  config.eval.qualities, config.data.grey, config.eval.max_images)
                last_eval, triplet = evaluate.flat_metrics(result), result["example"]
                if jax.process_index() == 0:
                    log.info("eval step %d: JPEG %.3f dB -> model %.3f dB (PSNR-B %.3f -> %.3f)", done,
                             last_eval["jpeg_psnr"], last_eval["model_psnr"], last_eval["jpeg_psnr_b"],
                             last_eval["model_psnr_b"])
                images = dict(zip(("eval/compressed", "eval/restored", "eval/clean"), triplet)) if triplet else {}
                _write(writer, done, {f"eval/{k}": v for k, v in last_eval.items()}, images)
                ckpt.save_best(done, state, meta | {"step": done}, last_eval["model_psnr"])
            stop = preemption.agreed() if (done % config.train.log_every == 0 or is_last) else False
            if done % config.train.checkpoint_every == 0 or is_last or stop:
                ckpt.save(done, state, meta | {"step": done}, force=stop or is_last)
            if stop:
                log.warning("preempted: saved step %d, exiting", done)
                break
        else:
            checkpointing.export_params(os.path.join(workdir, "export"), jax.device_get(state.ema_params),
                                        train_step.model_config(config))
    finally:
        ckpt.wait()
        ckpt.close()
        preemption.restore()
    return last_metrics | last_eval


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


def _config_root_on_path(argv) -> None:
    """Puts the folder above the config file on sys.path, so configs can `from configs import base`."""
    for i, arg in enumerate(argv):
        path = arg.split("=", 1)[1] if arg.startswith("--config=") else (argv[i + 1] if arg == "--config" and i + 1 < len(argv) else None)
        if path:
            path = path.split(":", 1)[0]  # configs/cpu.py:grey -> configs/cpu.py
            sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(path))))
            return


if __name__ == "__main__":
    from absl import app, flags
    from ml_collections import config_flags

    _config_root_on_path(sys.argv)

    config_flags.DEFINE_config_file("config", None, "Training config file (configs/*.py).", lock_config=True)
    flags.DEFINE_string("workdir", None, "Checkpoints, TensorBoard and export go here.")
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
