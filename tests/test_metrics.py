import io
import math

import jax
import numpy as np
import pytest
import skimage.data
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from qgac_jax.evaluation import metrics
from conftest import natural_image


def _jpeg(img, quality):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf))


def _numpy_psnr_b(reference, test):
    """Yim & Bovik PSNR-B written out with explicit pair loops (independent of metrics.py)."""
    reference, test = reference.astype(np.float64), test.astype(np.float64)
    h, w, channels = test.shape
    values = []
    for c in range(channels):
        im = test[:, :, c]
        edge, inner = [], []
        for i in range(h):
            for j in range(w - 1):
                (edge if (j + 1) % 8 == 0 else inner).append((im[i, j] - im[i, j + 1]) ** 2)
        for i in range(h - 1):
            for j in range(w):
                (edge if (i + 1) % 8 == 0 else inner).append((im[i, j] - im[i + 1, j]) ** 2)
        n_edge = h * (w // 8 - 1) + w * (h // 8 - 1)
        n_inner = h * (w - 1) + w * (h - 1) - n_edge
        d_edge, d_inner = sum(edge) / n_edge, sum(inner) / n_inner
        bef = max(d_edge - d_inner, 0) * math.log2(8) / math.log2(min(h, w))
        mse = np.mean((reference[:, :, c] - im) ** 2)
        values.append(10 * math.log10(255**2 / (mse + bef)))
    return float(np.mean(values))


@pytest.fixture(scope="module")
def pairs():
    # Sizes both multiple and not multiple of 8.
    out = []
    for seed, (h, w) in enumerate([(64, 64), (45, 77)]):
        clean = natural_image(h, w, seed)
        out.append((clean, _jpeg(clean, 10)))
    return out


def test_psnr_matches_skimage(pairs):
    for clean, jpeg in pairs:
        got = float(metrics.psnr(clean, jpeg)[0])
        assert got == pytest.approx(peak_signal_noise_ratio(clean, jpeg, data_range=255), abs=1e-4)
    assert math.isinf(float(metrics.psnr(clean, clean)[0]))


def test_ssim_matches_skimage(pairs):
    for clean, jpeg in pairs:
        want = structural_similarity(
            clean, jpeg, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=255, channel_axis=-1,
        )
        assert float(metrics.ssim(clean, jpeg)[0]) == pytest.approx(want, abs=1e-4)
        assert want < 0.95  # the comparison is not trivially 1
    grey_clean, grey_jpeg = pairs[1][0][..., :1], pairs[1][1][..., :1]
    want = structural_similarity(grey_clean[..., 0], grey_jpeg[..., 0], gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255)
    assert float(metrics.ssim(grey_clean, grey_jpeg)[0]) == pytest.approx(want, abs=1e-4)


def test_psnr_b_matches_numpy_reference_and_is_below_psnr_on_blocky_jpeg(pairs):
    for clean, jpeg in pairs:
        got = float(metrics.psnr_b(clean, jpeg)[0])
        assert got == pytest.approx(_numpy_psnr_b(clean, jpeg), abs=1e-4)
    # A real photograph at quality 10 shows blocking: PSNR-B falls well below PSNR.
    photo = skimage.data.astronaut()[:200, :200]
    jpeg = _jpeg(photo, 10)
    assert float(metrics.psnr_b(photo, jpeg)[0]) < float(metrics.psnr(photo, jpeg)[0]) - 1.0
    assert float(metrics.blocking_effect_factor(jpeg).min()) > 0
    assert float(metrics.blocking_effect_factor(photo).max()) < float(metrics.blocking_effect_factor(jpeg).min())


def test_metrics_are_batched_and_jittable(pairs):
    clean, jpeg = pairs[0]
    batch_ref = np.stack([clean, clean])
    batch_test = np.stack([jpeg, clean])
    got = jax.jit(metrics.all_metrics)(batch_ref, batch_test)
    for name in ("psnr", "ssim", "psnr_b"):
        assert got[name].shape == (2,)
    assert float(got["psnr"][0]) == pytest.approx(float(metrics.psnr(clean, jpeg)[0]), abs=1e-4)
    assert float(got["ssim"][1]) == pytest.approx(1.0, abs=1e-6)


def test_small_and_mismatched_inputs():
    tiny = np.zeros((5, 5, 1), np.uint8)
    assert float(metrics.blocking_effect_factor(tiny)[0, 0]) == 0.0
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(tiny, tiny)
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(np.zeros((8, 8, 3)), np.zeros((8, 8, 1)))
    with pytest.raises(ValueError, match=r"\[B, H, W, C\]"):
        metrics.psnr(np.zeros((8,)), np.zeros((8,)))
