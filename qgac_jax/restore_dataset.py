"""Restore an archive on a Ray cluster: every photo and clip under SRC into DST, as `restore` would restore it.

    python -m qgac_jax.restore_dataset SRC DST [--address ADDR] [--concurrency N] [--cpus-per-actor C]
                                       [--gpus-per-actor G] [--quality auto|file|Q] [--checkpoint PATH | --onnx F]
                                       [--backend B] [--precision float32|int8|auto] [--tile N] [--overlap N]
                                       [--max-pixels N] [--ensemble] [--overwrite]
                                       [--video-codec x264|x265|av1|ffv1] [--crf N]

SRC and DST are local paths or filesystem URIs pyarrow opens (s3://bucket/photos,
gs://bucket/photos); outputs keep SRC's folders below DST and restore's names,
readers, models and PNG bytes. Without --address a local Ray cluster is started
on this machine's cores; with it (`ray start --head` prints one, or KubeRay's
head service) the job joins that cluster. Outputs that exist are skipped, so a
rerun completes what a stopped one left; each input gets a row in
DST/_manifests/<time>.parquet (path, status, reason, seconds, what the network
was told, output). Needs the extra `cluster` (pip install -e '.[cluster]').
Exit status: 0 when the job ran (files that could not be restored are rows with
their reasons), 2 when it could not start (bad arguments, SRC without photos or clips,
an unwritable DST, no Ray).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time

from qgac_jax.commands import arguments, logs

CPUS_PER_ACTOR = 1  # measured: two one-core actors restore more photos a second than one two-core one


def _positive(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be above 0, got {text!r}")
        return value
    return parse


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=logs.prog("qgac_jax.restore_dataset"), description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", metavar="SRC", help="a folder (searched recursively), one photo, or a URI")
    parser.add_argument("dst", metavar="DST", help="the folder (or URI) for the PNGs and the manifests")
    parser.add_argument("--address", help="join this Ray cluster (default: start one on this machine)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="actors, each holding one model session (default: the cluster's CPUs / --cpus-per-actor)")
    parser.add_argument("--cpus-per-actor", type=_positive("--cpus-per-actor"), default=CPUS_PER_ACTOR,
                        help=f"CPUs each actor takes and ONNX Runtime's threads in it (default {CPUS_PER_ACTOR}: "
                             "docs/archives.md has the measurement)")
    parser.add_argument("--gpus-per-actor", type=float, default=0,
                        help="GPUs each actor takes (default 0); with a GPU the actor runs the network in JAX")
    arguments.add_model(parser)
    arguments.add_guide(parser)
    parser.add_argument("--ensemble", action="store_true", help="average the 8 flips and transposes (8x slower)")
    parser.add_argument("--overwrite", action="store_true", help="restore files whose outputs exist again")
    arguments.add_tiles(parser)
    arguments.add_max_pixels(parser)
    arguments.add_video(parser)
    args = parser.parse_args(argv)
    arguments.check(parser, args)
    if args.concurrency is not None and args.concurrency < 1:
        parser.error(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.gpus_per_actor < 0:
        parser.error(f"--gpus-per-actor must be 0 or more, got {args.gpus_per_actor}")
    if importlib.util.find_spec("ray") is None:
        parser.error("the archive job needs Ray: pip install -e '.[cluster]'")
    return args


def run(argv=None) -> int:
    args = parse_args(argv)
    from qgac_jax.apps import archive
    from qgac_jax.commands import jobs

    start = time.perf_counter()
    try:
        # before Ray starts: a bad DST costs nothing
        job = archive.plan(args.src, args.dst, args.overwrite, args.video_codec)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if job.leftovers:
        print(f"removed {job.leftovers} partial file(s) an interrupted run left in {args.dst}", file=sys.stderr)
    settings = jobs.settings(args)
    rows = []
    if job.todo:
        import logging

        import ray

        ray.init(address=args.address, num_cpus=None if args.address else os.cpu_count(), include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
        logging.getLogger("ray").setLevel(logging.WARNING)  # our line per file is the progress
        ray.data.DataContext.get_current().enable_progress_bars = False
        concurrency = args.concurrency or archive.default_concurrency(ray.cluster_resources().get("CPU"),
                                                                      args.cpus_per_actor)
        print(f"restoring {len(job.todo)} file(s) with {concurrency} actor(s) of {args.cpus_per_actor:g} CPU(s); "
              f"{len(job.skipped)} skipped (output exists)", file=sys.stderr, flush=True)

        finished = [0]

        def progress(row):
            finished[0] += 1
            line = f"{row['status']} {row['path']}" + (f": {row['reason']}" if row["status"] != "restored" else "")
            print(f"[{finished[0]}/{len(job.todo)}] {line} ({row['seconds']:.1f} s)", file=sys.stderr, flush=True)

        rows = archive.run(job, args.src, args.dst, settings, concurrency, args.cpus_per_actor, args.gpus_per_actor,
                           on_row=progress)
        ray.shutdown()
    where = archive.manifest(rows, job.skipped, args.dst)
    line, _ = archive.summary(rows, len(job.skipped), time.perf_counter() - start)
    print(f"{line}; manifest {where}" if job.todo else f"nothing to restore: {line}; manifest {where}")
    return 0


def main():
    from qgac_jax.commands.logs import run_command

    run_command(run)


if __name__ == "__main__":
    main()
