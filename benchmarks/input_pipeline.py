"""Training pairs per second of the host input pipeline, on 1 and on 2 cores.

    python benchmarks/input_pipeline.py [--source builtin] [--patch 128] [--seconds 8] [--double 0.5]
    python benchmarks/input_pipeline.py --codecs [--source builtin] [--patch 128]

Prints one table: the IJG path (libjpeg inside the tf.data graph), the
random-table path (Pillow `qtables=` in tf.numpy_function), each with tf.data
limited to 1 and to 2 threads, and the TensorFlow-free 'pillow' pipeline with
1 and 2 worker processes. Batches are in the compact form training asks for
(uint8 images and tables; the device makes floats and Q-maps of them).
--codecs instead times the 'pillow' pipeline with one worker on each codec
alone (JPEG by the shipped recipe; WebP, AVIF and HEIC at encoder
qualities 5..95): how many workers a codec mix needs to feed a GPU.
Measured figures: docs/performance.md.
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from qgac_jax import data  # noqa: E402


def pairs_per_second(config, bank, threads, seconds):
    it = data.train_batches(config, bank=bank, process_index=0, process_count=1, threads=threads, compact=True)
    for _ in range(10 + 2 * threads):  # warm up: graph tracing, worker start-up, thread pools, prefetch
        next(it)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(it)
        n += config.batch_size
    return n / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="builtin", help="builtin, folder:<path> or tfds:<name>:<split>")
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--double", type=float, default=0.0, help="fraction of double JPEG pairs (0: single JPEG)")
    parser.add_argument("--codecs", action="store_true", help="pairs/s of each codec alone, one pillow worker")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    results = per_codec(args) if args.codecs else per_path(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


def per_codec(args):
    from qgac_jax.codecs import CODECS

    print(f"source={args.source} patch={args.patch} batch={args.batch} double={args.double} one pillow worker")
    print("| codec | pairs/s |")
    print("|---|---|")
    results = {}
    for codec in CODECS:
        config = data.DataConfig(sources=(args.source,), patch_size=args.patch, batch_size=args.batch, q_min=10,
                                 q_max=95, p_random_table=0.2, p_double=args.double, pipeline="pillow",
                                 codecs=CODECS, codec_weights=tuple(float(c == codec) for c in CODECS),
                                 codec_q_min=5, codec_q_max=95)
        results[codec] = pairs_per_second(config, data.build_bank(config), 1, args.seconds)
        print(f"| {codec} | {results[codec]:,.0f} |", flush=True)
    return results


def per_path(args):
    results = {}
    print(
        f"source={args.source} patch={args.patch} batch={args.batch} double={args.double} "
        f"cores available={os.cpu_count()}"
    )
    print("| path | threads | pairs/s | pairs/s per thread |")
    print("|---|---|---|---|")
    paths = (
        ("IJG (tf.data graph)", "tf.data", 0.0, "ijg"),
        ("random tables (Pillow in tf.data)", "tf.data", 1.0, "random"),
        ("pillow pipeline, 20% random tables", "pillow", 0.2, "pillow"),
    )
    for path, pipeline, p_random, key in paths:
        config = data.DataConfig(
            sources=(args.source,),
            patch_size=args.patch,
            batch_size=args.batch,
            q_min=10,
            q_max=95,
            p_random_table=p_random,
            p_double=args.double,
            pipeline=pipeline,
        )
        bank = data.build_bank(config)
        for threads in (1, 2):
            rate = pairs_per_second(config, bank, threads, args.seconds)
            results[f"{key}_{threads}t"] = rate
            print(f"| {path} | {threads} | {rate:,.0f} | {rate / threads:,.0f} |", flush=True)
    return results


if __name__ == "__main__":
    main()
