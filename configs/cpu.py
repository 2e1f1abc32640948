"""A colour (or grey) model trained on 2 CPU cores, from local photos.

    python -m qgac_jax.train --config=configs/cpu.py --workdir=workdirs/cpu
    python -m qgac_jax.train --config=configs/cpu.py:grey --workdir=workdirs/cpu_grey

Data: the project's training folders under ../shared/data (or $QGAC_DATA)
when present, plus scikit-image's built-in photos; 8 images of cbsd68 / bsd68
for validation. 'tiny' variant, 16 patches of 96x96 per step, 5,000 steps.

Cost: 5,000 steps of the 'tiny' variant (0.25 M parameters) at 16 patches of
96x96; its measured time on 2 CPU cores: docs/training.md.
"""

from qgac_jax.training.config import defaults, l1_only, local_data, parse_arg


def get_config(arg: str = ""):
    grey = parse_arg(arg, grey=False)["grey"]
    c = defaults()
    l1_only(c)
    local_data(c, grey)
    c.model.variant, c.model.dtype = "tiny", "float32"
    c.data.patch_size, c.data.batch_size = 96, 16
    c.optim.lr, c.optim.warmup_steps = 1e-3, 100
    c.train.steps, c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 5000, 25, 500, 250
    return c
