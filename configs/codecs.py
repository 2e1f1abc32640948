"""The shipped models fine-tuned to read WebP, AVIF and HEIC files as well as JPEG, on 2 CPU cores.

    python -m qgac_jax.train --config=configs/codecs.py --workdir=workdirs/codecs_colour
    python -m qgac_jax.train --config=configs/codecs.py:grey --workdir=workdirs/codecs_grey
    python -m qgac_jax.train --config=configs/codecs.py:gpu,steps=8000 --workdir=workdirs/codecs_gpu_colour

Starts from the shipped model of the same colour. Each example is a JPEG
(the shipped recipe: single or double, IJG or random tables, quality
10..95) or a single WebP, AVIF or HEIC save at an encoder quality in
5..95, guided by the Q-map its file records (`qgac_jax.codecs`; WebP's
is spatial). JPEG keeps 40% of the examples so that the model keeps what
it knew. The TensorFlow-free pipeline (TensorFlow has no WebP, AVIF or
HEIC encoder). Validation: JPEG 10 and 40, and each codec at 10 and 50,
on 8 images of cbsd68 / bsd68.

`gpu`: the same mix at a GPU's scale (batch 32 of 128x128, peak lr 3e-4,
8,000 steps unless `steps=` says), and 30% of the WebP, AVIF and HEIC saves
made of an earlier JPEG (guided by both maps, as restore guides them when
the estimator finds that JPEG). The encoders then bound the pace: give
`data.workers` most of the host's cores (launch/train_shipped.sh --recipe
codecs runs colour, grey and the estimator side by side).

Cost: the 'small' variant at 8 patches of 96x96 per step, about a fifth of
configs/gpu.py's step, plus the encoders; measured time on 2 CPU cores:
docs/model_cards.md.
"""

from qgac_jax.training.config import codec_mix, defaults, l1_only, parse_arg


def get_config(arg: str = ""):
    args = parse_arg(arg, grey=False, gpu=False, steps=0)
    c = defaults()
    l1_only(c)
    codec_mix(c, args["grey"])
    c.eval.qualities = (10, 40, "webp:10", "webp:50", "avif:10", "avif:50", "heic:10", "heic:50")
    c.optim.lr, c.optim.warmup_steps = 1e-4, 100
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 25, 500, 100
    c.train.steps = args["steps"] or 3_000
    if args["gpu"]:
        c.data.patch_size, c.data.batch_size, c.data.workers, c.data.codec_p_jpeg_first = 128, 32, 0, 0.3
        c.optim.lr, c.optim.warmup_steps = 3e-4, 200
        c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 200, 2_000, 1_000
        c.train.steps = args["steps"] or 8_000
    return c
