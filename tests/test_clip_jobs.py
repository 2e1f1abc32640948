"""commands/clip_jobs.py through `restore`: clips beside photos in one folder, their lines, reruns that skip, a
killed run that leaves no clip and whose leftover the next run removes."""

import os
import signal
import subprocess
import sys
import time

import pytest

from _clips import av, make_clip
from conftest import jpeg_bytes, natural_image
from qgac_jax import restore
from qgac_jax.commands import logs


def _run(capsys, *args):
    status = restore.run([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def test_photos_and_clips_of_every_codec_restore_from_one_folder(tmp_path, capsys, colour_export, monkeypatch):
    monkeypatch.setattr(logs, "LOG_EVERY_S", 0.0)  # (a progress line after every frame: not a terminal)
    (tmp_path / "in" / "sub").mkdir(parents=True)
    (tmp_path / "in" / "photo.jpg").write_bytes(jpeg_bytes(natural_image(48, 64), quality=30))
    make_clip(tmp_path / "in" / "a.mp4", "h264", frames=8)
    make_clip(tmp_path / "in" / "sub" / "b.webm", "vp9", frames=6)
    make_clip(tmp_path / "in" / "c.mkv", "hevc", frames=5)
    make_clip(tmp_path / "in" / "d.mov", "h264", frames=4)
    make_clip(tmp_path / "in" / "e.mkv", "av1", frames=4)
    out = tmp_path / "out"
    status, stdout, err = _run(capsys, tmp_path / "in", "--output", out, "--checkpoint", colour_export,
                               "--show-quality")
    assert status == 0, err
    made = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert made == ["a.mp4", "c.mkv", "d.mov", "e.mkv", "photo.png", "sub/b.mkv"]  # (WebM cannot hold H.264)
    for name, frames in (("a.mp4", 8), ("sub/b.mkv", 6), ("c.mkv", 5), ("d.mov", 4), ("e.mkv", 4)):
        with av.open(str(out / name)) as c:
            assert sum(1 for _ in c.decode(c.streams.video[0])) == frames, name
    assert f"restored {tmp_path / 'in' / 'a.mp4'} -> {out / 'a.mp4'} (128x96, 8 frames, " in stdout
    assert f"{tmp_path / 'in' / 'c.mkv'}: HEVC 128x96, 24 fps" in stdout and "first frame: HEVC I-frame, QP " in stdout
    assert f"{tmp_path / 'in' / 'a.mp4'}: 3/8 frames, " in stdout  # progress lines when piped
    assert stdout.strip().splitlines()[-1].startswith("restored 6, failed 0; ")
    status, again, _ = _run(capsys, tmp_path / "in", "--output", out, "--checkpoint", colour_export)
    assert status == 0 and again.strip().splitlines()[-1].startswith("restored 0, skipped 6 (output exists)")


def test_a_clip_that_cannot_be_restored_is_one_line_and_the_rest_go_on(tmp_path, capsys, colour_export):
    make_clip(tmp_path / "old.mkv", "mpeg2video", frames=3, crf=None)
    make_clip(tmp_path / "good.mp4", "h264", frames=3)
    status, stdout, err = _run(capsys, tmp_path / "old.mkv", tmp_path / "good.mp4", "--output", tmp_path / "out",
                               "--checkpoint", colour_export)
    assert status == 1 and (tmp_path / "out" / "good.mp4").is_file() and not (tmp_path / "out" / "old.mkv").exists()
    assert f"error: {tmp_path / 'old.mkv'}: MPEG-2 video video: only H.264, HEVC, VP9 and AV1 clips" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_killed_run_leaves_no_clip_and_the_next_run_removes_its_leftover(tmp_path, colour_export):
    make_clip(tmp_path / "long.mp4", "h264", frames=96)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "qgac_jax.restore", str(tmp_path / "long.mp4"), "--output", str(out),
               "--checkpoint", str(colour_export), "--backend", "jax"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob(".qgac-*.tmp")):  # the clip is being written
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # (as soon as the clip's temporary file exists: mid-clip)
    proc.wait(timeout=30)
    assert list(out.glob(".qgac-*.tmp")) and not (out / "long.mp4").exists()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "removed 1 temporary file(s) an interrupted run left" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["long.mp4"]
