"""The evaluation protocol: Pillow saves at fixed qualities, double JPEG on shifted grids, whole images."""

import io

import numpy as np
import pytest
from PIL import Image

from qgac_jax.evaluation import protocol as eval_protocol
from qgac_jax.codecs import jpeg_tables as qz
from qgac_jax.data import sources


def test_eval_examples_use_pillow_at_fixed_qualities(folder):
    examples = list(eval_protocol.eval_examples(f"folder:{folder}", [10, 40]))
    assert len(examples) == 12
    first = examples[0]
    h, w = 40, 50
    assert first["target"].shape == (h, w, 3) and first["quantization"].subsampling == "4:2:0"
    clean = (first["target"] * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(clean).save(buf, format="JPEG", quality=10)
    np.testing.assert_array_equal((first["compressed"] * 255).round(), np.asarray(Image.open(buf)))
    np.testing.assert_array_equal(first["quantization"].luma, qz.ijg_tables(10)[0])
    grey = next(eval_protocol.eval_examples(f"folder:{folder}", [20], grey=True))
    assert grey["compressed"].shape == (h, w, 1) and grey["quantization"].is_grey


def test_eval_double_jpeg_is_two_pillow_saves_with_the_grid_shifted(folder):
    (ex,) = list(eval_protocol.eval_examples(f"folder:{folder}", ["20:75:3"], max_images=1))
    clean = sources.load_image(sorted(folder.rglob("a.png"))[0], False, 10**8)
    first = io.BytesIO()
    Image.fromarray(clean).save(first, format="JPEG", quality=20)
    once = np.asarray(Image.open(first))[3:, 3:]
    second = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(once)).save(second, format="JPEG", quality=75)
    np.testing.assert_array_equal((ex["compressed"] * 255).round(), np.asarray(Image.open(second)))
    np.testing.assert_array_equal((ex["target"] * 255).round(), clean[3:, 3:])
    np.testing.assert_array_equal(ex["quantization"].luma, qz.ijg_tables(75)[0])  # the file holds q2's tables
    assert eval_protocol.Case.parse("20:75:3").effective_quality == 20


def test_a_jpeg_converted_to_another_codec_is_a_case():
    from qgac_jax import codecs
    from qgac_jax.data import degrade
    from conftest import natural_image

    case = eval_protocol.Case.parse("20:WebP:75")
    assert (case.first, case.codec, case.quality, case.name, case.effective_quality) == (20, "webp", 75,
                                                                                        "20:webp 75", 20)
    assert eval_protocol.Case.parse("webp:75").effective_quality == 100  # saved once: no earlier JPEG
    with pytest.raises(ValueError, match="grid shift"):
        eval_protocol.Case(75, 20, 4, codec="webp")
    with pytest.raises(ValueError, match="Q1:CODEC:Q"):
        eval_protocol.Case.parse("x:webp:75")
    clean = np.asarray(natural_image(40, 48))
    decoded, target, quantization, data = case.apply(clean)
    jpeg_20 = degrade.pillow_decode(degrade.pillow_encode(clean, *qz.ijg_tables(20), "4:2:0"), False)
    assert data == degrade.codec_encode(jpeg_20, "webp", 75) and codecs.sniff(data) == "webp"
    assert quantization.codec == "webp" and target is clean
    np.testing.assert_array_equal(decoded, degrade.codec_decode(data, False))
