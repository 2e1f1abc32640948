"""Pieces every training loop shares: when to do periodic work, preemption, TensorBoard summaries.

Summaries are written with the `tensorboard` package's own event-file writer
and protos, so they work on machines without TensorFlow (GPU boxes, the
pillow pipeline) and read in TensorBoard like tf.summary's.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import time
from typing import Dict, Optional

import jax
import numpy as np

log = logging.getLogger(__name__)


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
