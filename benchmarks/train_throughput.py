"""Training and inference throughput of one config on this machine's default JAX backend (CPU, GPU, TPU).

    python benchmarks/train_throughput.py --config configs/gpu.py [--workers 15] [--dtype bfloat16]
                                          [--recipe full] [--json out.json]

Measured in one run, printed side by side:
- the device's matmul rate in the step's dtype (the ceiling utilisation is quoted against);
- the host input pipeline (config.data.pipeline), pairs/s with --workers processes or tf.data threads;
- the jitted train step alone on one fixed batch (the device's ceiling): steps/s, pairs/s,
  TFLOP/s and utilisation (FLOPs counted from the step's jaxpr: `qgac_jax.models.flops`);
- the train loop fed by the pipeline through the same device prefetcher `train.py` uses, and
  its ratio to the fixed-batch step;
- restoring one 2048x1536 image (tiled as `restore` does), MP/s.
`--recipe full` adds the perceptual (VGG19, random weights: timing only) and adversarial losses.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root: configs

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from qgac_jax import data
from qgac_jax.training import restoration  # noqa: E402
from qgac_jax.models import flops
from qgac_jax.training import sections, sharding, step as train_step
from qgac_jax.codecs import jpeg  # noqa: E402
from qgac_jax.data import on_device  # noqa: E402
from qgac_jax.training.prefetch import to_devices  # noqa: E402
from qgac_jax.restoring.restorer import Restorer  # noqa: E402


def load_config(spec):
    import importlib.util

    path, _, arg = spec.partition(":")
    module_spec = importlib.util.spec_from_file_location("bench_config", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg)


def rate(fn, seconds, warmup=3, sync_every=20):
    """Calls per second of `fn`, counting only finished work (JAX dispatches asynchronously)."""
    for _ in range(warmup):
        out = fn()
    jax.block_until_ready(out)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        out = fn()
        n += 1
        if n % sync_every == 0:  # bounded queue: the device never runs far behind the clock
            jax.block_until_ready(out)
    jax.block_until_ready(out)
    return n / (time.perf_counter() - start)


def matmul_tflops(dtype, seconds: float) -> float:
    """Rate of a large square matmul on the default device (f32 accumulation), TFLOP/s."""
    n = 2048 if jax.default_backend() == "cpu" else 8192
    a, b = (jax.random.normal(jax.random.key(i), (n, n), jnp.float32).astype(dtype) for i in (0, 1))
    mm = jax.jit(lambda x, y: jnp.dot(x, y, preferred_element_type=jnp.float32))
    return rate(lambda: mm(a, b), seconds) * 2 * n**3 / 1e12


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/gpu.py")
    parser.add_argument("--pipeline", choices=data.PIPELINES, help="override config.data.pipeline")
    parser.add_argument("--workers", type=int, default=0, help="pipeline processes / threads (0: all cores)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, help="override config.data.batch_size")
    parser.add_argument("--patch", type=int, help="override config.data.patch_size")
    parser.add_argument("--variant", help="override config.model.variant")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), help="override config.model.dtype")
    parser.add_argument("--recipe", choices=("l1", "full"), default="l1",
                        help="l1: the config's losses; full: + VGG19 perceptual and PatchGAN (random VGG)")
    parser.add_argument("--skip-restore", action="store_true")
    parser.add_argument("--image", default="2048x1536", help="WxH of the restore measurement")
    parser.add_argument("--json")
    args = parser.parse_args()

    config = load_config(args.config)
    config.model.variant = args.variant or config.model.variant
    config.model.dtype = args.dtype or config.model.dtype
    if args.recipe == "full":
        config.loss = dataclasses.replace(config.loss, perceptual=1.0, adversarial=0.005, gan_start_step=0,
                                          allow_random_vgg=True, vgg="vgg19", vgg_layers=("block5_conv4",),
                                          vgg_layer_weights=(1.0,))
    data_fields = {"workers": args.workers}
    for key, value in (("pipeline", args.pipeline), ("batch_size", args.batch), ("patch_size", args.patch)):
        if value:
            data_fields[key] = value
    data_config = dataclasses.replace(config.data, **data_fields)
    device = f"{jax.devices()[0].device_kind} x{jax.device_count()}"
    print(f"config {args.config}: {config.model.variant} {config.model.dtype}, recipe {args.recipe}, batch "
          f"{data_config.batch_size} of {data_config.patch_size}x{data_config.patch_size}, pipeline "
          f"{data_config.pipeline}; devices: {device}; jax {jax.__version__}", flush=True)

    peak = matmul_tflops(jnp.dtype(config.model.dtype), min(args.seconds, 3.0))
    print(f"{'matmul ' + config.model.dtype:<28}{peak:>10,.3g} TFLOP/s", flush=True)

    batches = data.train_batches(data_config, process_index=0, process_count=1, compact=True)
    pipeline_pairs = rate(lambda: next(batches), args.seconds) * data_config.batch_size
    print(f"{'input pipeline':<28}{pipeline_pairs:>10,.0f} pairs/s  ({args.workers or os.cpu_count()} workers)",
          flush=True)

    mesh = sharding.make_mesh()
    repl = sharding.param_sharding(mesh)
    parts = train_step.make_parts(sections.training(config))
    state = jax.device_put(train_step.init_state(parts, jax.random.key(0)), repl)
    vgg = jax.device_put(restoration.load_vgg_params(parts, config, jax.random.key(1)), repl)
    adversarial = args.recipe == "full"
    step = train_step.jit_step(parts, adversarial, mesh)
    prepare = jax.jit(on_device.make_prepare(data_config), out_shardings=sharding.batch_sharding(mesh))
    fixed = prepare(sharding.global_batch({k: v for k, v in next(batches).items() if k in restoration.STEP_KEYS}, mesh))
    step_flops = flops.count_flops(train_step.make_step(parts, adversarial), state, fixed, vgg)
    holder = {"state": state}

    def device_step():
        holder["state"], metrics = step(holder["state"], fixed, vgg)
        return metrics

    step_rate = rate(device_step, args.seconds)
    tflops = step_rate * step_flops / 1e12
    print(f"{'train step, fixed batch':<28}{step_rate * data_config.batch_size:>10,.0f} pairs/s  ({step_rate:.1f} "
          f"steps/s, {step_flops / 1e12:.3g} TFLOP/step, {tflops:.3g} TFLOP/s = {tflops / peak:.0%} of the matmul)",
          flush=True)

    with to_devices(batches, mesh, restoration.STEP_KEYS, on_device.make_prepare(data_config)) as fed:
        def fed_step():
            holder["state"], metrics = step(holder["state"], next(fed), vgg)
            return metrics

        fed_rate = rate(fed_step, args.seconds)
    print(f"{'train loop, fed':<28}{fed_rate * data_config.batch_size:>10,.0f} pairs/s  ({fed_rate / step_rate:.0%} of "
          f"the fixed-batch step)", flush=True)

    figures = {
        "device": device, "jax": jax.__version__, "variant": config.model.variant, "dtype": config.model.dtype,
        "recipe": args.recipe, "batch": data_config.batch_size, "patch": data_config.patch_size,
        "pipeline": data_config.pipeline, "workers": args.workers or os.cpu_count(), "matmul_tflops": peak,
        "pipeline_pairs_s": pipeline_pairs, "step_steps_s": step_rate,
        "step_pairs_s": step_rate * data_config.batch_size,
        "step_tflop": step_flops / 1e12, "step_tflops": tflops, "utilisation": tflops / peak,
        "fed_pairs_s": fed_rate * data_config.batch_size, "fed_over_step": fed_rate / step_rate,
        "cpu_count": os.cpu_count(),
    }
    if not args.skip_restore:
        restorer = Restorer(parts.model, jax.device_get(holder["state"].ema_params))
        width, height = (int(v) for v in args.image.lower().split("x"))
        image = np.random.default_rng(0).random((height, width, data_config.channels), np.float32)
        tables = jpeg.JpegQuantization.from_quality(30, grey=data_config.grey)
        restores_per_s = rate(lambda: restorer.restore_compressed(image, tables), args.seconds, warmup=1)
        restore_mps = restores_per_s * height * width / 1e6
        figures[f"restore_mps_{width}x{height}"] = restore_mps
        print(f"{f'restore {width}x{height}':<28}{restore_mps:>10,.2f} MP/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
