"""Start-up of `restore`: process start to a restored one-tile photo, in each interpreter given.

    .venv/bin/python benchmarks/restore_startup.py [--python PATH ...] [--rounds 3]

For each interpreter (default: this one; pass the restore-only install's, e.g.
a fresh `python3 -m venv lite && lite/bin/pip install .`, beside the full one)
it times, best of `--rounds`, a child process that imports restore's command line
(`import qgac_jax.restore`), and one that restores a 64x64 JPEG (a single tile,
whose network time is a few milliseconds: the rest is start-up, loading the
shipped graphs and the estimator, and writing the PNG), with a fresh ONNX cache
each time, so a conversion would show. docs/performance.md has the figures.
"""

import argparse
import io
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image


def best_of(rounds: int, argv, cwd, env=None) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            sys.exit(f"{' '.join(map(str, argv))} failed:\n{done.stderr[-2000:]}")
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", action="append", help="an interpreter with qgac_jax installed (repeatable)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import os

    rows = []
    with tempfile.TemporaryDirectory(prefix="qgac-startup-") as tmp:
        tmp = pathlib.Path(tmp)
        y, x = np.mgrid[0:64, 0:64]
        buf = io.BytesIO()
        Image.fromarray(np.stack([x * 4, y * 4, (x * y) % 256], -1).astype(np.uint8)).save(buf, "JPEG", quality=20)
        (tmp / "tiny.jpg").write_bytes(buf.getvalue())
        for python in [os.path.abspath(p) for p in args.python or [sys.executable]]:
            has_jax = subprocess.run([python, "-c", "import jax"], capture_output=True).returncode == 0
            baseline = best_of(args.rounds, [python, "-c", "pass"], tmp)
            imported = best_of(args.rounds, [python, "-c", "import qgac_jax.restore"], tmp)
            runs = []
            for i in range(args.rounds):
                env = dict(os.environ, QGAC_ONNX_CACHE=str(tmp / f"cache{i}"))
                env.pop("QGAC_BACKEND", None)
                runs.append(best_of(1, [python, "-m", "qgac_jax.restore", "tiny.jpg", "--output", f"out{len(rows)}{i}"],
                                    tmp, env))
                if (tmp / f"cache{i}").exists():
                    sys.exit(f"{python}: restore converted a graph: the shipped graphs did not serve")
            rows.append((python, "yes" if has_jax else "no", baseline, imported, min(runs)))
    print("| interpreter | JAX installed | python -c pass, s | import qgac_jax.restore, s | restore a 64x64 JPEG, s |")
    print("|---|---|---|---|---|")
    for python, has_jax, baseline, imported, restored in rows:
        print(f"| {python} | {has_jax} | {baseline:.2f} | {imported:.2f} | {restored:.2f} |")


if __name__ == "__main__":
    main()
