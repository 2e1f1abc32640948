"""codecs/hevc_stream.py: the QP of each x265 picture (I, P, B) as FFmpeg's own header parser reads it."""

import pytest

from _clips import av, make_clip, trace
from qgac_jax.codecs import hevc_stream


@pytest.mark.parametrize("options", [
    {},  # x265's defaults: B-frames, weighted P prediction, reference picture sets in the SPS
    {"x265-params": "log-level=error:bframes=5:b-pyramid=1:ref=4:weightb=1:keyint=8"},
    {"x265-params": "log-level=error:bframes=0:ref=1:slices=2:no-weightp=1"},
])
def test_every_pictures_slice_qps_are_ffmpegs(tmp_path, options):
    path = tmp_path / "clip.mp4"
    make_clip(path, "hevc", frames=20, crf=30, options=options)
    traced = trace(path, "init_qp_minus26", "slice_qp_delta", "slice_type")
    init = 26 + traced["init_qp_minus26"][0]
    expected = [init + d for d in traced["slice_qp_delta"]]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        reader = hevc_stream.HevcStream(bytes(stream.codec_context.extradata))
        pictures = [reader.read(bytes(p)) for p in container.demux(stream) if p.size]
    assert [qp for q in pictures for qp in q.slice_qps] == expected
    assert {q.frame_type for q in pictures} >= ({"I", "P", "B"} if "bframes=0" not in str(options) else {"I", "P"})
    assert len(pictures) == 20 and all(q.codec == "hevc" and q.qmap(8, 8).shape == (8, 8, 2) for q in pictures)


def test_a_cut_packet_is_a_value_error(tmp_path):
    path = tmp_path / "clip.mp4"
    make_clip(path, "hevc", frames=4)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        reader = hevc_stream.HevcStream(bytes(stream.codec_context.extradata))
        packets = [bytes(p) for p in container.demux(stream) if p.size]
    reader.read(packets[0])
    for cut in (packets[1][:3], packets[1][:9], b"\0\0\0\x40" + packets[1][4:]):
        with pytest.raises(ValueError):
            reader.read(cut)
