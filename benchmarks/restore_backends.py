"""Restoring on the CPU: XLA vs ONNX Runtime (vs PyTorch when installed), side by side in one run.

    python benchmarks/restore_backends.py [--seconds 5] [--sizes 512x512,2048x1536] [--json OUT]

The shipped colour model, float32, batch 1, all cores for every backend: XLA
through `jax.jit` (as `Restorer` runs it), ONNX Runtime's CPU provider on the
graph `python -m qgac_jax.export` writes (converted here, checked against
Flax to 1e-4 first), and, when `torch` is importable, the PyTorch twin of
`benchmarks/vs_pytorch.py`. Prints MP/s per backend and size.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

import jax  # noqa: E402
import numpy as np  # noqa: E402

from qgac_jax import checkpointing, onnx_graph, shipped  # noqa: E402
from timing import timed  # noqa: E402  (benchmarks/timing.py, beside this script)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum timing per measurement")
    parser.add_argument("--sizes", default="512x512,2048x1536", help="WxH list")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]

    model, params, config = checkpointing.load_restoration_export(shipped.default_checkpoint(3))
    apply = jax.jit(lambda y, q: jax.numpy.clip(model.apply({"params": params}, y, q), 0.0, 1.0))  # as Restorer
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "colour.onnx")
        onnx_graph.save(onnx_graph.convert(model, params, None, config), path)
        onnx_model = onnx_graph.OnnxModel(path, threads=os.cpu_count())
    backends = {"XLA": lambda y, q: np.asarray(apply(y, q)), "ONNX Runtime": onnx_model}
    try:
        import torch

        from vs_pytorch import TorchQGAC

        torch.set_num_threads(os.cpu_count())
        twin = TorchQGAC(model, params).eval().to(memory_format=torch.channels_last)

        def torch_run(y, q):
            with torch.no_grad():
                ty, tq = (torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
                          for a in (y, q))
                return twin(ty, tq).clamp(0, 1).permute(0, 2, 3, 1).numpy()

        backends["PyTorch"] = torch_run
    except ImportError:
        print("(torch is not installed: XLA and ONNX Runtime only)")

    rng = np.random.default_rng(0)
    y = rng.random((1, 72, 88, 3), np.float32)
    q = rng.uniform(1 / 255, 0.5, (1, 72, 88, 2)).astype(np.float32)
    want = np.asarray(apply(y, q))
    for name, fn in backends.items():
        err = float(np.abs(fn(y, q) - want).max())
        assert err < 1e-4, f"{name} differs from Flax by {err}"
    print(f"shipped colour model ({config['variant']}), float32, batch 1, {os.cpu_count()} CPU threads; "
          f"jax {jax.__version__}; outputs agree to 1e-4\n")
    print("| size | " + " | ".join(f"{b}, MP/s" for b in backends) + " |")
    print("|---|" + "---|" * len(backends))
    results = {}
    for w, h in sizes:
        y = rng.random((1, h, w, 3), np.float32)
        q = rng.uniform(1 / 255, 0.5, (1, h, w, 2)).astype(np.float32)
        rates = {b: h * w / 1e6 / timed(lambda fn=fn: fn(y, q), args.seconds) for b, fn in backends.items()}
        results[f"{w}x{h}"] = rates
        print(f"| {w}x{h} | " + " | ".join(f"{r:.3f}" for r in rates.values()) + " |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
