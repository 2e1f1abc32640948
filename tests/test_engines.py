"""commands/engines.py: which backend and precision run the network, and why."""

import types

import pytest

from qgac_jax.commands import engines
from qgac_jax.models import shipped

# /proc/cpuinfo's lines of the CPUs the rule is about (flags abridged to the ones that matter and some others)
XEON_AMX = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8\n"
EPYC_VNNI = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_vnni avx512_bf16\n"
ALDER_LAKE = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx_vnni\n"
EPYC_AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma sha_ni\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics asimddp\n"
CORTEX_A72 = "processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\n"


@pytest.mark.parametrize("cpuinfo, found", [
    (XEON_AMX, "AMX"), (EPYC_VNNI, "AVX-512 VNNI"), (ALDER_LAKE, "AVX-VNNI"), (GRAVITON, "Arm dot product"),
    (EPYC_AVX2, None), (CORTEX_A72, None), ("", None),
])
def test_fast_int8_reads_the_cpus_flags(cpuinfo, found):
    assert engines.fast_int8(cpuinfo) == found


def test_auto_runs_int8_only_in_onnx_runtime_on_a_cpu_with_fast_int8(monkeypatch):
    from qgac_jax.graphs import onnx_graph

    monkeypatch.setattr(onnx_graph, "available", lambda: True)
    monkeypatch.setattr(engines, "fast_int8", lambda: "AVX-512 VNNI")
    decide = engines.decide
    assert decide(_settings(backend="onnxruntime")) == engines.Engine(
        "onnxruntime", "int8", "auto: this CPU has AVX-512 VNNI")
    assert decide(_settings(backend="jax")) == engines.Engine(
        "jax", "float32", "auto: int8 runs in ONNX Runtime, not JAX")
    assert decide(_settings(onnx="m.onnx")) == engines.Engine(
        "onnxruntime", "float32", "auto: an ONNX file runs as it is")
    assert decide(_settings(backend="onnxruntime", precision="float32")) == engines.Engine(
        "onnxruntime", "float32", "--precision float32")
    monkeypatch.setattr(engines, "fast_int8", lambda: None)
    assert decide(_settings(backend="onnxruntime")) == engines.Engine(
        "onnxruntime", "float32", "auto: this CPU has no fast int8 instructions (VNNI, AMX)")
    # --precision int8 runs ONNX Runtime whatever $QGAC_BACKEND says (a flag outweighs the environment)
    monkeypatch.setenv("QGAC_BACKEND", "jax")
    assert decide(_settings(backend=None, precision="int8")) == engines.Engine(
        "onnxruntime", "int8", "--precision int8")
    assert decide(_settings(backend=None, precision="float32")).backend == "jax"


@pytest.mark.parametrize("value, backend", [("JAX", "jax"), (" OnnxRuntime ", "onnxruntime"), ("", "auto")])
def test_qgac_backend_is_read_in_any_case_and_empty_means_unset(monkeypatch, value, backend):
    monkeypatch.setenv("QGAC_BACKEND", value)
    assert engines.requested_backend(None) == backend
    assert engines.requested_backend("jax") == "jax"  # the flag outweighs the environment


def test_a_missing_onnx_extra_is_named_where_onnx_runtime_was_asked_for(monkeypatch):
    from qgac_jax.graphs import onnx_graph

    monkeypatch.setattr(onnx_graph, "available", lambda: False)
    with pytest.raises(ValueError, match=r"--precision int8 needs ONNX Runtime, which every install brings"):
        engines.decide(_settings(precision="int8"))
    with pytest.raises(ValueError, match="--backend onnxruntime needs ONNX Runtime"):
        engines.decide(_settings(backend="onnxruntime", precision="float32"))
    assert engines.decide(_settings(backend="auto", precision="auto")) == engines.Engine(
        "jax", "float32", "auto: int8 runs in ONNX Runtime, not JAX")  # auto: JAX, float32, no error


def _settings(**kw):
    base = dict(model="psnr", checkpoint=None, onnx=None, backend="auto", precision="auto", tile=512, overlap=32,
                max_pixels=10**8, quality="auto", threads=None, realism=None)
    return types.SimpleNamespace(**{**base, **kw})


def test_models_say_what_runs_and_why(monkeypatch):
    monkeypatch.setattr(engines, "fast_int8", lambda: "AMX")
    from qgac_jax.graphs import onnx_graph

    monkeypatch.setattr(onnx_graph, "available", lambda: True)
    assert engines.Models(_settings(backend="onnxruntime")).describe() == "ONNX Runtime int8 (auto: this CPU has AMX)"
    assert engines.Models(_settings(backend="jax")).describe() == \
        "JAX float32 (auto: int8 runs in ONNX Runtime, not JAX)"
    assert engines.Models(_settings(backend="onnxruntime", precision="float32")).describe() == \
        "ONNX Runtime float32 (--precision float32)"


def test_int8_takes_the_shipped_model_fine_tuned_for_it_where_one_ships():
    for channels, name in ((3, "colour"), (1, "grey")):
        fine_tuned = shipped.ROOT / f"int8_{name}"
        expected = fine_tuned if (fine_tuned / "model").is_dir() else shipped.default_checkpoint(channels)
        assert shipped.default_checkpoint(channels, "psnr", "int8") == expected
        assert shipped.default_checkpoint(channels, "psnr", "float32") == shipped.default_checkpoint(channels)
    assert shipped.default_checkpoint(3, "perceptual", "int8") == shipped.default_checkpoint(3, "perceptual")


def test_an_int8_graph_that_cannot_be_built_falls_back_to_float32_under_auto_only(monkeypatch, capsys):
    from qgac_jax.graphs import int8_graph, onnx_graph
    from qgac_jax.restoring.restorer import Restorer

    monkeypatch.setattr(engines, "fast_int8", lambda: "AMX")

    def broken(path, log=print):
        raise OSError("disk full")

    built = []
    monkeypatch.setattr(int8_graph, "cached", broken)
    monkeypatch.setattr(onnx_graph, "cached", lambda path, log=print: built.append(path) or "float.onnx")
    monkeypatch.setattr(Restorer, "from_onnx", classmethod(lambda cls, graph, **kw: f"restorer of {graph}"))
    monkeypatch.setattr(onnx_graph, "available", lambda: True)
    models = engines.Models(_settings(checkpoint="ckpt", backend="onnxruntime"))
    assert models(False) == "restorer of float.onnx" and built == ["ckpt"]
    assert models.describe() == "ONNX Runtime float32 (auto: the int8 graph could not be built)"
    assert "warning: no int8 graph for ckpt (disk full); restoring in float32" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cannot run ckpt with ONNX Runtime: disk full"):
        engines.Models(_settings(checkpoint="ckpt", precision="int8"))(False)


@pytest.mark.parametrize("cores, jobs", [(1, 1), (2, 1), (4, 1), (7, 1), (8, 2), (16, 4), (64, 16)])
def test_photos_at_once_are_one_per_four_cores(cores, jobs):
    from qgac_jax.graphs import sessions

    assert sessions.default_jobs(cores) == jobs


def test_clips_get_the_video_fine_tune_and_photos_the_photo_model(tmp_path, monkeypatch):
    models = engines.Models(_settings(backend="jax", precision="float32"), engines.Engine("jax", "float32", ""))
    video = shipped.ROOT / "video_colour"
    if not (video / "model").is_dir():
        pytest.skip("this version ships no video model")
    assert models.path(False, clip=True) == models.path(True, clip=True) == video
    assert models.path(False) == shipped.default_checkpoint(3) != video
    told = engines.Models(_settings(checkpoint="mine", precision="float32"), engines.Engine("jax", "float32", ""))
    assert told.path(False, clip=True) == told.path(False) == "mine"  # a model of one's own is used for both
    perceptual = engines.Models(_settings(model="perceptual", precision="float32"),
                                engines.Engine("jax", "float32", ""))
    assert perceptual.path(False, clip=True) == shipped.default_checkpoint(3, "perceptual")
    monkeypatch.setenv("QGAC_REALISM_CACHE", str(tmp_path))  # a realism blends each one's own faithful model
    half = engines.Models(_settings(realism=0.5, precision="float32"), engines.Engine("jax", "float32", ""))
    assert half.path(False).name.startswith("colour-perceptual_colour-0.50-")
    assert half.path(False, clip=True).name.startswith("video_colour-perceptual_colour-0.50-")


def test_a_clip_loads_no_quality_estimator_and_a_photo_of_the_same_model_still_gets_it(monkeypatch):
    """The estimator reads photos; clips are told each frame's quantizers. One model serving both is loaded once
    for each, so neither gets the other's estimator."""
    from qgac_jax.restoring.restorer import Restorer

    loads = []
    monkeypatch.setattr(Restorer, "from_checkpoint", classmethod(lambda cls, path, **kw: loads.append(kw) or kw))
    models = engines.Models(_settings(checkpoint="mine", precision="float32"), engines.Engine("jax", "float32", ""))
    assert models(False, clip=True)["estimator"] is None
    assert models(False)["estimator"] == "shipped" and models(False, clip=True)["estimator"] is None
    assert len(loads) == 2  # (and each once)


@pytest.mark.parametrize("instructions, network", [
    ("AVX-512 VNNI", "network: ONNX Runtime int8 (auto: this CPU has AVX-512 VNNI)"),
    (None, "network: ONNX Runtime float32 (auto: this CPU has no fast int8 instructions (VNNI, AMX))"),
])
def test_restore_runs_int8_by_default_where_the_cpu_has_fast_int8(instructions, network, tmp_path, monkeypatch,
                                                                    capsys):
    """No --precision: the shipped int8 graph on such a CPU, float32 elsewhere (a restored PNG either way)."""
    from conftest import jpeg_bytes, natural_image
    from qgac_jax import restore

    monkeypatch.delenv("QGAC_BACKEND", raising=False)
    monkeypatch.setenv("QGAC_ONNX_CACHE", str(tmp_path / "cache"))  # nothing converted: the shipped graphs
    monkeypatch.setattr(engines, "fast_int8", lambda: instructions)
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(natural_image(64, 80), quality=20))
    assert restore.run([str(tmp_path / "a.jpg"), "--output", str(tmp_path / "out"), "--show-quality"]) == 0
    assert network in capsys.readouterr().out.splitlines()
    assert (tmp_path / "out" / "a.png").is_file() and not (tmp_path / "cache").exists()
