"""The shipped colour model fine-tuned on frames of real video encodes beside its photos, on 2 CPU cores.

    python -m qgac_jax.train --config=configs/video.py --workdir=workdirs/video_colour
    python -m qgac_jax.train --config=configs/video.py:gpu,steps=8000 --workdir=workdirs/video_gpu

Starts from the shipped colour model and keeps its photo mix (JPEG single
and double, WebP, AVIF, HEIC; 40% of the examples) so that photos lose
nothing; the other 60% are frames of short clips a moving camera makes of
the training photos, encoded by x264, x265, libvpx-vp9 and SVT-AV1 at
CRFs across each codec's range (`qgac_jax.data.motion`): I, P and B
frames, each guided by the quantizers its codec recorded for it. A P- or
B-frame is better than its quantizer says (much of it is predicted from
finer frames): what a model that saw only photos cannot know. Validation:
JPEG 10 and 40, WebP and HEIC 50, on 8 images of cbsd68.

`gpu`: the same mix at a GPU's scale (batch 32 of 128x128, peak lr 3e-4).

Cost: the 'small' variant at 8 patches of 96x96 per step plus about 50 ms
of encoding per video example; measured time on 2 CPU cores:
docs/video.md.
"""

from qgac_jax.training.config import codec_mix, defaults, l1_only, parse_arg


def get_config(arg: str = ""):
    args = parse_arg(arg, gpu=False, steps=0)
    c = defaults()
    l1_only(c)
    codec_mix(c, grey=False)
    c.data.codecs = ("jpeg", "webp", "avif", "heic", "h264", "hevc", "vp9", "av1")
    c.data.codec_weights = (0.25, 0.05, 0.05, 0.05, 0.2, 0.15, 0.125, 0.125)
    c.eval.qualities = (10, 40, "webp:50", "heic:50")
    c.optim.lr, c.optim.warmup_steps = 1e-4, 100
    c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 25, 500, 100
    c.train.steps = args["steps"] or 1_500
    if args["gpu"]:
        c.data.patch_size, c.data.batch_size, c.data.workers = 128, 32, 0
        c.optim.lr, c.optim.warmup_steps = 3e-4, 200
        c.train.log_every, c.train.eval_every, c.train.checkpoint_every = 200, 2_000, 1_000
        c.train.steps = args["steps"] or 8_000
    return c
