"""evaluation/clip_protocol.py and evaluate --video: clips of photos under a moving camera, the decoded and the
restored frames against the originals, the one-quality workaround, and the temporal error."""

import json

import numpy as np
import pytest

from _clips import av  # noqa: F401 - (skips without PyAV)
from qgac_jax import evaluate
from qgac_jax.evaluation import clip_protocol


def test_cases_are_codec_and_crf():
    assert clip_protocol.parse_cases("h264:35, av1:40") == [("h264", 35), ("av1", 40)]
    for bad in ("mpeg2:3", "h264", "h264:x", "vp9:99", ""):
        with pytest.raises(ValueError):
            clip_protocol.parse_cases(bad)


def test_the_temporal_error_sees_flicker_and_not_motion():
    originals = [np.full((4, 4, 3), v, np.uint8) for v in (10, 20, 30, 40)]  # a steady change
    assert clip_protocol.temporal_error(originals, originals) == 0.0
    shifted = [o + 5 for o in originals]  # off by a constant: no flicker
    assert clip_protocol.temporal_error(shifted, originals) == 0.0
    flicker = [o + (5 if i % 2 else 0) for i, o in enumerate(originals)]
    assert clip_protocol.temporal_error(flicker, originals) == 5.0


def test_an_identity_restorer_measures_the_decoded_clip():
    result = clip_protocol.evaluate_clips(lambda pixels, q, mode: pixels, "builtin", [("h264", 40)], max_images=2,
                                          workaround=(30,))
    case = result["cases"]["h264:40"]
    assert result["images"] == 2 and 20 < case["decoded_psnr"] < 45
    assert case["model_psnr"] == pytest.approx(case["decoded_psnr"], abs=0.01) == case["told_30_psnr"]
    assert case["model_temporal"] == pytest.approx(case["decoded_temporal"], abs=0.01) and case["bpp"] > 0


def test_evaluate_video_prints_the_table_and_writes_json(tmp_path, capsys, colour_export):
    out = tmp_path / "v.json"
    assert evaluate.run(["--video", "hevc:38", "--images", "builtin", "--max-images", "1", "--checkpoint",
                         str(colour_export), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| hevc:38 |" in printed and "temporal error, decoded -> restored" in printed
    saved = json.loads(out.read_text())
    assert saved["images"] == 1 and set(saved["cases"]) == {"hevc:38"}
    with pytest.raises(SystemExit):
        evaluate.parse_args(["--video", "h264:35", "--qualities", "10", "--images", "builtin"])
