"""The archive job on a local Ray cluster (two CPUs): restore's PNGs byte for byte, a manifest row per input,
reruns that complete what is missing, a worker killed mid-way, and a bad DST refused before any work."""

import io
import os
import pathlib
import signal
import threading
import time

import numpy as np
import pytest
from PIL import Image, features

from qgac_jax import restore, restore_dataset
from conftest import encoded, jpeg_bytes, natural_image

ray = pytest.importorskip("ray", reason="the archive job needs the extra `cluster`")
pytestmark = pytest.mark.slow


def _archive(root: pathlib.Path) -> dict:
    """At least 40 files of every kind restore reads, some damaged, in nested folders; {relative name: kind}."""
    from qgac_jax.files import png16

    kinds = {}

    def put(rel, data, kind):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        kinds[rel] = kind

    for i in range(16):
        put(f"colour/c{i:02d}.jpg", jpeg_bytes(natural_image(48, 64, seed=i), quality=10 + 5 * i), "good")
    for i in range(6):
        put(f"grey/g{i}.jpg", jpeg_bytes(natural_image(40, 56, seed=20 + i)[..., 0], quality=20 + 10 * i), "good")
    for i in range(4):  # saved at 20, then again at 75
        first = Image.open(io.BytesIO(jpeg_bytes(natural_image(48, 64, seed=30 + i), quality=20)))
        put(f"colour/twice/r{i}.jpg", encoded(np.asarray(first), "JPEG", quality=75), "good")
    for i in range(4):
        put(f"web/w{i}.webp", encoded(natural_image(48, 64, seed=40 + i), "WEBP", quality=20 + 10 * i), "good")
    if features.check("avif"):
        for i in range(3):
            put(f"web/a{i}.avif", encoded(natural_image(48, 64, seed=50 + i), "AVIF", quality=30), "good")
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        for i in range(3):
            put(f"phone/h{i}.heic", encoded(natural_image(48, 64, seed=60 + i), "HEIF", quality=30), "good")
    except ImportError:
        pass
    put("same/a.jpg", jpeg_bytes(natural_image(48, 64, seed=70), quality=30), "good")  # a.jpg and a.webp:
    put("same/a.webp", encoded(natural_image(48, 64, seed=71), "WEBP", quality=30), "good")  # whole names
    put("deep.png", png16.encode(np.random.default_rng(0).integers(0, 65535, (24, 32, 3)).astype(np.uint16)),
        "lossless")
    put("bad/text.jpg", b"not a photo\n", "bad")
    put("bad/cut.jpg", jpeg_bytes(natural_image(64, 64), quality=50)[:400], "bad")
    put("bad/empty.webp", b"", "bad")
    assert len(kinds) >= 40
    return kinds


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    kinds = _archive(root / "src")
    assert restore.run([str(root / "src"), "--output", str(root / "by_restore")]) == 1  # some are damaged
    return root, kinds


def _manifest(dst: pathlib.Path, newest: int = -1):
    import pyarrow.parquet as pq

    return pq.read_table(sorted((dst / "_manifests").glob("*.parquet"))[newest]).to_pylist()


def _pngs(folder: pathlib.Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*.png")}


def test_the_archive_job_writes_restores_pngs_byte_for_byte_and_a_row_per_input(archive, capsys):
    root, kinds = archive
    assert restore_dataset.run([str(root / "src"), str(root / "dst")]) == 0
    out = capsys.readouterr()
    goods = sum(kind == "good" for kind in kinds.values())
    assert _pngs(root / "dst") == _pngs(root / "by_restore") and len(_pngs(root / "dst")) == goods
    assert "same/a.jpg.png" in _pngs(root / "dst") and "same/a.webp.png" in _pngs(root / "dst")
    rows = {pathlib.Path(r["path"]).relative_to(root / "src").as_posix(): r for r in _manifest(root / "dst")}
    assert set(rows) == set(kinds)
    for rel, kind in kinds.items():
        status = {"good": "restored", "lossless": "not restored", "bad": "failed"}[kind]
        assert rows[rel]["status"] == status, (rel, rows[rel])
        assert bool(rows[rel]["reason"]) == (kind != "good") and rows[rel]["seconds"] >= 0
    assert rows["colour/twice/r0.jpg"]["told"].startswith("file tables about quality 75")
    assert rows["web/w0.webp"]["told"].startswith("WEBP (lossy): VP8 quantizer index")
    assert f"restored {goods}," in out.out and "failed 3;" in out.out and "manifest" in out.out

    assert restore_dataset.run([str(root / "src"), str(root / "dst")]) == 0  # a rerun: only the failures again
    again = capsys.readouterr().out
    assert "restored 0," in again and f"skipped {len(_pngs(root / 'dst'))}" in again
    assert {r["status"] for r in _manifest(root / "dst")} == {"skipped", "failed", "not restored"}


def test_a_worker_killed_mid_way_is_retried_and_every_good_file_restored_once(archive, tmp_path):
    root, kinds = archive
    dst = tmp_path / "dst"
    killed = []

    def actor_pids():
        """Processes whose title Ray set to the actor's class (ray::MapWorker(MapBatches(RestoreActor)).__call__)."""
        pids = []
        for proc in pathlib.Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and b"RestoreActor" in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                pass
        return pids

    def killer():
        deadline = time.time() + 240
        while time.time() < deadline and not killed:
            time.sleep(0.05)
            pids = actor_pids()
            if pids and len(list(dst.rglob("*.png"))) >= 3:  # mid-way: some outputs written, most not
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    assert restore_dataset.run([str(root / "src"), str(dst)]) == 0
    thread.join(timeout=5)
    assert killed, "no actor was killed: the job finished first"
    assert _pngs(dst) == _pngs(root / "by_restore")  # complete and correct, nothing half-written
    assert not [p for p in dst.rglob("*") if ".qgac-partial-" in p.name and "probe" not in p.name]
    rows = _manifest(dst)
    assert sorted(r["path"] for r in rows) == sorted(str(root / "src" / rel) for rel in kinds)  # one row each


def test_a_bad_destination_or_source_fails_before_any_work_with_one_line(archive, tmp_path, capsys):
    root, _ = archive
    (tmp_path / "file").write_text("x")
    for dst, said in ((tmp_path / "file", "exists and is not a folder"),
                      (tmp_path / "file" / "sub", "is not a writable folder")):
        assert restore_dataset.run([str(root / "src"), str(dst)]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert restore_dataset.run([str(tmp_path / "empty"), str(tmp_path / "out")]) == 2
    assert "no photos or clips there" in capsys.readouterr().err
    assert not ray.is_initialized()  # refused before Ray started
