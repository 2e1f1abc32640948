"""QGAC in JAX vs the same network in PyTorch, on this machine's CPU, side by side.

    pip install torch            # benchmark only; the CPU build is enough
    python benchmarks/vs_pytorch.py [--variant small] [--json bench.json] [--quick]

The PyTorch model below mirrors qgac_jax.models.QGAC layer for layer (stride-2
'SAME' convs become an explicit bottom/right pad, transposed-conv kernels are
flipped) and takes the Flax weights; its output must match to 1e-4 before
anything is timed. Measured in one run:
- inference MP/s on a 512x512 and a 2048x1536 image (batch 1),
- a train step (L1 loss, Adam) at batch 16 of 128x128 patches, steps/s,
- float32 and bfloat16 (JAX: bf16 compute with f32 params; PyTorch: autocast),
- the machine's float32 matmul rate, and the train step's achieved GFLOP/s
  (FLOPs from XLA's cost analysis) as a fraction of it.
The JAX train step is compiled as `qgac_jax.train` compiles it
(`qgac_jax.training.compiler_options.for_training()`: on CPU, YNNPACK off); the float32
step is also timed under XLA's default options, for the before/after.
"""

from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch
import torch.nn.functional as F

from qgac_jax.training import compiler_options
from timing import timed  # benchmarks/timing.py, beside this script

from qgac_jax.models import create_model, flops, init_params, qmap_channels


# ----------------------------------------------------------------------------- the PyTorch twin


class TorchQGAC(torch.nn.Module):
    def __init__(self, flax_model, params):
        super().__init__()
        self.m = flax_model
        self.levels = len(flax_model.widths) - 1
        p = jax.tree.map(np.asarray, params)
        self.convs = torch.nn.ModuleDict()
        for name, leaf in p.items():
            self._add(name, leaf)

    def _add(self, name, tree):
        if "kernel" in tree:
            k = torch.from_numpy(np.array(tree["kernel"]))
            b = torch.from_numpy(np.array(tree["bias"]))
            if name.startswith("up"):  # ConvTranspose: [kh, kw, in, out] -> [in, out, kh, kw], flipped
                conv = torch.nn.ConvTranspose2d(k.shape[2], k.shape[3], 2, stride=2)
                conv.weight.data = k.flip(0, 1).permute(2, 3, 0, 1).contiguous()
            else:
                conv = torch.nn.Conv2d(k.shape[2], k.shape[3], k.shape[0], padding=0)
                conv.weight.data = k.permute(3, 2, 0, 1).contiguous()
            conv.bias.data = b
            self.convs[name.replace("/", "__")] = conv
        else:
            for sub, leaf in tree.items():
                self._add(f"{name}/{sub}", leaf)

    def c(self, name, x, stride=1):
        conv = self.convs[name.replace("/", "__")]
        if isinstance(conv, torch.nn.ConvTranspose2d):
            return conv(x)
        k = conv.kernel_size[0]
        if k == 1:
            return conv(x)
        if stride == 1:
            return F.conv2d(F.pad(x, (1, 1, 1, 1)), conv.weight, conv.bias)
        return F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, conv.bias, stride=2)  # XLA 'SAME', stride 2

    def res(self, name, x):
        return x + self.c(f"{name}/Conv_1", F.relu(self.c(f"{name}/Conv_0", x)))

    def forward(self, y, q):  # NCHW
        h, w = y.shape[2:]
        mult = 2**self.levels
        ph, pw = (-h) % mult, (-w) % mult
        yp = F.pad(y, (0, pw, 0, ph), mode="replicate") if ph or pw else y
        qp = F.pad(q, (0, pw, 0, ph), mode="replicate") if ph or pw else q
        x = self.c("stem", torch.cat([yp, qp], 1))
        skips = [x]
        for level in range(self.levels):
            for i in range(self.m.blocks):
                x = self.res(f"enc{level}_res{i}", x)
            x = self.c(f"down{level}", x, stride=2)
            f = 2 ** (level + 1)
            qq = F.avg_pool2d(qp, f)
            name = f"qga{level}"
            guide = self.c(f"{name}/qmap_proj", qq) if qq.shape[1] > 1 else qq.expand(-1, x.shape[1], -1, -1)
            a = torch.sigmoid(self.c(f"{name}/att_conv2", F.relu(self.c(f"{name}/att_conv1", x + guide))))
            skips.append(a * x)
        for i in range(self.m.bottleneck_blocks):
            x = self.res(f"mid_res{i}", x)
        for level in reversed(range(self.levels)):
            x = self.c(f"fuse{level + 1}", torch.cat([x, skips[level + 1]], 1))
            for i in range(self.m.blocks):
                x = self.res(f"dec{level + 1}_res{i}", x)
            x = self.c(f"up{level}", x)
        x = self.c("fuse0", torch.cat([x, skips[0]], 1))
        for i in range(self.m.blocks):
            x = self.res(f"dec0_res{i}", x)
        return (yp + self.c("head", x))[:, :, :h, :w]


# ----------------------------------------------------------------------------- timing


def matmul_gflops(seconds):
    a = jnp.ones((2048, 2048), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    t = timed(lambda: f(a).block_until_ready(), seconds)
    return 2 * 2048**3 / t / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", default="small")
    parser.add_argument("--json", default="vs_pytorch.json")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum timing per measurement")
    parser.add_argument("--quick", action="store_true", help="smaller images and batch, for a smoke check")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count())
    sizes = [(512, 512), (2048, 1536)] if not args.quick else [(128, 128)]
    batch, patch = (16, 128) if not args.quick else (2, 64)

    model = create_model(args.variant, channels=3, zero_head=False)
    params = init_params(model, jax.random.key(0))
    tmodel = TorchQGAC(model, params).eval()
    k = qmap_channels(3)
    rng = np.random.default_rng(0)

    # Equivalence first: same weights, same output.
    y = rng.random((1, 72, 88, 3), np.float32)
    q = rng.random((1, 72, 88, k), np.float32)
    want = np.asarray(model.apply({"params": params}, y, q))
    with torch.no_grad():
        got = tmodel(torch.from_numpy(y).permute(0, 3, 1, 2), torch.from_numpy(q).permute(0, 3, 1, 2))
    err = float(np.abs(got.permute(0, 2, 3, 1).numpy() - want).max())
    assert err < 1e-4, f"PyTorch twin differs from Flax by {err}"
    print(f"variant {args.variant}: PyTorch output matches Flax (max |diff| {err:.1e}); "
          f"jax {jax.__version__}, torch {torch.__version__}, {os.cpu_count()} CPU threads\n")

    results = {"variant": args.variant, "max_abs_diff": err}
    results["matmul_gflops"] = matmul_gflops(args.seconds)

    # Inference.
    bf16_model = create_model(args.variant, channels=3, zero_head=False, dtype="bfloat16")
    infer = {name: jax.jit(lambda p, y, q, m=m: m.apply({"params": p}, y, q))
             for name, m in (("f32", model), ("bf16", bf16_model))}
    tmodel_cl = TorchQGAC(model, params).eval().to(memory_format=torch.channels_last)
    rows = []
    for h, w in sizes:
        mp = h * w / 1e6
        y = rng.random((1, h, w, 3), np.float32)
        q = rng.random((1, h, w, k), np.float32)
        ty = torch.from_numpy(y).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        tq = torch.from_numpy(q).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        for prec in ("f32", "bf16"):
            t_jax = timed(lambda: infer[prec](params, y, q).block_until_ready(), args.seconds)

            def torch_run():
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                    tmodel_cl(ty, tq)

            t_torch = timed(torch_run, args.seconds)
            suffix = "" if prec == "f32" else "_bf16"
            key = f"{h}x{w}"
            results.setdefault(f"jax_infer_mps{suffix}", {})[key] = mp / t_jax
            results.setdefault(f"torch_infer_mps{suffix}", {})[key] = mp / t_torch
            rows.append((f"inference {w}x{h} ({prec}), MP/s", mp / t_jax, mp / t_torch))

    # Train step: L1 + Adam, batch of patches.
    y = rng.random((batch, patch, patch, 3), np.float32)
    q = rng.random((batch, patch, patch, k), np.float32)
    x = np.clip(y + 0.05 * rng.standard_normal(y.shape).astype(np.float32), 0, 1)
    tx = optax.adam(1e-4)
    for prec, m in (("f32", model), ("bf16", bf16_model)):
        def step(p, o, y, q, x, m=m):
            loss, g = jax.value_and_grad(lambda p: jnp.mean(jnp.abs(m.apply({"params": p}, y, q) - x)))(p)
            u, o = tx.update(g, o, p)
            return optax.apply_updates(p, u), o, loss

        def jax_seconds(options):
            compiled = jax.jit(step, compiler_options=options).lower(params, tx.init(params), y, q, x).compile()
            state = [params, tx.init(params)]

            def jax_run():
                state[0], state[1], loss = compiled(state[0], state[1], y, q, x)
                loss.block_until_ready()

            return timed(jax_run, args.seconds), flops.count_flops(step, params, tx.init(params), y, q, x)

        options = compiler_options.for_training()
        t_jax, step_flops = jax_seconds(options)
        tm = TorchQGAC(model, params).train().to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(tm.parameters(), lr=1e-4)
        ty, tq, tx_ = (
            torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last) for a in (y, q, x)
        )

        def torch_run():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=prec == "bf16"):
                loss = (tm(ty, tq).float() - tx_).abs().mean()
            loss.backward()
            opt.step()

        t_torch = timed(torch_run, args.seconds)
        suffix = "" if prec == "f32" else "_bf16"
        results[f"jax_train_steps_s{suffix}"] = 1 / t_jax
        results[f"torch_train_steps_s{suffix}"] = 1 / t_torch
        results[f"jax_train_gflops{suffix}"] = step_flops / t_jax / 1e9
        results[f"train_step_gflop{suffix}"] = step_flops / 1e9
        rows.append((f"train step b{batch} {patch}x{patch} ({prec}), steps/s", 1 / t_jax, 1 / t_torch))
        if options:  # the same step under XLA's default CPU options: what training ran before
            t_default, _ = jax_seconds(None)
            results[f"jax_train_steps_s{suffix}_xla_defaults"] = 1 / t_default
            rows.append((f"train step ({prec}), XLA default options, steps/s", 1 / t_default, 1 / t_torch))

    print("| measurement | JAX | PyTorch | JAX / PyTorch |")
    print("|---|---|---|---|")
    for name, j, t in rows:
        print(f"| {name} | {j:.3f} | {t:.3f} | {j / t:.2f}x |")
    print(f"\nfloat32 matmul (XLA, 2048^3): {results['matmul_gflops']:.0f} GFLOP/s")
    for suffix in ("", "_bf16"):
        g = results[f"jax_train_gflops{suffix}"]
        print(
            f"JAX train step{suffix or ' (f32)'}: {results[f'train_step_gflop{suffix}']:.1f} GFLOP per step, "
            f"{g:.0f} GFLOP/s achieved = {g / results['matmul_gflops']:.0%} of the f32 matmul rate"
        )
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
