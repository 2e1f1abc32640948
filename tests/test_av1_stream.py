"""codecs/av1_stream.py: the base_q_idx of every shown frame of an SVT-AV1 clip, hidden frames and frames shown
again included, as FFmpeg's own header parser reads the stream."""

import pytest

from _clips import av, make_clip, trace
from qgac_jax.codecs import av1_stream


def _shown(traced):
    """The base_q_idx of each shown picture, replaying the trace's reference slots as a decoder does."""
    slots, shown = [None] * 8, []
    qs, kinds, show, refresh, index = (iter(traced[k]) for k in
                                       ("base_q_idx", "frame_type", "show_frame", "refresh_frame_flags",
                                        "frame_to_show_map_idx"))
    for existing in traced["show_existing_frame"]:
        if existing:
            shown.append(slots[next(index)])
            continue
        kind, visible, q = next(kinds), next(show), next(qs)
        flags = 0xFF if kind == 0 and visible else next(refresh)  # (a shown key frame refreshes every slot)
        for i in range(8):
            if flags >> i & 1:
                slots[i] = q
        if visible:
            shown.append(q)
    return shown


@pytest.mark.parametrize("options", [{}, {"svtav1-params": "log-level=0:keyint=6:hierarchical-levels=2"}])
def test_each_shown_frames_quantizer_is_ffmpegs(tmp_path, options):
    path = tmp_path / "clip.mkv"
    make_clip(path, "av1", frames=18, crf=40, options=options)
    traced = trace(path, "base_q_idx", "frame_type", "show_existing_frame", "show_frame", "refresh_frame_flags",
                   "frame_to_show_map_idx")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        reader = av1_stream.Av1Stream(bytes(stream.codec_context.extradata or b""))
        frames = [reader.read(bytes(p)) for p in container.demux(stream) if p.size]
    assert len(frames) == 18 and any(traced["show_existing_frame"])  # (hidden frames shown again are tested)
    assert [q.base_q_idx for q in frames] == _shown(traced)
    assert frames[0].frame_type == "I" and "P" in {q.frame_type for q in frames[1:]}
