"""int8 inference of the shipped colour model with ONNX Runtime: which convolutions can be int8, at what speed.

    python benchmarks/int8_sensitivity.py [--calibration N] [--keep 0,6,10] [--eval-images 20] [--seconds 4]

Static quantization by `int8_graph`'s recipe (QDQ, per-channel int8 weights,
uint8 activations, convolutions only) of the float32 graph `restore` caches, calibrated on N
crops of training photos (../shared/data's t91 and bsds500_train, else the
built-in photos) at qualities 10..90. First each convolution is quantized
alone and ranked by the mean squared error it adds to the output on other
training crops; then graphs keeping the K most sensitive convolutions in
float are timed at 512x512 beside float32 and, with --eval-images, measured
on that many cbsd68 images at qualities 10 and 40 (PSNR gain over JPEG, the
loss against float32). Nothing here changes what `restore` runs.
"""

from __future__ import annotations

import argparse
import glob
import io
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

SHARED = os.environ.get("QGAC_DATA") or os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "shared", "data")
SIDE = 128


def training_photos():
    """The training photos' paths (decoded when a crop needs them: a short run reads a few)."""
    files = sorted(f for folder in ("t91", "bsds500_train") for f in glob.glob(os.path.join(SHARED, folder, "*"))
                   if f.lower().endswith((".png", ".jpg", ".bmp")))
    if files:
        return files
    from qgac_jax.data import sources

    return list(sources.builtin_files(False))


def crops(photos, n, rng):
    """n feeds of the graph: JPEG crops at random qualities, with the Q-maps of their files."""
    from qgac_jax.codecs import jpeg
    from qgac_jax.data import sources

    out = []
    for i in range(n):
        img = sources.load_image(photos[i % len(photos)], False, 10**8)
        img = np.pad(img, ((0, max(0, SIDE - img.shape[0])), (0, max(0, SIDE - img.shape[1])), (0, 0)), "reflect")
        y, x = (rng.integers(0, d - SIDE + 1) // 8 * 8 for d in img.shape[:2])
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(img[y:y + SIDE, x:x + SIDE])).save(buf, "JPEG",
                                                                                quality=int(rng.integers(10, 91)))
        pixels = np.asarray(Image.open(io.BytesIO(buf.getvalue())), np.float32) / 255
        qmap = jpeg.read_quantization(buf.getvalue()).qmap(SIDE, SIDE).astype(np.float32)
        out.append({"image": pixels.transpose(2, 0, 1)[None].copy(), "qmap": qmap.transpose(2, 0, 1)[None].copy()})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=int, default=32, help="calibration crops")
    parser.add_argument("--keep", default="0,6,10", help="how many of the most sensitive convolutions stay float")
    parser.add_argument("--eval-images", type=int, default=0, help="cbsd68 images to measure PSNR on (0: none)")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rank", type=int, default=0, help="rank only the first N convolutions (0: all)")
    args = parser.parse_args()

    import onnx
    import onnxruntime as ort

    from qgac_jax.graphs import int8_graph, onnx_graph
    from qgac_jax.models import shipped

    rng = np.random.default_rng(0)
    photos = training_photos()
    calibration, validation = crops(photos, args.calibration, rng), crops(photos[::-1], 12, rng)
    fp32 = str(onnx_graph.cached(shipped.default_checkpoint(3)))
    tmp = tempfile.mkdtemp(prefix="qgac-int8-")
    pre = os.path.join(tmp, "pre.onnx")
    int8_graph.preprocess(fp32, pre)
    convs = [n.name for n in onnx.load(pre).graph.node if n.op_type == "Conv"]

    def quantize(out, exclude=()):  # restore's recipe (int8_graph), with this benchmark's crops and float set
        int8_graph.quantize_preprocessed(pre, out, calibration, exclude)
        return out

    def outputs(path):
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return [session.run(None, feed)[0] for feed in validation]

    reference = outputs(fp32)

    def mse(path):
        return float(np.mean([np.mean((a - b) ** 2) for a, b in zip(outputs(path), reference)]))

    ranked_convs = convs[:args.rank] if args.rank else convs
    added = {c: mse(quantize(os.path.join(tmp, "one.onnx"), [x for x in convs if x != c])) for c in ranked_convs}
    ranked = sorted(ranked_convs, key=added.get, reverse=True)
    print(f"{len(convs)} convolutions, {len(ranked)} ranked; the most sensitive alone (output MSE added): " +
          ", ".join(f"{c} {added[c]:.1e}" for c in ranked[:10]))
    big = {k: np.ascontiguousarray(np.tile(v, (1, 1, 4, 4))) for k, v in validation[0].items()}  # 512x512

    def rate(path):
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        session.run(None, big)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.seconds or n < 2:
            session.run(None, big)
            n += 1
        return 512 * 512 / 1e6 * n / (time.perf_counter() - start)

    print(f"\n{os.cpu_count()} cores, onnxruntime {ort.__version__}\n")
    print("| graph | output MSE vs float32 | MP/s at 512x512 | speed vs float32 | PSNR loss q10 / q40 (dB) |")
    print("|---|---|---|---|---|")
    base = rate(fp32)
    print(f"| float32 | 0 | {base:.3f} | 1.00x | |", flush=True)
    for keep in (int(k) for k in args.keep.split(",")):
        path = quantize(os.path.join(tmp, f"int8_keep{keep}.onnx"), ranked[:keep])
        loss = evaluate_loss(fp32, path, args.eval_images) if args.eval_images else ""
        r = rate(path)
        print(f"| int8, {keep} most sensitive kept float | {mse(path):.1e} | {r:.3f} | {r / base:.2f}x | {loss} |",
              flush=True)


def evaluate_loss(fp32, int8, images):
    """'-0.019 / -0.017': the int8 graph's PSNR gain minus float32's on the first `images` of cbsd68."""
    from qgac_jax.evaluation import protocol as eval_protocol
    from qgac_jax.restoring.restorer import Restorer

    source = os.path.join(SHARED, "cbsd68")
    if not os.path.isdir(source):
        return "(no cbsd68)"
    gains = []
    for path in (fp32, int8):
        result = eval_protocol.evaluate_images(Restorer.from_onnx(path).restore_compressed, source, (10, 40),
                                               max_images=images)
        gains.append({q: r["model"]["psnr"] - r["jpeg"]["psnr"] for q, r in result["qualities"].items()})
    return " / ".join(f"{gains[1][q] - gains[0][q]:+.3f}" for q in (10, 40))


if __name__ == "__main__":
    main()
