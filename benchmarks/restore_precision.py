"""restore --precision auto against float32 on a photo-sized JPEG: seconds, peak memory, and how far apart.

    python benchmarks/restore_precision.py [--megapixels 12] [--quality 50] [--rounds 2] [--json OUT]

Makes the JPEG of `restore_profile.photo_jpeg` (scikit-image's coffee enlarged
to the size asked, with sensor-like noise), caches the ONNX graphs both
commands run (first use converts and quantizes), then runs
`python -m qgac_jax.restore photo.jpg --output DIR` with `--precision auto`
(int8 on a CPU with VNNI or AMX) and with `--precision float32`, alternated, each in a process of its own
(start-up and model load included, as a user meets it), for --rounds rounds.
Peak RSS is the child's own (VmHWM). The table names the precision `auto` chose
(restore --show-quality's first line) and the PSNR between the two outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.restore_profile import photo_jpeg  # noqa: E402

# Runs restore in this process after a fork and prints its own peak resident memory (VmHWM, KiB) last.
CHILD = ("import runpy, sys; sys.argv = ['restore'] + sys.argv[1:]\n"
         "try:\n    runpy.run_module('qgac_jax.restore', run_name='__main__')\n"
         "except SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
         "print('VmHWM', [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
         "sys.exit(code)\n")


def run(photo: pathlib.Path, out: pathlib.Path, flags, ok=(0,)) -> dict:
    """restore of `photo` (a file or folder) into `out` in a process of its own; `ok`: the exit statuses expected
    (1: some files could not be restored)."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(photo), "--output", str(out), "--overwrite",
                           "--show-quality", *flags], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.exit(f"restore {' '.join(flags)} failed:\n{proc.stderr[-3000:]}")
    lines = proc.stdout.splitlines()
    network = next(line for line in lines if line.startswith("network: "))[len("network: "):]
    peak = int(next(line for line in lines if line.startswith("VmHWM")).split()[1]) * 1024
    return {"seconds": seconds, "peak_bytes": peak, "network": network}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--quality", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    commands = {"--precision auto": ["--precision", "auto"], "--precision float32": ["--precision", "float32"]}
    with tempfile.TemporaryDirectory(prefix="qgac-precision-") as tmp:
        tmp = pathlib.Path(tmp)
        photo = tmp / "photo.jpg"
        photo.write_bytes(photo_jpeg(args.megapixels, args.quality))
        small = tmp / "small.jpg"
        small.write_bytes(photo_jpeg(0.05, args.quality))
        for flags in commands.values():  # converts and quantizes the graphs once, outside the timing
            run(small, tmp / "warm", flags)
        rounds = []
        for r in range(args.rounds):
            rounds.append({name: run(photo, tmp / name.strip("-").replace(" ", "_"), flags)
                           for name, flags in commands.items()})
            print(f"round {r + 1}: " + ", ".join(f"{n} {v['seconds']:.1f} s" for n, v in rounds[-1].items()),
                  flush=True)
        a, b = (np.asarray(Image.open(tmp / d / "photo.png"), np.float64)
                for d in ("precision_auto", "precision_float32"))
        apart = 10 * np.log10(255**2 / max(np.mean((a - b) ** 2), 1e-12))
    last = rounds[-1]
    print(f"\n{args.megapixels:g} MP JPEG of quality {args.quality}, {os.cpu_count()} cores\n")
    print("| command | network | " + " | ".join(f"round {i + 1}, s" for i in range(len(rounds))) +
          " | speed-up (last round) | peak RSS, GiB |")
    print("|---|---|" + "---|" * len(rounds) + "---|---|")
    for name in commands:
        times = " | ".join(f"{r[name]['seconds']:.1f}" for r in rounds)
        print(f"| `restore` {name} | {last[name]['network']} | {times} | "
              f"{last['--precision float32']['seconds'] / last[name]['seconds']:.2f}x | "
              f"{last[name]['peak_bytes'] / 2**30:.2f} |")
    print(f"\nPSNR between the two outputs: {apart:.1f} dB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"megapixels": args.megapixels, "quality": args.quality, "rounds": rounds,
                       "psnr_between_db": apart}, f, indent=2)


if __name__ == "__main__":
    main()
