"""PSNR model: L1 only on DIV2K (the model the GAN stage of base.py starts from).

    python -m qgac_jax.train --config=configs/psnr.py --workdir=gs://BUCKET/qgac_psnr

Cost: as base.py without VGG and the discriminator, 3.7 TFLOP per step
(1.1 EFLOP for 300k steps; docs/performance.md for measured rates).
"""

from qgac_jax.training.config import defaults, l1_only, parse_arg


def get_config(arg: str = ""):
    parse_arg(arg)  # takes no arguments
    c = defaults()
    l1_only(c)
    return c
