"""The checkpoints shipped inside the package: they load and beat JPEG at quality 10."""

import io
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import skimage.data
from PIL import Image

from qgac_jax import Restorer
from qgac_jax.evaluation import metrics
from qgac_jax.models.shipped import default_checkpoint
from conftest import SHARED_DATA

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _dev_images(grey):
    """Four development images: cbsd68/bsd68 when present, else scikit-image photos (training data)."""
    folder = SHARED_DATA / ("bsd68" if grey else "cbsd68")
    if folder.is_dir():
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")[:4]
        images = [np.asarray(Image.open(p).convert("L" if grey else "RGB")) for p in files]
    else:
        images = [skimage.data.astronaut(), skimage.data.coffee(), skimage.data.chelsea(),
                  skimage.data.rocket()]
        images = [np.asarray(Image.fromarray(im).convert("L")) if grey else im for im in images]
    return images


@pytest.mark.slow
@pytest.mark.parametrize("grey", [False, True])
def test_shipped_checkpoint_beats_jpeg_at_quality_10(grey):
    path = default_checkpoint(1 if grey else 3)
    if path is None:
        pytest.skip("this version ships no pretrained checkpoint")
    restorer = Restorer.from_checkpoint(path)
    assert restorer.channels == (1 if grey else 3)  # a dedicated model for each, no fallback
    gains = []
    for clean in _dev_images(grey):
        buf = io.BytesIO()
        Image.fromarray(clean).save(buf, format="JPEG", quality=10)
        jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
        restored = restorer.restore(buf.getvalue())
        assert restored.shape == clean.shape and restored.dtype == np.uint8
        c, j, r = (a[..., None] if a.ndim == 2 else a for a in (clean, jpeg, restored))
        gains.append(float(metrics.psnr(c, r)[0]) - float(metrics.psnr(c, j)[0]))
    assert np.mean(gains) > 1.0, gains  # the shipped models gain about 1.7 dB here


@pytest.mark.slow
def test_fresh_install_restores_without_a_checkpoint_flag(tmp_path):
    if default_checkpoint() is None:
        pytest.skip("this version ships no pretrained checkpoint")
    Image.fromarray(skimage.data.coffee()[:96, :128]).save(tmp_path / "photo.jpg", quality=15)
    proc = subprocess.run([sys.executable, "-m", "qgac_jax.restore", str(tmp_path / "photo.jpg"), "--output",
                           str(tmp_path / "out")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert np.asarray(Image.open(tmp_path / "out" / "photo.png")).shape == (96, 128, 3)


@pytest.mark.slow
def test_restore_picks_the_shipped_grey_model_for_grey_jpegs(tmp_path):
    if default_checkpoint(1) == default_checkpoint(3):
        pytest.skip("this version ships one model for both")
    photo = skimage.data.coffee()[:96, :128]
    Image.fromarray(photo).convert("L").save(tmp_path / "grey.jpg", quality=15)
    Image.fromarray(photo).save(tmp_path / "colour.jpg", quality=15)
    proc = subprocess.run([sys.executable, "-m", "qgac_jax.restore", str(tmp_path / "grey.jpg"),
                           str(tmp_path / "colour.jpg"), "--output", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    grey_out = np.asarray(Image.open(tmp_path / "out" / "grey.png"))
    colour_out = np.asarray(Image.open(tmp_path / "out" / "colour.png"))
    np.testing.assert_array_equal(grey_out, Restorer.pretrained(1).restore(tmp_path / "grey.jpg"))
    np.testing.assert_array_equal(colour_out, Restorer.pretrained(3).restore(tmp_path / "colour.jpg"))
    assert not np.array_equal(grey_out, Restorer.pretrained(3).restore(tmp_path / "grey.jpg"))


def _shipped_estimator():
    from qgac_jax.models.quality_estimate import QualityEstimate
    from qgac_jax.models.shipped import estimator_checkpoint

    path = estimator_checkpoint()
    if path is None:
        pytest.skip("this version ships no quality estimator")
    return QualityEstimate.from_checkpoint(path)


@pytest.mark.slow
def test_shipped_estimator_reads_the_quality_of_single_jpegs():
    from qgac_jax.evaluation.protocol import Case

    estimate = _shipped_estimator()
    errors = []
    for clean in _dev_images(False):
        for q in (10, 30, 50, 70, 90):
            decoded, _, quantization, _ = Case(q).apply(clean)
            errors.append(abs(estimate(decoded.astype(np.float32) / 255.0, quantization) - q))
    assert np.mean(np.asarray(errors) <= 5) >= 0.9, np.round(errors, 1)


@pytest.mark.slow
def test_recompressed_photo_restores_better_by_default_than_with_the_files_tables(tmp_path):
    from qgac_jax.evaluation.protocol import Case

    _shipped_estimator()
    restorer = Restorer.pretrained()
    gains = []
    for clean in _dev_images(False)[:2]:
        _, target, _, data = Case(75, first=20, shift=4).apply(clean)
        default = float(metrics.psnr(target, restorer.restore(data))[0])
        file_only = float(metrics.psnr(target, restorer.restore(data, quality="file"))[0])
        gains.append(default - file_only)
    assert np.mean(gains) > 0.3, gains
    (tmp_path / "twice.jpg").write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "qgac_jax.restore", str(tmp_path / "twice.jpg"), "--output",
                           str(tmp_path / "out"), "--show-quality"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "file tables about quality 75" in proc.stdout, proc.stdout + proc.stderr
    assert "recompressed: restored as quality" in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["webp", "heic"])
def test_a_photo_converted_from_a_jpeg_restores_better_by_default_and_one_saved_once_as_before(tmp_path, codec):
    from qgac_jax.evaluation.protocol import Case

    if codec == "heic":
        pytest.importorskip("pillow_heif", reason="HEIC files are written by pillow-heif (the extra `test`)")
    restorer = Restorer.pretrained()
    if codec not in getattr(restorer.estimator, "codecs", ()):
        pytest.skip(f"no shipped estimator has learned {codec} files")
    gains, once = [], []
    for clean in _dev_images(False)[:2]:
        _, target, _, data = Case(75, first=20, codec=codec).apply(clean)
        default = float(metrics.psnr(target, restorer.restore(data))[0])
        gains.append(default - float(metrics.psnr(target, restorer.restore(data, quality="file"))[0]))
        _, target, _, single = Case(50, codec=codec).apply(clean)
        once.append(float(metrics.psnr(target, restorer.restore(single))[0]) -
                    float(metrics.psnr(target, restorer.restore(single, quality="file"))[0]))
    assert np.mean(gains) > 0.5, gains  # the JPEG's blocking, told
    assert np.mean(once) > -0.05, once  # a file saved once is not mistaken for a converted one
    (tmp_path / f"converted.{codec}").write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "qgac_jax.restore", str(tmp_path / f"converted.{codec}"), "--output",
                           str(tmp_path / "out"), "--show-quality"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "converted from a JPEG of about quality" in proc.stdout, proc.stdout + proc.stderr


def _perceptual():
    path = default_checkpoint(3, "perceptual")
    if path is None:
        pytest.skip("this version ships no perceptual model")
    return path


@pytest.mark.slow
def test_the_perceptual_model_looks_closer_at_quality_10_and_stays_faithful():
    """The card's claim on four development photos: LPIPS (AlexNet, not the VGG16 it trained on) well below
    the PSNR model's at quality 10, still over a dB of PSNR above the JPEG, and no worse LPIPS at 40."""
    from qgac_jax.evaluation import lpips

    models = {"psnr": Restorer.pretrained(), "perceptual": Restorer.pretrained(model="perceptual")}
    assert models["perceptual"].channels == 3
    scores = {(m, q): [] for m in models for q in (10, 40)}
    psnr_gain = []
    for clean in _dev_images(False):
        for q in (10, 40):
            buf = io.BytesIO()
            Image.fromarray(clean).save(buf, format="JPEG", quality=q)
            for name, restorer in models.items():
                restored = restorer.restore(buf.getvalue())
                scores[name, q].append(float(lpips.lpips(clean, restored, "alex")[0]))
                if name == "perceptual" and q == 10:
                    jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
                    psnr_gain.append(float(metrics.psnr(clean, restored)[0]) - float(metrics.psnr(clean, jpeg)[0]))
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    assert mean["perceptual", 10] < 0.9 * mean["psnr", 10], mean  # 16.9% lower on all of cbsd68
    assert mean["perceptual", 40] <= mean["psnr", 40], mean
    assert np.mean(psnr_gain) > 1.0, psnr_gain


@pytest.mark.slow
def test_restore_model_perceptual_writes_the_perceptual_models_restore(tmp_path):
    _perceptual()
    photo = skimage.data.coffee()[:96, :128]
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=10)
    out = {}
    for model in ("psnr", "perceptual"):
        proc = subprocess.run([sys.executable, "-m", "qgac_jax.restore", str(tmp_path / "photo.jpg"), "--output",
                               str(tmp_path / model), "--model", model], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[model] = np.asarray(Image.open(tmp_path / model / "photo.png"))
    np.testing.assert_array_equal(out["perceptual"], Restorer.pretrained(model="perceptual").restore(
        tmp_path / "photo.jpg"))
    assert np.abs(out["perceptual"].astype(int) - out["psnr"]).mean() > 0.5
    proc = subprocess.run([sys.executable, "-m", "qgac_jax.restore", str(tmp_path / "photo.jpg"), "--output",
                           str(tmp_path / "x"), "--model", "perceptual", "--checkpoint", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--model perceptual names a shipped model, and --checkpoint another" in proc.stderr


def test_the_video_model_restores_a_clip_better_than_the_photo_model():
    """One clip of the protocol (a camera over scikit-image's coffee, VP9 at CRF 45): the video fine-tune gains
    more over the decoded frames than the photo model it started from (docs/video.md has the full table)."""
    pytest.importorskip("av", reason="clips need PyAV (the extra `video`)")
    import skimage.data

    from qgac_jax.evaluation import clip_protocol
    from qgac_jax.models import shipped

    if shipped.default_checkpoint(3, "video") is None:
        pytest.skip("this version ships no video model")
    originals = clip_protocol.clip_of(skimage.data.coffee(), 0)
    gains = {}
    for model in ("psnr", "video"):
        r = Restorer.from_checkpoint(shipped.default_checkpoint(3, model), estimator=None)
        case = clip_protocol.evaluate_clip(lambda x, q, mode: r.restore_compressed(x, q, mode), originals, "vp9", 45,
                                           workaround=())
        gains[model] = case["model_psnr"] - case["decoded_psnr"]
    assert gains["video"] > max(gains["psnr"], 0) + 0.1, gains
