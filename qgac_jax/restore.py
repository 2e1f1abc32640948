"""Restore JPEG photos with a trained checkpoint.

    python -m qgac_jax.restore INPUT... --output DIR [--checkpoint PATH] [--quality Q]
                               [--tile N] [--overwrite] [--max-pixels N]

INPUT: files, directories (searched recursively) or globs. Each output is a
lossless PNG at DIR/<relative path>/<name>.png, written atomically; an
existing output is kept unless --overwrite. A file that fails is reported on
one line and the others go on; the exit code is 0 only if all succeeded.
"""

from __future__ import annotations

import argparse
import glob
import os
import pathlib
import sys
import tempfile
import time
from typing import List, Optional, Tuple

SUFFIXES = (".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp")


def default_checkpoint(channels: int = 3) -> Optional[pathlib.Path]:
    """The pretrained export shipped inside the package for `channels` (else the other one), or None.

    A colour model restores grey images too (see Restorer's policy), and the reverse.
    """
    root = pathlib.Path(__file__).parent / "pretrained"
    preferred = ("colour", "grey") if channels == 3 else ("grey", "colour")
    for name in preferred:
        if (root / name / "model").is_dir():
            return root / name
    return None


def collect_inputs(patterns: List[str]) -> Tuple[List[Tuple[pathlib.Path, pathlib.Path]], List[str]]:
    """[(file, output path relative to DIR)], [errors] from files, directories and globs."""
    found, errors = [], []
    for pattern in patterns:
        path = pathlib.Path(pattern)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not files:
                errors.append(f"{pattern}: no images in this directory")
            found += [(f, f.relative_to(path).with_suffix(".png")) for f in files]
        elif path.is_file():
            found.append((path, pathlib.Path(path.name).with_suffix(".png")))
        else:
            matches = sorted(pathlib.Path(m) for m in glob.glob(pattern, recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                errors.append(f"{pattern}: no such file, directory or matching glob")
            found += [(f, pathlib.Path(f.name).with_suffix(".png")) for f in files]
    return found, errors


def write_png_atomically(pixels, path: pathlib.Path) -> None:
    """PNG via a temporary file in the same folder and a rename: no partial outputs, ever."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            Image.fromarray(pixels).save(f, format="PNG")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _reason(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err) or type(err).__name__


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qgac_jax.restore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="JPEG files, directories or globs")
    parser.add_argument("--output", required=True, help="folder for the restored PNGs")
    parser.add_argument("--checkpoint", help="export folder or training workdir (default: the shipped model)")
    parser.add_argument("--quality", type=int, help="use the IJG tables of this quality (1..100) instead of the file's")
    parser.add_argument("--tile", type=int, default=512, help="tile size in pixels, a multiple of 8 (default 512)")
    parser.add_argument("--overlap", type=int, default=32, help="tile overlap, a multiple of 8 (default 32)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--max-pixels", type=int, default=100_000_000, help="refuse larger images (default 1e8)")
    args = parser.parse_args(argv)
    if args.quality is not None and not 1 <= args.quality <= 100:
        parser.error(f"--quality must be in 1..100, got {args.quality}")

    if not args.checkpoint and default_checkpoint() is None:
        parser.error("this version ships no pretrained checkpoint: pass --checkpoint (an export folder or a "
                     "training workdir, e.g. workdirs/cpu after `python -m qgac_jax.train --config=configs/cpu.py`)")
    from tqdm import tqdm

    from qgac_jax.restorer import Restorer, decode

    loaded = {}

    def restorer_for(grey: bool) -> Restorer:
        """--checkpoint for every image; else the shipped grey model for grey JPEGs, colour for colour."""
        path = args.checkpoint or default_checkpoint(1 if grey else 3)
        if path not in loaded:
            loaded[path] = Restorer.from_checkpoint(path, tile=args.tile, overlap=args.overlap,
                                                    max_pixels=args.max_pixels)
        return loaded[path]

    if args.checkpoint:
        try:
            restorer_for(False)  # a bad --checkpoint fails here, before any file
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    jobs, errors = collect_inputs(args.inputs)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    out_root = pathlib.Path(args.output)
    failed, done, megapixels, start = len(errors), 0, 0.0, time.perf_counter()
    seen = {}
    for src, rel in tqdm(jobs, desc="restoring", unit="image", disable=None):
        dest = out_root / rel
        try:
            if dest in seen:
                raise ValueError(f"its output {dest} would also be written from {seen[dest]}")
            seen[dest] = src
            if dest.resolve() == src.resolve():
                raise ValueError("the output would replace the input")
            if dest.exists() and not args.overwrite:
                raise ValueError(f"{dest} exists; pass --overwrite to replace it")
            decoded = decode(src, args.quality, args.max_pixels)
            pixels = restorer_for(decoded.is_grey).restore_decoded(decoded)
            write_png_atomically(pixels, dest)
            done += 1
            megapixels += pixels.shape[0] * pixels.shape[1] / 1e6
        except (ValueError, OSError) as err:
            failed += 1
            tqdm.write(f"error: {src}: {_reason(err)}", file=sys.stderr)
    seconds = time.perf_counter() - start
    print(f"restored {done} file(s), {megapixels:.2f} megapixels in {seconds:.1f} s; {failed} failed")
    return 0 if failed == 0 and done > 0 else 1


def main():
    sys.exit(run())


if __name__ == "__main__":
    main()
