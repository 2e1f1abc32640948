"""Restore compressed photos (JPEG, WebP, AVIF, HEIC) and clips (H.264, HEVC, VP9, AV1) with the shipped models
or a trained checkpoint.

    python -m qgac_jax.restore INPUT... --output DIR [--model psnr|perceptual|video | --realism R]
                               [--checkpoint PATH | --onnx FILE] [--backend B]
                               [--precision float32|int8|auto] [--quality auto|file|Q]
                               [--show-quality] [--ensemble] [--consistent] [--overwrite] [--tile N] [--overlap N]
                               [--max-pixels N] [--jobs N] [--video-codec x264|x265|av1|ffv1] [--crf N]

INPUT: files, directories (searched recursively) or globs. Each photo's output is a
lossless PNG at DIR/<relative path>/<name>.png, each clip's a clip of the same name
(`restoring.video`), written atomically (inputs that would share a name keep their
whole names: a.jpg.png, a.webp.png).

Reruns resume: an output that exists is skipped (not rewritten) unless
--overwrite. A file that cannot be restored gets one line on stderr,
`error: FILE: reason`, and the others go on. Exit status: 0 when no file
failed (restored or skipped), 1 when some failed, 2 when nothing could start
(bad arguments, an unusable --output, --checkpoint or --onnx).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import pathlib
import queue
import sys
import threading
import time

from qgac_jax.commands import arguments, clip_jobs, engines, jobs, logs
from qgac_jax.files import atomic_files, clips, inputs, outputs
from qgac_jax.restoring import guide, video
from qgac_jax.graphs import sessions

PROGRESS_TILES = 8  # images cut into more tiles than this show a progress bar per tile (on a terminal)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=logs.prog("qgac_jax.restore"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="photos (JPEG, WebP, AVIF, HEIC; others with --quality Q), clips (H.264, HEVC, VP9, "
                             "AV1 in MP4, MKV, MOV, WebM), directories or globs")
    parser.add_argument("--output", required=True,
                        help="folder for the restored PNGs and clips (created if missing)")
    arguments.add_model(parser)
    arguments.add_guide(parser)
    parser.add_argument("--show-quality", action="store_true",
                        help="print, per file, what it records and what the network was told")
    parser.add_argument("--ensemble", action="store_true",
                        help="average the restorations of the 8 flips and transposes: 8 times slower, slightly "
                             "better (docs/restoring.md)")
    parser.add_argument("--consistent", action="store_true",
                        help="JPEGs: move every DCT coefficient of the result back into the bin the file records, "
                             "so the output cannot contradict the file (saved with its tables, it gives its "
                             "coefficients); needs the extra `consistent` (docs/restoring.md)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    arguments.add_tiles(parser)
    arguments.add_max_pixels(parser)
    arguments.add_video(parser)
    parser.add_argument("--jobs", type=arguments.count("--jobs"), default=None,
                        help="photos restored at once in ONNX Runtime, each on cores / jobs cores (default: one "
                             "per 4 cores, at least 1, as one photo's tiles keep up to 4 cores busy; "
                             "docs/performance.md); each holds a photo in memory")
    args = parser.parse_args(argv)
    arguments.check(parser, args)
    if args.consistent:
        from qgac_jax.restoring import consistency

        if not consistency.available():
            parser.error("--consistent needs jpeglib (libjpeg's coefficients): pip install '.[consistent]'")
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
        engine = engines.decide(jobs.settings(args))
        args.jobs = (args.jobs or sessions.default_jobs()) if engine.backend == "onnxruntime" else 1
        threads = max(1, sessions.cores() // args.jobs) if args.jobs > 1 else None
        models, *more = [engines.Models(jobs.settings(args, threads=threads), engine) for _ in range(args.jobs)]
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.checkpoint or args.onnx:
        try:
            models(False)  # a bad --checkpoint or --onnx fails here, before any file
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    found, errors = inputs.collect_inputs(args.inputs, out_root, args.video_codec)
    for e in errors:
        print(f"error: {e}", file=sys.stderr)
    leftovers = atomic_files.remove_leftovers(out_root)
    if leftovers:
        print(f"removed {leftovers} temporary file(s) an interrupted run left in {out_root}", file=sys.stderr)
    return restore_all(args, models, found, out_root, failed=len(errors), more_models=more)


def restore_all(args, models, found, out_root: pathlib.Path, failed: int, more_models=()) -> int:
    """Restores each job and prints the summary; the exit status (130 when interrupted). With `more_models`
    (each a Models of its own cores), that many more photos are restored at once (`--jobs`)."""
    from tqdm import tqdm

    tally, start, seen = jobs.Tally(failed=failed), time.perf_counter(), {}
    if args.show_quality:
        print(f"network: {models.describe()}", flush=True)
    files = tqdm(found, desc="restoring", unit="image", disable=None)  # a bar on a terminal
    pool = _Pool([models, *more_models])
    job = None
    try:
        for job, outcome in pool.map(lambda job: _restore_job(args, job, out_root, seen), files):
            _count(tally, job, outcome, args.show_quality)
    except KeyboardInterrupt:
        files.close()
        for done_job, outcome in pool.finished():  # photos done before Ctrl-C, waiting for their turn to be told
            _count(tally, done_job, outcome, args.show_quality)
        abandoned = ", ".join(map(str, pool.running())) or (job.src if job else "before the first file")
        print(f"interrupted: {abandoned} abandoned (nothing half-written)", file=sys.stderr)
        print(tally.line(time.perf_counter() - start))
        return 130
    print(tally.line(time.perf_counter() - start))
    return 0 if tally.failed == 0 else 1


def _restore_job(args, job, out_root: pathlib.Path, seen):
    """A function of the Models it runs on: what became of one job (its checks made here, in input order)."""
    def known(outcome):
        return lambda models, keep=None: outcome

    dest = out_root / job.rel
    if dest in seen:
        return known(ValueError(f"its output {dest} would also be written from {seen[dest]}"))
    seen[dest] = job.src
    if dest.resolve() == job.src.resolve():
        return known(ValueError("the output would replace the input"))
    if dest.is_dir():
        return known(ValueError(f"its output {dest} is a folder"))
    if dest.exists() and not args.overwrite:
        return known("skipped")

    def run(models, keep=lambda: True):
        file_start = time.perf_counter()
        try:
            if job.src.suffix.lower() in clips.VIDEO_SUFFIXES:
                restored = clip_jobs.restore_clip(jobs.settings(args), models, job.src, dest, args.jobs)
            else:
                restored = restore_one(args, models, job.src, dest, keep)
        except Exception as err:  # noqa: BLE001 - whatever one file does (bombs, libjpeg, memory), the rest go on
            return err
        return restored, dest, time.perf_counter() - file_start
    return run


def _count(tally, job, outcome, show_quality: bool = False) -> None:
    """One job's outcome into the tally, with its line (above the bars on a terminal: tqdm.write)."""
    from tqdm import tqdm

    if outcome == "skipped":
        tally.skipped += 1
    elif isinstance(outcome, guide.NoQuantization) and job.walked:  # met in a folder: named, and counted
        tally.not_restored[outcome.format_name] += 1
        tqdm.write(f"not restored: {job.src}: {outcome}")
    elif isinstance(outcome, BaseException):  # named on the command line, or any other problem: an error
        tally.failed += 1
        tqdm.write(f"error: {job.src}: {jobs.reason(outcome)}", file=sys.stderr)
    elif isinstance(outcome[0], video.ClipReport):
        report, dest, _ = outcome
        tally.restored += 1
        tally.megapixels += report.frames * report.info.width * report.info.height / 1e6
        for line in clip_jobs.lines(report, job.src, dest, show_quality):
            tqdm.write(line, file=sys.stderr if line.startswith("warning") else sys.stdout)
    else:
        pixels, dest, seconds = outcome
        tally.restored += 1
        tally.megapixels += pixels.shape[0] * pixels.shape[1] / 1e6
        tqdm.write(f"restored {job.src} -> {dest} ({pixels.shape[1]}x{pixels.shape[0]}, {seconds:.1f} s)")


class _Pool:
    """Jobs run on one Models each: in this thread when there is one, else in threads (one per Models), at most
    one job waiting per thread, outcomes in input order. Interrupted, the photos under way are not written (one
    whose PNG was being written as Ctrl-C came is whole, and not in the summary's count)."""

    def __init__(self, models):
        self.models, self._running = list(models), {}
        self._stopped = threading.Event()
        self._pending: collections.deque = collections.deque()  # (job, future) submitted, not yet handed out

    def map(self, task, items):
        if len(self.models) == 1:
            for item in items:
                self._running = {0: item.src}
                yield item, task(item)(self.models[0])
                self._running = {}
            return
        free = queue.SimpleQueue()
        for m in self.models:
            free.put(m)

        def work(item, run):
            models = free.get()
            self._running[id(item)] = item.src
            try:
                return run(models, keep=lambda: not self._stopped.is_set())
            finally:
                self._running.pop(id(item), None)
                free.put(models)

        pool = concurrent.futures.ThreadPoolExecutor(len(self.models))
        pending = self._pending = collections.deque()
        try:
            for item in items:
                pending.append((item, pool.submit(work, item, task(item))))
                while len(pending) > 2 * len(self.models) or pending and pending[0][1].done():
                    first, future = pending.popleft()
                    yield first, future.result()
            while pending:
                first, future = pending.popleft()
                yield first, future.result()
        except BaseException:
            self._stopped.set()  # what is under way finishes its arithmetic and writes nothing
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def finished(self):
        """(job, outcome) of the jobs that finished but were not yet handed out (in input order), once stopped: so
        an interrupted run counts what it wrote."""
        self._stopped.set()
        done = [(item, future.result()) for item, future in self._pending if future.done()
                and not future.cancelled() and future.exception() is None]
        self._pending = collections.deque()
        return done

    def running(self):
        return list(self._running.values())


def restore_one(args, models, src: pathlib.Path, dest: pathlib.Path, keep=lambda: True):
    """Decodes, restores (a bar per tile on a terminal for large images, one photo at a time) and writes one file
    unless `keep()` says the run was interrupted meanwhile."""
    from tqdm import tqdm

    bar = tqdm(total=0, desc=src.name, unit="tile", leave=False, disable=True)

    def show_bar(decoded, restorer):  # a bar per tile on a terminal, for images of many tiles; a line in logs
        nonlocal bar
        tiles = restorer.tile_count(*decoded.pixels.shape[:2]) * (8 if args.ensemble else 1)
        many = tiles > PROGRESS_TILES and args.jobs == 1
        bar = tqdm(total=tiles, desc=src.name, unit="tile", leave=False, disable=None if many else True)
        if many and bar.disable:  # piped to a log: no bar, so a line every few seconds instead
            bar = logs.ProgressLines(src, tiles, "tiles")

    try:
        result = jobs.restore_file(models, src, args, progress=lambda n: bar.update(n), on_decoded=show_bar)
    finally:
        bar.close()
    for note in result.notes:
        tqdm.write(f"warning: {src}: {note}", file=sys.stderr)
    if args.show_quality:
        tqdm.write(f"{src}: {result.guide.sentence}")
    if keep():
        outputs.write_png_atomically(result.pixels, dest, result.decoded.metadata)
    return result.pixels


def main():
    from qgac_jax.commands.logs import run_command

    run_command(run)  # Ctrl-C before the first file (loading, converting a model): nothing written


if __name__ == "__main__":
    main()
