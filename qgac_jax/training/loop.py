"""The training loop both trainers run: steps, logging, evaluation, checkpoints, preemption, export.

A trainer (`train` for the restoration model, `train_estimator` for the
quality estimator) builds its state, its jitted step and its evaluation;
`run` does the rest, the same way for both: resume from the latest
checkpoint (or start from an export with `init_from`), one step per batch
under a transfer guard, a log line and TensorBoard scalars every
`log_every` steps, a stop with `NonFiniteLossError` when the loss is NaN or
Inf (leaving the last good checkpoint), evaluation, asynchronous checkpoints,
SIGTERM (preemption) saved and agreed by all processes, and the export of the
EMA parameters at the end.

Summaries are written with the `tensorboard` package's own event-file writer
and protos, so they work on machines without TensorFlow (GPU boxes, the
pillow pipeline) and read in TensorBoard like tf.summary's.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
import signal
import time
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import jax
import numpy as np

log = logging.getLogger("qgac_jax.train")
SYNC_EVERY = 32  # wait on a result at least this often (CPU collectives time out otherwise)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or Inf; the last saved checkpoint is the last good state."""


def itstime(done: int, every: int, total: int) -> bool:
    """Whether periodic work (every `every` steps, and always after the last one) is due after `done` steps."""
    return done == total or (every > 0 and done % every == 0)


class Preemption:
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


class SummaryWriter:
    """TensorBoard scalars and images in `logdir` (process 0 only; other processes write nothing)."""

    def __init__(self, logdir: str):
        self._writer = None
        if jax.process_index() == 0:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            if "://" not in logdir:
                os.makedirs(logdir, exist_ok=True)
            self._writer = EventFileWriter(logdir)

    def write(self, step: int, scalars: Optional[Dict[str, float]] = None,
              images: Optional[Dict[str, np.ndarray]] = None) -> None:
        """Scalars as floats; images as float [H, W, C] in [0, 1] (C = 1 or 3)."""
        if self._writer is None:
            return
        from PIL import Image
        from tensorboard.compat.proto import event_pb2, summary_pb2

        values = [summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in (scalars or {}).items()]
        for k, v in (images or {}).items():
            pixels = np.round(np.clip(np.asarray(v, np.float32), 0, 1) * 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buf, format="PNG")
            image = summary_pb2.Summary.Image(height=pixels.shape[0], width=pixels.shape[1],
                                              colorspace=pixels.shape[-1], encoded_image_string=buf.getvalue())
            values.append(summary_pb2.Summary.Value(tag=k, image=image))
        if values:
            self._writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step),
                                                   summary=summary_pb2.Summary(value=values)))
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When the loop does its periodic work (`train.*` of a config)."""

    steps: int
    log_every: int
    eval_every: int
    checkpoint_every: int
    profile_steps: int = 0  # a jax.profiler trace of this many steps after compilation (0: none)

    def __post_init__(self):
        for name in ("steps", "log_every", "eval_every", "checkpoint_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.profile_steps < 0:
            raise ValueError(f"train.profile_steps must be 0 (off) or more, got {self.profile_steps}")

    @classmethod
    def of(cls, train) -> "Schedule":
        """From a config's `train` section."""
        return cls(int(train.steps), int(train.log_every), int(train.eval_every), int(train.checkpoint_every),
                   int(getattr(train, "profile_steps", 0)))


BatchSource = Callable[[Any, int], Iterator[Dict]]  # (DataConfig, start step) -> host batches


def default_batches(data_config, start_step: int) -> Iterator[Dict]:
    """The host batch stream of a run resumed at `start_step` (compact: uint8 images and tables)."""
    from qgac_jax import data

    return data.train_batches(data_config, start_step=start_step, compact=True)


@dataclasses.dataclass(frozen=True)
class Hooks:
    """What differs between trainers; every callable runs on all processes."""

    step: Callable[[int, Any, Dict], Tuple[Any, Dict]]  # (step index, state, device batch) -> (state, metrics)
    describe: Callable[[int, Dict[str, float], float], str]  # (done, metrics, steps/s) -> the log line
    # (state, done) -> (scalars, TensorBoard images [H, W, C] in [0, 1]); scalars named as the run returns them
    evaluate: Optional[Callable[[Any, int], Tuple[Dict[str, float], Dict[str, Any]]]]
    export: Callable[[Any], None]  # writes the export of the state's EMA parameters
    best: Optional[str] = None  # the evaluation scalar whose maximum is kept in best/ (None: no best/)


def initial_state(fresh, ckpt, init_from: str, start_from: Callable[[Any, Any], Any], workdir: str):
    """The latest checkpoint's state; else `start_from(fresh, params)` of the export `init_from`; else `fresh`."""
    from qgac_jax.models import exports

    restored = ckpt.restore_latest(fresh)
    if restored is not None:
        state = restored[0]
        log.info("resumed from step %d in %s", int(jax.device_get(state.step)), workdir)
        return state
    if init_from:  # e.g. the GAN stage starting from a PSNR model's export, or a fine-tune
        _, params, _ = exports.load_export(init_from)
        log.info("initialised from %s", init_from)
        return start_from(fresh, params)
    return fresh


def run(state, batches: Iterator[Dict], hooks: Hooks, schedule: Schedule, ckpt, workdir: str,
        meta: Dict[str, Any]) -> Tuple[Any, Dict[str, float]]:
    """Steps `state` to `schedule.steps` on `batches` (device batches, a context manager); returns the final
    state and the last logged and evaluated metrics."""
    writer = SummaryWriter(os.path.join(workdir, "tensorboard"))
    preemption = Preemption()
    start, total = int(jax.device_get(state.step)), schedule.steps
    profile_from = start + 2 if schedule.profile_steps else -1  # after compilation, which the first steps pay
    tracing = False
    metrics: Dict[str, float] = {}
    last_eval: Dict[str, float] = {}
    t0, first_s = time.perf_counter(), 0.0
    if start < total and jax.process_index() == 0:
        log.info("compiling the train step (the first step waits for it)")
    try:
        with batches:
            for step in range(start, total):
                if step == profile_from:
                    jax.profiler.start_trace(os.path.join(workdir, "profile"))
                    tracing = True
                with jax.profiler.StepTraceAnnotation("train", step_num=step):
                    batch = next(batches)
                    with jax.transfer_guard("disallow"):  # every transfer in the loop is an explicit one
                        state, step_metrics = hooks.step(step, state, batch)
                done = step + 1
                if done == start + 1:
                    jax.block_until_ready(state.step)
                    t0, first_s = time.perf_counter(), time.perf_counter() - t0
                    if jax.process_index() == 0:
                        log.info("first step done in %.1f s (compilation included)", first_s)
                if tracing and (done == profile_from + schedule.profile_steps or done == total):
                    jax.block_until_ready(state.step)
                    jax.profiler.stop_trace()
                    tracing = False
                    log.info("profile of steps %d..%d written to %s/profile", profile_from + 1, done, workdir)
                if itstime(done, schedule.log_every, total):
                    since = done - start - 1  # steps after the first, which paid for compilation
                    rate = since / max(time.perf_counter() - t0, 1e-9) if since else 1 / max(first_s, 1e-9)
                    metrics = _log(done, step_metrics, hooks, writer, ckpt, workdir, rate)
                elif done % SYNC_EVERY == 0:
                    jax.block_until_ready(state.step)
                if hooks.evaluate is not None and itstime(done, schedule.eval_every, total):
                    last_eval, images = hooks.evaluate(state, done)
                    writer.write(done, {"eval/" + k.removeprefix("eval_"): v for k, v in last_eval.items()}, images)
                    if hooks.best:
                        ckpt.save_best(done, state, meta | {"step": done}, last_eval[hooks.best])
                stop = preemption.agreed() if itstime(done, schedule.log_every, total) else False
                if itstime(done, schedule.checkpoint_every, total) or stop:
                    ckpt.save(done, state, meta | {"step": done}, force=stop or done == total)
                if stop:
                    log.warning("preempted: saved step %d, exiting", done)
                    break
            # Finished or preempted: the export holds the latest EMA parameters (a resumed run replaces it).
            hooks.export(state)
    finally:
        if tracing:
            jax.profiler.stop_trace()
        ckpt.wait()
        ckpt.close()
        writer.close()
        preemption.restore()
    return state, metrics | last_eval


def _log(done, step_metrics, hooks: Hooks, writer, ckpt, workdir, rate) -> Dict[str, float]:
    metrics = {k: float(v) for k, v in jax.device_get(step_metrics).items()}
    if not all(math.isfinite(v) for v in metrics.values()):
        raise NonFiniteLossError(
            f"non-finite loss at step {done}: {metrics}. The last good checkpoint in {workdir}/checkpoints is "
            f"step {ckpt.latest_step()}; lower optim.lr or check the data.")
    if jax.process_index() == 0:
        log.info("%s", hooks.describe(done, metrics, rate))
    writer.write(done, {f"train/{k}": v for k, v in metrics.items()} | {"train/steps_per_s": rate})
    return metrics
