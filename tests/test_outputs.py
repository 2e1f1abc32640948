"""What restore keeps and where it writes: colour profiles, EXIF, XMP, alpha and 16 bits carried over; reruns
beside or inside the input folder; names at the file system's limit; leftovers; Ctrl-C; argument checks."""

import io
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from qgac_jax import restore
from qgac_jax.commands import logs
from qgac_jax.files import png16
from conftest import display_p3_profile, jpeg_bytes, natural_image

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(capsys, *args):
    status = restore.run([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def _photo_with_metadata():
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0132] = "Camera Maker", "Model 7", "2026:11:30 10:20:30"
    exif[0x0112] = 6  # shown a quarter turn clockwise
    exif.get_ifd(0x8825)[2] = (48.0, 51.0, 29.0)  # GPS latitude
    xmp = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
           b'<rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6" '
           b'xmlns:dc="http://purl.org/dc/elements/1.1/" dc:creator="Ada"/></rdf:RDF></x:xmpmeta>')
    return jpeg_bytes(natural_image(40, 56), quality=25, icc_profile=display_p3_profile(), exif=exif, xmp=xmp)


def test_colour_profile_exif_and_xmp_reach_the_png(colour_export, tmp_path, capsys):
    (tmp_path / "p3.jpg").write_bytes(_photo_with_metadata())
    status, _, err = _run(capsys, tmp_path / "p3.jpg", "--output", tmp_path / "out", "--checkpoint", colour_export)
    assert status == 0, err
    with Image.open(tmp_path / "out" / "p3.png") as out:
        assert out.info["icc_profile"] == display_p3_profile()
        exif = out.getexif()
        assert (exif[0x010F], exif[0x0110], exif[0x0132]) == ("Camera Maker", "Model 7", "2026:11:30 10:20:30")
        assert exif[0x0112] == 1 and out.size == (40, 56)  # turned upright once, and says so
        assert exif.get_ifd(0x8825)[2] == (48.0, 51.0, 29.0)
        xmp = out.info["XML:com.adobe.xmp"]
        assert 'dc:creator="Ada"' in xmp and 'tiff:Orientation="1"' in xmp


def test_alpha_passes_through_and_16_bit_colour_stays_16_bit(colour_export, tmp_path, capsys):
    rgba = np.concatenate([natural_image(32, 40), np.arange(32 * 40, dtype=np.uint8).reshape(32, 40, 1)], -1)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    deep = np.minimum(natural_image(24, 32).astype(np.uint16) * 257, 65000) + np.arange(32, dtype=np.uint16)[:, None]
    (tmp_path / "deep.png").write_bytes(png16.encode(deep))
    status, _, err = _run(capsys, tmp_path / "logo.png", tmp_path / "deep.png", "--output", tmp_path / "out",
                          "--checkpoint", colour_export, "--quality", "50")
    assert status == 0, err
    with Image.open(tmp_path / "out" / "logo.png") as out:
        assert out.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(out)[..., 3], rgba[..., 3])  # alpha untouched
        assert not np.array_equal(np.asarray(out)[..., :3], rgba[..., :3])  # the colour was restored
    back = png16.read((tmp_path / "out" / "deep.png").read_bytes())
    assert back.dtype == np.uint16 and back.shape == (24, 32, 3)
    assert np.abs(back.astype(float) - deep).mean() < 2000 and (back % 257 != 0).any()  # 16-bit levels, kept


def test_nested_output_folder_reruns_three_times_without_restoring_its_own_outputs(colour_export, tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / "a.jpg").write_bytes(jpeg_bytes(natural_image(24, 32), quality=20))
    (photos / "sub" / "b.jpg").write_bytes(jpeg_bytes(natural_image(24, 32, seed=1), quality=30))
    Image.fromarray(natural_image(16, 16)).save(photos / "scan.png")
    lines, outs = [], []
    for _ in range(3):
        status, out, err = _run(capsys, photos, "--output", photos / "restored", "--checkpoint", colour_export)
        assert status == 0 and "error" not in err, err
        lines.append(out.strip().splitlines()[-1])
        outs.append(out)
    assert lines[0].startswith("restored 2, not restored: 1 lossless PNG")
    # the PNG not restored is named, with what would restore it; each restored photo has its line
    assert f"not restored: {photos / 'scan.png'}: no quantization to read (lossless PNG); --quality Q " in outs[0]
    assert f"restored {photos / 'a.jpg'} -> {photos / 'restored' / 'a.png'} (32x24, " in outs[0]
    assert lines[1].startswith("restored 0, skipped 2 (output exists), not restored: 1 lossless PNG") == \
        lines[2].startswith("restored 0, skipped 2")
    status, out, _ = _run(capsys, photos, "--output", photos / "restored", "--checkpoint", colour_export,
                          "--quality", "50")  # PNGs are inputs now, but the output folder's are not
    assert status == 0 and out.strip().splitlines()[-1].startswith("restored 1, skipped 2 (output exists), failed 0")
    assert sorted(p.relative_to(photos / "restored").as_posix() for p in (photos / "restored").rglob("*.png")) == \
        ["a.png", "scan.png", "sub/b.png"]


def test_input_and_output_the_same_folder(colour_export, tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(natural_image(24, 32), quality=20))
    for expected in ("restored 1, failed 0", "restored 0, skipped 1 (output exists), failed 0"):
        status, out, err = _run(capsys, tmp_path, "--output", tmp_path, "--checkpoint", colour_export)
        assert status == 0 and out.strip().splitlines()[-1].startswith(expected), out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jpg", "a.png"]


def test_a_file_named_three_ways_is_restored_and_counted_once(colour_export, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(jpeg_bytes(natural_image(24, 32), quality=20))
    status, out, err = _run(capsys, tmp_path / "in", tmp_path / "in" / "*.jpg", tmp_path / "in" / "a.jpg",
                            "--output", tmp_path / "out", "--checkpoint", colour_export)
    assert status == 0 and "error" not in err and "restored 1, failed 0" in out


def test_a_name_of_250_bytes_restores(colour_export, tmp_path, capsys):
    name = "é" * 60 + "x" * 126 + ".jpg"  # 250 bytes in UTF-8, under the usual 255-byte limit
    assert len(name.encode()) == 250
    (tmp_path / name).write_bytes(jpeg_bytes(natural_image(24, 32), quality=20))
    status, _, err = _run(capsys, tmp_path / name, "--output", tmp_path / "out", "--checkpoint", colour_export)
    assert status == 0, err
    assert (tmp_path / "out" / (name[:-4] + ".png")).is_file()


def test_leftovers_of_a_killed_run_are_removed_and_a_live_runs_are_kept(colour_export, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (out / f".qgac-{int(dead.stdout)}-a1b2c3d4.tmp").write_bytes(b"half a png")
    (out / f".qgac-{os.getpid()}-e5f6g7h8.tmp").write_bytes(b"being written")
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(natural_image(24, 32), quality=20))
    status, _, err = _run(capsys, tmp_path / "a.jpg", "--output", out, "--checkpoint", colour_export)
    assert status == 0 and "removed 1 temporary file(s)" in err
    assert sorted(p.name for p in out.iterdir()) == [f".qgac-{os.getpid()}-e5f6g7h8.tmp", "a.png"]


def test_a_folder_at_an_output_path_is_an_error_naming_it(colour_export, tmp_path, capsys):
    (tmp_path / "a.jpg").write_bytes(jpeg_bytes(natural_image(24, 32), quality=20))
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    status, out, err = _run(capsys, tmp_path / "a.jpg", "--output", tmp_path / "out", "--checkpoint", colour_export)
    assert status == 1 and f"its output {tmp_path / 'out' / 'a.png'} is a folder" in err and "skipped" not in out


def test_pillow_warnings_are_one_line_naming_the_file(colour_export, tmp_path, capsys):
    broken_exif = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x02\x01\x0f\x00\x02\x00\x00\x00\x10\x00\x00\x10\x00"
    (tmp_path / "odd.jpg").write_bytes(jpeg_bytes(natural_image(24, 32), quality=20, exif=broken_exif))
    status, _, err = _run(capsys, tmp_path / "odd.jpg", "--output", tmp_path / "out", "--checkpoint", colour_export)
    assert status == 0 and f"warning: {tmp_path / 'odd.jpg'}: " in err and "UserWarning" not in err


@pytest.mark.parametrize("args, env, message", [
    (["--max-pixels", "inf"], {}, "--max-pixels must be a positive, finite number"),
    (["--max-pixels", "nan"], {}, "--max-pixels must be a positive, finite number"),
    ([], {"QGAC_BACKEND": "tpu"}, "QGAC_BACKEND='tpu': use auto, jax or onnxruntime"),
    (["--precision", "int8", "--backend", "jax"], {}, "--precision int8 runs ONNX Runtime; drop --backend jax"),
    (["--precision", "int8", "--onnx", "m.onnx"], {}, "for an ONNX file, export it with"),
    (["--precision", "int4"], {}, "argument --precision: invalid choice: 'int4'"),
    (["--jobs", "0"], {}, "--jobs must be at least 1, got 0"),
    (["--jobs", "two"], {}, "--jobs must be a whole number, got 'two'"),
])
def test_bad_arguments_are_one_line(tmp_path, monkeypatch, capsys, args, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exit_info:
        restore.parse_args(["x.jpg", "--output", str(tmp_path), *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_in_a_folder_prints_the_summary_and_exits_130(colour_export, tmp_path, jobs):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(40):
        (folder / f"{i:02d}.jpg").write_bytes(jpeg_bytes(natural_image(160, 200, seed=i), quality=20))
    proc = subprocess.Popen([sys.executable, "-m", "qgac_jax.restore", str(folder), "--output", str(tmp_path / "out"),
                             "--checkpoint", str(colour_export), "--tile", "64", "--overlap", "16", "--jobs", jobs,
                             *(["--backend", "onnxruntime"] if jobs != "1" else [])],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # as from a shell: test workers may run with SIGINT ignored, which children inherit
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = proc.stdout.readline()  # one line per file: the run is under way
    assert first.startswith("restored "), first + proc.stderr.read()
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "interrupted: " in err and "abandoned (nothing half-written)" in err
    summary = out.strip().splitlines()[-1]
    done = len(list((tmp_path / "out").glob("*.png")))
    counted = int(summary.split()[1].rstrip(","))
    # photos at once: those being written as Ctrl-C came (one per job at most) are on disk, not in the count
    assert summary.startswith("restored ") and 0 < done < 40 and done - int(jobs) <= counted <= done
    assert not [p for p in (tmp_path / "out").iterdir() if p.suffix != ".png"]  # no temporary file left
    with Image.open(sorted((tmp_path / "out").glob("*.png"))[-1]) as last:
        last.load()  # every written file is whole


def test_a_jpeg_and_a_webp_of_one_name_are_both_restored_under_their_whole_names(colour_export, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(natural_image(24, 32)).save(folder / "a.webp", quality=30)
    (folder / "a.jpg").write_bytes(jpeg_bytes(natural_image(24, 32, seed=1), quality=30))
    status, out, err = _run(capsys, folder, "--output", tmp_path / "out", "--checkpoint", colour_export,
                            "--quality", "30", "--show-quality")
    assert status == 0 and "restored 2," in out, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.jpg.png", "a.webp.png"]
    assert re.search(r"a\.webp: WEBP \(lossy\): VP8 quantizer index \d+.*; told IJG tables of quality 30 "
                     r"\(--quality\)", out + err), out + err
    assert re.search(r"a\.jpg: told IJG tables of quality 30 \(--quality\)", out + err), out + err


def _heic_bytes() -> bytes:
    pillow_heif = pytest.importorskip("pillow_heif", reason="HEIC files are written by pillow-heif (the extra `test`)")
    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.fromarray(natural_image(24, 32)).save(buf, "HEIF", quality=50)
    return buf.getvalue()


def test_lossy_codecs_are_restored_and_lossless_files_met_in_a_folder_are_listed(colour_export, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    photo = Image.fromarray(natural_image(24, 32))
    photo.save(folder / "web_lossy.webp", quality=50)
    photo.save(folder / "web_lossless.webp", lossless=True)
    photo.save(folder / "scan.png")
    photo.save(folder / "new.avif", quality=50)
    (folder / "phone.heic").write_bytes(_heic_bytes())  # an HEIC file from a phone, say
    (folder / "a.jpg").write_bytes(jpeg_bytes(natural_image(24, 32), quality=20))
    status, out, err = _run(capsys, folder, "--output", tmp_path / "out", "--checkpoint", colour_export)
    assert status == 0 and "error" not in err, err
    assert re.search(r"restored 4, not restored: 1 lossless PNG, 1 lossless WEBP \(no "
                     r"quantization to read; --quality Q restores them as JPEGs of quality Q\), failed 0", out), out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "new.png", "phone.png", "web_lossy.png"]
    status, _, err = _run(capsys, folder / "web_lossless.webp", "--output", tmp_path / "out2", "--checkpoint",
                          colour_export)  # named: an error that says why
    assert status == 1 and "no quantization to read (lossless WEBP); --quality Q restores it" in err, err


def test_broken_and_hostile_codec_files_fail_one_line_each_and_the_rest_is_restored(colour_export, tmp_path, capsys):
    from PIL import features

    from conftest import encoded

    pillow_heif = pytest.importorskip("pillow_heif", reason="HEIC files are written by pillow-heif (the extra `test`)")
    pillow_heif.register_heif_opener()
    folder = tmp_path / "in"
    folder.mkdir()
    photo = natural_image(48, 64)
    webp, heic = encoded(photo, "WEBP", quality=40), encoded(photo, "HEIF", quality=40)
    (folder / "good.webp").write_bytes(webp)
    (folder / "good.heic").write_bytes(heic)
    (folder / "cut.webp").write_bytes(webp[:len(webp) // 2])
    (folder / "cut.heic").write_bytes(heic[:len(heic) * 2 // 3])
    (folder / "lossless.webp").write_bytes(encoded(photo, "WEBP", lossless=True))
    (folder / "lists.heic").write_bytes(encoded(photo, "HEIF", quality=40, enc_params={"x265:scaling-list": "default"}))
    ispe = heic.index(b"ispe") + 8  # the image's size property: claim 60000x60000
    (folder / "huge.heic").write_bytes(heic[:ispe] + (60000).to_bytes(4, "big") * 2 + heic[ispe + 8:])
    broken = ["cut.webp", "cut.heic", "lists.heic", "huge.heic"]
    if features.check("avif"):
        avif = encoded(photo, "AVIF", quality=40)
        (folder / "good.avif").write_bytes(avif)
        (folder / "cut.avif").write_bytes(avif[:len(avif) * 2 // 3])
        broken.append("cut.avif")
    status, out, err = _run(capsys, folder, "--output", tmp_path / "out", "--checkpoint", colour_export)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert status == 1 and sorted(re.findall(r"error: \S+/(\S+):", err)) == sorted(broken), err
    assert len(lines) == len(broken) and "Traceback" not in err
    assert re.search(r"lists\.heic: HEIC: an HEVC stream with scaling lists.*--quality Q restores it", err), err
    assert re.search(r"huge\.heic: 60000x60000 pixels exceeds the limit", err), err
    good = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert good == sorted(f"good.{s}" for s in ("png",)) or good == ["good.avif.png", "good.heic.png",
                                                                    "good.webp.png"][:len(good)], good
    assert f"restored {len(good)}," in out and "not restored: 1 lossless WEBP" in out and \
        f"failed {len(broken)}" in out


def test_piped_to_a_log_a_large_photo_prints_its_progress(colour_export, tmp_path, capsys, monkeypatch):
    """No terminal, no bar: a line every LOG_EVERY_S seconds (0 here) while a photo of many tiles restores."""
    monkeypatch.setattr(logs, "LOG_EVERY_S", 0.0)
    (tmp_path / "big.jpg").write_bytes(jpeg_bytes(natural_image(96, 160), quality=20))
    status, out, err = _run(capsys, tmp_path / "big.jpg", "--output", tmp_path / "out", "--checkpoint", colour_export,
                            "--tile", "32", "--overlap", "8")
    assert status == 0, err
    progress = [line for line in out.splitlines() if re.match(rf"{re.escape(str(tmp_path / 'big.jpg'))}: \d+/\d+ "
                                                              r"tiles, \d+ s, about \d+ s left$", line)]
    assert len(progress) >= 5, out


def test_usage_names_the_console_script_it_was_started_as(tmp_path):
    script = pathlib.Path(sys.executable).parent / "qgac-restore"
    if not script.exists():
        pytest.skip(f"{script} is absent (the package is not pip-installed in this environment)")
    proc = subprocess.run([str(script), "x.jpg"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: qgac-restore "), proc.stderr
    proc = subprocess.run([sys.executable, "-m", "qgac_jax.restore", "x.jpg"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: python -m qgac_jax.restore "), proc.stderr


def test_a_cut_file_is_named_without_pillows_aside():
    from qgac_jax.commands import jobs

    assert jobs.reason(OSError("image file is truncated (0 bytes not processed)")) == "image file is truncated"
