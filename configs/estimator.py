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

import ml_collections

from qgac_jax.codecs import CODECS
from qgac_jax.training.config import PRETRAINED, defaults, local_data, parse_arg


def get_config(arg: str = ""):
    args = parse_arg(arg, codecs=False, steps=20_000)
    colour = defaults()
    local_data(colour, grey=False)
    c = ml_collections.ConfigDict()
    c.model = dict(dtype="float32", overrides={})  # the estimator's own network (models/estimator.py): no variant
    c.data = dict(colour.data)
    c.data.update(patch_size=136, batch_size=32, p_double=0.5, p_shift=0.5, p_random_table=0.2)
    c.eval = dict(colour.eval)
    c.eval.update(qualities=(10, 30, 50, 70, 90), double=("20:75", "20:75:4", "30:90"), max_images=8)
    c.optim = dict(colour.optim)
    c.optim.update(lr=1e-3, warmup_steps=500, final_lr_ratio=0.01, clip=1.0, weight_decay=1e-4, ema_decay=0.999)
    c.train = dict(colour.train)
    c.train.update(steps=args["steps"], log_every=100, eval_every=2_000, checkpoint_every=1_000, keep_checkpoints=2)
    c.estimator = dict(colour.estimator)
    if args["codecs"]:
        c.data.update(pipeline="pillow", workers=1, codecs=CODECS, codec_weights=(0.4, 0.2, 0.2, 0.2),
                      codec_q_min=5, codec_q_max=95, codec_p_jpeg_first=0.5)
        c.eval.qualities += ("webp:50", "avif:50", "heic:50")
        c.eval.double += ("20:webp:75", "30:avif:90", "20:heic:90")
        c.optim.update(lr=3e-4, warmup_steps=100)
        c.train.update(init_from=os.path.join(PRETRAINED, "estimator"), eval_every=1_000, checkpoint_every=200)
    return c
