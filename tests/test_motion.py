"""data/motion.py: training frames of real video encodes, each with the quantizers its codec recorded."""

import numpy as np
import pytest

from _clips import av  # noqa: F401 - (skips without PyAV)
from qgac_jax.data import degrade, motion
from conftest import coffee
from qgac_jax.data.options import ALL_CODECS, DataConfig


def test_the_camera_moves_over_the_crop():
    crop = np.random.default_rng(0).integers(0, 255, (120, 120, 3), np.uint8)
    clip = motion.camera(crop, 96, 6, np.random.default_rng(1))
    assert clip.shape == (6, 96, 96, 3) and clip.dtype == np.uint8
    assert all(np.abs(clip[t].astype(int) - clip[t + 1]).mean() > 1 for t in range(5))  # every frame moved


@pytest.mark.parametrize("codec", motion.VIDEO_CODECS)
def test_a_frame_of_each_codec_is_told_its_own_quantizers(codec):
    rng = np.random.default_rng(2)
    example = motion.video_example(coffee()[:112, :112], 96, codec, False, rng)
    assert example["compressed"].shape == example["target"].shape == (96, 96, 3)
    assert example["qmap"].shape == (96, 96, 2) and example["qmap"].min() > 0
    lo, hi = motion.ENCODERS[codec][1]
    assert lo <= int(example["quality"]) <= hi and int(example["frame_type"]) in (0, 1, 2)
    error = np.abs(example["compressed"].astype(int) - example["target"]).mean()
    assert 0.5 < error < 30  # a real encode of the target: close, not equal


def test_degrade_mixes_frames_of_clips_into_a_codec_mix():
    config = DataConfig(sources=("builtin",), patch_size=96, batch_size=4, pipeline="pillow", workers=1,
                        codecs=("jpeg", "h264", "av1"), codec_weights=(0.2, 0.4, 0.4))
    rng = np.random.default_rng(0)
    crop = coffee()[:config.crop_size, :config.crop_size]
    examples = [degrade.degrade(config, crop, rng) for _ in range(8)]
    assert {ALL_CODECS[int(e["codec"])] for e in examples} == {"jpeg", "h264", "av1"}
    assert all(e["qmap"].shape == (96, 96, 2) and e["compressed"].shape == (96, 96, 3) for e in examples)
    with pytest.raises(ValueError, match="must name each of"):
        DataConfig(codecs=("mpeg2",), pipeline="pillow")
