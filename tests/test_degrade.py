"""Training pairs from WebP, AVIF and HEIC beside JPEG: each guided by the Q-map its own file records."""

import io

import numpy as np
import pytest
from PIL import Image

from qgac_jax import codecs
from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax.data import degrade, on_device
from conftest import data_config, natural_image, take_batches


_config, _take = data_config, take_batches


def _codec_config(folder, **kw):
    pytest.importorskip("pillow_heif", reason="HEIC files are written by pillow-heif (the extra `test`)")
    return _config(sources=(f"folder:{folder}",), pipeline="pillow", workers=1, codecs=("jpeg", "webp", "avif", "heic"),
                   p_double=0.5, batch_size=8, **kw)


@pytest.mark.parametrize("grey", [False, True])
def test_a_codec_mix_guides_each_example_by_the_qmap_its_own_file_records(folder, grey):
    from qgac_jax import codecs

    config = _codec_config(folder, grey=grey)
    batches = _take(config, 3, keep_jpeg=True)
    k, c = (1, 1) if grey else (2, 3)
    seen = set()
    for batch in batches:
        assert batch["qmap"].shape == (8, 32, 32, k) and batch["compressed"].shape == (8, 32, 32, c)
        for i in range(8):
            codec = codecs.CODECS[int(batch["codec"][i])]
            seen.add(codec)
            data = batch["jpeg"][i]  # the file's bytes, whatever its codec
            assert codecs.sniff(data) == codec
            qmap = codecs.read_quantization(data).qmap(32, 32)
            if codec == "jpeg":  # a double JPEG is guided by both saves: at least the file's steps
                assert (batch["qmap"][i] >= qmap[..., :k] - 1e-7).all()
                continue
            np.testing.assert_allclose(batch["qmap"][i], qmap[..., :k] if qmap.shape[-1] >= k else
                                       np.repeat(qmap, k, -1), rtol=1e-6)
            assert 5 <= batch["quality"][i] <= 95 and batch["effective_quality"][i] == 100  # no earlier JPEG
            np.testing.assert_array_equal(batch["tables"][i, 0], qz.fold_luma(qmap[..., 0]))  # the estimator's view
            decoded = np.asarray(Image.open(io.BytesIO(data)).convert("L" if grey else "RGB")).reshape(32, 32, c)
            np.testing.assert_array_equal(np.round(batch["compressed"][i] * 255), decoded)
    assert seen == set(codecs.CODECS)


def test_a_codec_mix_is_deterministic_resumable_and_weighted(folder):
    config = _codec_config(folder, codec_weights=(0.0, 1.0, 0.0, 1.0))
    first, resumed = _take(config, 2), _take(config, 1, start_step=1)
    for key in first[1]:
        np.testing.assert_array_equal(first[1][key], resumed[0][key])
    assert set(np.concatenate([b["codec"] for b in first]).tolist()) == {1, 3}  # webp and heic only
    (compact,) = _take(config, compact=True)  # the Q-maps travel as they are: on_device keeps them
    finished = on_device.make_prepare(config)(dict(compact))
    np.testing.assert_array_equal(np.asarray(finished["qmap"]), first[0]["qmap"])
    assert "guide_tables" not in finished


@pytest.mark.parametrize("kwargs, message", [
    (dict(codecs=("jpeg", "gif")), "data.codecs .* must name each of jpeg, webp, avif, heic, h264, hevc, vp9, av1 at "
                                   "most once"),
    (dict(codecs=("webp", "webp")), "at most once"),
    (dict(codecs=("jpeg", "webp"), codec_weights=(1.0,)), "one non-negative weight per codec"),
    (dict(codecs=("jpeg", "webp"), pipeline="tf.data"), "need data.pipeline='pillow'"),
    (dict(codec_q_min=0), "data.codec_q_min"),
    (dict(codec_p_jpeg_first=1.5), "data.codec_p_jpeg_first must lie in"),
])
def test_bad_codec_configs_fail_at_start_up(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _config(**{"pipeline": "pillow", **kwargs})


def test_a_jpeg_only_stream_is_unchanged_by_the_codec_fields(folder):
    """The codec draw happens only when there is more than one codec, so existing runs resume identically."""
    rng_state = np.random.default_rng(3)
    config = _config(sources=(f"folder:{folder}",), pipeline="pillow", workers=1)
    crop = np.asarray(natural_image(40, 40))
    got = degrade.degrade(config, crop, np.random.default_rng(3))
    assert "codec" not in got and "qmap" not in got
    quality = int(rng_state.integers(config.q_min, config.q_max + 1))  # the recipe's first draw is the quality
    assert got["quality"] == quality


@pytest.mark.parametrize("codec", ["webp", "heic"])
def test_a_codec_save_of_an_earlier_jpeg_is_guided_by_both_and_labelled_with_the_jpeg(codec):
    """codec_p_jpeg_first = 1: the photo went through a JPEG (quality, shift from the double-JPEG recipe) and
    then the codec; the guide is the max of the two maps, the estimator's label the JPEG's quality."""
    config = _config(pipeline="pillow", codecs=("jpeg", codec), codec_weights=(0.0, 1.0), codec_p_jpeg_first=1.0,
                     p_shift=1.0, first_q_min=10, first_q_max=30, patch_size=32)
    assert config.crop_size == 40  # room for the shifted first save
    crop = np.asarray(natural_image(40, 40))
    for seed in range(3):
        ex = degrade.degrade(config, crop, np.random.default_rng(seed))
        dy, dx = (8 - ex["grid_shift"]) % 8
        assert (dy, dx) != (0, 0) and 10 <= ex["effective_quality"] <= 30
        np.testing.assert_array_equal(ex["target"], crop[dy:dy + 32, dx:dx + 32])  # the clean window
        first = qz.ijg_tables(int(ex["effective_quality"]))
        jpeg_map = qz.qmap(*first, 32, 32, "4:2:0")
        assert (ex["qmap"] >= jpeg_map - 1e-7).all()
        assert ex["qmap"][..., 0].std() > 0  # the JPEG's 8x8 pattern, above a codec's own (HEIC: flat) map
    with_file = degrade.degrade(config, crop, np.random.default_rng(0), keep_jpeg=True)
    own = codecs.read_quantization(with_file["jpeg"]).qmap(32, 32)[..., :2]
    first = qz.ijg_tables(int(with_file["effective_quality"]))
    np.testing.assert_allclose(with_file["qmap"], np.maximum(own, qz.qmap(*first, 32, 32, "4:2:0")), rtol=1e-6)
    np.testing.assert_array_equal(with_file["tables"][0], qz.fold_luma(own[..., 0]))  # the file's, not the guide's
