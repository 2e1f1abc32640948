"""Training the restoration model: a config -> train_and_evaluate(config, workdir) (`python -m qgac_jax.train`).

Restarting with the same workdir resumes from the latest checkpoint with the
same data stream. SIGTERM (TPU preemption) saves and exits 0. A non-finite
loss stops the run with a message and leaves the last good checkpoint.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Callable, Dict, List, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from qgac_jax.data import on_device, tf_pipeline
from qgac_jax.evaluation import protocol as eval_protocol
from qgac_jax.models import exports, int8, qmap_channels, tiling
from qgac_jax.models import vgg as vgg_lib
from qgac_jax.training import checkpoints, sections, sharding
from qgac_jax.training import loop as train_loop
from qgac_jax.training import step as train_step
from qgac_jax.training.prefetch import to_devices

log = logging.getLogger("qgac_jax.train")  # the name users filter on: the command's
# What travels to the devices (compact: uint8 images, guide tables); on_device.make_prepare makes the
# step's 'compressed', 'target' (float) and 'qmap' of them there. Nothing else is transferred.
STEP_KEYS = ("compressed", "target", "guide_tables")
CODEC_MIX_KEYS = ("compressed", "target", "qmap")  # a codec mix's examples carry their own Q-maps
CALIBRATION_BATCHES = 16  # an int8 fine-tune's starting ranges: the first 16 batches of its data (128 examples at 8)
# ... from the 10th percentile of their minima and the 90th of their maxima: their mean (ONNX Runtime's rule) clips
# the large activations of low qualities (docs/model_cards.md, the int8 models)
CALIBRATION_SPREAD = 10



def warn_if_accelerator_job_on_cpu(config) -> None:
    """A config sized for accelerators (bf16, or a large variant) that landed on CPU is most likely a set-up slip."""
    if jax.default_backend() == "cpu" and (config.model.dtype == "bfloat16" or config.model.variant == "base"):
        log.warning("training %s (%s) on CPU: this config is sized for a GPU/TPU, where JAX found none "
                    "(install jax for your accelerator: docs/development.md lists the extras)",
                    config.model.variant, config.model.dtype)


def load_vgg_params(parts, config, key):
    if parts.vgg is None:
        return {}
    if config.loss.allow_random_vgg:
        log.warning("perceptual loss with RANDOM VGG weights (loss.allow_random_vgg): for tests only")
        return parts.vgg.init(key, jnp.zeros((1, 32, 32, 3)))["params"]
    return vgg_lib.load_params(config.loss.vgg_weights, config.loss.vgg)


def calibration_pairs(data_config, batches: train_loop.BatchSource) -> List[Tuple[np.ndarray, np.ndarray]]:
    """(image [1, H, W, C], qmap [1, H, W, K]) of each example of the run's first CALIBRATION_BATCHES batches:
    where an int8 fine-tune's ranges start (the training mix's qualities and codecs, not a few crops')."""
    prepare, pairs = on_device.make_prepare(data_config), []
    stream = batches(data_config, 0)
    try:
        for _ in range(CALIBRATION_BATCHES):
            batch = prepare({k: jnp.asarray(v) for k, v in next(stream).items()})
            pairs += [(np.asarray(batch["compressed"][i:i + 1]), np.asarray(batch["qmap"][i:i + 1]))
                      for i in range(batch["compressed"].shape[0])]
    finally:
        getattr(stream, "close", lambda: None)()
    return pairs


def _start_from(parts, repl, calibration: Callable[[], List]):
    def start_from(state, params):
        """The generator (and its EMA) from an export's parameters, with a fresh optimiser; a float model's
        export given to an int8 one gets its ranges calibrated on `calibration()`'s pairs."""
        if parts.model.int8 and not int8.ranges(params):
            params = int8.calibrate(parts.model, params, calibration(), spread=CALIBRATION_SPREAD)
            log.info("int8 ranges calibrated on the first %d batches of the training mix", CALIBRATION_BATCHES)
        params = jax.device_put(params, repl)
        return state.replace(g_params=params, ema_params=jax.tree.map(jnp.copy, params),
                             g_opt=jax.device_put(parts.g_tx.init(params), repl))
    return start_from


def tiled(model) -> Tuple[Callable, Callable]:
    """(restore, set_params): `restore(pixels [H, W, C], the file's quantization) -> [H, W, C]` runs the model in
    tiles as restore does, told the file's own quantization (evaluation's JPEGs carry their true tables)."""
    jitted = jax.jit(lambda p, y, q: jnp.clip(model.apply({"params": p}, y, q), 0.0, 1.0))
    held = {}
    tile_batch = 1 if jax.default_backend() == "cpu" else 4

    def restore(pixels: np.ndarray, quantization) -> np.ndarray:
        qmap = quantization.qmap(*pixels.shape[:2])[..., :qmap_channels(pixels.shape[-1])]
        return tiling.restore_tiled(lambda y, q: jitted(held["params"], y, q), pixels, qmap,
                                    tiling.DEFAULT_TILE, tiling.DEFAULT_OVERLAP, tile_batch)

    return restore, lambda params: held.update(params=params)


def _evaluator(config, model):
    restore, set_params = tiled(model)

    def evaluate(state, done: int):
        # The EMA parameters go to one device once per evaluation, not once per tile.
        set_params(jax.device_put(jax.device_get(state.ema_params), jax.local_devices()[0]))
        result = eval_protocol.evaluate_images(restore, config.eval.source or "builtin",
                                               config.eval.qualities + config.eval.double, config.data.grey,
                                               config.eval.max_images)
        metrics, triplet = eval_protocol.flat_metrics(result), result["example"]
        if jax.process_index() == 0:
            log.info("eval step %d: JPEG %.3f dB -> model %.3f dB (PSNR-B %.3f -> %.3f)", done, metrics["jpeg_psnr"],
                     metrics["model_psnr"], metrics["jpeg_psnr_b"], metrics["model_psnr_b"])
        images = dict(zip(("eval/compressed", "eval/restored", "eval/clean"), triplet)) if triplet else {}
        return metrics, images
    return evaluate


def _describe(total: int):
    def describe(done: int, m: Dict[str, float], rate: float) -> str:
        eta = time.strftime("%H:%M:%S", time.gmtime((total - done) / max(rate, 1e-9)))
        return (f"step {done}/{total}  loss {m['loss']:.5f}  l1 {m['l1']:.5f}  psnr {m['psnr']:.2f} "
                f"(jpeg {m['jpeg_psnr']:.2f})  {rate:.2f} steps/s  ETA {eta}")
    return describe


def train_and_evaluate(config, workdir: str, batches: train_loop.BatchSource = train_loop.default_batches
                       ) -> Tuple[train_step.TrainState, Dict[str, float]]:
    """Trains (or resumes) in `workdir`; returns the final state and the last logged and evaluated metrics.

    `batches(data_config, start_step)` gives the host batches (tests hand in their own).
    """
    config = sections.training(config)  # typed once (the command line already did: then it is returned as is)
    sections.validate_training(config)
    schedule = train_loop.Schedule.of(config.train)
    warn_if_accelerator_job_on_cpu(config)
    data_config = config.data
    if data_config.pipeline == "tf.data":
        tf_pipeline.import_tf()  # TF sees no accelerator, before anything else touches it
    mesh = sharding.make_mesh()
    sharding.check_batch(data_config.batch_size, mesh)
    parts = train_step.make_parts(config)
    repl = sharding.param_sharding(mesh)
    ckpt = checkpoints.Checkpointer(workdir, keep=config.train.keep_checkpoints)
    fresh = jax.device_put(train_step.init_state(parts, jax.random.key(config.train.seed)), repl)
    start_from = _start_from(parts, repl, lambda: calibration_pairs(data_config, batches))
    state = train_loop.initial_state(fresh, ckpt, config.train.init_from, start_from, workdir)
    vgg_params = jax.device_put(load_vgg_params(parts, config, jax.random.key(config.train.seed + 1)), repl)
    steps = {adversarial: train_step.jit_step(parts, adversarial, mesh) for adversarial in (False, True)}
    gan_start = config.loss.gan_start_step
    hooks = train_loop.Hooks(
        step=lambda i, state, batch: steps[i >= gan_start](state, batch, vgg_params),
        describe=_describe(schedule.steps),
        evaluate=_evaluator(config, parts.model),  # tiled like inference
        export=lambda state: exports.export_params(os.path.join(workdir, "export"),
                                                         jax.device_get(state.ema_params),
                                                         train_step.model_config(config)),
        best="model_psnr")
    start = int(jax.device_get(state.step))
    keys = CODEC_MIX_KEYS if data_config.mixes_codecs else STEP_KEYS
    device_batches = to_devices(batches(data_config, start), mesh, keys, on_device.make_prepare(data_config))
    return train_loop.run(state, device_batches, hooks, schedule, ckpt, workdir, _meta(config))


def _meta(config) -> Dict:
    return {"config": config.to_json()}
