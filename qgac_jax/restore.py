"""Restore JPEG photos with the shipped models or a trained checkpoint.

    python -m qgac_jax.restore INPUT... --output DIR [--checkpoint PATH | --onnx FILE] [--backend B] [--quality auto|file|Q]
                               [--show-quality] [--ensemble] [--overwrite] [--tile N] [--overlap N]
                               [--max-pixels N]

INPUT: files, directories (searched recursively) or globs. Each output is a
lossless PNG at DIR/<relative path>/<name>.png, written atomically.

Reruns resume: an output that exists is skipped (not rewritten) unless
--overwrite. A file that cannot be restored gets one line on stderr,
`error: FILE: reason`, and the others go on. Exit status: 0 when no file
failed (restored or skipped), 1 when some failed, 2 when nothing could start
(bad arguments, an unusable --output, --checkpoint or --onnx).
"""

from __future__ import annotations

import argparse
import glob
import os
import pathlib
import sys
import tempfile
import time
from typing import List, Tuple

from qgac_jax import shipped
from qgac_jax.restorer import DEFAULT_MAX_PIXELS, DEFAULT_OVERLAP, DEFAULT_TILE, IMAGE_SUFFIXES
from qgac_jax.restorer import check_quality as _check_quality

BACKENDS = ("auto", "jax", "onnxruntime")  # what --backend and $QGAC_BACKEND accept
PROGRESS_TILES = 8  # images cut into more tiles than this show a progress bar per tile (on a terminal)


def collect_inputs(patterns: List[str]) -> Tuple[List[Tuple[pathlib.Path, pathlib.Path]], List[str]]:
    """[(file, output path relative to DIR)], [errors] from files, directories and globs."""
    found, errors = [], []
    for pattern in patterns:
        path = pathlib.Path(pattern)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
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


def check_output_folder(folder: pathlib.Path) -> None:
    """Creates `folder` if needed and proves it writable; a ValueError naming it otherwise."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--output {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"--output {folder} is not a writable folder ({err.strerror or err})") from None


def _reason(err: BaseException) -> str:
    if isinstance(err, MemoryError):
        return "out of memory (lower --max-pixels or --tile)"
    if isinstance(err, OSError) and err.strerror:
        return f"{err.strerror}: {err.filename}" if err.filename else err.strerror
    return str(err) or type(err).__name__


def _multiple_of_8(name: str, minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value % 8 or value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be a multiple of 8, at least {minimum}; got {value}")
        return value
    return parse


def _pixels(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-pixels must be a number such as 5e7, got {text!r}") from None
    if not value >= 1 or value != value:
        raise argparse.ArgumentTypeError(f"--max-pixels must be positive, got {text!r}")
    return int(value)


def _quality(text: str):
    try:
        return _check_quality(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m qgac_jax.restore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="JPEG files, directories or globs")
    parser.add_argument("--output", required=True, help="folder for the restored PNGs (created if missing)")
    parser.add_argument("--checkpoint", help="export folder or training workdir (default: the shipped models, the "
                                             "grey one for grey files, the colour one for colour files)")
    parser.add_argument("--onnx", metavar="FILE",
                        help="run this ONNX export (python -m qgac_jax.export) with ONNX Runtime instead of JAX; "
                             "needs pip install -e '.[onnx]'")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="what runs the network: 'auto' (default; $QGAC_BACKEND overrides) ONNX Runtime on a CPU "
                             "when the extra `onnx` is installed (faster there; each model is converted once, about "
                             "20 s, and cached), else JAX")
    parser.add_argument("--quality", type=_quality, default="auto",
                        help="what the network is told: 'auto' (default) the file's tables raised to the quality "
                             "the shipped estimator reads off the pixels (recompressed photos); 'file' the file's "
                             "tables alone; 1..100 the IJG tables of that quality (needed for PNGs; a lower value "
                             "asks for a stronger correction)")
    parser.add_argument("--show-quality", action="store_true",
                        help="print, per file, the file's quality and the quality that was assumed")
    parser.add_argument("--ensemble", action="store_true",
                        help="average the restorations of the 8 flips and transposes: 8 times slower, slightly "
                             "better (see the README)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    parser.add_argument("--tile", type=_multiple_of_8("--tile", 16), default=DEFAULT_TILE,
                        help=f"tile size in pixels, a multiple of 8 (default {DEFAULT_TILE})")
    parser.add_argument("--overlap", type=_multiple_of_8("--overlap", 0), default=DEFAULT_OVERLAP,
                        help=f"tile overlap in pixels, a multiple of 8 (default {DEFAULT_OVERLAP})")
    parser.add_argument("--max-pixels", type=_pixels, default=DEFAULT_MAX_PIXELS,
                        help=f"refuse images larger than this, read from the file's header before decoding "
                             f"(default {DEFAULT_MAX_PIXELS:.0e}: about what a 2-core laptop with 8 GB restores "
                             "comfortably; e.g. --max-pixels 2e8 for larger photos)")
    args = parser.parse_args(argv)
    if args.overlap >= args.tile // 2:
        parser.error(f"--overlap ({args.overlap}) must be below half of --tile ({args.tile})")
    if args.onnx and args.checkpoint:
        parser.error("--onnx and --checkpoint name two models; pass one")
    if args.backend is None:
        args.backend = "onnxruntime" if args.onnx else os.environ.get("QGAC_BACKEND", "auto")
        if args.backend not in BACKENDS:
            parser.error(f"QGAC_BACKEND={args.backend!r}: use auto, jax or onnxruntime")
    if args.onnx and args.backend == "jax":
        parser.error("--onnx runs ONNX Runtime; drop --backend jax")
    if not args.checkpoint and not args.onnx and shipped.default_checkpoint() is None:
        parser.error("this version ships no pretrained checkpoint: pass --checkpoint (an export folder or a "
                     "training workdir, e.g. workdirs/cpu after `python -m qgac_jax.train --config=configs/cpu.py`)")
    return args


def run(argv=None) -> int:
    args = parse_args(argv)
    out_root = pathlib.Path(args.output)
    try:
        check_output_folder(out_root)  # before any model is loaded
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from tqdm import tqdm

    from qgac_jax import onnx_export
    from qgac_jax.restorer import Restorer, decode

    backend = choose_backend(args.backend, bool(args.onnx))
    if backend == "onnxruntime" and not onnx_export.available():
        print("error: --backend onnxruntime needs the extra: pip install -e '.[onnx]'", file=sys.stderr)
        return 2
    loaded = {}

    def restorer_for(grey: bool) -> Restorer:
        """--checkpoint for every image; else the shipped grey model for grey files, colour for colour."""
        path = args.onnx or args.checkpoint or shipped.default_checkpoint(1 if grey else 3)
        if path in loaded:
            return loaded[path]
        kwargs = dict(tile=args.tile, overlap=args.overlap, max_pixels=args.max_pixels,
                      estimator="shipped" if args.quality == "auto" else None)
        if args.onnx:
            loaded[path] = Restorer.from_onnx(path, **kwargs)
        elif backend == "onnxruntime":
            try:
                onnx_path = onnx_export.cached(path, log=lambda m: print(m, file=sys.stderr, flush=True))
                loaded[path] = Restorer.from_onnx(onnx_path, **kwargs)
            except Exception as err:  # noqa: BLE001 - the JAX path still works; an explicit request fails below
                if args.backend != "auto":
                    raise ValueError(f"cannot run {path} with ONNX Runtime: {err}") from None
                print(f"warning: ONNX Runtime unavailable for {path} ({err}); using JAX", file=sys.stderr)
                loaded[path] = Restorer.from_checkpoint(path, **kwargs)
        else:
            loaded[path] = Restorer.from_checkpoint(path, **kwargs)
        return loaded[path]

    if args.checkpoint or args.onnx:
        try:
            restorer_for(False)  # a bad --checkpoint or --onnx fails here, before any file
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2

    jobs, errors = collect_inputs(args.inputs)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    failed, done, skipped, megapixels, start = len(errors), 0, 0, 0.0, time.perf_counter()
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
                skipped += 1
                continue
            decoded = decode(src, args.quality, args.max_pixels)
            restorer = restorer_for(decoded.is_grey)
            tiles = restorer.tile_count(*decoded.pixels.shape[:2]) * (8 if args.ensemble else 1)
            bar = tqdm(total=tiles, desc=src.name, unit="tile", leave=False,
                       disable=None if tiles > PROGRESS_TILES else True)
            with bar:
                pixels, guide, estimate = restorer.restore_decoded(decoded, args.quality, progress=bar.update,
                                                                   details=True, ensemble=args.ensemble)
            if args.show_quality:
                tqdm.write(f"{src}: {describe(decoded, guide, estimate, args.quality)}")
            write_png_atomically(pixels, dest)
            done += 1
            megapixels += pixels.shape[0] * pixels.shape[1] / 1e6
        except Exception as err:  # noqa: BLE001 - whatever one file does (bombs, libjpeg, memory), the rest go on
            failed += 1
            tqdm.write(f"error: {src}: {_reason(err)}", file=sys.stderr)
    seconds = time.perf_counter() - start
    print(f"restored {done}, skipped {skipped} (output exists), failed {failed}; "
          f"{megapixels:.2f} megapixels in {seconds:.1f} s")
    return 0 if failed == 0 else 1


def choose_backend(requested: str, onnx_file: bool) -> str:
    """'jax' or 'onnxruntime' for --backend: auto picks ONNX Runtime on a CPU when it is installed."""
    if onnx_file or requested == "onnxruntime":
        return "onnxruntime"
    if requested == "jax":
        return "jax"
    import jax

    from qgac_jax import onnx_export

    return "onnxruntime" if jax.default_backend() == "cpu" and onnx_export.available() else "jax"


def describe(decoded, guide, estimate, quality) -> str:
    """One line: what the file says and what the network was told."""
    from qgac_jax import quantization as qz

    if not decoded.from_file:
        return f"IJG tables of quality {quality} (--quality)"
    file_q = qz.equivalent_quality(decoded.quantization.luma)
    if estimate is None:
        return f"the file's tables (about quality {file_q})"
    assumed = qz.equivalent_quality(guide.luma)
    note = "recompressed: restored as" if assumed < file_q else "assumed"
    return f"file tables about quality {file_q}, estimated effective quality {estimate:.0f}; {note} quality {assumed}"


def main():
    sys.exit(run())


if __name__ == "__main__":
    main()
