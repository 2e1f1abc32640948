"""LPIPS against the authors' PyTorch code (`lpips` 0.1.4 with the same weights), on real photos."""

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from qgac_jax.evaluation import lpips as lpips_lib

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _lpips_reference import pairs  # noqa: E402

PHOTOS = pathlib.Path(importlib.util.find_spec("skimage").origin).parent / "data"
# Printed once by `python tests/_lpips_reference.py` under torch 2.14.1 and lpips 0.1.4 (docs/conventions.md).
REFERENCE = {
    "alex": {
        "astronaut/noise": 0.1043867,
        "astronaut/blur": 0.1178456,
        "astronaut/posterise": 0.0456693,
        "astronaut/grey_noise": 0.2373421,
        "coffee/noise": 0.1603287,
        "coffee/blur": 0.0801331,
        "coffee/posterise": 0.0496211,
        "coffee/grey_noise": 0.359589,
        "chelsea/noise": 0.1238783,
        "chelsea/blur": 0.1974254,
        "chelsea/posterise": 0.0767471,
        "chelsea/grey_noise": 0.2814356,
    },
    "vgg": {
        "astronaut/noise": 0.2264138,
        "astronaut/blur": 0.1292711,
        "astronaut/posterise": 0.2286709,
        "astronaut/grey_noise": 0.3335767,
        "coffee/noise": 0.2695945,
        "coffee/blur": 0.1296252,
        "coffee/posterise": 0.271933,
        "coffee/grey_noise": 0.4067071,
        "chelsea/noise": 0.2356849,
        "chelsea/blur": 0.1551423,
        "chelsea/posterise": 0.2620367,
        "chelsea/grey_noise": 0.3508734,
    },
}


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_distances_agree_with_the_authors_pytorch_code_to_1e4(net):
    got = {name: float(lpips_lib.lpips(a, b, net)[0]) for name, (a, b) in pairs(PHOTOS).items()}
    assert got.keys() == REFERENCE[net].keys()
    for name, want in REFERENCE[net].items():
        assert abs(got[name] - want) < 1e-4, (net, name, got[name], want)
    # The distances order the distortions as the reference does, and differ between the two networks.
    assert not np.allclose([got[k] for k in got], [REFERENCE["vgg" if net == "alex" else "alex"][k] for k in got],
                           atol=1e-2)


def test_identical_images_are_at_distance_zero_and_a_batch_is_scored_per_image():
    a, b = pairs(PHOTOS)["coffee/noise"]
    batch = lpips_lib.lpips(np.stack([a, a, b]), np.stack([a, b, a]))
    assert batch.shape == (3,)
    assert float(batch[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(batch[1]) == pytest.approx(REFERENCE["alex"]["coffee/noise"], abs=1e-4)
    assert float(batch[2]) == pytest.approx(float(batch[1]), abs=1e-5)  # symmetric


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(ValueError, match="no 'squeeze' network"):
        lpips_lib.lpips(np.zeros((64, 64, 3)), np.zeros((64, 64, 3)), "squeeze")
    with pytest.raises(ValueError, match="at least 32x32"):
        lpips_lib.lpips(np.zeros((16, 64, 3)), np.zeros((16, 64, 3)))
    with pytest.raises(ValueError, match="shapes differ"):
        lpips_lib.lpips(np.zeros((64, 64, 3)), np.zeros((64, 48, 3)))


@pytest.mark.slow
def test_against_pytorch_live_where_torch_and_lpips_are_installed():
    """The reference script itself, where this Python has torch and lpips (CI has neither)."""
    pytest.importorskip("torch", reason="the live PyTorch comparison needs torch and lpips (not dependencies)")
    pytest.importorskip("lpips", reason="the live PyTorch comparison needs the lpips package")
    weights = lpips_lib.imagenet_weights.path("vgg16").parent
    out = subprocess.run([sys.executable, str(pathlib.Path(__file__).with_name("_lpips_reference.py")),
                          str(PHOTOS), str(weights)], capture_output=True, text=True, timeout=600, check=True)
    import json

    live = json.loads(out.stdout)["distances"]
    assert {net: live[net].keys() for net in live} == {net: REFERENCE[net].keys() for net in REFERENCE}
    for net in REFERENCE:
        for name, want in REFERENCE[net].items():
            assert live[net][name] == pytest.approx(want, abs=1e-6), (net, name)
