"""codecs/vp9.py: each frame's q index, as FFmpeg's side data gives it and its own header parser reads it."""

import numpy as np

from _clips import make_clip, trace
from qgac_jax.codecs import av1_tables, vp9
from qgac_jax.files import clips


def test_each_frames_q_index_is_its_headers(tmp_path):
    path = tmp_path / "clip.webm"
    make_clip(path, "vp9", frames=10, crf=40)
    traced = trace(path, "base_q_idx", "show_frame", "show_existing_frame")
    frames = list(clips.frames(path, clips.probe(path)))
    shown = [q for q, s in zip(traced["base_q_idx"], traced["show_frame"]) if s]
    assert [f.quantization.q_index for f in frames] == shown and len(frames) == 10
    q = frames[0].quantization
    assert np.allclose(q.qmap(4, 4) * 255 * 8, av1_tables.AC_STEPS_8BIT[q.q_index])
    assert vp9.Vp9Quantization(255).describe().startswith("VP9 ?-frame, q index 255")
