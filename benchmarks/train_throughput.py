"""Training and inference throughput of one config on this machine's default JAX backend.

    python benchmarks/train_throughput.py --config configs/gpu.py [--workers 15] [--json out.json]

Measured in one run, printed side by side:
- the host input pipeline (config.data.pipeline), pairs/s with --workers
  processes or tf.data threads;
- the jitted train step alone on one fixed batch (the device's ceiling),
  steps/s and pairs/s, with achieved TFLOP/s from XLA's cost analysis;
- the whole loop (pipeline feeding the step), pairs/s: what a run gets;
- restoring one 2048x1536 image (tiled as `restore` does), MP/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root: configs

import jax  # noqa: E402
import numpy as np  # noqa: E402

from qgac_jax import input_pipeline as ip  # noqa: E402
from qgac_jax import quantization as qz  # noqa: E402
from qgac_jax import sharding, train_step  # noqa: E402
from qgac_jax.restorer import Restorer  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/gpu.py")
    parser.add_argument("--pipeline", choices=ip.PIPELINES, help="override config.data.pipeline")
    parser.add_argument("--workers", type=int, default=0, help="pipeline processes / threads (0: all cores)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, help="override config.data.batch_size")
    parser.add_argument("--patch", type=int, help="override config.data.patch_size")
    parser.add_argument("--image", default="2048x1536", help="WxH of the restore measurement")
    parser.add_argument("--json")
    args = parser.parse_args()

    config = load_config(args.config)
    data_fields = dict(config.data) | {"workers": args.workers}
    for key, value in (("pipeline", args.pipeline), ("batch_size", args.batch), ("patch_size", args.patch)):
        if value:
            data_fields[key] = value
    data = ip.DataConfig(**data_fields)
    device = f"{jax.devices()[0].device_kind} x{jax.device_count()}"
    print(f"config {args.config}: {config.model.variant} {config.model.dtype}, batch {data.batch_size} of "
          f"{data.patch_size}x{data.patch_size}, pipeline {data.pipeline}; devices: {device}", flush=True)

    batches = ip.train_batches(data, process_index=0, process_count=1)
    pipeline_pairs = rate(lambda: next(batches), args.seconds) * data.batch_size

    mesh = sharding.make_mesh()
    repl = sharding.param_sharding(mesh)
    trainer = train_step.make_trainer(config)
    state = jax.device_put(train_step.init_state(trainer, jax.random.key(0)), repl)
    step = train_step.jit_step(trainer, False, mesh)
    fixed = sharding.global_batch(next(batches), mesh)
    # FLOPs of the lowered (not compiled) step: GPU compilations hand convolutions to cuDNN custom calls,
    # which the compiled cost analysis does not count.
    flops = step.lower(state, fixed, {}).cost_analysis()
    flops = (flops[0] if isinstance(flops, list) else flops).get("flops", 0.0)
    holder = {"state": state}

    def device_step():
        holder["state"], metrics = step(holder["state"], fixed, {})
        return metrics

    def fed_step():
        holder["state"], metrics = step(holder["state"], sharding.global_batch(next(batches), mesh), {})
        return metrics

    step_rate = rate(device_step, args.seconds)
    fed_rate = rate(fed_step, args.seconds)

    restorer = Restorer(trainer.model, jax.device_get(holder["state"].ema_params))
    width, height = (int(v) for v in args.image.lower().split("x"))
    image = np.random.default_rng(0).random((height, width, data.channels), np.float32)
    qmap = qz.JpegQuantization.from_quality(30, grey=data.grey).qmap(height, width)
    restore_mps = rate(lambda: restorer.restore_pixels(image, qmap), args.seconds, warmup=1) * height * width / 1e6

    figures = {
        "device": device, "pipeline": data.pipeline, "pipeline_pairs_s": pipeline_pairs,
        "step_steps_s": step_rate, "step_pairs_s": step_rate * data.batch_size,
        "step_tflops": step_rate * flops / 1e12, "fed_pairs_s": fed_rate * data.batch_size,
        f"restore_mps_{width}x{height}": restore_mps, "cpu_count": os.cpu_count(),
    }
    print(f"{'input pipeline':<28}{pipeline_pairs:>10,.0f} pairs/s  ({args.workers or os.cpu_count()} workers)")
    print(f"{'train step, fixed batch':<28}{step_rate * data.batch_size:>10,.0f} pairs/s  ({step_rate:.1f} steps/s, "
          f"{figures['step_tflops']:.1f} TFLOP/s)")
    print(f"{'train loop, fed':<28}{fed_rate * data.batch_size:>10,.0f} pairs/s")
    print(f"{f'restore {width}x{height}':<28}{restore_mps:>10,.2f} MP/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
