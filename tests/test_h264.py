"""codecs/h264.py: each macroblock's QP from FFmpeg's side data, the chroma offsets from the stream's parameter
sets, and the map they make."""

import numpy as np
import pytest

from _clips import av, make_clip, trace
from av.sidedata.sidedata import Type
from qgac_jax.codecs import h264
from qgac_jax.codecs.heic import qp_step
from qgac_jax.files import clips


def test_the_frames_qps_and_chroma_offsets_are_the_streams(tmp_path):
    path = tmp_path / "clip.mp4"
    make_clip(path, "h264", frames=12, crf=30)
    traced = trace(path, "pic_init_qp_minus26", "slice_qp_delta", "chroma_qp_index_offset",
                   "second_chroma_qp_index_offset")
    with av.open(str(path)) as container:
        offsets = h264.chroma_offsets(bytes(container.streams.video[0].codec_context.extradata))
    assert offsets == (traced["chroma_qp_index_offset"][0], traced["second_chroma_qp_index_offset"][0])
    assert offsets == (-2, -2)  # x264's psychovisual default
    frames = list(clips.frames(path, clips.probe(path)))
    slice_qps = sorted(26 + traced["pic_init_qp_minus26"][0] + d for d in traced["slice_qp_delta"])
    with av.open(str(path)) as container:  # the side data: the PPS's QP, and each macroblock's change of it
        stream = container.streams.video[0]
        stream.codec_context.options = {"export_side_data": "venc_params"}
        params = [f.side_data[Type.VIDEO_ENC_PARAMS] for f in container.decode(stream)]
    assert {int(p.qp) for p in params} == {26 + traced["pic_init_qp_minus26"][0]}
    assert all(np.array_equal(f.quantization.qps, p.qp_map()) for f, p in zip(frames, params))
    assert any(f.quantization.qps.std() > 0 for f in frames)  # a QP per macroblock, not one per frame
    # each frame's macroblocks sit around its slice's QP (x264's adaptive quantization moves them a few steps)
    medians = np.array(sorted(float(np.median(f.quantization.qps)) for f in frames))
    assert np.abs(medians - np.array(slice_qps)).max() <= 5 and np.abs(medians - np.array(slice_qps)).mean() <= 2
    assert {f.quantization.frame_type for f in frames} >= {"I", "P", "B"}
    assert all(f.quantization.qps.shape == (6, 8) for f in frames)  # 96x128: 6 x 8 macroblocks


def test_the_map_is_each_macroblocks_step_and_moves_with_the_frame():
    qps = np.array([[20, 30], [40, 51]])
    q = h264.H264Quantization(qps, (-2, 3))
    m = q.qmap(32, 32) * 255
    assert m.shape == (32, 32, 2) and np.allclose(m[0, 0, 0], qp_step(20)) and np.allclose(m[31, 31, 0], qp_step(51))
    # chroma: Table 8-15 (qPI 51 + 3 clips to 51 -> 39; 51 - 2 = 49 -> 39) for Cb and Cr, averaged
    assert np.allclose(m[31, 31, 1], (qp_step(39) + qp_step(39)) / 2)
    assert np.allclose(m[0, 16, 1], (qp_step(28) + qp_step(h264.chroma_qp(30, 3))) / 2)
    moved = q.transformed(True, False, True)
    assert np.array_equal(moved.qps, np.array([[40, 20], [51, 30]]))
    with pytest.raises(ValueError, match="lies outside"):
        h264.H264Quantization(np.array([[60]]))
