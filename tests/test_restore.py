"""The restore CLI, through real subprocesses: outputs, safety, and the bad-input suite."""

import hashlib
import io
import os
import pathlib
import subprocess
import sys
import time

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


def _claim_size(jpeg: bytes, height: int, width: int) -> bytes:
    """The same JPEG with a start-of-frame header that claims another size (a few hundred bytes of 'bomb')."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        at = jpeg.find(marker)
        if at >= 0:
            return jpeg[:at + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[at + 9:]
    raise AssertionError("no SOF marker")


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory):
    """Good and bad files side by side in one folder, as users' folders are; {name: expected (H, W) or None}."""
    d = tmp_path_factory.mktemp("inputs")
    expect = {}

    def good(name, data, shape):
        (d / name).write_bytes(data)
        expect[name] = shape

    def bad(name, data):
        (d / name).write_bytes(data) if isinstance(data, bytes) else (d / name).write_text(data)
        expect[name] = None

    good("good.jpg", jpeg_bytes(natural_image(48, 64), quality=20), (48, 64, 3))
    good("grey.jpg", jpeg_bytes(natural_image(40, 40)[..., 0], quality=30), (40, 40))
    good("one_pixel.jpg", jpeg_bytes(natural_image(1, 1), quality=30), (1, 1, 3))
    good("odd.jpg", jpeg_bytes(natural_image(37, 53), quality=25), (37, 53, 3))
    good("s422.jpg", jpeg_bytes(natural_image(40, 56), quality=30, subsampling=1), (40, 56, 3))
    good("s444.jpg", jpeg_bytes(natural_image(40, 56), quality=30, subsampling=0), (40, 56, 3))
    good("progressive.jpg", jpeg_bytes(natural_image(40, 56), quality=30, progressive=True), (40, 56, 3))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated a quarter turn
    good("rotated.jpg", jpeg_bytes(natural_image(32, 48), quality=30, exif=exif.tobytes()), (48, 32, 3))
    bad("empty.jpg", b"")
    bad("random.jpg", np.random.default_rng(0).bytes(2000))
    bad("notes.txt.jpg", "just some text, not a picture\n")
    big = jpeg_bytes(natural_image(160, 200), quality=60)
    bad("truncated.jpg", big[: len(big) * 2 // 3])  # header intact, scan cut short
    small = jpeg_bytes(natural_image(16, 16), quality=50)
    bad("bomb_60000.jpg", _claim_size(small, 60000, 60000))  # above Pillow's own limit
    bad("bomb_9000.jpg", _claim_size(small, 9000, 9000))  # under it, over the default --max-pixels
    buf = io.BytesIO()
    Image.fromarray(natural_image(32, 32)).convert("CMYK").save(buf, format="JPEG")
    bad("cmyk.jpg", buf.getvalue())
    buf = io.BytesIO()
    Image.fromarray(natural_image(24, 24)[..., 0].astype(np.uint16) * 257).save(buf, format="PNG")
    (d / "deep16.png").write_bytes(buf.getvalue())  # lossless, no --quality: listed, not an error, in a folder
    return d, expect


@pytest.mark.slow
def test_hostile_folder_good_files_restore_bad_ones_get_one_line_each(colour_export, hostile_folder, tmp_path):
    folder, expect = hostile_folder
    before = {p.name: _digest(p) for p in folder.iterdir()}
    out = tmp_path / "out"
    start = time.time()
    proc = _cli(folder, "--output", out, "--checkpoint", colour_export)
    assert time.time() - start < 120  # seconds, not minutes: no bomb is decoded
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    failed = {line.split(": ")[1].split("/")[-1] for line in errors}
    assert failed == {n for n, shape in expect.items() if shape is None} and len(errors) == len(failed), proc.stderr
    reasons = {line.split(": ")[1].split("/")[-1]: line for line in errors}
    assert "empty" in reasons["empty.jpg"] and "CMYK" in reasons["cmyk.jpg"]
    assert "broken" in reasons["truncated.jpg"] and "not an image file" in reasons["notes.txt.jpg"]
    assert "BytesIO" not in proc.stderr
    for name in ("bomb_60000.jpg", "bomb_9000.jpg"):
        assert "--max-pixels" in reasons[name], reasons[name]
    # Every good file is restored at its own (displayed) size; nothing else is left in the output folder.
    restored = {p.name: np.asarray(Image.open(p)).shape for p in out.iterdir()}
    assert restored == {n.rsplit(".", 1)[0] + ".png": shape for n, shape in expect.items() if shape is not None}
    n_good = sum(shape is not None for shape in expect.values())
    assert (f"restored {n_good}, not restored: 1 lossless PNG (no quantization to read; "
            f"--quality Q restores them as JPEGs of quality Q), failed {len(failed)}") in proc.stdout
    assert {p.name: _digest(p) for p in folder.iterdir()} == before  # inputs untouched

    # A rerun skips everything it already wrote: exit 0 if only the good files are asked for again.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    goods = [folder / n for n, shape in expect.items() if shape is not None]
    again = _cli(*goods, "--output", out, "--checkpoint", colour_export)
    assert again.returncode == 0, again.stderr
    assert f"restored 0, skipped {n_good} (output exists), failed 0" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_max_pixels_reads_numbers_like_5e5_and_refuses_from_the_header(colour_export, tmp_path):
    small = jpeg_bytes(natural_image(16, 16), quality=50)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "claims.jpg").write_bytes(_claim_size(small, 800, 1000))  # 0.8 MP: over 5e5, under twice it
    proc = _cli(tmp_path / "in", "--output", tmp_path / "o", "--checkpoint", colour_export, "--max-pixels", "5e5")
    assert proc.returncode == 1 and "exceeds the limit of 500,000" in proc.stderr


@pytest.mark.slow
def test_output_equals_the_python_api_and_is_never_overwritten(colour_export, tmp_path):
    src = tmp_path / "in" / "sub"
    src.mkdir(parents=True)
    (src / "a.jpg").write_bytes(jpeg_bytes(natural_image(40, 40), quality=15))
    (tmp_path / "in" / "b.jpeg").write_bytes(jpeg_bytes(natural_image(32, 48, seed=3)[..., 0], quality=40))
    out = tmp_path / "out"
    proc = _cli(tmp_path / "in", "--output", out, "--checkpoint", colour_export, "--precision", "float32")
    assert proc.returncode == 0, proc.stderr
    assert (out / "sub" / "a.png").exists() and (out / "b.png").exists()  # relative layout kept
    want = Restorer.from_checkpoint(colour_export).restore(src / "a.jpg")  # the same estimator, the same guide
    np.testing.assert_array_equal(np.asarray(Image.open(out / "sub" / "a.png")), want)
    assert Image.open(out / "b.png").mode == "L"  # grey in, grey out
    stamp = _digest(out / "b.png")
    again = _cli(tmp_path / "in" / "b.jpeg", "--output", out, "--checkpoint", colour_export, "--quality", "90")
    assert again.returncode == 0 and "skipped 1 (output exists)" in again.stdout
    assert _digest(out / "b.png") == stamp
    forced = _cli(tmp_path / "in" / "b.jpeg", "--output", out, "--checkpoint", colour_export, "--quality", "90",
                  "--overwrite")
    assert forced.returncode == 0 and _digest(out / "b.png") != stamp


@pytest.mark.slow
def test_jobs_restore_photos_at_once_into_the_same_pngs(colour_export, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(5):
        (src / f"{i}.jpg").write_bytes(jpeg_bytes(natural_image(72, 96, seed=i), quality=20))
    (src / "bad.jpg").write_bytes(b"\xff\xd8 not a JPEG")
    runs = {}
    for jobs in ("1", "2"):
        proc = _cli(src, "--output", tmp_path / jobs, "--checkpoint", colour_export, "--jobs", jobs,
                    "--show-quality", "--backend", "onnxruntime")
        assert proc.returncode == 1 and proc.stderr.count("error: ") == 1, proc.stderr
        assert proc.stdout.startswith("network: ONNX Runtime ") and proc.stdout.count("network:") == 1
        assert "restored 5, failed 1" in proc.stdout
        runs[jobs] = {p.name: np.asarray(Image.open(p)) for p in (tmp_path / jobs).glob("*.png")}
    assert sorted(runs["1"]) == [f"{i}.png" for i in range(5)]
    for name, pixels in runs["1"].items():
        np.testing.assert_array_equal(runs["2"][name], pixels)
    again = _cli(src, "--output", tmp_path / "2", "--checkpoint", colour_export, "--jobs", "2", "--backend",
                 "onnxruntime")  # a rerun skips what exists, photos at once too
    assert again.returncode == 1 and "restored 0, skipped 5 (output exists), failed 1" in again.stdout, again.stderr


def test_glob_inputs_and_quality_for_png(colour_export, tmp_path):
    for i in range(2):
        Image.fromarray(natural_image(24, 32, seed=i)).save(tmp_path / f"x{i}.png")
    out = tmp_path / "out"
    proc = _cli(str(tmp_path / "x*.png"), "--output", out, "--checkpoint", colour_export, "--quality", "25")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["x0.png", "x1.png"]


def test_unusable_output_fails_at_once_naming_the_folder(colour_export, tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(natural_image(16, 16)))
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should be")
    for output, message in ((blocker / "out", "is not a writable folder"), (blocker, "exists and is not a folder")):
        start = time.time()
        proc = _cli(tmp_path / "a.jpg", "--output", output, "--checkpoint", colour_export, timeout=60)
        assert proc.returncode == 2 and f"error: --output {output} {message}" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and ".png.tmp" not in proc.stderr
        assert time.time() - start < 20  # before any model is loaded
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if not os.access(locked, os.W_OK):  # root writes anywhere: nothing to check then
            proc = _cli(tmp_path / "a.jpg", "--output", locked, "--checkpoint", colour_export, timeout=60)
            assert proc.returncode == 2 and f"--output {locked} is not a writable folder" in proc.stderr
    finally:
        locked.chmod(0o700)


def test_argument_mistakes_are_caught_at_parsing(tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(natural_image(16, 16)))
    for args, message in ((["--tile", "100"], "--tile must be a multiple of 8"),
                          (["--overlap", "12"], "--overlap must be a multiple of 8"),
                          (["--tile", "64", "--overlap", "32"], "below half of --tile"),
                          (["--quality", "0"], "1..100"), (["--quality", "best"], "'auto' or 'file'"),
                          (["--max-pixels", "lots"], "--max-pixels must be a number")):
        proc = _cli(tmp_path / "a.jpg", "--output", tmp_path / "o", *args, timeout=60)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert not (tmp_path / "o").exists()


def test_missing_inputs_and_checkpoints_are_one_line_errors(colour_export, tmp_path):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(natural_image(16, 16)))
    proc = _cli(tmp_path / "none*.jpg", "--output", tmp_path / "o", "--checkpoint", colour_export)
    assert proc.returncode == 1 and "no such file, directory or matching glob" in proc.stderr
    proc = _cli(tmp_path / "a.jpg", "--output", tmp_path / "o", "--checkpoint", tmp_path / "missing")
    assert proc.returncode == 2 and "does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_without_a_shipped_checkpoint_the_message_says_one_is_needed(tmp_path, monkeypatch, capsys):
    from qgac_jax import restore
    from qgac_jax.models import shipped

    monkeypatch.setattr(shipped, "default_checkpoint", lambda channels=3: None)  # a build without pretrained/
    with pytest.raises(SystemExit) as exit_info:
        restore.run([str(tmp_path), "--output", str(tmp_path / "o")])
    assert exit_info.value.code == 2
    assert "ships no pretrained checkpoint: pass --checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("command, extra", [("restore", ["a.jpg", "--output", "o"]), ("evaluate", ["--images", "x"]),
                                            ("export", ["--output", "x.onnx"])])
def test_a_shipped_model_beside_a_checkpoint_is_refused_by_every_command(command, extra, tmp_path, capsys,
                                                                         monkeypatch):
    import importlib

    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(f"qgac_jax.{command}")
    with pytest.raises(SystemExit) as exit_info:
        module.run([*extra, "--model", "perceptual", "--checkpoint", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "--model perceptual names a shipped model, and --checkpoint another; pass one" in capsys.readouterr().err
