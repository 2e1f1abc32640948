"""restoring/consistency.py: what `--consistent` writes, saved again with the file's tables, gives the file's
coefficients (colour 4:2:0 and grey), through the projection and through restore as a user runs it."""

import io

import numpy as np
import pytest
from PIL import Image, ImageFilter

from qgac_jax.evaluation.metrics import psnr
from qgac_jax.restoring import consistency

jpeglib = pytest.importorskip("jpeglib", reason="--consistent needs jpeglib (the extra `consistent`)")


def _photo(grey: bool) -> np.ndarray:
    import skimage.data

    photo = skimage.data.chelsea()[:288, :448]
    return np.asarray(Image.fromarray(photo).convert("L")) if grey else photo


def _coefficients(path):
    jpeg = jpeglib.read_dct(str(path))
    return [jpeg.Y] + ([jpeg.Cb, jpeg.Cr] if jpeg.has_chrominance else []), jpeg.qt


def _resaved(pixels: np.ndarray, qt, path):
    """`pixels` (uint8) saved by libjpeg with the tables `qt` (4:2:0 for colour, as the file was)."""
    jpeglib.from_spatial(pixels if pixels.ndim == 3 else pixels[..., None]).write_spatial(str(path), qt=qt)
    return _coefficients(path)[0]


@pytest.mark.parametrize("grey", [False, True])
def test_a_projected_image_saved_with_the_files_tables_gives_the_files_coefficients(tmp_path, grey):
    Image.fromarray(_photo(grey)).save(tmp_path / "file.jpg", quality=30)
    decoded = Image.open(tmp_path / "file.jpg")
    other = np.asarray(decoded.filter(ImageFilter.GaussianBlur(2))).astype(np.float32) / 255  # far from the file
    other = other if other.ndim == 3 else other[..., None]
    projected = consistency.project(other, *consistency.read(tmp_path / "file.jpg"))
    assert projected.shape == other.shape
    file_coefficients, qt = _coefficients(tmp_path / "file.jpg")
    before = _resaved(np.round(other * 255).astype(np.uint8)[..., 0 if grey else slice(None)], qt, tmp_path / "b.jpg")
    after = _resaved(np.round(projected * 255).astype(np.uint8)[..., 0 if grey else slice(None)], qt,
                     tmp_path / "a.jpg")
    assert any(np.mean(x != y) > 0.05 for x, y in zip(before, file_coefficients))  # the blur contradicts the file
    for x, y in zip(after, file_coefficients):
        np.testing.assert_array_equal(x, y)
    assert np.mean(np.abs(projected - other)) < 0.05  # moved no further than the bins ask


def test_restore_consistent_writes_what_resaves_to_the_files_coefficients_and_refuses_other_formats(tmp_path,
                                                                                                    capsys):
    from qgac_jax import restore

    photo = _photo(False)
    Image.fromarray(photo).save(tmp_path / "file.jpg", quality=20)
    Image.fromarray(photo).save(tmp_path / "file.webp", quality=20)
    assert restore.run([str(tmp_path / "file.jpg"), str(tmp_path / "file.webp"), "--output", str(tmp_path / "out"),
                        "--consistent"]) == 1
    assert "error: " in capsys.readouterr().err and not (tmp_path / "out" / "file.webp.png").exists()
    out = np.asarray(Image.open(tmp_path / "out" / "file.jpg.png"))
    file_coefficients, qt = _coefficients(tmp_path / "file.jpg")
    for x, y in zip(_resaved(out, qt, tmp_path / "again.jpg"), file_coefficients):
        np.testing.assert_array_equal(x, y)
    jpeg = np.asarray(Image.open(tmp_path / "file.jpg"))
    assert float(psnr(photo, out)[0]) > float(psnr(photo, jpeg)[0]) + 0.5  # still a restoration


def test_what_jpeglib_cannot_read_is_one_line():
    with pytest.raises(ValueError, match="JPEGs only"):
        consistency.read(b"\x89PNG\r\n\x1a\n")
    buf = io.BytesIO()
    Image.fromarray(_photo(True)).save(buf, "JPEG", quality=50)
    with pytest.raises(ValueError, match="could not read its coefficients"):
        consistency.read(buf.getvalue()[:200])
