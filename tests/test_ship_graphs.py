"""The ONNX graphs that ship in qgac_jax/pretrained/graphs (python -m qgac_jax.tools.ship_graphs): one for each
export restore can pick, each the conversion of the export beside it, and restoring with them needs no JAX and
converts nothing."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import jpeg_bytes, natural_image
from qgac_jax.codecs import jpeg
from qgac_jax.graphs import int8_graph, onnx_graph, sessions
from qgac_jax.models import exports, shipped

ROOT = pathlib.Path(__file__).parents[1]


def _names():
    """{the graph's file name: (precision, export)} of every graph that should ship."""
    recipe = int8_graph._recipe_digest()
    wanted = {}
    for precision, paths in shipped.with_graphs().items():
        for path in paths:
            suffix = ".onnx" if precision == "float32" else f".int8-{recipe}.onnx"
            wanted[exports.digest(path) + suffix] = (precision, path)
    return wanted


def test_every_export_restore_picks_has_its_graph_and_no_stale_graph_ships():
    if shipped.default_checkpoint(3) is None:
        pytest.skip("this installation ships no models")
    held = sorted(p.name for p in shipped.GRAPHS.glob("*"))
    # (a retrained export, a new int8 recipe or calibration set: rebuild with python -m qgac_jax.tools.ship_graphs)
    assert held == sorted(_names()), "the shipped graphs are stale: python -m qgac_jax.tools.ship_graphs"
    assert {p.name for p in shipped.with_graphs()["int8"]} >= {"int8_colour", "int8_grey"}
    assert {p.name for p in shipped.with_graphs()["float32"]} >= {"colour", "grey", "estimator"}


@pytest.mark.slow
def test_each_shipped_graph_restores_as_the_export_beside_it():
    """Each float32 graph gives its Flax model's output on a real JPEG; each int8 graph stays near the float32
    graph of its export (the int8 fine-tunes learned their ranges; the others are calibrated)."""
    pytest.importorskip("jax", reason="the exports run in JAX")
    onnx = pytest.importorskip("onnx", reason="the graphs' weights are read with onnx")
    photo = natural_image(72, 88, seed=3)
    data = jpeg_bytes(photo, quality=20)
    pixels = np.asarray(Image.open(__import__("io").BytesIO(data)), np.float32)[None] / 255  # [1, H, W, 3]
    told = jpeg.read_quantization(data)
    for name, (precision, path) in _names().items():
        if exports.read_model_config(path).get("kind") == "estimator":
            continue  # (tests/test_quality_estimate.py)
        model, params, _ = exports.load_restoration_export(path)
        y = pixels if model.channels == 3 else pixels.mean(-1, keepdims=True)
        qmap = told.qmap(72, 88)[None, ..., : 2 if model.channels == 3 else 1].astype(np.float32)
        graph = sessions.OnnxModel(shipped.GRAPHS / name)
        out = graph(y, qmap)
        if precision == "float32":
            want = np.clip(np.asarray(model.apply({"params": params}, y, qmap)), 0, 1)
            assert np.abs(out - want).max() < 1e-4, (name, path.name)
        else:
            assert graph.precision == "int8"
            want = sessions.OnnxModel(onnx_graph.cached(path, log=lambda *a, **k: None))(y, qmap)
            assert 10 * np.log10(1 / np.mean((out - want) ** 2)) > 33, (name, path.name)
            # the convolutions int8 keeps in float32 are this export's, bit for bit (another export's are not)
            assert int8_graph.kept_float(onnx.load(str(shipped.GRAPHS / name)), params, model.KEEP_FLOAT)


@pytest.mark.slow
def test_restoring_jpeg_webp_and_avif_needs_no_jax_and_converts_nothing(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    photo = natural_image(80, 104, seed=5)
    Image.fromarray(photo).save(src / "a.jpg", quality=20)
    Image.fromarray(photo).save(src / "b.webp", quality=20)
    Image.fromarray(photo).save(src / "c.avif", quality=30)
    Image.fromarray(photo).convert("L").save(src / "d.jpg", quality=15)
    env = dict(os.environ, QGAC_ONNX_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    env.pop("QGAC_BACKEND", None)
    for precision in ("float32", "int8"):
        out = tmp_path / precision
        done = subprocess.run([sys.executable, str(ROOT / "tests" / "_without_jax.py"), "qgac_jax.restore", str(src),
                               "--output", str(out), "--precision", precision, "--show-quality"],
                              capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0 and "without JAX: ok" in done.stdout, done.stdout + done.stderr
        assert "restored 4, failed 0" in done.stdout + done.stderr, done.stdout + done.stderr
        assert "converting" not in done.stderr and "quantizing" not in done.stderr and "Traceback" not in done.stderr
        assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "d.png"]
        assert f"ONNX Runtime {precision}" in done.stdout + done.stderr
    script = tmp_path / "restore.py"  # the README's Python, as a user's script
    script.write_text("import sys\nfrom qgac_jax import Restorer\nr = Restorer.pretrained()\n"
                      "out = r.restore(sys.argv[1])\nassert out.shape == (80, 104, 3), out.shape\n"
                      "print(r.engine, r.estimator.by_codec['jpeg'].engine)\n")
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "_without_jax.py"), str(script), str(src / "a.jpg")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0 and "ONNX Runtime float32 ONNX Runtime\nwithout JAX: ok" in done.stdout, done
    assert not (tmp_path / "cache").exists()
    # what needs JAX says so in one line, naming the extra that brings it
    for argv, extra in ((["qgac_jax.restore", str(src / "a.jpg"), "--output", str(tmp_path / "x"), "--backend", "jax"],
                         "jax"),
                        (["qgac_jax.restore", str(src / "a.jpg"), "--output", str(tmp_path / "x"), "--realism", "0.5"],
                         "jax"),
                        (["qgac_jax.evaluate", "--images", str(src)], "jax"),
                        (["qgac_jax.export", "--output", str(tmp_path / "x.onnx")], "onnx"),
                        (["qgac_jax.train", "--config=configs/smoke.py", "--workdir", str(tmp_path / "w")], "train")):
        done = subprocess.run([sys.executable, str(ROOT / "tests" / "_without_jax.py"), *argv], capture_output=True,
                              text=True, env=env, timeout=300, cwd=ROOT)
        said = done.stderr.strip()  # (argparse's usage, then the one line)
        assert done.returncode in (1, 2) and "Traceback" not in said, said
        assert "needs JAX" in said.splitlines()[-1] and f"pip install '.[{extra}]'" in said.splitlines()[-1], said
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "w").exists()
    a, b = (np.asarray(Image.open(tmp_path / p / "a.png"), np.float64) for p in ("float32", "int8"))
    assert 10 * np.log10(255.0**2 / np.mean((a - b) ** 2)) > 35
