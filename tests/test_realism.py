"""models/realism.py: R kept to two decimals, the shipped models at 0 and 1, a blend of their weights between,
written once and found again; --realism on the command lines; and R = 0.5 restoring between the two models."""

import io

import jax
import numpy as np
import pytest
from PIL import Image

from conftest import SHARED_DATA
from qgac_jax.models import exports, realism, shipped

needs_perceptual = pytest.mark.skipif(shipped.default_checkpoint(3, "perceptual") is None,
                                      reason="this version ships no perceptual model")


def test_r_is_a_number_from_0_to_1_kept_to_two_decimals():
    assert realism.parse("0.5") == 0.5 and realism.parse("0.123") == pytest.approx(0.12) and realism.parse(1) == 1.0
    for bad in ("1.5", "-0.1", "nan", "crisp", None):
        with pytest.raises(ValueError, match="realism must be"):
            realism.parse(bad)


@needs_perceptual
def test_the_ends_are_the_shipped_models_and_a_blend_is_their_weights_mixed_written_once(tmp_path, monkeypatch):
    monkeypatch.setenv("QGAC_REALISM_CACHE", str(tmp_path))
    psnr, perceptual = shipped.default_checkpoint(3), shipped.default_checkpoint(3, "perceptual")
    assert realism.checkpoint(0.0) == psnr and realism.checkpoint(1.0) == perceptual
    said = []
    path = realism.checkpoint(0.25, log=lambda *a, **k: said.append(a[0]))
    assert path.parent == tmp_path and len(said) == 1 and "realism 0.25" in said[0]
    _, mixed, config = exports.load_restoration_export(path)
    _, a, _ = exports.load_restoration_export(psnr)
    _, b, _ = exports.load_restoration_export(perceptual)
    for x, y, m in zip(jax.tree.leaves(a), jax.tree.leaves(b), jax.tree.leaves(mixed)):
        np.testing.assert_allclose(m, 0.75 * np.asarray(x) + 0.25 * np.asarray(y), rtol=1e-5, atol=1e-7)
    assert config["realism"] == 0.25 and config["variant"] == exports.read_model_config(psnr)["variant"]
    stamp = (path / "model").stat().st_mtime_ns
    assert realism.checkpoint(0.25, log=lambda *a, **k: said.append(a[0])) == path and len(said) == 1  # found
    assert (path / "model").stat().st_mtime_ns == stamp
    assert realism.checkpoint(0.5) != path  # another R, another blend
    assert realism.checkpoint(0.25, channels=1).parent == tmp_path  # grey files blend the colour pair


@needs_perceptual
def test_two_different_networks_are_not_blended(tmp_path):
    with pytest.raises(ValueError, match="different networks"):
        realism.blend(shipped.default_checkpoint(1), shipped.default_checkpoint(3, "perceptual"), 0.5, tmp_path / "x")


@needs_perceptual
@pytest.mark.parametrize("args, message", [(["--realism", "2"], "from 0 (faithful) to 1 (perceptual)"),
                                           (["--realism", "0.5", "--model", "perceptual"], "without --model"),
                                           (["--realism", "0.5", "--checkpoint", "x"], "--checkpoint names another")])
def test_realism_mistakes_are_one_line_at_parsing(tmp_path, capsys, args, message):
    from qgac_jax import restore

    with pytest.raises(SystemExit) as exit_info:
        restore.run([str(tmp_path), "--output", str(tmp_path / "o"), *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
@needs_perceptual
def test_half_realism_restores_between_the_faithful_and_the_perceptual_model(tmp_path, monkeypatch):
    """On three cbsd68 photos at JPEG quality 10: R = 0.5's PSNR and LPIPS-Alex (means) lie between R = 0's and
    R = 1's, through restore --realism as a user runs it."""
    from qgac_jax import restore
    from qgac_jax.evaluation.lpips import lpips
    from qgac_jax.evaluation.metrics import psnr

    folder = SHARED_DATA / "cbsd68"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (only a development checkout has ../shared/data)")
    monkeypatch.setenv("QGAC_REALISM_CACHE", str(tmp_path / "cache"))
    originals = {}
    for path in sorted(folder.glob("*.png"))[:3]:
        photo = np.asarray(Image.open(path).convert("RGB"))[:192, :192]
        originals[path.stem] = photo
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, "JPEG", quality=10)
        (tmp_path / f"{path.stem}.jpg").write_bytes(buf.getvalue())
    scores = {}
    for r in ("0", "0.5", "1"):
        assert restore.run([*(str(tmp_path / f"{n}.jpg") for n in originals), "--output", str(tmp_path / r),
                            "--realism", r]) == 0
        closeness, distance = [], []
        for name, photo in originals.items():
            out = np.asarray(Image.open(tmp_path / r / f"{name}.png"))
            closeness.append(float(psnr(photo, out)[0]))
            distance.append(float(lpips(photo[None], out[None])[0]))
        scores[r] = (np.mean(closeness), np.mean(distance))
    (p0, l0), (p5, l5), (p1, l1) = scores["0"], scores["0.5"], scores["1"]
    assert p1 < p5 < p0 and l1 < l5 < l0, scores


@pytest.mark.slow
@needs_perceptual
def test_export_realism_converts_the_blend(tmp_path, monkeypatch, capsys):
    pytest.importorskip("jax2onnx", reason="the ONNX export needs the extra `onnx`")
    from qgac_jax import export

    monkeypatch.setenv("QGAC_REALISM_CACHE", str(tmp_path / "cache"))
    assert export.run(["--format", "onnx", "--output", str(tmp_path / "half.onnx"), "--realism", "0.5"]) == 0
    said = capsys.readouterr().out
    assert f"converting {tmp_path / 'cache'}/colour-perceptual_colour-0.50-" in said, said
    assert (tmp_path / "half.onnx").stat().st_size > 1e6
