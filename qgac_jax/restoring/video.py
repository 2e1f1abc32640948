"""A clip restored frame by frame, each frame told its own quantizers, decoding, the network and encoding at once.

Three stages overlap: a thread decodes frames (`files.clips`), this thread
restores each with the quantization its codec recorded for it (the
restorer's tiles, engine and colour policy, as a photo's), a thread encodes
(`files.clip_output`). The queues between them hold a few frames, so memory
stays flat however long the clip. Any failure, or Ctrl-C, stops all three
and the output's temporary file is removed: no partial clip is left.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from typing import Callable, List, Optional

import numpy as np

from qgac_jax.files import clip_output, clips
from qgac_jax.restoring import guide

QUEUE_FRAMES = 4  # frames waiting between two stages
_DONE = object()


@dataclasses.dataclass
class ClipReport:
    info: clips.ClipInfo
    frames: int  # restored and written
    seconds: float
    lost: List[str]  # frames that did not decode, by time
    first_told: str  # what the network was told of the first frame, for --show-quality

    def told(self) -> str:
        """What the clip is and what its frames were told (restore --show-quality, the archive's manifest)."""
        return f"{self.info.describe()}; first frame: {self.first_told}; each frame told its own"

    def lost_line(self, shown: Optional[int] = None) -> str:
        """'N frame(s) did not decode and are not in the output' and the first `shown` of them (None: all, 0:
        none); '' when none was lost."""
        if not self.lost:
            return ""
        line = f"{len(self.lost)} frame(s) did not decode and are not in the output"
        if shown == 0:
            return line
        listed = self.lost if shown is None else self.lost[:shown]
        more = len(self.lost) - len(listed)
        return f"{line}: " + "; ".join(listed) + (f"; and {more} more" if more else "")


def restore_clip(restorer, src, dest, quality: guide.Mode = "auto", codec: str = clip_output.DEFAULT_CODEC,
                 crf: Optional[int] = None, progress: Optional[Callable[[int, int], None]] = None,
                 info: Optional[clips.ClipInfo] = None) -> ClipReport:
    """Restores the clip `src` into `dest` (its container from dest's suffix); `quality` "auto" or "file": each
    frame's own quantizers, a number: IJG tables of that quality for every frame. `progress(done, total)` after
    each frame (total 0 when the container does not count its frames)."""
    info = clips.probe(src) if info is None else info
    mode = "file" if quality == "auto" else quality  # (the quality estimator reads photos, not video frames)
    start, lost, stop = time.perf_counter(), [], threading.Event()
    decoded: queue.Queue = queue.Queue(QUEUE_FRAMES)
    restored: queue.Queue = queue.Queue(QUEUE_FRAMES)
    failures: List[BaseException] = []
    writer = clip_output.ClipWriter(src, dest, info, codec, crf)

    def decode():
        try:
            for frame in clips.frames(src, info, lost, stop.is_set):
                _put(decoded, frame, stop)
        except BaseException as err:  # noqa: BLE001 - handed to the restoring thread
            failures.append(err)
        finally:
            _put(decoded, _DONE, stop, always=True)

    def encode():
        try:
            while True:
                item = restored.get()
                if item is _DONE:
                    return
                writer.write(*item)
        except BaseException as err:  # noqa: BLE001
            failures.append(err)
            stop.set()
            while restored.get() is not _DONE:  # (let the restoring thread finish its puts)
                pass

    threads = [threading.Thread(target=decode, daemon=True), threading.Thread(target=encode, daemon=True)]
    for t in threads:
        t.start()
    done, first_told = 0, ""
    try:
        while not stop.is_set():
            frame = decoded.get()
            if frame is _DONE:
                break
            pixels = frame.pixels.astype(np.float32) / 255.0
            if not first_told:  # (the sentence without its "CODEC: " prefix, which describe() repeats)
                sentence = guide.of_file(pixels, frame.quantization, guide.parse_mode(mode)).sentence
                first_told = sentence.split(": ", 1)[-1] if isinstance(mode, str) else sentence
            out = restorer.restore_compressed(pixels, frame.quantization, mode)
            _put(restored, (np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8), frame.pts), stop)
            done += 1
            if progress is not None:
                progress(done, info.frames)
    except BaseException:
        stop.set()
        _put(restored, _DONE, stop, always=True)
        _drain(decoded)
        for t in threads:  # (the encoder lets go of the file before it is removed)
            t.join(timeout=30)
        writer.close(False)
        raise
    _put(restored, _DONE, stop, always=True)
    for t in threads:
        t.join()
    if failures:  # (the encoder stops the pipeline only after recording why)
        writer.close(False)
        raise failures[0]
    writer.close(True)
    return ClipReport(info, done, time.perf_counter() - start, lost, first_told)


def _put(q: queue.Queue, item, stop: threading.Event, always: bool = False) -> None:
    """Puts unless the pipeline stopped (then a full queue is not waited on, except for the end marker)."""
    while True:
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            if stop.is_set():
                if not always:
                    return
                _drain(q)


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
