import io
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from qgac_jax.evaluation import protocol as eval_protocol, metrics
from conftest import natural_image, shared_dataset

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "qgac_jax.evaluate", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_identity_restore_reproduces_the_jpeg_numbers(tmp_path):
    for i in range(2):
        Image.fromarray(natural_image(40, 48, seed=i)).save(tmp_path / f"{i}.png")
    result = eval_protocol.evaluate_images(lambda y, q: y, str(tmp_path), (10, 50))
    assert result["images"] == 2
    for q, r in result["qualities"].items():
        assert r["model"] == r["jpeg"]
    # The JPEG numbers follow docs/conventions.md: Pillow at quality q, metrics on uint8 levels.
    clean = natural_image(40, 48, seed=0)
    buf = io.BytesIO()
    Image.fromarray(clean).save(buf, format="JPEG", quality=10)
    jpeg = np.asarray(Image.open(buf))
    other = natural_image(40, 48, seed=1)
    buf2 = io.BytesIO()
    Image.fromarray(other).save(buf2, format="JPEG", quality=10)
    want = (float(metrics.psnr(clean, jpeg)[0]) + float(metrics.psnr(other, np.asarray(Image.open(buf2)))[0])) / 2
    assert result["qualities"][10]["jpeg"]["psnr"] == pytest.approx(want, abs=1e-4)
    assert result["qualities"][10]["bpp"] < result["qualities"][50]["bpp"]
    table = eval_protocol.markdown_table(result)
    assert table.count("\n") == 3 and "| 10 |" in table and "+0.00" in table


@pytest.mark.slow
def test_cli_on_cbsd68_prints_the_table_and_writes_json_and_plot(colour_export, tmp_path):
    images = shared_dataset("cbsd68")
    proc = _cli("--checkpoint", colour_export, "--images", images, "--qualities", "10,40", "--double", "20:75:4",
                "--max-images", "2", "--json", tmp_path / "r.json", "--plot", tmp_path / "r.png", "--lpips")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| quality | bpp | PSNR JPEG |" in proc.stdout and "| 40 |" in proc.stdout and "| 20:75:4 |" in proc.stdout
    assert "| LPIPS Alex JPEG | LPIPS Alex model | LPIPS VGG JPEG | LPIPS VGG model |" in proc.stdout
    assert "\r" not in proc.stderr and proc.stdout.count(" images, PSNR JPEG ") == 3  # a line per case, no bars
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["images"] == 2 and set(data["qualities"]) == {"10", "40", "20:75:4"}
    assert data["qualities"]["10"]["jpeg"]["psnr"] < data["qualities"]["40"]["jpeg"]["psnr"]
    assert data["lpips"] == ["alex", "vgg"]
    for net in ("alex", "vgg"):  # a JPEG at 10 looks further from the photo than one at 40
        assert 0 < data["qualities"]["40"]["jpeg"][f"lpips_{net}"] < data["qualities"]["10"]["jpeg"][f"lpips_{net}"]
    assert Image.open(tmp_path / "r.png").size[0] > 1500  # PSNR twice, LPIPS Alex and VGG


def test_cli_errors_are_one_line(colour_export, tmp_path):
    proc = _cli("--checkpoint", colour_export, "--images", tmp_path / "none")
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli("--checkpoint", colour_export, "--images", tmp_path, "--qualities", "10,abc")
    assert proc.returncode == 2 and "qualities" in proc.stderr
    proc = _cli("--checkpoint", colour_export, "--images", tmp_path, "--lpips", "squeeze")
    assert proc.returncode == 2 and "--lpips takes alex, vgg or alex,vgg, got 'squeeze'" in proc.stderr


def test_lpips_beside_the_other_metrics_matches_the_metric_itself(tmp_path):
    """The protocol's LPIPS is the metric's on the same uint8 levels (an identity restore: JPEG's = model's)."""
    from qgac_jax.evaluation import lpips

    clean = natural_image(48, 64, seed=3)
    Image.fromarray(clean).save(tmp_path / "a.png")
    result = eval_protocol.evaluate_images(lambda y, q: y, str(tmp_path), (10,), lpips=("alex",))
    r = result["qualities"][10]
    assert set(r["jpeg"]) == set(eval_protocol.METRICS) | {"lpips_alex"} and r["model"] == r["jpeg"]
    jpeg = eval_protocol.Case(10).apply(clean)[0]
    assert r["jpeg"]["lpips_alex"] == pytest.approx(float(lpips.lpips(clean, jpeg, "alex")[0]), abs=1e-6)
    assert "| LPIPS Alex JPEG | LPIPS Alex model |" in eval_protocol.markdown_table(result)


def test_max_images_limits_the_work_not_just_the_mean(tmp_path):
    for i in range(5):
        Image.fromarray(natural_image(24, 32, seed=i)).save(tmp_path / f"{i}.png")
    calls = []
    result = eval_protocol.evaluate_images(lambda y, q: calls.append(1) or y, str(tmp_path), (10, 30), max_images=2)
    assert result["images"] == 2 and len(calls) == 4  # 2 images x 2 qualities, the others never touched


def test_double_jpeg_cases_parse_and_reject_nonsense():
    assert eval_protocol.Case.parse("20:75:4") == eval_protocol.Case(75, 20, 4)
    assert eval_protocol.Case.parse("40").name == "40" and eval_protocol.Case.parse("30:90").name == "30:90"
    for bad in ("20:75:9", "abc", "0", "1:2:3:4"):
        with pytest.raises(ValueError):
            eval_protocol.Case.parse(bad)


def _reject_constant(name):
    raise ValueError(f"non-strict JSON constant {name}")


def test_a_tiny_image_is_skipped_and_an_exact_jpeg_stays_finite_in_strict_json(colour_export, tmp_path, capsys,
                                                                                 caplog):
    from qgac_jax import evaluate

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(natural_image(40, 48)).save(images / "a.png")
    Image.fromarray(natural_image(7, 9, seed=3)).save(images / "tiny.png")  # 9x7: below SSIM's window
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(images / "flat.png")  # JPEG reproduces it exactly
    out = tmp_path / "r.json"
    assert evaluate.run(["--checkpoint", str(colour_export), "--images", str(images), "--qualities", "90",
                         "--quality", "file", "--json", str(out)]) == 0
    assert "skipped tiny.png" in caplog.text and "9x7" in caplog.text
    data = json.loads(out.read_text(), parse_constant=_reject_constant)
    assert data["images"] == 2 and data["psnr_cap_db"] == eval_protocol.PSNR_CAP
    assert eval_protocol.PSNR_CAP / 2 < data["qualities"]["90"]["jpeg"]["psnr"] <= eval_protocol.PSNR_CAP


def test_output_files_are_checked_before_the_work_and_kept(colour_export, tmp_path, capsys):
    from qgac_jax import evaluate

    (tmp_path / "kept.json").write_text("{}")
    base = ["--checkpoint", str(colour_export), "--images", str(tmp_path / "nowhere")]  # would fail later
    for extra, message in ((["--json", str(tmp_path / "missing" / "r.json")], "does not exist"),
                           (["--json", str(tmp_path / "kept.json")], "exists (pass --overwrite"),
                           (["--plot", str(tmp_path)], "is a folder")):
        with pytest.raises(SystemExit) as exit_info:
            evaluate.run(base + extra)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert (tmp_path / "kept.json").read_text() == "{}"


@pytest.mark.parametrize("codec", ["webp", "avif", "heic"])
def test_other_codecs_are_measured_told_a_jpeg_quality(colour_export, tmp_path, capsys, codec):
    from PIL import features

    from qgac_jax import evaluate
    from qgac_jax.data import degrade

    if codec == "avif" and not features.check("avif"):
        pytest.skip("this Pillow writes no AVIF")
    if codec == "heic":
        pytest.importorskip("pillow_heif", reason="HEIC files are written by pillow-heif (the extra `test`)")
    images = tmp_path / "images"
    images.mkdir()
    clean = natural_image(48, 64)
    Image.fromarray(clean).save(images / "a.png")
    out = tmp_path / "r.json"
    assert evaluate.run(["--checkpoint", str(colour_export), "--images", str(images), "--codec", codec,
                         "--qualities", "20,60", "--quality", "30", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["codec"] == codec and data["told"] == "IJG tables of quality 30"
    low, high = data["qualities"][f"{codec} 20"], data["qualities"][f"{codec} 60"]
    assert 0 < low["bpp"] < high["bpp"] and low["jpeg"]["psnr"] < high["jpeg"]["psnr"]
    # the compressed side is the codec's own file, decoded as restore decodes it
    decoded = degrade.codec_decode(degrade.codec_encode(clean, codec, 20), False)
    assert low["jpeg"]["psnr"] == pytest.approx(float(metrics.psnr(clean, decoded)[0]), abs=1e-4)
    assert f"| {codec} 20 |" in capsys.readouterr().out
    assert evaluate.run(["--checkpoint", str(colour_export), "--images", str(images), "--codec", codec,
                         "--qualities", "20", "--json", str(out), "--overwrite"]) == 0  # by default: the file's own
    data = json.loads(out.read_text())
    assert data["told"] == "the file's quantizer + estimate"  # the shipped codec estimator reads it
    assert data["qualities"][f"{codec} 20"]["jpeg"] == low["jpeg"]


def test_a_jpeg_converted_to_webp_is_measured_with_the_estimate_where_the_estimator_reads_webp(colour_export,
                                                                                                tmp_path, monkeypatch):
    from qgac_jax import evaluate
    from qgac_jax.models import quality_estimate

    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(natural_image(48, 64)).save(images / "a.png")
    out = tmp_path / "r.json"
    argv = ["--checkpoint", str(colour_export), "--images", str(images), "--double", "20:webp:75", "--json", str(out)]
    estimates = []

    def reads_webp(self, pixels, quantization):  # the shipped estimator, as if it had learned WebP
        estimates.append(quantization.codec)
        return 20.0

    monkeypatch.setattr(quality_estimate.QualityEstimate, "codecs", ("jpeg", "webp"), raising=False)
    monkeypatch.setattr(quality_estimate.QualityEstimate, "__call__", reads_webp)
    monkeypatch.setattr(quality_estimate.QualityEstimate, "__init__", lambda self, *a: None)
    assert evaluate.run(argv + ["--codec", "webp", "--qualities", "75"]) == 0
    told = json.loads(out.read_text())
    assert told["told"] == "the file's quantizer + estimate" and estimates == ["webp", "webp"]
    assert evaluate.run(argv + ["--quality", "file", "--overwrite"]) == 0
    alone = json.loads(out.read_text())
    assert alone["told"] == "the file's quantizer"
    converted, once = told["qualities"]["20:webp 75"], told["qualities"]["webp 75"]
    assert converted["jpeg"] == alone["qualities"]["20:webp 75"]["jpeg"]  # the same file both times
    assert converted["model"] != alone["qualities"]["20:webp 75"]["model"]  # told the JPEG, the network differs
    assert converted["jpeg"]["psnr"] < once["jpeg"]["psnr"]  # the JPEG's losses stay in the WebP
