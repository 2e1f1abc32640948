"""The shipped checkpoints: colour and grey 'small' models trained on one GPU from local photos.

    python -m qgac_jax.train --config=configs/gpu.py --workdir=workdirs/gpu_colour
    python -m qgac_jax.train --config=configs/gpu.py:grey --workdir=workdirs/gpu_grey

Data and evaluation as configs/cpu.py (../shared/data training folders plus
the built-in photos; 8 images of cbsd68 / bsd68 for validation), L1 only,
quality 10..95 with 20% random tables. 'small' variant (1.79 M params, 7 MB
of float32 weights, 0.5 TFLOP/MP), batch 32 of 128x128 patches, Adam at
1e-3 with warm-up and cosine decay. float32 parameters and activations (the
GPU's matrix units run them as TF32), so the export restores on CPU as is.
Machines without TensorFlow add --config.data.pipeline=pillow.

Measured (2026-11-24) on one NVIDIA H100 80GB with 16 CPU cores, jax 0.11.2
and no TensorFlow, both runs side by side on the one GPU with
--config.data.pipeline=pillow --config.data.workers=7 each: about 25 steps/s
each, 16,000 steps in about 11.5 minutes of wall time each, compilation and
evaluation included. One run alone: 41 steps/s fed by the pipeline, 60 on a
fixed batch (benchmarks/train_throughput.py). On the 2-core CPU machine a step
takes about 2 s: use configs/cpu.py there.
"""

from configs import cpu


def get_config(arg: str = ""):
    c = cpu.get_config(arg)
    c.model.variant = "small"
    c.data.patch_size, c.data.batch_size = 128, 32
    c.optim.lr, c.optim.warmup_steps = 1e-3, 500
    c.train.steps, c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 20_000, 200, 5_000, 2_500
    return c
