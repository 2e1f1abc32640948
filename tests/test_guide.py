"""What the network is told: the mode's one parser, the raised tables, and the sentence --show-quality prints."""

import io

import numpy as np
import pytest
from PIL import Image

from qgac_jax.codecs import jpeg
from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax.restoring import guide
from qgac_jax.files.images import decode
from conftest import jpeg_bytes, natural_image


class Fixed:
    """Stands in for the shipped estimator: always the same quality, for the codecs it names."""

    def __init__(self, q, codecs=("jpeg",)):
        self.q, self.codecs, self.calls = q, codecs, 0

    def __call__(self, pixels, quantization):
        self.calls += 1
        return self.q


@pytest.mark.parametrize("text, mode", [(None, "auto"), ("auto", "auto"), (" FILE ", "file"), ("30", 30), (30, 30),
                                        (100, 100), (30.0, 30)])
def test_one_parser_reads_every_spelling_of_the_mode(text, mode):
    assert guide.parse_mode(text) == mode


@pytest.mark.parametrize("bad", ["0", "101", "best", "", 2.5, True, 0])
def test_the_parser_refuses_what_is_no_mode_with_the_choices(bad):
    with pytest.raises(ValueError, match="quality must be 1..100, .auto. or .file."):
        guide.parse_mode(bad)


def test_raised_tables_go_up_elementwise_and_never_down():
    file_q = jpeg.JpegQuantization.from_quality(75)
    raised = guide.raised_tables(file_q, 20.4)
    np.testing.assert_array_equal(raised.luma, np.maximum(file_q.luma, qz.ijg_tables(20)[0]))
    np.testing.assert_array_equal(raised.chroma, np.maximum(file_q.chroma, qz.ijg_tables(20)[1]))
    np.testing.assert_array_equal(guide.raised_tables(file_q, 90).luma, file_q.luma)  # finer: unchanged
    assert guide.raised_tables(jpeg.JpegQuantization.from_quality(75, grey=True), 10).chroma is None


def test_a_photo_is_called_recompressed_only_beyond_the_estimators_margin():
    d = decode(jpeg_bytes(natural_image(48, 56), quality=30))
    read_29 = guide.told(d, "auto", Fixed(29.2))
    assert "assumed quality 29" in read_29.sentence and "recompressed" not in read_29.sentence
    twice = guide.told(d, "auto", Fixed(20.1))
    assert twice.sentence.endswith("recompressed: restored as quality 20") and twice.estimate == 20.1
    assert (twice.quantization.luma >= d.recorded.luma).all() and (twice.quantization.luma > d.recorded.luma).any()
    alone = guide.told(d, "file", Fixed(20.1))
    assert alone.quantization is d.recorded and alone.estimate is None
    assert alone.sentence == "the file's tables (about quality 30)"


def test_a_codec_file_is_raised_to_an_earlier_jpeg_only_by_an_estimator_that_reads_its_codec():
    from qgac_jax.data.degrade import codec_encode

    d = decode(codec_encode(natural_image(48, 56), "webp", 75))
    converted = guide.told(d, "auto", Fixed(20.3, ("jpeg", "webp")))
    assert isinstance(converted.quantization, guide.AfterJpeg) and converted.quantization.quality == 20
    assert converted.sentence.startswith("WEBP (lossy): VP8 quantizer index")
    assert converted.sentence.endswith("converted from a JPEG of about quality 20: restored as after it")
    np.testing.assert_array_equal(converted.quantization.qmap(48, 56),
                                  np.maximum(d.recorded.qmap(48, 56), qz.qmap(*qz.ijg_tables(20), 48, 56)))
    once = guide.told(d, "auto", Fixed(97.0, ("jpeg", "webp")))
    assert once.sentence.endswith("the file's own quantizer (no earlier JPEG seen, estimate 97)")
    jpeg_only = Fixed(20.3)
    own = guide.told(d, "auto", jpeg_only)
    assert own.quantization is d.recorded and own.sentence.endswith(": the file's own quantizer")
    assert jpeg_only.calls == 0  # an estimator that never learned WebP is not asked


def test_a_told_quality_overrides_the_file_and_keeps_a_colour_jpegs_subsampling():
    data = io.BytesIO()
    Image.fromarray(natural_image(32, 32)).save(data, "JPEG", quality=80, subsampling=1)  # 4:2:2
    d = decode(data.getvalue())
    estimator = Fixed(10.0)
    told = guide.told(d, 30, estimator)
    assert told.quantization.subsampling == "4:2:2" and estimator.calls == 0
    np.testing.assert_array_equal(told.quantization.luma, qz.ijg_tables(30)[0])
    assert told.sentence == "told IJG tables of quality 30 (--quality)"


def test_files_without_a_quantization_need_a_told_quality():
    png = io.BytesIO()
    Image.fromarray(natural_image(16, 16)).save(png, "PNG")
    d = decode(png.getvalue())
    with pytest.raises(guide.NoQuantization, match=r"no quantization to read \(lossless PNG\); --quality Q"):
        guide.told(d, "auto")
    assert guide.told(d, 40).quantization.luma.tolist() == qz.ijg_tables(40)[0].tolist()
    with pytest.raises(ValueError, match="an array carries no quantization tables"):
        guide.told(decode(natural_image(16, 16)), "file")
    assert guide.told(decode(natural_image(16, 16)), 50).quantization.codec == "jpeg"
