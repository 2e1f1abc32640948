"""ONNX export: the shipped models converted by the real converter and run by ONNX Runtime's CPU provider."""

import pathlib
import re
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("jax2onnx", reason="the ONNX export needs the extra: pip install -e '.[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime needs the extra: pip install -e '.[onnx]'")

from qgac_jax import Restorer, export, restore  # noqa: E402
from qgac_jax.codecs import jpeg_tables as qz  # noqa: E402
from qgac_jax.graphs import onnx_graph  # noqa: E402
from qgac_jax.models import shipped  # noqa: E402
from qgac_jax.models import exports  # noqa: E402
from conftest import jpeg_bytes, natural_image  # noqa: E402

QUALITY = 30
pytestmark = pytest.mark.skipif(shipped.default_checkpoint(1) is None or shipped.default_checkpoint(3) is None,
                                reason="this version ships no pretrained models")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{(channels, quality or None): path} written by the export CLI, for the shipped colour and grey models."""
    d = tmp_path_factory.mktemp("onnx")
    paths = {}
    for channels in (3, 1):
        for quality in (None, QUALITY):
            path = d / f"c{channels}_q{quality}.onnx"
            argv = ["--output", str(path), "--channels", str(channels)]
            argv += ["--quality", str(quality)] if quality else []
            assert export.run(argv) == 0
            paths[channels, quality] = path
    return paths


def _flax(channels):
    model, params, _ = exports.load_export(shipped.default_checkpoint(channels))
    return lambda y, q: np.clip(np.asarray(model.apply({"params": params}, y, q)), 0.0, 1.0)


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _nchw(x):
    return np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)))


@pytest.mark.slow
@pytest.mark.parametrize("channels", [3, 1])
def test_onnx_equals_flax_on_odd_sizes_and_batches(exported, channels):
    session, flax = _session(exported[channels, None]), _flax(channels)
    k = 2 if channels == 3 else 1
    rng = np.random.default_rng(channels)
    for n, h, w in [(1, 67, 93), (2, 128, 64), (1, 9, 5)]:
        y = rng.random((n, h, w, channels), np.float32)
        q = rng.uniform(1 / 255, 0.5, (n, h, w, k)).astype(np.float32)
        got = session.run(["restored"], {"image": _nchw(y), "qmap": _nchw(q)})[0]
        assert got.shape == (n, channels, h, w)
        want = _nchw(flax(y, q))
        assert np.abs(got - want).max() < 1e-4, (n, h, w)
        assert np.abs(want - _nchw(y)).max() > 1e-3  # the model changed something: not an identity both ways


@pytest.mark.slow
@pytest.mark.parametrize("channels", [3, 1])
def test_quality_graph_equals_two_input_graph_fed_its_qmap(exported, channels):
    one, two = _session(exported[channels, QUALITY]), _session(exported[channels, None])
    assert [i.name for i in one.get_inputs()] == ["image"]
    luma, chroma = qz.ijg_tables(QUALITY)
    rng = np.random.default_rng(7)
    for n, h, w in [(1, 67, 93), (2, 40, 24)]:
        y = rng.random((n, h, w, channels), np.float32)
        q = np.repeat(qz.qmap(luma, chroma if channels == 3 else None, h, w, "4:2:0")[None], n, 0)
        a = one.run(["restored"], {"image": _nchw(y)})[0]
        b = two.run(["restored"], {"image": _nchw(y), "qmap": _nchw(q)})[0]
        np.testing.assert_allclose(a, b, atol=1e-6)
    # a different quality's tables give a different result: the built-in tables are really used
    other = np.repeat(qz.qmap(*qz.ijg_tables(90), h, w, "4:2:0")[None], n, 0)[..., :2 if channels == 3 else 1]
    c = two.run(["restored"], {"image": _nchw(y), "qmap": _nchw(other)})[0]
    assert np.abs(a - c).max() > 1e-3


@pytest.mark.slow
def test_graph_records_contract_opset_and_producer(exported):
    import onnx

    proto = onnx.load(str(exported[3, None]))
    assert proto.producer_name == "qgac_jax"
    assert {o.domain: o.version for o in proto.opset_import}[""] == onnx_graph.OPSET
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in proto.graph.input}
    assert inputs == {"image": ["N", 3, "H", "W"], "qmap": ["N", 2, "H", "W"]}
    meta = onnx_graph.metadata(exported[3, None])
    assert '"variant": "small"' in meta["qgac_jax.model_config"] and "steps / 255" in meta["qgac_jax.qmap"]
    assert onnx_graph.metadata(exported[1, QUALITY])["qgac_jax.quality"] == str(QUALITY)


@pytest.mark.slow
@pytest.mark.parametrize("channels", [3, 1])
def test_real_jpeg_restored_end_to_end_agrees_with_jax(exported, channels, tmp_path):
    img = natural_image(150, 203, seed=channels)
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes(img if channels == 3 else img[..., 0], quality=20))
    kwargs = dict(estimator="shipped", tile=64, overlap=16)  # several tiles: the tiling path too
    jax_out = Restorer.from_checkpoint(shipped.default_checkpoint(channels), **kwargs).restore(path)
    onnx_out = Restorer.from_onnx(exported[channels, None], **kwargs).restore(path)
    assert jax_out.shape == onnx_out.shape == img.shape[:2] + ((3,) if channels == 3 else ())
    mse = np.mean((jax_out.astype(np.float64) - onnx_out) ** 2)
    assert mse == 0 or 10 * np.log10(255.0**2 / mse) > 50


@pytest.mark.slow
def test_restore_cli_with_onnx(exported, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes(jpeg_bytes(natural_image(48, 64), quality=20))
    assert restore.run([str(src), "--output", str(tmp_path / "out"), "--onnx", str(exported[3, None])]) == 0
    assert (tmp_path / "out" / "a.png").exists()
    not_onnx = tmp_path / "not.onnx"
    not_onnx.write_text("hello")
    assert restore.run([str(src), "--output", str(tmp_path / "out2"), "--onnx", str(not_onnx)]) == 2
    assert restore.run([str(src), "--output", str(tmp_path / "out3"), "--onnx", str(exported[3, QUALITY])]) == 2
    err = capsys.readouterr().err
    assert "not an ONNX model" in err and "two-input export" in err and "Traceback" not in err
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())


@pytest.mark.slow
def test_restore_defaults_to_onnx_runtime_on_cpu_and_converts_once(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("QGAC_BACKEND", raising=False)
    monkeypatch.setenv("QGAC_ONNX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(shipped, "GRAPHS", tmp_path / "none")  # converted as a checkpoint of one's own is
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes(jpeg_bytes(natural_image(72, 88), quality=15))
    fp32 = ["--precision", "float32"]  # the backend's default is the subject (tests/test_engines.py: precision's)
    assert restore.run([str(src), "--output", str(tmp_path / "auto"), *fp32]) == 0
    err = capsys.readouterr().err  # one line for the conversion, none of the converter's own warnings
    assert re.fullmatch(r"converting \S+ to ONNX once \(kept at \S+\.onnx\) \.\.\. \d+ s\n", err), err
    # the colour model's graph and the two estimators' (converted as the model's is, their message on stdout)
    models = (shipped.default_checkpoint(3), shipped.estimator_checkpoint(), shipped.codec_estimator_checkpoint())
    assert sorted((tmp_path / "cache").glob("*.onnx")) == sorted(tmp_path / "cache" / f"{exports.digest(p)}.onnx"
                                                                 for p in models)
    assert restore.run([str(src), "--output", str(tmp_path / "again"), *fp32]) == 0
    assert "converting" not in capsys.readouterr().err  # the cached graph
    assert restore.run([str(src), "--output", str(tmp_path / "jax"), "--backend", "jax"]) == 0
    a, b = (np.asarray(Image.open(tmp_path / d / "a.png"), np.float64) for d in ("auto", "jax"))
    assert a.shape == b.shape == (72, 88, 3) and 10 * np.log10(255.0**2 / max(np.mean((a - b) ** 2), 1e-12)) > 50
    monkeypatch.setenv("QGAC_BACKEND", "tpu")
    with pytest.raises(SystemExit) as exit_info:
        restore.run([str(src), "--output", str(tmp_path / "bad")])
    assert exit_info.value.code == 2


@pytest.mark.slow
def test_export_cli_refuses_to_overwrite_and_bad_arguments(exported, tmp_path, capsys):
    path = exported[3, None]
    before = path.read_bytes()
    for argv in (["--output", str(path)], ["--output", str(tmp_path / "x.onnx"), "--quality", "0"],
                 ["--output", str(tmp_path / "no" / "x.onnx")]):
        with pytest.raises(SystemExit) as exit_info:
            export.run(argv)
        assert exit_info.value.code == 2
    assert path.read_bytes() == before
    estimator = shipped.estimator_checkpoint()
    if estimator is not None:
        assert export.run(["--output", str(tmp_path / "e.onnx"), "--checkpoint", str(estimator)]) == 2
    assert export.run(["--output", str(tmp_path / "g.onnx"), "--channels", "1", "--checkpoint",
                       str(shipped.default_checkpoint(3))]) == 2
    err = capsys.readouterr().err
    assert "exists; pass --overwrite" in err and "quality estimator" in err and "3-channel model" in err
    assert not list(pathlib.Path(tmp_path).glob("*.onnx*"))


@pytest.mark.slow
def test_a_damaged_cached_graph_is_converted_again_and_an_unwritable_cache_falls_back_at_once(
        tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("QGAC_BACKEND", raising=False)
    monkeypatch.setenv("QGAC_ONNX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(shipped, "GRAPHS", tmp_path / "none")  # converted as a checkpoint of one's own is
    src = tmp_path / "a.jpg"
    src.write_bytes(jpeg_bytes(natural_image(40, 48), quality=15))
    fp32 = ["--precision", "float32"]  # the float32 graph's cache is the subject
    assert restore.run([str(src), "--output", str(tmp_path / "first"), *fp32]) == 0
    graph = tmp_path / "cache" / f"{exports.digest(shipped.default_checkpoint(3))}.onnx"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])  # truncated, as by a full disk
    capsys.readouterr()
    assert restore.run([str(src), "--output", str(tmp_path / "healed"), *fp32]) == 0
    err = capsys.readouterr().err
    assert err.startswith("the cached ONNX graph was damaged; converting") and err.count("\n") == 1, err
    assert restore.run([str(src), "--output", str(tmp_path / "again"), "--backend", "onnxruntime", *fp32]) == 0
    assert capsys.readouterr().err == ""  # the repaired graph is used as it is
    a, b = (np.asarray(Image.open(tmp_path / d / "a.png")) for d in ("first", "again"))
    np.testing.assert_array_equal(a, b)

    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("QGAC_ONNX_CACHE", str(tmp_path / "file" / "cache"))
    start = time.perf_counter()
    assert restore.run([str(src), "--output", str(tmp_path / "jax"), *fp32]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: the ONNX cache") and "QGAC_ONNX_CACHE" in err and "using JAX" in err
    assert err.count("\n") == 1 and "converting" not in err and time.perf_counter() - start < 60
