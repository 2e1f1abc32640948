"""The shipped models taught int8: quantization-aware fine-tuning for the int8 graph restore runs on CPUs.

    python -m qgac_jax.train --config=configs/int8.py --workdir=workdirs/int8_colour
    python -m qgac_jax.train --config=configs/int8.py:grey --workdir=workdirs/int8_grey
    python -m qgac_jax.train --config=configs/int8.py:frozen --workdir=workdirs/int8_colour_frozen

Starts from the shipped PSNR model of the same colour, with the int8 graph's
arithmetic simulated in the forward pass (`model.overrides.int8 = "fake"`,
models/int8.py): int8 kernels per output channel, each quantized tensor on
the uint8 grid of its range, straight-through gradients. The ranges start
at the 10th and 90th percentiles of the extremes of the run's first 128
examples (its qualities and codecs) and are parameters from then on, learned
30 times faster than the weights. Same data mix and loss (L1) as configs/codecs.py,
at a lower learning rate: the network is already trained, it only learns to
survive the rounding. The export carries the ranges; `graphs/int8_graph`
writes them into the int8 graph instead of calibrating.

`frozen`: the ranges learned alone, the shipped float weights kept bit for
bit (the weights' fine-tune costs float quality: docs/performance.md).

Cost: configs/codecs.py's step plus the rounding (the same FLOPs); measured
time of the shipped runs on 2 CPU cores: docs/model_cards.md.
"""

from qgac_jax.training.config import codec_mix, defaults, l1_only, parse_arg


def get_config(arg: str = ""):
    args = parse_arg(arg, grey=False, frozen=False, steps=0)
    c = defaults()
    l1_only(c)
    codec_mix(c, args["grey"])
    c.model.overrides = {"int8": "fake"}
    c.eval.qualities = (10, 40, "webp:10", "heic:10")
    c.optim.lr, c.optim.warmup_steps, c.optim.ema_decay = 5e-5, 50, 0.995
    c.optim.range_lr_scale = 30.0  # ranges of 0.5..20 must move by up to their size; weights by a rounding step
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 25, 400, 50
    c.train.steps = args["steps"] or 1_600
    if args["frozen"]:
        c.optim.frozen_weights = True
        c.train.steps = args["steps"] or 600
    return c
