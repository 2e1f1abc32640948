"""The quality estimator shipped beside the models: effective JPEG quality from pixels + the file's table.

    python -m qgac_jax.train_estimator --config=configs/estimator.py --workdir=workdirs/estimator

One estimator serves colour and grey models: it reads luma only. Data: the
colour training folders of ../shared/data (else the built-in photos), single
and double JPEG as the restorers' recipe (half each; first and second
quality 10..95, half the double ones on shifted grids, 20% random tables).
Validation: 8 images of cbsd68 at single qualities and a few double cases.
`steps=N` sets the length.

`codecs` continues the shipped estimator on files of every codec: 40% JPEG
as above, 20% each of WebP, AVIF and HEIC saves (encoder quality 5..95), half
of those converted from an earlier JPEG. It learns to read such a file's
earlier JPEG quality (100 where there was none), which restore then tells
the network (`guide.AfterJpeg`); the export lists the codecs it read.

    python -m qgac_jax.train_estimator --config=configs/estimator.py:codecs,steps=4000 --workdir=workdirs/est_codecs

Cost: 0.26 GFLOP per 136x136 crop forward (0.62 M parameters), batch 32,
20,000 steps by default; measured time and hardware of the shipped estimator:
docs/model_cards.md.
"""

import os

from qgac_jax.codecs import CODECS
from qgac_jax.training.config import PRETRAINED, defaults, local_data, parse_arg


def get_config(arg: str = ""):
    args = parse_arg(arg, codecs=False, steps=20_000)
    c = defaults()
    local_data(c, grey=False)
    c.model.dtype, c.model.overrides = "float32", {}  # the estimator's own network (models/estimator.py)
    c.data.patch_size, c.data.batch_size, c.data.p_double, c.data.p_shift, c.data.p_random_table = \
        136, 32, 0.5, 0.5, 0.2
    c.eval.qualities, c.eval.double, c.eval.max_images = (10, 30, 50, 70, 90), ("20:75", "20:75:4", "30:90"), 8
    c.optim.lr, c.optim.warmup_steps, c.optim.final_lr_ratio = 1e-3, 500, 0.01
    c.optim.clip, c.optim.weight_decay, c.optim.ema_decay = 1.0, 1e-4, 0.999
    c.train.steps, c.train.log_every, c.train.eval_every = args["steps"], 100, 2_000
    c.train.checkpoint_every, c.train.keep_checkpoints = 1_000, 2
    if args["codecs"]:
        c.data.pipeline, c.data.workers, c.data.codecs, c.data.codec_weights = "pillow", 1, CODECS, (0.4, 0.2, 0.2, 0.2)
        c.data.codec_q_min, c.data.codec_q_max, c.data.codec_p_jpeg_first = 5, 95, 0.5
        c.eval.qualities += ("webp:50", "avif:50", "heic:50")
        c.eval.double += ("20:webp:75", "30:avif:90", "20:heic:90")
        c.optim.lr, c.optim.warmup_steps = 3e-4, 100
        c.train.init_from = os.path.join(PRETRAINED, "estimator")
        c.train.eval_every, c.train.checkpoint_every = 1_000, 200
    return c
