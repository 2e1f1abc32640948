import dataclasses
import io
import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from qgac_jax import data as ip
from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax.codecs import jpeg
from qgac_jax.data import degrade, on_device, sources, tf_pipeline
from conftest import data_config, natural_image, shared_dataset, take_batches


_config, _take = data_config, take_batches


@pytest.mark.parametrize("pipeline", ip.PIPELINES)
@pytest.mark.parametrize("p_random_table", [0.0, 1.0])
@pytest.mark.parametrize("grey", [False, True])
def test_qmap_equals_tables_read_back_from_the_produced_jpeg(folder, p_random_table, grey, pipeline):
    config = _config(sources=(f"folder:{folder}",), p_random_table=p_random_table, grey=grey, batch_size=8,
                     pipeline=pipeline, workers=1)
    (batch,) = _take(config, keep_jpeg=True)
    c, k = (1, 1) if grey else (3, 2)
    assert batch["compressed"].shape == (8, 32, 32, c) and batch["target"].shape == (8, 32, 32, c)
    assert batch["qmap"].shape == (8, 32, 32, k)
    ijg = {tuple(qz.ijg_tables(q)[0].ravel()) for q in range(1, 101)}
    for i in range(8):
        data = batch["jpeg"][i]
        tables = jpeg.read_quantization(data)
        assert tables.is_grey == grey
        np.testing.assert_array_equal(tables.qmap(32, 32), batch["qmap"][i])
        # The decoder is bit-exact with Pillow, which restore and evaluation use.
        decoded = np.asarray(Image.open(io.BytesIO(data))).reshape(32, 32, c)
        np.testing.assert_array_equal(np.round(batch["compressed"][i] * 255), decoded)
        if p_random_table == 0.0:
            q = int(batch["quality"][i])
            assert 5 <= q <= 95
            np.testing.assert_array_equal(tables.luma, qz.ijg_tables(q)[0])
        else:
            assert batch["quality"][i] == 0
            assert tuple(tables.luma.ravel()) not in ijg or i > 6  # nearly always non-IJG
    assert not np.array_equal(batch["compressed"], batch["target"])
    assert 0.0 <= batch["target"].min() and batch["target"].max() <= 1.0


@pytest.mark.parametrize("pipeline", ip.PIPELINES)
@pytest.mark.parametrize("subsampling", ["4:4:4", "4:2:2"])
def test_other_subsamplings_are_written_and_mapped(folder, subsampling, pipeline):
    config = _config(sources=(f"folder:{folder}",), subsampling=subsampling, batch_size=2, pipeline=pipeline, workers=1)
    (batch,) = _take(config, keep_jpeg=True)
    for i in range(2):
        tables = jpeg.read_quantization(batch["jpeg"][i])
        assert tables.subsampling == subsampling
        np.testing.assert_array_equal(tables.qmap(32, 32), batch["qmap"][i])


@pytest.mark.parametrize("pipeline", ip.PIPELINES)
def test_same_seed_same_stream_and_resume_at_a_step(folder, pipeline):
    config = _config(sources=(f"folder:{folder}",), p_random_table=0.3, p_double=0.5, pipeline=pipeline, workers=1)
    first = _take(config, 3)
    # Two worker processes (pillow) make the same stream as one.
    again = _take(dataclasses.replace(config, workers=2) if pipeline == "pillow" else config, 3)
    resumed = _take(config, 1, start_step=2)
    other_seed = _take(dataclasses.replace(config, seed=1), 1)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    for key in first[2]:
        np.testing.assert_array_equal(first[2][key], resumed[0][key])
    assert not np.array_equal(first[0]["target"], other_seed[0]["target"])
    assert not np.array_equal(first[0]["target"], first[1]["target"])


@pytest.mark.parametrize("pipeline", ip.PIPELINES)
def test_two_processes_read_disjoint_shards_and_split_the_batch(folder, pipeline):
    config = _config(sources=(f"folder:{folder}",), batch_size=8, pipeline=pipeline, workers=1)
    banks = [ip.build_bank(config, p, 2) for p in range(2)]
    assert len(banks[0]) == 3 and len(banks[1]) == 3
    images = [{banks[p].image(k).tobytes() for k in range(3)} for p in range(2)]
    assert not images[0] & images[1]
    for p in range(2):
        (batch,) = _take(config, process_index=p, process_count=2, bank=banks[p])
        assert batch["target"].shape[0] == 4  # global 8 over 2 hosts
        # Every crop comes from this host's own images.
        for crop in (batch["target"] * 255).round().astype(np.uint8):
            assert any(_contains_crop(banks[p].image(k), crop) for k in range(3))
    with pytest.raises(ValueError, match="not divisible"):
        _take(dataclasses.replace(config, batch_size=3), process_index=0, process_count=2)


def _contains_crop(image, crop):
    """Whether some rotation/flip of `crop` appears in `image` (slow, fine for tiny images)."""
    ph = crop.shape[0]
    variants = [np.rot90(c, r) for c in (crop, crop[:, ::-1]) for r in range(4)]
    h, w = image.shape[:2]
    for y in range(h - ph + 1):
        for x in range(w - ph + 1):
            window = image[y:y + ph, x:x + ph]
            if any(np.array_equal(window, v) for v in variants):
                return True
    return False


def test_images_smaller_than_the_patch_are_mirror_padded():
    tiny = natural_image(5, 3)
    padded = ip.pad_to_patch(tiny, 32)
    assert padded.shape == (32, 32, 3)
    np.testing.assert_array_equal(padded[:5, :3], tiny)
    np.testing.assert_array_equal(padded[5, :3], tiny[4])  # symmetric: the edge row repeats


def test_corrupt_files_are_skipped_with_a_warning(folder, tmp_path, caplog):
    for src in folder.glob("*.png"):
        (tmp_path / src.name).write_bytes(src.read_bytes())
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "truncated.png").write_bytes((folder / "a.png").read_bytes()[:200])
    with caplog.at_level(logging.WARNING):
        (batch,) = _take(_config(sources=(f"folder:{tmp_path}",)))
    assert batch["target"].shape == (4, 32, 32, 3)
    assert "skipped 2 unreadable image(s) of 4" in caplog.text


def test_weights_mix_sources(folder, tmp_path):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "black.png")
    config = _config(sources=(f"folder:{folder}", f"folder:{tmp_path}"), weights=(0.0, 1.0), batch_size=8)
    (batch,) = _take(config)
    assert batch["target"].max() == 0.0  # only the black source is ever drawn
    bank = ip.build_bank(_config(sources=(f"folder:{folder}", f"folder:{tmp_path}"), weights=(3.0, 1.0)))
    assert bank.probs[:6].sum() == pytest.approx(0.75)


def test_builtin_source_works_offline():
    for grey in (False, True):
        config = _config(sources="builtin", grey=grey, patch_size=64)
        bank = ip.build_bank(config)
        assert len(bank) == (12 if grey else 6)
        (batch,) = _take(config, bank=bank)
        assert batch["target"].shape == (4, 64, 64, 1 if grey else 3)
        assert batch["target"].std() > 0.05


def test_tfds_source_through_mock_data(monkeypatch):
    import tensorflow_datasets as tfds

    # mock_data stands in for the download; tell the reachability probe the host is up.
    monkeypatch.setattr(sources, "_unreachable_host", lambda urls: None)
    config = _config(sources="tfds:div2k/bicubic_x2:train")
    with tfds.testing.mock_data(num_examples=4):
        bank = ip.build_bank(config, 0, 2)
        (batch,) = _take(config, bank=bank, process_index=0, process_count=2)
    assert len(bank) == 2  # half of the 4 mock examples
    assert batch["target"].shape == (2, 32, 32, 3)


def test_unknown_tfds_name_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown tfds dataset 'no_such_dataset_xyz'"):
        ip.load_source("tfds:no_such_dataset_xyz:train", grey=False)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(q_min=60, q_max=40), "q_min \\(60\\) is above data.q_max \\(40\\)"),
        (dict(q_min=0), "quality"),
        (dict(p_random_table=1.5), "p_random_table"),
        (dict(patch_size=30), "multiple of 8"),
        (dict(subsampling="4:1:1"), "subsampling"),
        (dict(sources=("a", "b"), weights=(1.0,)), "one non-negative weight per source"),
        (dict(sources=()), "sources is empty"),
        (dict(pipeline="torch"), "data.pipeline must be one of"),
        (dict(workers=-1), "data.workers"),
    ],
)
def test_bad_configs_fail_at_start_up(kwargs, message):
    with pytest.raises(ValueError, match=message):
        _config(**kwargs)


def test_missing_empty_and_unknown_sources(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        ip.load_source(f"folder:{tmp_path / 'nope'}", grey=False)
    with pytest.raises(ValueError, match="holds no images"):
        ip.load_source(f"folder:{tmp_path}", grey=False)
    (tmp_path / "x.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="none of its 1 image"):
        ip.load_source(f"folder:{tmp_path}", grey=False)
    with pytest.raises(ValueError, match="unknown data source"):
        ip.load_source("http://example", grey=False)
    with pytest.raises(ValueError, match="unknown data options"):
        ip.DataConfig.from_config({"patch": 3})


@pytest.mark.parametrize("subsampling", [None, "4:2:0", "4:2:2", "4:4:4"])
def test_qmap_tf_matches_numpy_eagerly_and_inside_tf_data(subsampling):
    luma, chroma = qz.random_tables(np.random.default_rng(3))
    chroma = None if subsampling is None else chroma
    want = qz.qmap(luma, chroma, 37, 45, subsampling)
    eager = tf_pipeline.qmap_tf(tf.constant(luma), None if chroma is None else tf.constant(chroma), 37, 45, subsampling)
    np.testing.assert_array_equal(eager.numpy(), want)
    ds = tf.data.Dataset.from_tensors((luma, luma if chroma is None else chroma)).map(
        lambda luma, c: tf_pipeline.qmap_tf(luma, None if chroma is None else c, 37, 45, subsampling))
    np.testing.assert_array_equal(next(iter(ds)).numpy(), want)


def test_shared_training_folder_streams():
    root = shared_dataset("t91")
    (batch,) = _take(_config(sources=(f"folder:{root}",), patch_size=64, batch_size=4))
    assert batch["target"].shape == (4, 64, 64, 3)


def test_example_fn_is_the_same_eagerly_and_inside_tf_data(folder):
    config = _config(sources=(f"folder:{folder}",), p_random_table=0.5, p_double=0.5, batch_size=1)
    bank = ip.build_bank(config)
    example = tf_pipeline.make_example_fn(config, bank)
    seed = tf.constant([config.seed, 0], tf.int64)
    batches = _take(config, 4, bank=bank)
    for step in range(4):
        eager = example(tf.constant(step, tf.int64), seed)
        for key in ("compressed", "target", "qmap", "quality", "effective_quality", "grid_shift"):
            np.testing.assert_array_equal(eager[key].numpy(), batches[step][key][0])


def test_unprepared_tfds_dataset_offline_fails_fast_with_a_hint(monkeypatch, tmp_path):
    import socket

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", offline)  # as on a machine without internet
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(ValueError, match="could not be fetched: .* is unreachable.*folder:/path/to/images"):
        ip.load_source("tfds:div2k/bicubic_x2:train", grey=False)


def test_both_pipelines_draw_the_same_distribution(folder):
    """Different streams, one recipe: qualities, random-table share and JPEG damage agree."""
    stats = {}
    for pipeline in ip.PIPELINES:
        config = _config(sources=(f"folder:{folder}",), p_random_table=0.25, batch_size=64, pipeline=pipeline,
                         workers=1, q_min=10, q_max=40)
        batches = _take(config, 4)
        quality = np.concatenate([b["quality"] for b in batches])
        mse = np.concatenate([((b["compressed"] - b["target"]) ** 2).mean(axis=(1, 2, 3)) for b in batches])
        ijg = quality > 0
        assert quality[ijg].min() >= 10 and quality[ijg].max() <= 40
        stats[pipeline] = (1 - ijg.mean(), quality[ijg].mean(), np.log10(mse[ijg]).mean())
    (share_a, q_a, err_a), (share_b, q_b, err_b) = stats.values()
    assert abs(share_a - 0.25) < 0.1 and abs(share_b - 0.25) < 0.1  # 256 draws: 3.5 sigma
    assert abs(q_a - 25) < 3 and abs(q_b - 25) < 3
    assert abs(err_a - err_b) < 0.2  # mean log10 MSE: the same JPEG damage


@pytest.mark.parametrize("pipeline", ip.PIPELINES)
@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_double_jpeg_is_two_saves_whose_last_tables_are_in_the_file(folder, pipeline, shift):
    config = _config(sources=(f"folder:{folder}",), batch_size=16, p_double=1.0, p_shift=shift, first_q_min=5,
                     first_q_max=20, q_min=70, q_max=90, pipeline=pipeline, workers=1)
    (batch,) = _take(config, keep_jpeg=True)
    for i in range(16):
        data = batch["jpeg"][i]
        tables = jpeg.read_quantization(data)
        q = int(batch["quality"][i])
        np.testing.assert_array_equal(tables.luma, qz.ijg_tables(q)[0])  # the second save's tables
        np.testing.assert_array_equal(batch["tables"][i][0], tables.luma)
        # Not one save: saving the clean target once with the file's tables gives other pixels.
        target = (batch["target"][i] * 255).round().astype(np.uint8)
        once = degrade.pillow_decode(degrade.pillow_encode(target, tables.luma, tables.chroma, "4:2:0"), False)
        compressed = (batch["compressed"][i] * 255).round().astype(np.uint8)
        assert np.abs(once.astype(int) - compressed).mean() > 0.5
        # The guide is the coarser first save's: above the file's tables, its quality the first one's.
        guide_luma = np.round(batch["qmap"][i][:8, :8, 0] * 255).astype(np.int32)
        assert (guide_luma >= tables.luma).all() and (guide_luma > tables.luma).any()
        assert batch["effective_quality"][i] == qz.equivalent_quality(guide_luma) <= 20
        assert (batch["grid_shift"][i] != 0).any() == bool(shift)


@pytest.mark.parametrize("pipeline", ip.PIPELINES)
def test_compact_batches_finished_on_device_equal_the_host_batches(folder, pipeline):
    config = _config(sources=(f"folder:{folder}",), p_random_table=0.3, p_double=0.5, pipeline=pipeline, workers=1,
                     subsampling="4:2:0")
    (host,) = _take(config)
    (compact,) = _take(config, compact=True)
    assert compact["compressed"].dtype == np.uint8 and "qmap" not in compact
    finished = on_device.make_prepare(config)({k: v for k, v in compact.items()})
    for key in ("compressed", "target", "tables", "quality", "effective_quality", "grid_shift"):
        np.testing.assert_array_equal(np.asarray(finished[key]), host[key])
    np.testing.assert_allclose(np.asarray(finished["qmap"]), host["qmap"], rtol=0, atol=1e-7)


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
@pytest.mark.parametrize("grey", [False, True])
def test_on_device_qmap_equals_quantization_qmap(subsampling, grey):
    rng = np.random.default_rng(5)
    tables = np.stack([np.stack(qz.random_tables(rng)) for _ in range(3)])
    got = np.asarray(on_device.qmap(tables, 37, 45, grey, subsampling))
    want = np.stack([qz.qmap(t[0], None if grey else t[1], 37, 45, subsampling) for t in tables])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-7)  # within one float32 rounding


def test_double_jpeg_config_is_validated():
    with pytest.raises(ValueError, match="first_q_min \\(50\\) is above data.first_q_max \\(40\\)"):
        _config(first_q_min=50, first_q_max=40)
    with pytest.raises(ValueError, match="p_double"):
        _config(p_double=2.0)
    assert _config(p_double=0.5, p_shift=0.5).crop_size == 40 and _config(p_double=0.5, p_shift=0.0).crop_size == 32

