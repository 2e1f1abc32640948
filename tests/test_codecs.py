"""Damaged WebP, AVIF and HEIC files: the readers raise ValueError (one line for restore), never anything else."""

import numpy as np
import pytest
from PIL import features

from qgac_jax.codecs import avif, heic, webp
from conftest import encoded, natural_image


def _formats():
    yield "WEBP", webp
    if features.check("avif"):
        yield "AVIF", avif
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        yield "HEIF", heic
    except ImportError:
        pass


@pytest.mark.parametrize("image_format, reader", list(_formats()), ids=lambda v: getattr(v, "__name__", v))
def test_random_damage_raises_value_errors_only(image_format, reader):
    data = encoded(natural_image(96, 128), image_format, quality=40)
    reader.read_quantization(data)  # the intact file reads
    rng = np.random.default_rng(0)
    for trial in range(600):
        damaged = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):  # bytes changed in the headers
            damaged[int(rng.integers(0, min(len(damaged), 600)))] = int(rng.integers(0, 256))
        if trial % 3 == 0:
            damaged = damaged[:int(rng.integers(1, len(damaged)))]
        try:
            reader.read_quantization(bytes(damaged))
        except ValueError:
            pass
