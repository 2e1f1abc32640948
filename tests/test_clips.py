"""files/clips.py: what a clip is, each frame with its codec's quantization, one line for what cannot be restored,
and the frames of a damaged stretch named and skipped."""

import pytest

from _clips import av, make_clip
from qgac_jax.files import clips


@pytest.mark.parametrize("codec, suffix, kinds", [("h264", ".mp4", {"I", "P", "B"}), ("hevc", ".mkv", {"I", "P", "B"}),
                                                  ("vp9", ".webm", {"I", "P"}), ("av1", ".mkv", {"I", "P"})])
def test_every_frame_comes_with_its_own_quantization(tmp_path, codec, suffix, kinds):
    path = tmp_path / f"clip{suffix}"
    originals = make_clip(path, codec, frames=16, crf=36)
    info = clips.probe(path)
    assert (info.codec, info.width, info.height, info.pix_fmt) == (codec, 128, 96, "yuv420p")
    frames = list(clips.frames(path, info))
    assert [f.index for f in frames] == list(range(16)) and frames[0].pixels.shape == originals[0].shape
    assert {f.quantization.codec for f in frames} == {codec} and {f.quantization.frame_type for f in frames} >= kinds
    steps = [float(f.quantization.qmap(96, 128)[..., 0].mean()) for f in frames]
    assert len(set(steps)) > 1  # frames are told different quantizers (I-frames finer than B-frames, say)


@pytest.mark.parametrize("codec, suffix", [("h264", ".mp4"), ("hevc", ".mp4"), ("vp9", ".webm")])
def test_a_damaged_packet_loses_its_frame_by_name_and_the_rest_restore(tmp_path, codec, suffix):
    path = tmp_path / f"clip{suffix}"
    make_clip(path, codec, frames=24, crf=30)
    data = bytearray(path.read_bytes())
    with av.open(str(path)) as container:
        pos, size = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size][10]
    data[pos + 2:pos + size] = bytes(i % 256 for i in range(size - 2))  # one packet's payload scrambled
    (tmp_path / f"bad{suffix}").write_bytes(bytes(data))
    lost = []
    frames = list(clips.frames(tmp_path / f"bad{suffix}", clips.probe(tmp_path / f"bad{suffix}"), lost))
    assert len(frames) == 23 and len(lost) == 1 and lost[0].startswith("the frame at ")


def test_what_is_not_a_restorable_clip_is_one_line(tmp_path):
    (tmp_path / "text.mp4").write_text("not a video\n")
    audio = tmp_path / "audio.mp4"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=48000)
        import numpy as np

        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    make_clip(tmp_path / "mpeg2.mkv", "mpeg2video", frames=3, crf=None)
    expected = {"text.mp4": "not a video file FFmpeg can open", "audio.mp4": "no video stream in this file",
                "mpeg2.mkv": "MPEG-2 video video: only H.264, HEVC, VP9 and AV1 clips record quantizers"}
    for name, message in expected.items():
        with pytest.raises(clips.NotRestorable, match=message):
            clips.probe(tmp_path / name)


def test_a_ten_bit_clip_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "deep.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx265", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p10le"
        stream.options = {"x265-params": "log-level=error"}
        import numpy as np

        frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24").reformat(
            format="yuv420p10le")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    with pytest.raises(clips.NotRestorable, match="10-bit or deeper video in yuv420p10le: clips are restored in 8-bit"):
        clips.probe(path)


def test_a_clip_cut_short_names_the_frames_its_container_counts_but_does_not_hold(tmp_path):
    path = tmp_path / "clip.mp4"
    make_clip(path, "h264", frames=24, crf=30)
    whole = tmp_path / "whole.mp4"  # the index first (faststart), as phones write: a cut file still opens
    with av.open(str(path)) as src, av.open(str(whole), "w", options={"movflags": "faststart"}) as dest:
        out = dest.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.size:
                packet.stream = out
                dest.mux(packet)
    data = whole.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:len(data) * 2 // 3])
    lost = []
    info = clips.probe(tmp_path / "cut.mp4")
    frames = list(clips.frames(tmp_path / "cut.mp4", info, lost))
    assert info.frames == 24 and 0 < len(frames) < 24
    assert len(lost) <= 2 and all(line.startswith("the frame at ") for line in lost[:-1])  # (a packet cut in two)
    last = float(frames[-1].pts * info.time_base)
    assert lost[-1] == (f"{24 - len(frames) - len(lost) + 1} frame(s) after {last:.3f} s that the container counts "
                        "but the file does not hold (cut short?)")
