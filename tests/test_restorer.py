import io

import numpy as np
import pytest
import skimage.data
from PIL import Image

from qgac_jax import Restorer
from qgac_jax.evaluation import metrics
from qgac_jax.files.images import decode
from conftest import jpeg_bytes, natural_image


@pytest.fixture(scope="module")
def restorer(colour_export):
    return Restorer.from_checkpoint(colour_export, estimator=None)  # the file's tables, nothing else


def test_tables_read_from_the_file_equal_the_quality_it_was_saved_with(restorer):
    data = jpeg_bytes(natural_image(72, 88), quality=30)
    from_file = restorer.restore(data)
    np.testing.assert_array_equal(from_file, restorer.restore(data, quality="file"))
    np.testing.assert_array_equal(from_file, restorer.restore(data, quality=30))
    assert from_file.dtype == np.uint8 and from_file.shape == (72, 88, 3)
    decoded = np.asarray(Image.open(io.BytesIO(data)))
    assert not np.array_equal(from_file, decoded)  # the model does change the image
    assert not np.array_equal(from_file, restorer.restore(data, quality=80))  # and listens to the tables


def test_tiled_restore_matches_untiled_to_50_db(colour_export):
    photo = skimage.data.astronaut()[:300, :260]
    data = jpeg_bytes(photo, quality=20)
    whole = Restorer.from_checkpoint(colour_export, tile=1024).restore(data)
    tiled = Restorer.from_checkpoint(colour_export, tile=64, overlap=16).restore(data)
    assert float(metrics.psnr(whole, tiled)[0]) >= 50.0


def test_batched_tiles_give_the_same_image_as_one_tile_at_a_time(colour_export):
    data = jpeg_bytes(skimage.data.astronaut()[:300, :260], quality=20)  # 6 x 5 = 30 tiles of 64
    one = Restorer.from_checkpoint(colour_export, tile=64, overlap=16, tile_batch=1)
    batched = Restorer.from_checkpoint(colour_export, tile=64, overlap=16, tile_batch=7)  # 4 full + 1 padded
    d = decode(data)
    np.testing.assert_allclose(batched.restore_compressed(d.pixels, d.recorded, "file"),
                               one.restore_compressed(d.pixels, d.recorded, "file"), atol=2e-6)
    with pytest.raises(ValueError, match="tile_batch"):
        Restorer(one.model, one.params, tile_batch=0)


def test_exif_orientation_is_applied_after_restoring_in_stored_orientation(restorer):
    img = Image.fromarray(natural_image(48, 80))
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=25, exif=exif)
    plain = restorer.restore(jpeg_bytes(np.asarray(img), quality=25))
    rotated = restorer.restore(buf.getvalue())
    assert rotated.shape == (80, 48, 3)
    np.testing.assert_array_equal(rotated, np.asarray(Image.fromarray(plain).transpose(Image.Transpose.ROTATE_270)))


def test_grey_and_colour_policies(restorer, grey_export):
    grey_jpeg = jpeg_bytes(natural_image(40, 48)[..., 0], quality=20)
    out = restorer.restore(grey_jpeg)  # colour model, grey image
    assert out.shape == (40, 48) and out.dtype == np.uint8
    grey_model = Restorer.from_checkpoint(grey_export)
    colour_jpeg = jpeg_bytes(natural_image(40, 48), quality=20)
    out = grey_model.restore(colour_jpeg)  # grey model, colour image: luma restored, chroma kept
    decoded = np.asarray(Image.open(io.BytesIO(colour_jpeg)))
    assert out.shape == (40, 48, 3)
    ycc_out = np.asarray(Image.fromarray(out).convert("YCbCr"), np.float32)
    ycc_in = np.asarray(Image.fromarray(decoded).convert("YCbCr"), np.float32)
    assert np.abs(ycc_out[..., 0] - ycc_in[..., 0]).mean() > 0.2
    assert np.abs(ycc_out[..., 1:] - ycc_in[..., 1:]).mean() < 1.0


def test_arrays_png_and_16_bit_inputs_need_a_quality(restorer, tmp_path):
    arr = natural_image(32, 40)
    with pytest.raises(ValueError, match="pass quality="):
        restorer.restore(arr)
    assert restorer.restore(arr, quality=50).shape == (32, 40, 3)
    png16 = tmp_path / "deep.png"
    Image.fromarray((natural_image(24, 24)[..., 0].astype(np.uint16) * 257)).save(png16)
    with pytest.raises(ValueError, match="no quantization to read.*--quality"):
        restorer.restore(png16)
    out = restorer.restore(png16, quality=40)
    assert out.dtype == np.uint16 and out.shape == (24, 24)


def test_bad_inputs_raise_value_errors(restorer, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        restorer.restore(b"")
    with pytest.raises(ValueError, match="not an image"):
        restorer.restore(b"\x00\x01 not an image at all")
    data = jpeg_bytes(natural_image(64, 64), quality=50)
    with pytest.raises(ValueError, match="broken"):  # header intact, scan cut short
        restorer.restore(data[: len(data) * 2 // 3])
    with pytest.raises(ValueError, match="header is broken"):  # cut inside the header
        restorer.restore(data[:300])
    with pytest.raises(ValueError, match="CMYK JPEGs are not supported"):
        buf = io.BytesIO()
        Image.fromarray(natural_image(16, 16)).convert("CMYK").save(buf, format="JPEG")
        restorer.restore(buf.getvalue())
    limited = Restorer(restorer.model, restorer.params, max_pixels=100)
    with pytest.raises(ValueError, match="exceeds the limit"):  # 120 pixels: our check, from the header
        limited.restore(jpeg_bytes(natural_image(10, 12)))
    with pytest.raises(ValueError, match="twice --max-pixels"):  # 256 pixels: Pillow's own bomb check
        limited.restore(jpeg_bytes(natural_image(16, 16)))
    with pytest.raises(ValueError, match="does not exist"):
        Restorer.from_checkpoint(tmp_path / "nothing")
    with pytest.raises(ValueError, match="quality"):
        restorer.restore(jpeg_bytes(natural_image(16, 16)), quality=0)
    with pytest.raises(ValueError, match="multiple of 8"):
        Restorer(restorer.model, restorer.params, tile=100)


def test_guide_raises_the_file_tables_to_the_estimate(restorer, colour_export):
    class Fixed:  # stands in for the shipped estimator: always the same quality
        def __init__(self, q):
            self.q = q

        def __call__(self, pixels, quantization):
            return self.q

    data = jpeg_bytes(natural_image(48, 56), quality=75)
    told_20 = Restorer.from_checkpoint(colour_export, estimator=Fixed(20.0))
    np.testing.assert_array_equal(told_20.restore(data), restorer.restore(data, quality=20))  # raised to q20's
    np.testing.assert_array_equal(told_20.restore(data, quality="file"), restorer.restore(data))  # file alone
    told_90 = Restorer.from_checkpoint(colour_export, estimator=Fixed(90.0))
    np.testing.assert_array_equal(told_90.restore(data), restorer.restore(data))  # finer than the file: no change
    pixels, told = told_20.restore_decoded(decode(data))
    np.testing.assert_array_equal(pixels, told_20.restore(data))
    assert told.estimate == 20.0 and (told.quantization.luma >= decode(data).recorded.luma).all()


def test_a_codec_file_is_raised_to_an_earlier_jpeg_only_by_an_estimator_that_reads_the_codec(restorer,
                                                                                               colour_export):
    from qgac_jax.data.degrade import codec_encode

    class Fixed:  # an estimator that learned JPEG and WebP files and always says 20
        codecs = ("jpeg", "webp")

        def __call__(self, pixels, quantization):
            assert quantization.codec in self.codecs
            return 20.4

    webp = codec_encode(natural_image(48, 56), "webp", 75)
    told = Restorer.from_checkpoint(colour_export, estimator=Fixed())
    _, guide = told.restore_decoded(decode(webp))
    assert guide.estimate == 20.4 and guide.quantization.quality == 20  # (the guide's own test checks the map)
    raised = told.restore(webp)
    assert not np.array_equal(raised, restorer.restore(webp))  # the network hears the JPEG
    np.testing.assert_array_equal(told.restore(webp, quality="file"), restorer.restore(webp))
    Fixed.codecs = ("jpeg",)  # the shipped estimator before it learned the codecs: the file's own map
    np.testing.assert_array_equal(told.restore(webp), restorer.restore(webp))


def test_the_shipped_estimate_sends_jpegs_to_the_jpeg_estimator_and_other_files_to_the_codec_one():
    from qgac_jax.models import quality_estimate, shipped
    from qgac_jax.restoring import guide
    from qgac_jax.data.degrade import codec_encode

    if shipped.codec_estimator_checkpoint() is None:
        pytest.skip("this version ships no codec estimator")
    both = guide.resolve_estimator("shipped")
    assert isinstance(both, quality_estimate.PerCodec) and set(both.codecs) == {"jpeg", "webp", "avif", "heic"}
    assert both.by_codec["webp"] is both.by_codec["heic"] is not both.by_codec["jpeg"]
    for data in (jpeg_bytes(natural_image(64, 64), quality=30), codec_encode(natural_image(64, 64), "webp", 50)):
        d = decode(data)
        chosen = both.by_codec[d.recorded.codec]
        assert both(d.pixels, d.recorded) == chosen(d.pixels, d.recorded)


def test_ensemble_of_a_real_model_is_close_to_a_single_pass(restorer):
    data = jpeg_bytes(natural_image(40, 56), quality=20)
    single = restorer.restore(data).astype(float)
    ensemble = restorer.restore(data, ensemble=True).astype(float)
    assert 0 < np.abs(single - ensemble).mean() < 3  # different passes, the same picture


def test_grey_pixels_of_a_colour_coded_file_get_its_luma_map_with_either_model(colour_export, grey_export):
    """A grey photo saved as WebP is coded 4:2:0 (two map channels); read as grey it goes to the grey model with
    the luma channel alone, or through the colour model's grey policy."""
    from conftest import encoded
    from qgac_jax.codecs import webp

    pixels = natural_image(48, 64)[..., :1]
    data = encoded(np.repeat(pixels, 3, -1), "WEBP", quality=30)
    quantization = webp.read_quantization(data)
    grey = np.asarray(Image.open(io.BytesIO(data)).convert("L"), np.float32)[..., None] / 255
    for export in (grey_export, colour_export):
        out = Restorer.from_checkpoint(export, estimator=None).restore_compressed(grey, quantization)
        assert out.shape == (48, 64, 1) and np.isfinite(out).all()
