"""A folder restore's jobs: which files, once each, never from the output tree; what --show-quality says."""

import types

from qgac_jax.codecs import jpeg
from qgac_jax import restore_jobs
from conftest import jpeg_bytes, natural_image


def _tree(root, names):
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(jpeg_bytes(natural_image(8, 8), quality=50))


def test_walking_skips_an_output_folder_inside_the_input_and_earlier_outputs_beside_it(tmp_path):
    _tree(tmp_path, ["a.jpg", "sub/b.jpg", "restored/a.png", "restored/x.jpg", "c.png"])
    jobs, errors = restore_jobs.collect_inputs([str(tmp_path)], tmp_path / "restored")
    assert errors == [] and sorted(j.rel.as_posix() for j in jobs) == ["a.png", "c.png", "sub/b.png"]
    same, _ = restore_jobs.collect_inputs([str(tmp_path)], tmp_path)  # in and out the same: PNGs are outputs
    assert sorted(j.src.name for j in same) == ["a.jpg", "b.jpg", "x.jpg"]


def test_each_file_once_and_named_files_are_not_walked(tmp_path):
    _tree(tmp_path, ["a.jpg"])
    jobs, _ = restore_jobs.collect_inputs([str(tmp_path / "a.jpg"), str(tmp_path), str(tmp_path / "*.jpg")])
    assert len(jobs) == 1 and not jobs[0].walked


def test_inputs_that_would_share_an_output_keep_their_whole_names(tmp_path):
    _tree(tmp_path, ["a.jpg", "a.webp", "b.jpg", "sub/A.jpeg", "sub/a.JPG"])
    jobs, errors = restore_jobs.collect_inputs([str(tmp_path)])
    assert errors == [] and sorted(j.rel.as_posix() for j in jobs) == [
        "a.jpg.png", "a.webp.png", "b.png", "sub/A.jpeg.png", "sub/a.JPG.png"]  # (A and a: one name on macOS)
    named, _ = restore_jobs.collect_inputs([str(tmp_path / "a.jpg"), str(tmp_path / "sub" / "a.JPG")])
    assert sorted(j.rel.as_posix() for j in named) == ["a.JPG.png", "a.jpg.png"]


def test_show_quality_calls_a_photo_recompressed_only_beyond_the_estimators_margin():
    once = jpeg.JpegQuantization.from_quality(30)
    decoded = types.SimpleNamespace(from_file=True, quantization=once)
    read_29 = restore_jobs.describe(decoded, jpeg.JpegQuantization.from_quality(29), 29.2, "auto")
    assert "assumed quality 29" in read_29 and "recompressed" not in read_29
    twice = restore_jobs.describe(decoded, jpeg.JpegQuantization.from_quality(20), 20.1, "auto")
    assert "recompressed: restored as quality 20" in twice


def test_show_quality_says_when_a_codec_file_was_converted_from_a_jpeg():
    from qgac_jax import quality
    from qgac_jax.data.degrade import codec_encode
    from qgac_jax.codecs import webp
    from conftest import natural_image

    own = webp.read_quantization(codec_encode(natural_image(32, 32), "webp", 75))
    decoded = types.SimpleNamespace(from_file=True, quantization=own, recorded="WEBP (lossy): VP8 quantizer index 20")
    converted = restore_jobs.describe(decoded, quality.AfterJpeg.of(own, 20.3), 20.3, "auto")
    assert converted.endswith("converted from a JPEG of about quality 20: restored as after it")
    once = restore_jobs.describe(decoded, quality.AfterJpeg.of(own, 97.0), 97.0, "auto")
    assert once.endswith("the file's own quantizer (no earlier JPEG seen, estimate 97)")
    assert restore_jobs.describe(decoded, own, None, "auto").endswith(": the file's own quantizer")
