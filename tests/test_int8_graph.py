"""int8 graphs: quantized by ONNX Runtime from the shipped models' float32 graphs, cached, and run by restore,
evaluate and export."""

import json
import re

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("jax2onnx", reason="the ONNX export needs the extra: pip install -e '.[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime needs the extra: pip install -e '.[onnx]'")
onnx = pytest.importorskip("onnx")

from qgac_jax import Restorer, evaluate, export, restore  # noqa: E402
from qgac_jax.graphs import int8_graph, onnx_graph  # noqa: E402
from qgac_jax.models import QGAC, exports, shipped  # noqa: E402
from conftest import jpeg_bytes, natural_image  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shipped.default_checkpoint(3) is None, reason="this version ships no models")]


INT8_COLOUR = shipped.default_checkpoint(3, "psnr", "int8")  # what restore --precision int8 runs for colour


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A private ONNX cache holding the int8 colour model's float32 and int8 graphs, and the float32 graph of the
    colour model (--precision float32)."""
    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QGAC_ONNX_CACHE", str(folder))
        mp.setattr(shipped, "GRAPHS", folder / "none")  # built as a checkpoint of one's own is
        int8_graph.cached(INT8_COLOUR, log=lambda *a, **k: None)
        onnx_graph.cached(shipped.default_checkpoint(3), log=lambda *a, **k: None)
    return folder


@pytest.fixture
def in_cache(cache, monkeypatch):
    monkeypatch.setenv("QGAC_ONNX_CACHE", str(cache))
    monkeypatch.setattr(shipped, "GRAPHS", cache / "none")
    monkeypatch.delenv("QGAC_BACKEND", raising=False)
    return cache


def _graphs(cache):
    """The int8 colour model's float32 graph and its int8 graph."""
    (int8,) = cache.glob("*.int8-*.onnx")
    return cache / (int8.name.split(".int8-")[0] + ".onnx"), int8


def _psnr(a, b):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return 10 * np.log10(255.0**2 / mse)


def test_convolutions_outside_the_kept_modules_are_int8_and_the_contract_is_unchanged(in_cache):
    fp32, int8 = _graphs(in_cache)
    model = onnx.load(str(int8))
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    int8_convs = [c.name for c in convs if producers.get(c.input[1]) == "DequantizeLinear"]
    float_convs = [c.name for c in convs if c.name not in int8_convs]
    # small: stem, 2 QGA blocks of 3 convolutions, the full-resolution fuse, the first convolution of three
    # full-resolution blocks and the head stay float32
    assert len(convs) == 37 and len(float_convs) == 1 + 2 * 3 + 1 + 3 + 1
    _, params, _ = exports.load_restoration_export(INT8_COLOUR)
    assert sorted(float_convs) == sorted(int8_graph.kept_float(onnx.load(str(fp32)), params, QGAC.KEEP_FLOAT))
    kept_weights = {np.asarray(params[m]["kernel"], np.float32).transpose(3, 2, 0, 1).tobytes()
                    for m in ("stem", "head", "fuse0")}
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    found = {inits[c.input[1]].astype(np.float32).tobytes() for c in convs if c.name in float_convs}
    assert kept_weights <= found
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32, int8))
    for x, y in ((a.get_inputs(), b.get_inputs()), (a.get_outputs(), b.get_outputs())):
        assert [(t.name, t.type, t.shape) for t in x] == [(t.name, t.type, t.shape) for t in y]
    assert onnx_graph.metadata(int8)["qgac_jax.precision"].startswith("int8 ")


def test_int8_restores_a_real_jpeg_close_to_float32(in_cache, tmp_path):
    skimage_data = pytest.importorskip("skimage.data", reason="the photo comes with scikit-image")
    clean = skimage_data.stereo_motorcycle()[0][100:356, 200:520]  # not among the calibration photos
    path = tmp_path / "a.jpg"
    path.write_bytes(jpeg_bytes(clean, quality=15))
    jpeg = np.asarray(Image.open(path))
    fp32, int8 = _graphs(in_cache)
    out32, out8 = (Restorer.from_onnx(p, tile=128, overlap=16).restore(path) for p in (fp32, int8))
    assert not np.array_equal(out32, out8)  # the int8 graph ran
    assert _psnr(out8, out32) > 40
    gain32, gain8 = _psnr(out32, clean) - _psnr(jpeg, clean), _psnr(out8, clean) - _psnr(jpeg, clean)
    assert gain32 > 0.5 and gain8 > gain32 - 0.2, (gain32, gain8)


def test_restore_builds_the_int8_graph_once_and_heals_it(in_cache, tmp_path, capsys):
    src = tmp_path / "a.jpg"
    src.write_bytes(jpeg_bytes(natural_image(64, 80), quality=20))
    _, int8 = _graphs(in_cache)
    int8.write_bytes(int8.read_bytes()[:1000])  # truncated
    capsys.readouterr()
    assert restore.run([str(src), "--output", str(tmp_path / "a"), "--precision", "int8"]) == 0
    err = capsys.readouterr().err
    assert re.fullmatch(r"the cached ONNX graph was damaged; quantizing the ONNX graph to int8 once "
                        r"\(kept at \S+\.int8-\w+\.onnx\) \.\.\. \d+ s\n", err), err
    assert restore.run([str(src), "--output", str(tmp_path / "b"), "--precision", "int8"]) == 0
    assert restore.run([str(src), "--output", str(tmp_path / "c"), "--precision", "float32"]) == 0
    assert capsys.readouterr().err == ""
    a, b, c = (np.asarray(Image.open(tmp_path / d / "a.png")) for d in "abc")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and _psnr(a, c) > 30  # a synthetic picture: see the photo above


def test_evaluate_reports_the_engine(in_cache, tmp_path, capsys):
    images = tmp_path / "clean"
    images.mkdir()
    Image.fromarray(natural_image(48, 64)).save(images / "x.png")
    out = tmp_path / "r.json"
    assert evaluate.run(["--images", str(images), "--qualities", "20", "--precision", "int8", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["engine"] == "ONNX Runtime int8"
    assert "(ONNX Runtime int8; --precision int8)" in capsys.readouterr().out


def test_export_writes_int8_graphs_with_the_float32_contract(tmp_path, capsys):
    for argv in ([], ["--quality", "30"]):
        paths = [tmp_path / f"{p}{len(argv)}.onnx" for p in ("float32", "int8")]
        for path in paths:
            assert export.run(["--output", str(path), "--channels", "1", "--precision", path.stem[:-1], *argv]) == 0
        a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in paths)
        assert [(t.name, t.type, t.shape) for t in a.get_inputs() + a.get_outputs()] == \
               [(t.name, t.type, t.shape) for t in b.get_inputs() + b.get_outputs()]
        assert "qgac_jax.precision" not in onnx_graph.metadata(paths[0])
        assert onnx_graph.metadata(paths[1])["qgac_jax.precision"].startswith("int8 ")
        feed = {"image": np.random.default_rng(0).random((1, 1, 45, 61), np.float32)}
        if not argv:
            feed["qmap"] = np.full((1, 1, 45, 61), 0.1, np.float32)
        assert b.run(None, feed)[0].shape == (1, 1, 45, 61)
    assert "int8, opset 17" in capsys.readouterr().out


@pytest.fixture(scope="module")
def trained_for_int8(tmp_path_factory):
    """An export shaped as a quantization-aware fine-tune leaves it (configs/int8.py): the colour model with ranges
    calibrated and then narrowed (x0.7 or x0.45: int8 far from float), so that a graph calibrated again could not
    match them."""
    from qgac_jax.models import int8 as int8_lib

    model, params, config = exports.load_restoration_export(shipped.default_checkpoint(3))
    params = int8_lib.calibrate(model, params, int8_graph.calibration_pairs(3))
    moved = {}
    for i, (path, value) in enumerate(sorted(__import__("flax").traverse_util.flatten_dict(params).items())):
        moved[path] = value * (0.7 if i % 2 else 0.45) if path[-1] == int8_lib.RANGE else value
    params = __import__("flax").traverse_util.unflatten_dict(moved)
    folder = tmp_path_factory.mktemp("qat") / "export"
    exports.export_params(folder, params, {**config, "overrides": {"int8": "fake"}})
    return folder, model, params


def _photo_feed(name, quality):
    skimage_data = pytest.importorskip("skimage.data", reason="the photos come with scikit-image")
    from qgac_jax.codecs import jpeg

    image = getattr(skimage_data, name)()
    image = (image[0] if isinstance(image, tuple) else image)[:200, :264]
    data = jpeg_bytes(image, quality=quality)
    pixels = np.asarray(Image.open(__import__("io").BytesIO(data)), np.float32) / 255
    return pixels, jpeg.read_quantization(data).qmap(*pixels.shape[:2]).astype(np.float32)


def test_the_int8_graph_of_a_model_trained_for_int8_computes_its_simulation(trained_for_int8, in_cache):
    """The bound the fine-tune relies on: ONNX Runtime's int8 graph and the Flax forward that simulates it
    (models/int8.py) with the recipe's ranges (the learned ones, widened by WIDEN) agree within 3
    of 255 levels, >= 52 dB, on real photos; both are int8 (far from float)."""
    from qgac_jax.models import int8 as int8_lib

    folder, model, params = trained_for_int8
    graph = int8_graph.cached(folder, log=lambda *a, **k: None)
    as_learned, params = int8_lib.ranges(params), int8_lib.widened(params, int8_graph.WIDEN)
    assert all(np.allclose(int8_lib.ranges(params)[k], v * int8_graph.WIDEN) for k, v in as_learned.items())
    assert onnx_graph.metadata(graph)["qgac_jax.precision"] == "int8 " + int8_graph.RECIPE_LEARNED
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    fake = model.clone(int8="fake")
    for name, quality in (("stereo_motorcycle", 15), ("coffee", 40), ("camera", 25)):
        pixels, qmap = _photo_feed(name, quality)
        pixels = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, -1)
        qmap = qmap if qmap.shape[-1] == 2 else np.repeat(qmap, 2, -1)
        ours = session.run(None, {"image": pixels.transpose(2, 0, 1)[None].copy(),
                                  "qmap": qmap.transpose(2, 0, 1)[None].copy()})[0][0].transpose(1, 2, 0)
        simulated = np.clip(np.asarray(fake.apply({"params": params}, pixels[None], qmap[None]))[0], 0, 1)
        floating = np.clip(np.asarray(model.apply({"params": params}, pixels[None], qmap[None]))[0], 0, 1)
        assert np.abs(ours - simulated).max() <= 3 / 255, name
        agree, apart = _psnr(ours * 255, simulated * 255), _psnr(simulated * 255, floating * 255)
        assert agree >= 52 and agree > apart + 3, (name, agree, apart)
    # each quantized activation carries the scale of its learned range (ONNX Runtime did not calibrate again)
    proto = onnx.load(str(graph))
    consts = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    scales = {float(consts[n.input[1]]) for n in proto.graph.node
              if n.op_type == "QuantizeLinear" and n.input[0] not in consts}
    learned = {float(int8_lib.uint8_grid(lo, hi)[0]) for lo, hi in int8_lib.ranges(params).values()}
    assert len(scales) == len(learned) == 46
    for s in scales:
        assert min(abs(s - t) / t for t in learned) < 1e-5


def test_learned_ranges_refuse_a_graph_of_another_model(trained_for_int8, in_cache, tmp_path):
    """The perceptual model's graph has the same tensors, with other values: no range is given to it."""
    if shipped.default_checkpoint(3, "perceptual") is None:
        pytest.skip("this version ships no perceptual model")
    _, model, params = trained_for_int8
    other_model, other_params, _ = exports.load_restoration_export(shipped.default_checkpoint(3, "perceptual"))
    path = tmp_path / "other.onnx"
    onnx_graph.save(onnx_graph.convert(other_model, other_params), path)
    graph = onnx.load(str(path))
    with pytest.raises(ValueError, match="matches 0 quantized tensors of the model"):
        int8_graph.learned_ranges(graph, int8_graph.kept_float(graph, other_params, QGAC.KEEP_FLOAT), model, params)
