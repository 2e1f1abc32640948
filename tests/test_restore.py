"""The restore CLI, through real subprocesses: outputs, safety, and the bad-input suite."""

import hashlib
import pathlib
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from qgac_jax import Restorer
from conftest import jpeg_bytes, natural_image

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "qgac_jax.restore", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    good = jpeg_bytes(natural_image(48, 64), quality=20)
    (d / "good.jpg").write_bytes(good)
    (d / "empty.jpg").write_bytes(b"")
    (d / "random.jpg").write_bytes(np.random.default_rng(0).bytes(2000))
    big = jpeg_bytes(natural_image(160, 200), quality=60)
    (d / "truncated.jpg").write_bytes(big[: len(big) * 2 // 3])  # header intact, scan cut short
    (d / "notes.txt.jpg").write_text("just some text, not a picture\n")
    Image.fromarray(natural_image(32, 32)).convert("CMYK").save(d / "cmyk.jpg")
    Image.fromarray(natural_image(40, 56)).save(d / "progressive.jpg", quality=30, progressive=True)
    Image.fromarray(natural_image(1, 1)).save(d / "one_pixel.jpg", quality=30)
    Image.fromarray(natural_image(24, 24)[..., 0].astype(np.uint16) * 257).save(d / "deep16.png")
    return d


def test_bad_input_suite_each_gets_an_output_or_one_line_error(colour_export, bad_inputs, tmp_path):
    before = {p.name: _digest(p) for p in bad_inputs.iterdir()}
    out = tmp_path / "out"
    proc = _cli(bad_inputs, "--output", out, "--checkpoint", colour_export)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = {line.split(": ")[1].split("/")[-1]: line for line in proc.stderr.splitlines() if line.startswith("error: ")}
    assert set(errors) == {"empty.jpg", "random.jpg", "truncated.jpg", "notes.txt.jpg", "cmyk.jpg", "deep16.png"}, proc.stderr
    assert "empty" in errors["empty.jpg"] and "CMYK" in errors["cmyk.jpg"] and "--quality" in errors["deep16.png"]
    assert "broken" in errors["truncated.jpg"]
    # The good, progressive and 1x1 files are restored; nothing partial is left behind.
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "one_pixel.png", "progressive.png"]
    assert np.asarray(Image.open(out / "one_pixel.png")).shape == (1, 1, 3)
    assert np.asarray(Image.open(out / "progressive.png")).shape == (40, 56, 3)
    assert "restored 3 file(s)" in proc.stdout and "6 failed" in proc.stdout
    assert {p.name: _digest(p) for p in bad_inputs.iterdir()} == before  # inputs untouched


def test_output_equals_the_python_api_and_is_never_overwritten(colour_export, tmp_path):
    src = tmp_path / "in" / "sub"
    src.mkdir(parents=True)
    (src / "a.jpg").write_bytes(jpeg_bytes(natural_image(40, 40), quality=15))
    (tmp_path / "in" / "b.jpeg").write_bytes(jpeg_bytes(natural_image(32, 48, seed=3)[..., 0], quality=40))
    out = tmp_path / "out"
    proc = _cli(tmp_path / "in", "--output", out, "--checkpoint", colour_export)
    assert proc.returncode == 0, proc.stderr
    assert (out / "sub" / "a.png").exists() and (out / "b.png").exists()  # relative layout kept
    want = Restorer.from_checkpoint(colour_export).restore(src / "a.jpg")
    np.testing.assert_array_equal(np.asarray(Image.open(out / "sub" / "a.png")), want)
    assert Image.open(out / "b.png").mode == "L"  # grey in, grey out
    stamp = _digest(out / "b.png")
    again = _cli(tmp_path / "in" / "b.jpeg", "--output", out, "--checkpoint", colour_export, "--quality", "90")
    assert again.returncode == 1 and "exists; pass --overwrite" in again.stderr
    assert _digest(out / "b.png") == stamp
    forced = _cli(tmp_path / "in" / "b.jpeg", "--output", out, "--checkpoint", colour_export, "--quality", "90",
                  "--overwrite")
    assert forced.returncode == 0 and _digest(out / "b.png") != stamp


def test_glob_inputs_and_quality_for_png(colour_export, tmp_path):
    for i in range(2):
        Image.fromarray(natural_image(24, 32, seed=i)).save(tmp_path / f"x{i}.png")
    out = tmp_path / "out"
    proc = _cli(str(tmp_path / "x*.png"), "--output", out, "--checkpoint", colour_export, "--quality", "25")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["x0.png", "x1.png"]


def test_unwritable_output_and_missing_things_are_one_line_errors(colour_export, tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(natural_image(16, 16)))
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should be")
    proc = _cli(tmp_path / "a.jpg", "--output", blocker / "out", "--checkpoint", colour_export)
    assert proc.returncode == 1 and "error: " in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli(tmp_path / "none*.jpg", "--output", tmp_path / "o", "--checkpoint", colour_export)
    assert proc.returncode == 1 and "no such file, directory or matching glob" in proc.stderr
    proc = _cli(tmp_path / "a.jpg", "--output", tmp_path / "o", "--checkpoint", tmp_path / "missing")
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr
    proc = _cli(tmp_path / "a.jpg", "--output", tmp_path / "o", "--checkpoint", colour_export, "--quality", "0")
    assert proc.returncode == 2 and "1..100" in proc.stderr


def test_without_a_shipped_checkpoint_the_message_says_one_is_needed(tmp_path, monkeypatch, capsys):
    from qgac_jax import restore

    monkeypatch.setattr(restore, "default_checkpoint", lambda channels=3: None)  # a build without pretrained/
    with pytest.raises(SystemExit) as exit_info:
        restore.run([str(tmp_path), "--output", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "ships no pretrained checkpoint: pass --checkpoint" in capsys.readouterr().err
