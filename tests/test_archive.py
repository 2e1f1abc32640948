"""The archive job's plan and bookkeeping, without Ray: names, skips, leftovers, a DST inside SRC, the summary."""

import pytest

from qgac_jax.apps import archive
from conftest import jpeg_bytes, natural_image

pytest.importorskip("pyarrow", reason="the archive job needs the extra `cluster`")


def _tree(root, names):
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(jpeg_bytes(natural_image(8, 8), quality=50))


def test_the_plan_keeps_folders_uses_restores_names_and_skips_what_exists(tmp_path):
    _tree(tmp_path / "src", ["a.jpg", "a.webp", "sub/b.jpg", "notes.txt"])
    plan = archive.plan(str(tmp_path / "src"), str(tmp_path / "dst"))
    outputs = sorted(r["output"] for r in plan.todo)
    assert outputs == [str(tmp_path / "dst" / n) for n in ("a.jpg.png", "a.webp.png", "sub/b.png")]
    (tmp_path / "dst" / "sub").mkdir(parents=True)
    (tmp_path / "dst" / "sub" / "b.png").write_bytes(b"done")
    (tmp_path / "dst" / "sub" / f"{archive.PARTIAL}x-a.png").write_bytes(b"half")  # a killed run's leftover
    again = archive.plan(str(tmp_path / "src"), str(tmp_path / "dst"))
    assert [r["output"] for r in again.skipped] == [str(tmp_path / "dst" / "sub" / "b.png")]
    assert len(again.todo) == 2 and again.leftovers == 1
    assert not list((tmp_path / "dst").rglob(f"*{archive.PARTIAL}*"))
    assert len(archive.plan(str(tmp_path / "src"), str(tmp_path / "dst"), overwrite=True).todo) == 3


def test_a_dst_inside_src_is_never_read_as_input_and_one_file_is_a_source(tmp_path):
    _tree(tmp_path, ["a.jpg", "out/old.jpg"])
    plan = archive.plan(str(tmp_path), str(tmp_path / "out"))
    assert [r["path"] for r in plan.todo] == [str(tmp_path / "a.jpg")]
    _tree(tmp_path / "same", ["b.jpg", "earlier.png"])  # SRC and DST one folder: as restore, its PNGs are outputs
    same = archive.plan(str(tmp_path / "same"), str(tmp_path / "same"))
    assert [r["path"] for r in same.todo] == [str(tmp_path / "same" / "b.jpg")]
    single = archive.plan(str(tmp_path / "a.jpg"), str(tmp_path / "one"))
    assert [r["output"] for r in single.todo] == [str(tmp_path / "one" / "a.png")]


@pytest.mark.parametrize("src, dst, said", [("missing", "dst", "no such file or folder"),
                                            ("empty", "dst", "no photos or clips there"),
                                            ("src", "file", "exists and is not a folder"),
                                            ("src", "file/sub", "is not a writable folder")])
def test_a_bad_source_or_destination_is_one_line_before_any_work(tmp_path, src, dst, said):
    _tree(tmp_path / "src", ["a.jpg"])
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=said):
        archive.plan(str(tmp_path / src), str(tmp_path / dst))


def test_outputs_are_whole_or_absent_and_the_manifest_has_a_row_per_input(tmp_path):
    import pyarrow.parquet as pq

    dst_fs, _ = archive.filesystem(str(tmp_path))
    archive.write_whole(dst_fs, str(tmp_path / "deep" / "a.png"), b"png bytes")
    assert (tmp_path / "deep" / "a.png").read_bytes() == b"png bytes"
    assert [p.name for p in (tmp_path / "deep").iterdir()] == ["a.png"]  # no temporary name left
    rows = [{"path": "x.jpg", "status": "restored", "reason": "", "seconds": 0.5, "told": "t", "output": "x.png",
             "megapixels": 1.5, "format": "JPEG"},
            {"path": "y.jpg", "status": "failed", "reason": "not an image", "seconds": 0.1, "told": "",
             "output": "y.png", "megapixels": 0.0, "format": ""}]
    rows.append({"path": "w.png", "status": "not restored", "reason": "no quantization to read (lossless PNG)",
                 "seconds": 0.1, "told": "", "output": "w.png", "megapixels": 0.0, "format": "lossless PNG"})
    where = archive.manifest(rows, [{"path": "z.jpg", "output": "z.png"}], str(tmp_path))
    table = pq.read_table(where).to_pylist()
    assert [r["status"] for r in table] == ["restored", "failed", "not restored", "skipped"]
    assert table[1]["reason"] == "not an image" and table[2]["format"] == "lossless PNG"
    line, counts = archive.summary(rows[:2], 1, 2.0)
    assert line == "restored 1, skipped 1 (output exists), failed 1; 1.50 megapixels in 2.0 s"
    assert counts == {"restored": 1, "failed": 1}
    assert archive.summary(rows, 0, 1.0)[0] == (  # restore's own words for what it could not restore
        "restored 1, not restored: 1 lossless PNG (no quantization to read; --quality Q "
        "restores them as JPEGs of quality Q), failed 1; 1.50 megapixels in 1.0 s")
    assert archive.default_concurrency(16, 1) == 16 and archive.default_concurrency(3, 2) == 1


def test_a_clip_is_a_unit_of_work_named_as_restore_names_it_and_restored_whole(tmp_path):
    from _clips import make_clip
    from qgac_jax.commands import jobs
    from qgac_jax.files import clips

    _tree(tmp_path / "src", ["a.jpg"])
    (tmp_path / "src" / "film").mkdir()
    make_clip(tmp_path / "src" / "film" / "pan.webm", "vp9", frames=6, crf=40)
    plan = archive.plan(str(tmp_path / "src"), str(tmp_path / "dst"))  # WebM holds no H.264: MKV
    assert sorted(r["output"] for r in plan.todo) == [str(tmp_path / "dst" / "a.png"),
                                                      str(tmp_path / "dst" / "film" / "pan.mkv")]
    assert [r["output"] for r in archive.plan(str(tmp_path / "src"), str(tmp_path / "d2"), video_codec="av1").todo
            if "film" in r["output"]] == [str(tmp_path / "d2" / "film" / "pan.webm")]
    with pytest.raises(ValueError, match="would be restored over itself"):  # same folder: the clip's own name
        archive.plan(str(tmp_path / "src"), str(tmp_path / "src"), video_codec="av1")

    actor = archive.RestoreActor(jobs.Settings(backend="jax"), str(tmp_path / "src"), str(tmp_path / "dst"))
    clip = next(r for r in plan.todo if "film" in r["path"])
    row = actor.restore_one(clip["path"], clip["output"])
    assert (row["status"], row["format"], row["reason"]) == ("restored", "VP9", ""), row
    # (WebM counts no frames)
    assert row["told"].startswith("VP9 128x96, 24 fps, ? frames; first frame: VP9 I-frame, q index ")
    assert row["megapixels"] == 6 * 128 * 96 / 1e6
    out = clips.probe(tmp_path / "dst" / "film" / "pan.mkv")
    assert (out.codec, out.width, out.height) == ("h264", 128, 96)
    assert len(list(clips.frames(tmp_path / "dst" / "film" / "pan.mkv", out))) == 6
    assert [p.name for p in (tmp_path / "dst" / "film").iterdir()] == ["pan.mkv"]  # no temporary file left
