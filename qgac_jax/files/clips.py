"""Video clips in: what a clip is (`probe`) and its frames, each told the quantization its codec recorded for it.

Read with PyAV (FFmpeg's demuxers and decoders). H.264 and VP9 frames carry
their quantizers as FFmpeg's video-encoding-parameter side data (`codecs.h264`,
`codecs.vp9`); HEVC and AV1 frames are told theirs by the stream's own
headers, read packet by packet before decoding (`codecs.hevc_stream`,
`codecs.av1_stream`) and matched to the decoded frame by its timestamp. A
packet the decoder refuses is a lost frame, named and skipped; the clip goes on.
"""

from __future__ import annotations

import dataclasses
import fractions
from typing import Callable, Iterator, List, Optional

import numpy as np

from qgac_jax.codecs import h264, vp9

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mkv", ".mov", ".webm")
NAMES = {"h264": "H.264", "hevc": "HEVC", "vp9": "VP9", "av1": "AV1"}  # FFmpeg's codec names -> ours, read here
KINDS = {1: "I", 2: "P", 3: "B"}  # AVPictureType


class NotRestorable(ValueError):
    """A file that is not a clip this restorer reads (no video, another codec, an unsupported pixel format)."""


@dataclasses.dataclass(frozen=True)
class ClipInfo:
    """What a clip's video stream is, and what else the file holds (copied untouched into the output)."""

    container: str  # FFmpeg's format name
    codec: str  # h264, hevc, vp9, av1
    width: int
    height: int
    frames: int  # as the container counts them (0: it does not say)
    rate: Optional[fractions.Fraction]  # average frame rate (a variable-rate clip keeps its own timestamps)
    time_base: fractions.Fraction
    pix_fmt: str
    colorspace: int  # FFmpeg's AVColorSpace, AVColorRange, AVColorPrimaries, AVColorTransferCharacteristic
    color_range: int
    color_primaries: int
    color_trc: int
    rotation: int  # degrees the player turns the picture (the display matrix)
    others: int  # audio, subtitle and data streams
    seconds: Optional[float] = None  # how long the video stream (else the file) says it lasts; None: unknown

    def describe(self) -> str:
        rate = f", {float(self.rate):.3g} fps" if self.rate else ""
        return f"{NAMES[self.codec]} {self.width}x{self.height}{rate}, {self.frames or '?'} frames"


@dataclasses.dataclass
class Frame:
    index: int  # in display order
    pts: Optional[int]  # in the stream's time base
    pixels: np.ndarray  # uint8 [H, W, 3] RGB (the stream's matrix and range)
    quantization: object  # what the codec recorded (the `codecs` contract)


def available() -> bool:
    """Whether clips can be read here (PyAV, the extra `video`)."""
    import importlib.util

    return importlib.util.find_spec("av") is not None


def probe(path) -> ClipInfo:
    """The clip's video stream, or NotRestorable with the one line a user sees."""
    try:
        import av
    except ImportError:
        raise NotRestorable("restoring clips needs PyAV: pip install '.[video]'") from None

    try:
        with av.open(_source(path)) as container:
            return _info(container)
    except av.FFmpegError as err:
        raise NotRestorable(f"not a video file FFmpeg can open ({_reason(err)})") from None


def _info(container) -> ClipInfo:
    if not container.streams.video:
        raise NotRestorable("no video stream in this file")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    if ctx is None:  # (a stream whose codec FFmpeg does not know, as a damaged header can name)
        raise NotRestorable("its video stream's codec is unknown to FFmpeg")
    codec = ctx.codec.canonical_name  # (the codec, whichever decoder: libdav1d decodes av1)
    if codec not in NAMES:
        raise NotRestorable(f"{ctx.codec.long_name or ctx.name} video: only H.264, HEVC, VP9 and AV1 clips record "
                            "quantizers this restorer reads")
    pix_fmt = ctx.pix_fmt or ""
    if pix_fmt not in ("yuv420p", "yuvj420p", "gray"):
        depth = "10-bit or deeper " if any(d in pix_fmt for d in ("10", "12", "16")) else ""
        raise NotRestorable(f"{depth}video in {pix_fmt or 'an unknown pixel format'}: clips are restored in 8-bit "
                            "4:2:0 (yuv420p), which the models were trained on")
    others = sum(1 for s in container.streams if s.index != stream.index and s.type in ("audio", "subtitle", "data"))
    frame = None
    for frame in container.decode(stream):
        break
    if frame is None:
        raise NotRestorable("its video stream holds no frame that decodes")
    seconds = (float(stream.duration * stream.time_base) if stream.duration else
               container.duration / 1e6 if container.duration else None)  # (the file's: AV_TIME_BASE units)
    return ClipInfo(container.format.name, codec, frame.width, frame.height, int(stream.frames or 0),
                    stream.average_rate, stream.time_base, pix_fmt, int(frame.colorspace), int(frame.color_range),
                    int(frame.color_primaries), int(frame.color_trc), int(frame.rotation or 0), others, seconds)


def frames(path, info: ClipInfo, lost: Optional[List[str]] = None,
           should_stop: Callable[[], bool] = lambda: False) -> Iterator[Frame]:
    """The frames of the clip `probe` described as `info`, in display order, each with its quantization; a packet
    that does not decode adds its time to `lost` and is skipped."""
    import av

    lost = [] if lost is None else lost
    with av.open(_source(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"export_side_data": "venc_params"}  # (before the decoder opens)
        told = _Told(info, bytes(stream.codec_context.extradata or b""))
        index, last, packets = 0, None, container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as err:  # (the container itself damaged: what follows cannot be found)
                lost.append(f"everything after {_after(last, stream.time_base)} ({_reason(err)})")
                return
            if should_stop():
                return
            try:
                told.packet(packet)
                decoded = packet.decode()
            except (av.FFmpegError, ValueError) as err:
                lost.append(_when(packet.pts, stream.time_base) + f" ({_reason(err)})")
                continue
            for frame in decoded:
                yield Frame(index, frame.pts, frame.to_ndarray(format="rgb24"), told.frame(frame))
                index, last = index + 1, frame.pts
        missing = info.frames - index - len(lost)
        if missing > 0:  # (a file cut short: its container counts frames that are not there)
            lost.append(f"{missing} frame(s) after {_after(last, stream.time_base)} that the container counts "
                        "but the file does not hold (cut short?)")


class _Told:
    """Each decoded frame's quantization: from its side data (H.264, VP9) or its packet's headers (HEVC, AV1)."""

    def __init__(self, info: ClipInfo, extradata: bytes):
        self.info, self.by_pts = info, {}  # type: Dict[Optional[int], object]
        self.offsets = h264.chroma_offsets(extradata) if info.codec == "h264" else (0, 0)
        self.stream = None
        from av.sidedata.sidedata import Type

        self.enc_params = Type.VIDEO_ENC_PARAMS  # (looked up by type: PyAV 18.1.1 iterates the types, 18.1.0 the data)
        if info.codec in ("hevc", "av1"):
            from qgac_jax.codecs import av1_stream, hevc_stream

            self.stream = (hevc_stream.HevcStream if info.codec == "hevc" else av1_stream.Av1Stream)(extradata)

    def packet(self, packet) -> None:
        if self.stream is not None and packet.size:
            self.by_pts[packet.pts] = self.stream.read(bytes(packet))

    def frame(self, frame):
        grey = self.info.pix_fmt == "gray"
        kind = KINDS.get(int(frame.pict_type), "?")
        if self.stream is not None:
            if frame.pts not in self.by_pts:
                raise ValueError(f"a {NAMES[self.info.codec]} frame whose headers were not read")
            return self.by_pts.pop(frame.pts).with_frame(kind)
        params = frame.side_data.get(self.enc_params)
        if params is None:
            raise ValueError(f"FFmpeg gave this {NAMES[self.info.codec]} frame no quantizers (side data)")
        if self.info.codec == "vp9":
            return vp9.Vp9Quantization(int(params.qp), grey, kind)
        return h264.H264Quantization(np.asarray(params.qp_map(), np.int32), self.offsets, grey, kind)


def _source(path):
    """What av.open takes: a path's text, or a file object as it is (the training clips, encoded in memory)."""
    return path if hasattr(path, "read") else str(path)


def _when(pts: Optional[int], time_base) -> str:
    return "a frame" if pts is None else f"the frame at {_after(pts, time_base)}"


def _after(pts: Optional[int], time_base) -> str:
    return "the start" if pts is None else f"{float(pts * time_base):.3f} s"


def _reason(err: BaseException) -> str:
    return (getattr(err, "strerror", None) or str(err)).strip().rstrip(".") or type(err).__name__
