"""Restore compressed photos (JPEG, WebP, AVIF, HEIC) with the shipped models or a trained checkpoint.

    python -m qgac_jax.restore INPUT... --output DIR [--checkpoint PATH | --onnx FILE] [--backend B]
                               [--precision auto|float32|int8] [--quality auto|file|Q]
                               [--show-quality] [--ensemble] [--overwrite] [--tile N] [--overlap N]
                               [--max-pixels N]

INPUT: files, directories (searched recursively) or globs. Each output is a
lossless PNG at DIR/<relative path>/<name>.png, written atomically (inputs
that would share a name keep their whole names: a.jpg.png, a.webp.png).

Reruns resume: an output that exists is skipped (not rewritten) unless
--overwrite. A file that cannot be restored gets one line on stderr,
`error: FILE: reason`, and the others go on. Exit status: 0 when no file
failed (restored or skipped), 1 when some failed, 2 when nothing could start
(bad arguments, an unusable --output, --checkpoint or --onnx).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from qgac_jax.restoring import arguments, atomic_files, engines, guide, inputs, jobs, outputs

PROGRESS_TILES = 8  # images cut into more tiles than this show a progress bar per tile (on a terminal)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m qgac_jax.restore", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="photos (JPEG, WebP, AVIF, HEIC; others with --quality Q), directories or globs")
    parser.add_argument("--output", required=True, help="folder for the restored PNGs (created if missing)")
    arguments.add_model(parser)
    arguments.add_guide(parser)
    parser.add_argument("--show-quality", action="store_true",
                        help="print, per file, what it records and what the network was told")
    parser.add_argument("--ensemble", action="store_true",
                        help="average the restorations of the 8 flips and transposes: 8 times slower, slightly "
                             "better (docs/restoring.md)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    arguments.add_tiles(parser)
    arguments.add_max_pixels(parser)
    args = parser.parse_args(argv)
    arguments.check(parser, args)
    return args


def run(argv=None) -> int:
    args = parse_args(argv)
    out_root = pathlib.Path(args.output)
    try:
        outputs.check_output_folder(out_root)  # before any model is loaded
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        models = engines.Models(args, engines.backend(args, bool(args.onnx)))
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.checkpoint or args.onnx:
        try:
            models(False)  # a bad --checkpoint or --onnx fails here, before any file
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    found, errors = inputs.collect_inputs(args.inputs, out_root)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    leftovers = atomic_files.remove_leftovers(out_root)
    if leftovers:
        print(f"removed {leftovers} temporary file(s) an interrupted run left in {out_root}", file=sys.stderr)
    return restore_all(args, models, found, out_root, failed=len(errors))


def restore_all(args, models, found, out_root: pathlib.Path, failed: int) -> int:
    """Restores each job and prints the summary; the exit status (130 when interrupted)."""
    from tqdm import tqdm

    tally, start, seen = jobs.Tally(failed=failed), time.perf_counter(), {}
    if args.show_quality:
        print(f"network: {models.describe()}", flush=True)
    files = tqdm(found, desc="restoring", unit="image", disable=None)  # a bar on a terminal
    job = None
    try:
        for job in files:
            dest, file_start = out_root / job.rel, time.perf_counter()
            try:
                if dest in seen:
                    raise ValueError(f"its output {dest} would also be written from {seen[dest]}")
                seen[dest] = job.src
                if dest.resolve() == job.src.resolve():
                    raise ValueError("the output would replace the input")
                if dest.is_dir():
                    raise ValueError(f"its output {dest} is a folder")
                if dest.exists() and not args.overwrite:
                    tally.skipped += 1
                    continue
                pixels = restore_one(args, models, job.src, dest)
                tally.restored += 1
                tally.megapixels += pixels.shape[0] * pixels.shape[1] / 1e6
                if files.disable:  # logs and pipes: one line per file instead of a bar
                    print(f"restored {job.src} -> {dest} ({pixels.shape[1]}x{pixels.shape[0]}, "
                          f"{time.perf_counter() - file_start:.1f} s)", flush=True)
            except guide.NoQuantization as err:
                if job.walked:  # met in a folder: listed in the summary; named on the command line: an error
                    tally.not_restored[err.format_name] += 1
                else:
                    tally.failed += 1
                    tqdm.write(f"error: {job.src}: {err}", file=sys.stderr)
            except Exception as err:  # noqa: BLE001 - whatever one file does (bombs, libjpeg, memory), the rest go on
                tally.failed += 1
                tqdm.write(f"error: {job.src}: {jobs.reason(err)}", file=sys.stderr)
    except KeyboardInterrupt:
        files.close()
        print(f"interrupted: {job.src if job else 'before the first file'} abandoned (nothing half-written)",
              file=sys.stderr)
        print(tally.line(time.perf_counter() - start))
        return 130
    print(tally.line(time.perf_counter() - start))
    return 0 if tally.failed == 0 else 1


def restore_one(args, models, src: pathlib.Path, dest: pathlib.Path):
    """Decodes, restores (a bar per tile on a terminal for large images) and writes one file."""
    from tqdm import tqdm

    bar = tqdm(total=0, desc=src.name, unit="tile", leave=False, disable=True)

    def show_bar(decoded, restorer):  # a bar per tile on a terminal, for images of many tiles
        nonlocal bar
        tiles = restorer.tile_count(*decoded.pixels.shape[:2]) * (8 if args.ensemble else 1)
        bar = tqdm(total=tiles, desc=src.name, unit="tile", leave=False, disable=None if tiles > PROGRESS_TILES
                   else True)

    try:
        result = jobs.restore_file(models, src, args, progress=lambda n: bar.update(n), on_decoded=show_bar)
    finally:
        bar.close()
    for note in result.notes:
        tqdm.write(f"warning: {src}: {note}", file=sys.stderr)
    if args.show_quality:
        tqdm.write(f"{src}: {result.guide.sentence}")
    outputs.write_png_atomically(result.pixels, dest, result.decoded.metadata)
    return result.pixels


def main():
    from qgac_jax.commands.logs import run_command

    run_command(run)  # Ctrl-C before the first file (loading, converting a model): nothing written


if __name__ == "__main__":
    main()
