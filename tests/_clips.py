"""Clips for the tests: a camera panning over a real photo, encoded by the real encoders (PyAV's FFmpeg), and
FFmpeg's own trace of the headers the readers are held to."""

import fractions
import re
import shutil
import subprocess

import numpy as np

from qgac_jax.files.clip_output import quiet

av = __import__("pytest").importorskip("av", reason="clips need PyAV (the extra `video`)")

ENCODERS = {"h264": "libx264", "hevc": "libx265", "vp9": "libvpx-vp9", "av1": "libsvtav1"}
FAST = {"libvpx-vp9": {"b": "0", "deadline": "realtime", "cpu-used": "8"}}


def panned(frames: int, height: int = 96, width: int = 128) -> list:
    """`frames` views of scikit-image's astronaut, the camera moving right and down a few pixels a frame."""
    import skimage.data
    from PIL import Image

    photo = np.asarray(Image.fromarray(skimage.data.astronaut()).resize((256, 256), Image.Resampling.LANCZOS))
    ys, xs = (2 * t % (256 - height) for t in range(frames)), (3 * t % (256 - width) for t in range(frames))
    return [np.ascontiguousarray(photo[y:y + height, x:x + width]) for y, x in zip(ys, xs)]


def make_clip(path, codec: str = "h264", frames: int = 12, crf: int = 35, audio: bool = False, vfr: bool = False,
              rotation: int = 0, bt709: bool = False, options=None):
    """Writes `panned(frames)` with `codec` at `crf`; returns the original frames (uint8 [H, W, 3] each)."""
    originals = panned(frames)
    container = av.open(str(path), "w")
    encoder = ENCODERS.get(codec, codec)
    stream = container.add_stream(encoder, rate=24)
    stream.width, stream.height, stream.pix_fmt = originals[0].shape[1], originals[0].shape[0], "yuv420p"
    stream.time_base = fractions.Fraction(1, 1000)
    if encoder != "mpeg2video":  # the encoder counts in milliseconds too (MPEG-2 only takes its standard rates)
        stream.codec_context.time_base = stream.time_base
    stream.options = {**({"crf": str(crf)} if crf is not None else {}), **quiet(encoder), **FAST.get(encoder, {}),
                      **(options or {})}
    if bt709:
        ctx = stream.codec_context
        ctx.colorspace, ctx.color_primaries, ctx.color_trc, ctx.color_range = 1, 1, 1, 1
    if rotation:
        stream.set_display_rotation(rotation)
    sound = container.add_stream("aac", rate=48000) if audio else None
    pts, packets = 0, []
    for i, pixels in enumerate(originals):
        frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
        if bt709:
            frame = frame.reformat(format="yuv420p", dst_colorspace="itu709", dst_color_range=1)
        frame.pts, frame.time_base = pts, stream.time_base
        pts += 42 if not vfr else (30 if i % 3 else 80)  # a variable rate: irregular gaps
        packets += stream.encode(frame)
    packets += stream.encode()
    for packet in packets:  # (muxed after encoding: PyAV 18 muxing between encodes upset x264's last timestamps)
        container.mux(packet)
    if sound is not None:
        _sine(container, sound, seconds=pts / 1000)
    container.close()
    return originals


def _sine(container, stream, seconds: float) -> None:
    t = np.arange(int(48000 * seconds)) / 48000
    samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for start in range(0, len(samples), 1024):
        chunk = samples[start:start + 1024]
        frame = av.AudioFrame.from_ndarray(chunk[None], format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def with_subtitles(src, dest) -> None:
    """`src` with an SRT subtitle track added by the ffmpeg command line (mov_text in MP4, SRT in MKV)."""
    srt = dest.with_suffix(".srt")
    srt.write_text("1\n00:00:00,000 --> 00:00:00,400\nhello\n\n2\n00:00:00,400 --> 00:00:00,900\nworld\n")
    subtitle_codec = "mov_text" if str(dest).endswith(".mp4") else "srt"
    subprocess.run([ffmpeg(), "-v", "error", "-y", "-i", str(src), "-i", str(srt), "-map", "0", "-map", "1",
                    "-c", "copy", "-c:s", subtitle_codec, str(dest)], check=True)


def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None:
        __import__("pytest").skip("the ffmpeg command line is absent (CI installs Debian's ffmpeg)")
    return found


def trace(path, *fields) -> dict:
    """{field: [values in stream order]} of FFmpeg's trace_headers bitstream filter (its own header parser)."""
    out = subprocess.run([ffmpeg(), "-v", "debug", "-i", str(path), "-map", "0:v", "-c", "copy", "-bsf:v",
                          "trace_headers", "-f", "null", "-"], capture_output=True, text=True).stderr
    found = {f: [] for f in fields}
    for line in out.splitlines():
        m = re.search(r"\] \d+\s+(\w+)\s+[01]+ = (-?\d+)$", line)
        if m and m.group(1) in found:
            found[m.group(1)].append(int(m.group(2)))
    return found


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))
