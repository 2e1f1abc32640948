"""Restoring on the CPU: every backend and precision side by side in one run, against the CPU's matmul rates.

    python benchmarks/restore_backends.py [--seconds 5] [--sizes 512x512,2048x1536] [--photo-megapixels 12]
                                          [--json OUT]

The shipped colour model, batch 1, all cores for every backend: XLA through
`jax.jit` (as `Restorer` runs it), ONNX Runtime's CPU provider on the float32
graph `python -m qgac_jax.export` writes (checked against Flax to 1e-4 first)
and on its int8 graph (`int8_graph`), OpenVINO on both graphs when
`openvino` is importable (it runs the QDQ graph in int8), and the PyTorch twin of `benchmarks/vs_pytorch.py`
in float32 and bfloat16 when `torch` is. Prints MP/s per backend and size and
the achieved GFLOP/s (the network's FLOPs counted from its jaxpr) against
float32 and int8 matrix-product rates measured in the same run (2048^3: numpy's
SGEMM, ONNX Runtime's MatMul and its MatMulInteger, u8 x s8 as the int8 graph
runs). With --photo-megapixels, also the end-to-end split of
`restore_profile.py` for a photo of that size in float32 and int8.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

import jax  # noqa: E402
import numpy as np  # noqa: E402

from qgac_jax.models import exports  # noqa: E402
from qgac_jax.models import flops
from qgac_jax.graphs import int8_graph, onnx_graph, sessions
from qgac_jax.models import shipped
from timing import timed  # noqa: E402  (benchmarks/timing.py, beside this script)

GEMM = 2048


def matmul_rates(seconds: float) -> dict:
    """GFLOP/s (int8: GOP/s) of square products of GEMM on all cores: numpy float32, ONNX Runtime float32 and int8."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    a32, b32 = rng.random((GEMM, GEMM), np.float32), rng.random((GEMM, GEMM), np.float32)
    ops = 2 * GEMM**3
    rates = {"numpy float32": ops / timed(lambda: a32 @ b32, seconds) / 1e9}

    def graph(op, a_type, b_type, out_type):
        node = helper.make_node(op, ["a", "b"], ["c"])
        g = helper.make_graph([node], "gemm", [helper.make_tensor_value_info("a", a_type, [GEMM, GEMM]),
                                                helper.make_tensor_value_info("b", b_type, [GEMM, GEMM])],
                              [helper.make_tensor_value_info("c", out_type, [GEMM, GEMM])])
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
        return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    f32 = graph("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT)
    rates["ONNX Runtime float32"] = ops / timed(lambda: f32.run(None, {"a": a32, "b": b32}), seconds) / 1e9
    i8 = graph("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32)
    a8 = rng.integers(0, 256, (GEMM, GEMM), dtype=np.uint8)
    b8 = rng.integers(-128, 128, (GEMM, GEMM), dtype=np.int8)
    rates["ONNX Runtime int8"] = ops / timed(lambda: i8.run(None, {"a": a8, "b": b8}), seconds) / 1e9
    return rates


def backends_of(model, params, config, tmp):
    """{name: fn(y [1, H, W, 3], q [1, H, W, 2]) -> restored}, float32 first; and the float32 graph's path."""
    apply = jax.jit(lambda y, q: jax.numpy.clip(model.apply({"params": params}, y, q), 0.0, 1.0))  # as Restorer
    fp32 = os.path.join(tmp, "colour.onnx")
    onnx_graph.save(onnx_graph.convert(model, params, None, config), fp32)
    int8 = os.path.join(tmp, "colour_int8.onnx")
    int8_graph.quantize(fp32, int8, model, params)
    backends = {"XLA float32": lambda y, q: np.asarray(apply(y, q)),
                "ONNX Runtime float32": sessions.OnnxModel(fp32, threads=os.cpu_count()),
                "ONNX Runtime int8": sessions.OnnxModel(int8, threads=os.cpu_count())}
    try:
        import openvino as ov

        def openvino_run(compiled, y, q):
            feed = {"image": np.ascontiguousarray(y.transpose(0, 3, 1, 2)),
                    "qmap": np.ascontiguousarray(q.transpose(0, 3, 1, 2))}
            return compiled(feed)[compiled.output(0)].transpose(0, 2, 3, 1)

        core = ov.Core()
        for name, path in (("OpenVINO float32", fp32), ("OpenVINO int8 (the same QDQ graph)", int8)):
            # OpenVINO computes float32 graphs in bfloat16 where the CPU has it, unless told f32
            backends[name] = functools.partial(openvino_run, core.compile_model(
                path, "CPU", {"INFERENCE_PRECISION_HINT": "f32"} if "float32" in name else {}))
    except ImportError:
        print("(openvino is not installed: no OpenVINO column)")
    try:
        import torch

        from vs_pytorch import TorchQGAC

        torch.set_num_threads(os.cpu_count())
        twin = TorchQGAC(model, params).eval().to(memory_format=torch.channels_last)

        def torch_run(y, q, dtype=torch.float32):
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
                ty, tq = (torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
                          for a in (y, q))
                return twin(ty, tq).float().clamp(0, 1).permute(0, 2, 3, 1).numpy()

        backends["PyTorch float32"] = torch_run
        backends["PyTorch bfloat16"] = lambda y, q: torch_run(y, q, torch.bfloat16)
    except ImportError:
        print("(torch is not installed: no PyTorch columns)")
    return backends, apply


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum timing per measurement")
    parser.add_argument("--sizes", default="512x512,2048x1536", help="WxH list")
    parser.add_argument("--photo-megapixels", type=float, default=0.0, help="also profile a photo this large (0: no)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]

    model, params, config = exports.load_restoration_export(shipped.default_checkpoint(3))
    with tempfile.TemporaryDirectory() as tmp:
        backends, apply = backends_of(model, params, config, tmp)
    rng = np.random.default_rng(0)
    y = rng.random((1, 72, 88, 3), np.float32)
    q = rng.uniform(1 / 255, 0.5, (1, 72, 88, 2)).astype(np.float32)
    want = np.asarray(apply(y, q))
    for name, fn in backends.items():
        err = float(np.abs(fn(y, q) - want).max())
        assert "float32" not in name or err < 1e-4, f"{name} differs from Flax by {err}"
    gflop_per_mp = flops.count_flops(lambda y, q: model.apply({"params": params}, y, q),
                                     np.zeros((1, 512, 512, 3), np.float32),
                                     np.zeros((1, 512, 512, 2), np.float32)) / 0.262144 / 1e9
    gemm = matmul_rates(args.seconds)
    best32 = max(v for k, v in gemm.items() if "float32" in k)
    print(f"shipped colour model ({config['variant']}, {gflop_per_mp:.0f} GFLOP per megapixel), batch 1, "
          f"{os.cpu_count()} CPU threads; jax {jax.__version__}; float32 outputs agree to 1e-4\n")
    print("matrix products of 2048^3 on all cores: " + ", ".join(f"{k} {v:.0f} G/s" for k, v in gemm.items()) + "\n")
    print("| backend | " + " | ".join(f"{w}x{h}, MP/s" for w, h in sizes) + " | GFLOP/s | of the float32 matmul rate "
          "| of the int8 matmul rate |")
    print("|---|" + "---|" * (len(sizes) + 3))
    results = {"gflop_per_megapixel": gflop_per_mp, "matmul_g_per_s": gemm, "backends": {}}
    for name, fn in backends.items():
        rates = []
        for w, h in sizes:
            y = rng.random((1, h, w, 3), np.float32)
            q = rng.uniform(1 / 255, 0.5, (1, h, w, 2)).astype(np.float32)
            rates.append(h * w / 1e6 / timed(lambda: fn(y, q), args.seconds))
        achieved = max(rates) * gflop_per_mp
        int8_share = f"{achieved / gemm['ONNX Runtime int8']:.0%}" if "int8" in name else ""
        results["backends"][name] = {"mp_per_s": dict(zip((f"{w}x{h}" for w, h in sizes), rates)),
                                     "gflop_per_s": achieved}
        print(f"| {name} | " + " | ".join(f"{r:.3f}" for r in rates) +
              f" | {achieved:.0f} | {achieved / best32:.0%} | {int8_share} |", flush=True)
    if args.photo_megapixels:
        results["photo"] = photo(args.photo_megapixels)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def photo(megapixels: float) -> dict:
    """restore_profile's split for a photo of `megapixels`, float32 and int8 (ONNX Runtime)."""
    from restore_profile import photo_jpeg, profile, split_table

    from qgac_jax.commands import jobs

    data, out = photo_jpeg(megapixels, 50), {}
    for precision in ("float32", "int8"):
        figures = profile(data, jobs.Settings(backend="onnxruntime", precision=precision))
        figures.pop("output")
        print(f"\n{figures['megapixels']:.1f} MP JPEG of quality 50, {figures['engine']}, {figures['workers']} "
              f"tiles at once, peak RSS so far {figures['peak_rss_gib']:.2f} GiB:\n\n{split_table(figures)}")
        out[precision] = figures
    return out


if __name__ == "__main__":
    main()
