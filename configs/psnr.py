"""PSNR model: L1 only on DIV2K (the model the GAN stage of base.py starts from).

    python -m qgac_jax.train --config=configs/psnr.py --workdir=gs://BUCKET/qgac_psnr

Cost (estimate from FLOPs, not measured): as base.py without VGG and the
discriminator, about 3.5 TFLOP per step: about an hour for 300k steps at 30%
of a TPU v4-8's bf16 peak, if the input pipeline keeps up.
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
