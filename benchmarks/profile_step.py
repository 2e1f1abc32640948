"""Where a QGAC train step spends its time: every convolution of the model timed in its three roles.

    python benchmarks/profile_step.py [--variant small] [--batch 16] [--patch 128] [--seconds 2] [--xla-defaults]

Everything is compiled as training compiles it (`qgac_jax.training.compiler_options`:
on CPU, YNNPACK off); --xla-defaults profiles XLA's default compilation.

The whole step (L1 loss, Adam) is timed first. Then every Conv / ConvTranspose
call of one forward pass is captured with its real input shape (flax's
method interception) and re-run alone as three jitted functions: the forward
convolution, the gradient with respect to its input, and the gradient with
respect to its kernel (each compiled separately, so XLA keeps only that
convolution). The table sums them by role and by layer width, with achieved
GFLOP/s, against the whole step; what is left is everything else (ReLU,
sigmoid, pooling, concatenation, the loss and Adam).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from qgac_jax.models import create_model, flops, init_params, qmap_channels  # noqa: E402
from qgac_jax.training import compiler_options  # noqa: E402
from qgac_jax.models.conv_transpose import ConvTranspose2x2  # noqa: E402


def seconds_per_call(fn, args, budget):
    jax.block_until_ready(fn(*args))  # compile and warm up
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < budget:
        jax.block_until_ready(fn(*args))
        n += 1
    return (time.perf_counter() - start) / n


def flops_of(fn, args):
    return flops.count_flops(fn, *args)  # the project's one FLOP count (models/flops.py)


def capture_convs(model, params, y, q):
    """[(module, input shape)] of every convolution in one forward pass, in call order."""
    calls = []

    def record(next_fun, args, kwargs, context):
        convolution = isinstance(context.module, (nn.Conv, nn.ConvTranspose, ConvTranspose2x2))
        if convolution and context.method_name == "__call__":
            calls.append((context.module.clone(parent=None), args[0].shape))
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        model.apply({"params": params}, y, q)
    return calls


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="small")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing budget per measurement")
    parser.add_argument("--xla-defaults", action="store_true", help="XLA's default options, not training's")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    model = create_model(args.variant, channels=3)
    params = init_params(model, jax.random.key(0))
    shape = (args.batch, args.patch, args.patch)
    y = jnp.asarray(rng.random(shape + (3,), np.float32))
    q = jnp.asarray(rng.random(shape + (qmap_channels(3),), np.float32))
    x = jnp.clip(y + 0.05 * jnp.asarray(rng.standard_normal(y.shape), jnp.float32), 0, 1)
    tx = optax.adam(1e-4)

    def step(p, o):
        loss, g = jax.value_and_grad(lambda p: jnp.mean(jnp.abs(model.apply({"params": p}, y, q) - x)))(p)
        u, o = tx.update(g, o, p)
        return optax.apply_updates(p, u), o

    opt = tx.init(params)
    options = None if args.xla_defaults else compiler_options.for_training()

    def jit(fn):
        return jax.jit(fn, compiler_options=options)

    step_s = seconds_per_call(jit(step), (params, opt), args.seconds)
    step_flops = flops_of(step, (params, opt))

    totals = collections.defaultdict(lambda: [0.0, 0.0])  # (role, width) -> [seconds, flops]
    cache = {}
    for module, in_shape in capture_convs(model, params, y, q):
        key = (type(module).__name__, module.features, getattr(module, "kernel_size", None),
               getattr(module, "strides", None), in_shape)
        if key not in cache:
            p = module.init(jax.random.key(1), jnp.zeros(in_shape))["params"]
            xin = jnp.asarray(rng.random(in_shape, np.float32))
            out = module.apply({"params": p}, xin)
            ct = jnp.asarray(rng.random(out.shape, np.float32))
            roles = {
                "forward": (lambda p, xin, ct: module.apply({"params": p}, xin), (p, xin, ct)),
                "input grad": (lambda p, xin, ct: jax.vjp(lambda v: module.apply({"params": p}, v), xin)[1](ct)[0],
                               (p, xin, ct)),
                "weight grad": (lambda p, xin, ct: jax.vjp(lambda w: module.apply({"params": w}, xin), p)[1](ct)[0],
                                (p, xin, ct)),
            }
            cache[key] = {role: (seconds_per_call(jit(fn), a, args.seconds / 4), flops_of(fn, a))
                          for role, (fn, a) in roles.items()}
        width = max(in_shape[-1], module.features)
        for role, (s, f) in cache[key].items():
            if role == "input grad" and module.name == "stem":
                continue  # nothing upstream of the stem needs this gradient
            totals[(role, width)][0] += s
            totals[(role, width)][1] += f

    print(
        f"{args.variant} variant, train step at batch {args.batch} of {args.patch}x{args.patch}, "
        f"{jax.devices()[0].platform}, compiler options {options}: {step_s * 1e3:.0f} ms, "
        f"{step_flops / 1e9:.0f} GFLOP, "
        f"{step_flops / step_s / 1e9:.1f} GFLOP/s"
    )
    print("| convolutions | ms per step | share of the step | GFLOP | GFLOP/s |")
    print("|---|---|---|---|---|")
    by_role = collections.defaultdict(lambda: [0.0, 0.0])
    for (role, width), (s, f) in sorted(totals.items()):
        by_role[role][0] += s
        by_role[role][1] += f
        print(f"| {role}, width {width} | {s * 1e3:.0f} | {s / step_s:.0%} | {f / 1e9:.1f} | {f / s / 1e9:.0f} |")
    conv_s = sum(s for s, _ in by_role.values())
    for role, (s, f) in by_role.items():
        print(f"| **{role}, all** | {s * 1e3:.0f} | {s / step_s:.0%} | {f / 1e9:.1f} | {f / s / 1e9:.0f} |")
    print(f"| everything else (by difference) | {(step_s - conv_s) * 1e3:.0f} | {(step_s - conv_s) / step_s:.0%} | | |")


if __name__ == "__main__":
    main()
