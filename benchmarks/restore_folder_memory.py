"""A folder's peak memory against its largest photo's alone: does memory grow from file to file?

    .venv/bin/python benchmarks/restore_folder_memory.py [--megapixels 0.1,0.5,2,6,12] [--precision float32]

Makes a folder of photo-sized JPEGs (`restore_profile.photo_jpeg`, sizes in
shuffled order) with hostile files among them (a truncated JPEG, an empty
file, text named .jpg, an 8x8 JPEG, a grey one, a PNG), then runs
`python -m qgac_jax.restore FOLDER` in a process of its own with a fresh ONNX
cache, again with that cache, and the largest photo alone, each reporting its
own peak resident memory (VmHWM). The goal (issue #48): the folder within 10%
of its largest photo alone, on the first run as on later ones.
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from benchmarks.restore_precision import run  # noqa: E402
from benchmarks.restore_profile import photo_jpeg  # noqa: E402


def folder(root: pathlib.Path, sizes) -> pathlib.Path:
    """The photos (largest last named) and the hostile files; the largest photo's path."""
    root.mkdir()
    order = np.random.default_rng(0).permutation(len(sizes))
    for i in order:
        (root / f"photo_{i}_{sizes[i]:g}mp.jpg").write_bytes(photo_jpeg(sizes[i], 50))
    largest = root / f"photo_{int(np.argmax(sizes))}_{max(sizes):g}mp.jpg"
    data = photo_jpeg(0.3, 40)
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.jpg").write_text("not a photo")
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 30, 200)).save(buf, "JPEG", quality=30)
    (root / "tiny.jpg").write_bytes(buf.getvalue())
    Image.open(io.BytesIO(data)).convert("L").save(root / "grey.jpg", quality=30)
    Image.open(io.BytesIO(data)).save(root / "lossless.png")
    return largest


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megapixels", default="0.1,0.5,2,6,12")
    parser.add_argument("--precision", default="float32")
    args = parser.parse_args()
    sizes = [float(s) for s in args.megapixels.split(",")]
    flags = ["--precision", args.precision]
    with tempfile.TemporaryDirectory(prefix="qgac-folder-memory-") as tmp:
        tmp = pathlib.Path(tmp)
        largest = folder(tmp / "in", sizes)
        os.environ["QGAC_ONNX_CACHE"] = str(tmp / "cache")
        rows = [("the folder, fresh cache", run(tmp / "in", tmp / "a", flags, ok=(1,))),  # (3 hostile files fail)
                ("the folder again", run(tmp / "in", tmp / "b", flags, ok=(1,))),
                (f"its largest photo alone ({max(sizes):g} MP)", run(largest, tmp / "c", flags))]
    alone = rows[-1][1]["peak_bytes"]
    print(f"\n{len(sizes)} photos of {args.megapixels} MP and 6 hostile files, {rows[0][1]['network']}\n")
    print("| run | seconds | peak RSS, GiB | against the largest alone |")
    print("|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['seconds']:.1f} | {r['peak_bytes'] / 2**30:.2f} | {r['peak_bytes'] / alone:.2f}x |")


if __name__ == "__main__":
    main()
