"""The shipped colour and grey 'small' models, on one GPU, from local photos.

    python -m qgac_jax.train --config=configs/gpu.py --workdir=workdirs/gpu_colour
    python -m qgac_jax.train --config=configs/gpu.py:grey --workdir=workdirs/gpu_grey
    python -m qgac_jax.train --config=configs/gpu.py:finetune --workdir=workdirs/ft_colour   # from the shipped export

Data and evaluation as configs/cpu.py (../shared/data training folders plus
the built-in photos; 8 images of cbsd68 / bsd68 for validation), L1 only,
single and double JPEG (half each; see DataConfig), quality 10..95 with 20%
random tables. 'small' variant, batch 32 of 128x128 patches, Adam with
warm-up and cosine decay, float32 parameters and activations (the GPU's
matrix units run them as TF32), so the export restores on CPU as is.
`finetune` starts from the shipped model of the same colour at a lower peak
learning rate. Machines without TensorFlow add --config.data.pipeline=pillow.

Cost: the 'small' variant (1.79 M parameters) counts 0.81 TFLOP per step at
batch 32 of 128x128, 16 PFLOP for the default 20,000 steps; measured time and
hardware of the shipped models: docs/model_cards.md.
"""

import os

from qgac_jax.training.config import PRETRAINED, defaults, l1_only, local_data, parse_arg


def get_config(arg: str = ""):
    args = parse_arg(arg, grey=False, finetune=False, steps=20_000)
    c = defaults()
    l1_only(c)
    local_data(c, args["grey"])
    c.model.variant, c.model.dtype = "small", "float32"
    c.data.patch_size, c.data.batch_size = 128, 32
    c.optim.lr, c.optim.warmup_steps = 1e-3, 500
    c.train.steps, c.train.log_every, c.train.eval_every, c.train.checkpoint_every = args["steps"], 200, 5_000, 2_500
    if args["finetune"]:
        c.train.init_from = os.path.join(PRETRAINED, "grey" if args["grey"] else "colour")
        c.optim.lr, c.optim.warmup_steps = 3e-4, 200
    return c
