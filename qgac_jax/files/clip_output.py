"""Restored clips out: the frames encoded, everything else of the source carried over, written whole or not at all.

The video is encoded by `--video-codec` (x264 by default, at a CRF that
looks lossless; x265, SVT-AV1, or FFV1 for a lossless file) with the source's
frame size, timestamps (a variable frame rate stays variable), colour tags
(matrix, range, primaries, transfer) and rotation; its audio, subtitle and
data streams are copied packet for packet, interleaved as they come. The
file is written under a temporary name beside its destination
(`atomic_files`' naming, so a killed run's leftover is found and removed)
and renamed when complete; on any error or Ctrl-C the temporary file goes.
"""

from __future__ import annotations

import fractions
import os
import pathlib
import tempfile
from typing import Optional

import numpy as np

from qgac_jax.files.atomic_files import TEMP_PREFIX
from qgac_jax.files.clips import ClipInfo

# --video-codec: FFmpeg's encoder, its default CRF (None: lossless), the pixel format it writes
ENCODERS = {"x264": ("libx264", 16), "x265": ("libx265", 18), "av1": ("libsvtav1", 24), "ffv1": ("ffv1", None)}
DEFAULT_CODEC = "x264"
HOLDS = {  # the containers a restored clip is written in, by suffix, and the encoders each can hold
    ".mp4": ("x264", "x265", "av1"), ".m4v": ("x264", "x265", "av1"), ".mov": ("x264", "x265", "av1"),
    ".mkv": ("x264", "x265", "av1", "ffv1"), ".webm": ("av1",)}
FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm"}


def quiet(encoder: str) -> dict:
    """The options that keep an encoder's own chatter off the user's terminal (x265 and SVT-AV1 print their
    configuration at every open); SVT-AV1's banner comes before any option, so its log level is set too."""
    if encoder == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # errors only
        return {"svtav1-params": "log-level=0"}
    return {"x265-params": "log-level=error"} if encoder == "libx265" else {}


def output_suffix(src_suffix: str, codec: str = DEFAULT_CODEC) -> str:
    """The source's container where it can hold `codec`'s video, else Matroska (which holds every one)."""
    suffix = src_suffix.lower()
    return suffix if codec in HOLDS.get(suffix, ()) else ".mkv"


class ClipWriter:
    """Encodes restored frames into `dest` with the source's other streams; `close(complete)` renames or removes."""

    def __init__(self, src, dest, info: ClipInfo, codec: str = DEFAULT_CODEC, crf: Optional[int] = None):
        import av

        if codec not in ENCODERS:
            raise ValueError(f"unknown video codec {codec!r}: one of {', '.join(ENCODERS)}")
        self.dest, self.info = pathlib.Path(dest), info
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=".tmp", dir=self.dest.parent)
        os.close(fd)
        self.tmp = pathlib.Path(tmp)
        self.source = av.open(str(src))
        try:
            self.out = av.open(str(self.tmp), "w", format=FORMATS.get(self.dest.suffix.lower(), "matroska"))
            self.video = self._video_stream(codec, crf)
            self.copied = {s.index: self.out.add_stream_from_template(s) for s in self.source.streams
                           if s.type in ("audio", "subtitle")}
            self.pending = self.source.demux(*[self.source.streams[i] for i in self.copied]) if self.copied else None
            self.next_packet = None
        except BaseException:
            self._discard()
            raise

    def _video_stream(self, codec: str, crf: Optional[int]):
        encoder, default_crf = ENCODERS[codec]
        info = self.info
        stream = self.out.add_stream(encoder, rate=info.rate or 25)
        stream.width, stream.height, stream.pix_fmt = info.width, info.height, "yuv420p"
        stream.time_base = info.time_base
        ctx = stream.codec_context
        ctx.time_base = info.time_base
        ctx.colorspace, ctx.color_range = info.colorspace, info.color_range
        ctx.color_primaries, ctx.color_trc = info.color_primaries, info.color_trc
        options = quiet(encoder)
        if default_crf is not None:
            options["crf"] = str(default_crf if crf is None else crf)
        stream.options = options
        if info.rotation:
            stream.set_display_rotation(info.rotation)
        return stream

    def write(self, pixels: np.ndarray, pts: Optional[int]) -> None:
        """One restored frame (uint8 [H, W, 3] RGB) at its source timestamp."""
        import av

        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        frame = frame.reformat(format="yuv420p", dst_colorspace=_matrix(self.info.colorspace),
                               dst_color_range=self.info.color_range or None)
        frame.pts, frame.time_base = pts, self.info.time_base
        for packet in self.video.encode(frame):
            self._mux_until(packet)
            self.out.mux(packet)

    def _mux_until(self, video_packet) -> None:
        """Copies the other streams' packets up to the video's time (kept interleaved: bounded memory)."""
        if self.pending is None or video_packet.pts is None:
            return
        limit = video_packet.pts * video_packet.time_base
        while True:
            if self.next_packet is None:
                self.next_packet = next(self.pending, None)
                if self.next_packet is None:
                    self.pending = None
                    return
            packet = self.next_packet
            if packet.size == 0:  # (the demuxer's flush packets)
                self.next_packet = None
                continue
            if packet.pts is not None and packet.pts * packet.time_base > limit:
                return
            packet.stream = self.copied[packet.stream.index]
            self.out.mux(packet)
            self.next_packet = None

    def close(self, complete: bool) -> None:
        """Flushes and renames into place when `complete`, else removes the temporary file."""
        try:
            if complete:
                for packet in self.video.encode():
                    self._mux_until(packet)
                    self.out.mux(packet)
                self._mux_until(_End())
                self.out.close()
                self.source.close()
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self.tmp, 0o666 & ~umask)  # (mkstemp made it 0600)
                os.replace(self.tmp, self.dest)
                return
        except BaseException:
            self._discard()
            raise
        self._discard()

    def _discard(self) -> None:
        for closing in (getattr(self, "out", None), self.source):
            try:
                if closing is not None:
                    closing.close()
            except Exception:  # noqa: BLE001 - the file is being thrown away
                pass
        self.tmp.unlink(missing_ok=True)


class _End:
    """A video packet after every other: the rest of the copied streams go out."""

    pts, time_base = 1, fractions.Fraction(10**18)


def _matrix(colorspace: int):
    """swscale's matrix for an AVColorSpace (BT.601 where unspecified, as the decoder converted it)."""
    return {1: "itu709", 4: "fcc", 5: "itu601", 6: "smpte170m", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}.get(
        colorspace, None)
