"""PSNR model: L1 only on DIV2K (the model the GAN stage of base.py starts from).

    python -m qgac_jax.train --config=configs/psnr.py --workdir=gs://BUCKET/qgac_psnr

Cost: as base.py without VGG and the discriminator, 3.7 TFLOP per step
(1.1 EFLOP for 300k steps; README, "GPU throughput", for measured rates).
"""

from configs import base
from configs.common import parse_arg


def get_config(arg: str = ""):
    parse_arg(arg)  # takes no arguments
    c = base.get_config()
    c.loss.l1, c.loss.perceptual, c.loss.adversarial = 1.0, 0.0, 0.0
    c.loss.gan_start_step = 10**12
    c.optim.lr = 2e-4
    return c
