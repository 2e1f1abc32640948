"""A colour model that trains in about an hour on 2 CPU cores, from local photos.

    python -m qgac_jax.train --config=configs/cpu.py --workdir=workdirs/cpu
    python -m qgac_jax.train --config=configs/cpu.py:grey --workdir=workdirs/cpu_grey

Data: the project's training folders under ../shared/data (or $QGAC_DATA)
when present, plus scikit-image's built-in photos; 8 images of cbsd68 / bsd68
for validation. 'tiny' variant, 16 patches of 96x96 per step, 5,000 steps.
Its measured time on 2 CPU cores: the README's training table.
"""

import os

from configs import psnr
from configs.common import parse_arg

# $QGAC_DATA, else ../shared/data beside the checkout (realpath first, then "..": a symlinked configs/
# must find the same folder as the checkout).
SHARED = os.environ.get("QGAC_DATA") or os.path.realpath(
    os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "..", "shared", "data"))
COLOUR_SETS = ("t91", "bsds500_train", "wiki49", "urban100_20", "mcmaster18")


def get_config(arg: str = ""):
    grey = parse_arg(arg, grey=False)["grey"]
    c = psnr.get_config()
    c.model.variant, c.model.dtype = "tiny", "float32"
    c.model.channels = 1 if grey else 3
    folders = [os.path.join(SHARED, s) for s in COLOUR_SETS + (("train400",) if grey else ())]
    local = tuple(f"folder:{f}" for f in folders if os.path.isdir(f))
    c.data.sources = local + ("builtin",)
    c.data.grey = grey
    c.data.patch_size, c.data.batch_size = 96, 16
    c.eval.source = os.path.join(SHARED, "bsd68" if grey else "cbsd68")
    if not os.path.isdir(c.eval.source):
        c.eval.source = "builtin"
    c.eval.max_images = 8
    c.optim.lr, c.optim.warmup_steps = 1e-3, 100
    c.train.steps, c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 5000, 25, 500, 250
    return c
