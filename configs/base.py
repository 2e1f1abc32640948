"""Full QGAC recipe (docs/algorithm.md): DIV2K via tfds, L1 warm-up then L1 + VGG + GAN.

    python -m qgac_jax.tools.convert_vgg --arch vgg19 --out vgg19.npz
    python -m qgac_jax.train --config=configs/base.py --workdir=gs://BUCKET/qgac_base \
        --config.loss.vgg_weights=vgg19.npz

Cost: the 'base' variant (15.3 M params) at global batch 32 of 128x128
patches counts 7.1 TFLOP per step with VGG19 and the discriminator (3.7 for
L1 alone), 2.1 EFLOP for 300k steps: under 2 hours on one H100 at the rate
in the README's "GPU throughput", if the hosts feed that rate. DIV2K train
HR needs about 6.9 GB of host RAM over all hosts.
"""

import ml_collections

from configs.common import parse_arg


def get_config(arg: str = ""):
    parse_arg(arg)  # takes no arguments
    c = ml_collections.ConfigDict()
    c.model = dict(variant="base", channels=3, dtype="bfloat16", overrides={})
    c.data = dict(sources=("tfds:div2k/bicubic_x2:train",), weights=None, patch_size=128, batch_size=32,
                  grey=False, q_min=10, q_max=95, p_random_table=0.2, p_double=0.5, first_q_min=10,
                  first_q_max=95, p_shift=0.5, subsampling="4:2:0", seed=0,
                  max_pixels=64_000_000, pipeline="tf.data", workers=0)
    c.eval = dict(source="builtin", qualities=(10, 20, 30, 40), max_images=0)
    c.loss = dict(l1=0.01, perceptual=1.0, adversarial=0.005, gan="nonsaturating", gan_start_step=100_000,
                  vgg="vgg19", vgg_weights="", vgg_layers=("block5_conv4",), vgg_layer_weights=(1.0,),
                  allow_random_vgg=False)
    c.discriminator = dict(widths=(64, 128, 256, 512), spectral_norm=False)
    c.optim = dict(lr=1e-4, d_lr=1e-4, warmup_steps=2000, final_lr_ratio=0.01, clip=1.0, b1=0.9, b2=0.999,
                   ema_decay=0.999)
    c.train = dict(steps=300_000, log_every=100, eval_every=5000, checkpoint_every=5000, keep_checkpoints=3,
                   seed=0, init_from="", profile_steps=0)
    return c
