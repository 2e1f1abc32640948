"""The command lines' quiet: third-party loggers at ERROR, ours untouched."""

import logging

from qgac_jax.commands.logs import NOISY, quiet_third_party


def test_third_party_loggers_keep_errors_only_and_ours_are_left_alone():
    ours = logging.getLogger("qgac_jax.restore")
    before = ours.level
    quiet_third_party()
    assert all(logging.getLogger(name).getEffectiveLevel() == logging.ERROR for name in NOISY)
    assert "onnx_ir" in NOISY and ours.level == before
