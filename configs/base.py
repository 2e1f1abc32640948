"""Full QGAC recipe (docs/algorithm.md): DIV2K via tfds, L1 warm-up then L1 + VGG + GAN.

    python -m qgac_jax.tools.convert_vgg --arch vgg19 --out vgg19.npz
    python -m qgac_jax.train --config=configs/base.py --workdir=gs://BUCKET/qgac_base \
        --config.loss.vgg_weights=vgg19.npz

Cost: the 'base' variant (15.3 M params) at global batch 32 of 128x128
patches counts 7.1 TFLOP per step with VGG19 and the discriminator (3.7 for
L1 alone), 2.1 EFLOP for 300k steps: under 2 hours on one H100 at the rate
in docs/performance.md (GPU throughput), if the hosts feed that rate. DIV2K train
HR needs about 6.9 GB of host RAM over all hosts.
"""

from qgac_jax.training.config import defaults, parse_arg


def get_config(arg: str = ""):
    parse_arg(arg)  # takes no arguments
    return defaults()  # every default is this recipe
