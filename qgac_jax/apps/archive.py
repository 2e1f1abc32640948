"""Restoring an archive on a Ray cluster: every photo and clip under SRC into DST as `restore` writes it, spread
over an actor pool (Ray Data), on local paths or any filesystem URI pyarrow reads (s3://, gs://).

The unit of work is a file, not a tensor, since photos differ in size: Ray
Data hands each actor one source path at a time; the actor reads the bytes
(so the codec's own quantization is read there, as `restore` reads it),
restores them through `jobs.restore_file` with the model session it holds,
and writes the PNG whole or not at all (a temporary name, then a move). A
clip is a unit too: restored frame by frame as `restore` restores it
(`restoring.video`), into a local temporary file (from a local copy where
SRC is remote), then copied to DST the same way.
Each file gives one manifest row, restored or not: a file that cannot be
restored is a row with its one-line reason, never a failed job. A worker
killed mid-file is restarted by Ray and its file retried; outputs that exist
are skipped when the job is planned, so a rerun completes what is missing.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pathlib
import time
import uuid
from pathlib import PurePosixPath
from typing import Dict, List, Optional, Tuple

from qgac_jax.restoring import guide
from qgac_jax.files import clips, inputs, outputs
from qgac_jax.commands import jobs
from qgac_jax.files.clip_output import DEFAULT_CODEC

PARTIAL = ".qgac-partial-"  # in the name of an output being written; a later plan removes what a kill left
MANIFESTS = "_manifests"  # DST/_manifests/<UTC time>.parquet: one per run, never overwritten
COLUMNS = ("path", "status", "reason", "seconds", "told", "output", "megapixels", "format")


def filesystem(uri: str):
    """(pyarrow filesystem, path in it) of a local path (relative ones kept relative to here) or a URI."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(uri if "://" in uri else os.path.abspath(uri))
    except (ValueError, OSError) as err:
        raise ValueError(f"{uri}: not a path or filesystem URI pyarrow can open ({err})") from None


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a run will do: each input's source and output path, those whose outputs exist, leftovers removed."""

    todo: List[Dict[str, str]]  # {"path": source, "output": destination}
    skipped: List[Dict[str, str]]
    leftovers: int


def plan(src: str, dst: str, overwrite: bool = False, video_codec: str = DEFAULT_CODEC) -> Plan:
    """Lists SRC (a folder, recursively, or one file) and DST; a ValueError naming the problem when SRC has no
    photos or clips, or DST cannot be written (checked before any work). Outputs are named as `restore` names
    them (`inputs.output_path`: a clip keeps its container where it holds `video_codec`)."""
    from pyarrow import fs as pafs

    src_fs, src_root = filesystem(src)
    dst_fs, dst_root = filesystem(dst)
    check_destination(dst_fs, dst_root, dst)
    kind = src_fs.get_file_info(src_root).type
    if kind == pafs.FileType.NotFound:
        raise ValueError(f"{src}: no such file or folder")
    dst_root = dst_root.rstrip("/")
    if kind == pafs.FileType.File:
        found = [src_root]
        base = str(PurePosixPath(src_root).parent)
    else:
        base = src_root.rstrip("/")
        same_fs = type(src_fs) is type(dst_fs)
        # as restore walks: never into DST below SRC, and where they are one folder its PNGs are outputs
        found = sorted(i.path for i in src_fs.get_file_info(pafs.FileSelector(base, recursive=True))
                       if i.type == pafs.FileType.File and PurePosixPath(i.path).suffix.lower() in inputs.SUFFIXES
                       and not (same_fs and _under(i.path, dst_root)
                                and (dst_root != base or PurePosixPath(i.path).suffix.lower() == ".png")))
    if not found:
        raise ValueError(f"{src}: no photos or clips there")
    rels = inputs.distinct([inputs.output_path(PurePosixPath(p).relative_to(base), video_codec) for p in found],
                           [PurePosixPath(p).name for p in found])
    existing = {i.path for i in dst_fs.get_file_info(pafs.FileSelector(dst_root, recursive=True))
                if i.type == pafs.FileType.File}
    leftovers = [p for p in existing if PARTIAL in PurePosixPath(p).name]
    for p in leftovers:
        dst_fs.delete_file(p)
    todo, skipped = [], []
    for p, rel in zip(found, rels):
        out = f"{dst_root}/{rel}"
        if out == p:
            raise ValueError(f"{_uri(dst, out)} would be restored over itself (a clip in a container that holds "
                             f"{video_codec}): choose a DST other than SRC")
        row = {"path": _uri(src, p), "output": _uri(dst, out)}
        (skipped if out in existing and not overwrite else todo).append(row)
    return Plan(todo, skipped, len(leftovers))


def _under(path: str, folder: str) -> bool:
    return (path.rstrip("/") + "/").startswith(folder.rstrip("/") + "/")


def _uri(given: str, path: str) -> str:
    """`path` (in the filesystem of `given`) written as the user wrote `given`: a URI stays a URI."""
    return f"{given.split('://', 1)[0]}://{path}" if "://" in given else path


def _in_filesystem(uri: str) -> str:
    """The path within its filesystem of a row's path or output (`_uri` undone)."""
    return uri.split("://", 1)[1] if "://" in uri else uri


def check_destination(dst_fs, dst_root: str, shown: str) -> None:
    """Creates DST and proves it writable with a file written and deleted; a ValueError naming it otherwise."""
    from pyarrow import fs as pafs

    if dst_fs.get_file_info(dst_root).type == pafs.FileType.File:
        raise ValueError(f"{shown} exists and is not a folder")
    probe = f"{dst_root.rstrip('/')}/{PARTIAL}probe-{uuid.uuid4().hex}"
    try:
        dst_fs.create_dir(dst_root, recursive=True)
        with dst_fs.open_output_stream(probe) as f:
            f.write(b"")
        dst_fs.delete_file(probe)
    except OSError as err:
        raise ValueError(f"{shown} is not a writable folder ({err})") from None


class RestoreActor:
    """Holds one model session per colour (`engines.Models`) and restores the files it is handed, one a call."""

    def __init__(self, settings: jobs.Settings, src: str, dst: str, gpu: bool = False):
        from qgac_jax.commands.logs import quiet_third_party
        from qgac_jax.commands import engines

        quiet_third_party()
        self.settings = settings
        # one filesystem each for the actor's life (an S3 or GCS one resolves its region and credentials once)
        (self.src_fs, _), (self.dst_fs, _) = filesystem(src), filesystem(dst)
        if gpu:  # ONNX Runtime on CPU nodes, JAX on a GPU
            settings = dataclasses.replace(settings, backend="jax")
        self.models = engines.Models(settings)

    def __call__(self, batch: Dict[str, list]) -> Dict[str, list]:
        rows = [self.restore_one(path, out) for path, out in zip(batch["path"], batch["output"])]
        return {name: [row[name] for row in rows] for name in COLUMNS}

    def restore_one(self, path: str, output: str) -> Dict:
        start, row = time.perf_counter(), {"path": path, "output": output, "reason": "", "told": "",
                                           "megapixels": 0.0, "format": ""}
        try:
            clip = PurePosixPath(path).suffix.lower() in clips.VIDEO_SUFFIXES
            row.update(self.restore_clip(path, output) if clip else self.restore_photo(path, output))
        except guide.NoQuantization as err:
            row.update(status="not restored", reason=str(err), format=err.format_name)
        except Exception as err:  # noqa: BLE001 - whatever one file does, it is one row and the job goes on
            row.update(status="failed", reason=jobs.reason(err))
        row["seconds"] = time.perf_counter() - start
        return row

    def restore_photo(self, path: str, output: str) -> Dict:
        """A photo read whole from SRC, restored and its PNG written to `output` whole; the row's fields."""
        with self.src_fs.open_input_file(_in_filesystem(path)) as f:
            data = f.read()
        result = jobs.restore_file(self.models, data, self.settings)
        write_whole(self.dst_fs, _in_filesystem(output), outputs.png_bytes(result.pixels, result.decoded.metadata))
        h, w = result.pixels.shape[:2]
        return {"status": "restored", "told": result.guide.sentence, "megapixels": h * w / 1e6,
                "reason": "; ".join(result.notes), "format": result.decoded.format}

    def restore_clip(self, path: str, output: str) -> Dict:
        """A clip restored into a local temporary file (read from a local copy where SRC is remote), then copied
        to `output` whole; the row's fields."""
        import tempfile

        from pyarrow import fs as pafs

        from qgac_jax.restoring import video

        with tempfile.TemporaryDirectory(prefix="qgac-clip-") as tmp:
            local = _in_filesystem(path)
            if not isinstance(self.src_fs, pafs.LocalFileSystem):
                local = os.path.join(tmp, "source" + PurePosixPath(path).suffix)
                pafs.copy_files(_in_filesystem(path), local, source_filesystem=self.src_fs,
                                destination_filesystem=pafs.LocalFileSystem())
            info = clips.probe(local)
            restored = os.path.join(tmp, "restored" + PurePosixPath(output).suffix)
            restorer = self.models(info.pix_fmt == "gray", clip=True)
            s = self.settings
            report = video.restore_clip(restorer, local, restored, s.quality, s.video_codec, s.crf, info=info)
            write_whole(self.dst_fs, _in_filesystem(output), pathlib.Path(restored))
        return {"status": "restored", "format": clips.NAMES[info.codec], "reason": report.lost_line(),
                "told": report.told(), "megapixels": report.frames * info.width * info.height / 1e6}


def write_whole(dst_fs, path: str, data) -> None:
    """Writes `data` (bytes, or a local file's path: copied in chunks) to `path` in `dst_fs` under a temporary
    name, then moves it there: whole or absent."""
    parent = str(PurePosixPath(path).parent)
    dst_fs.create_dir(parent, recursive=True)
    partial = f"{parent}/{PARTIAL}{uuid.uuid4().hex}-{PurePosixPath(path).name}"
    with dst_fs.open_output_stream(partial) as f:
        if isinstance(data, pathlib.Path):
            with open(data, "rb") as local:
                while chunk := local.read(1 << 22):
                    f.write(chunk)
        else:
            f.write(data)
    dst_fs.move(partial, path)


def run(job: Plan, src: str, dst: str, settings: jobs.Settings, concurrency: int, cpus_per_actor: float,
        gpus_per_actor: float = 0, on_row=None) -> List[Dict]:
    """Restores `job.todo` (planned from `src` and `dst`) on the Ray cluster `ray.init` joined; the rows of every
    file, as they finish (`on_row(row)` for a progress line)."""
    import ray.data

    settings = dataclasses.replace(settings, threads=max(1, int(cpus_per_actor)))
    ds = ray.data.from_items(job.todo, override_num_blocks=max(1, len(job.todo)))
    # Ray Data restarts a dead actor and retries its file by default (max_restarts and max_task_retries -1 for
    # actor pools; the test kills one to hold it to that)
    done = ds.map_batches(RestoreActor, fn_constructor_kwargs={"settings": settings, "src": src, "dst": dst,
                                                               "gpu": gpus_per_actor > 0},
                          batch_size=1, concurrency=concurrency, num_cpus=cpus_per_actor, num_gpus=gpus_per_actor)
    rows = []
    for row in done.iter_rows():
        rows.append(dict(row))
        if on_row is not None:
            on_row(rows[-1])
    return rows


def manifest(rows: List[Dict], skipped: List[Dict], dst: str) -> str:
    """Writes DST/_manifests/<UTC time>.parquet, one row per input (the skipped ones too); its URI."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    every = rows + [{"path": r["path"], "status": "skipped", "reason": "its output exists", "seconds": 0.0,
                     "told": "", "output": r["output"], "megapixels": 0.0, "format": ""} for r in skipped]
    table = pa.table({name: [row[name] for row in every] for name in COLUMNS})
    dst_fs, dst_root = filesystem(dst)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{uuid.uuid4().hex[:6]}"
    path = f"{dst_root.rstrip('/')}/{MANIFESTS}/{stamp}.parquet"
    dst_fs.create_dir(str(PurePosixPath(path).parent), recursive=True)
    pq.write_table(table, path, filesystem=dst_fs)
    return _uri(dst, path)


def summary(rows: List[Dict], skipped: int, seconds: float) -> Tuple[str, Dict[str, int]]:
    """restore's last line (`jobs.Tally`) for an archive run, and the count of each status."""
    tally = jobs.Tally(skipped=skipped)
    for row in rows:
        if row["status"] == "restored":
            tally.restored += 1
            tally.megapixels += row["megapixels"]
        elif row["status"] == "not restored":
            tally.not_restored[row["format"]] += 1
        else:
            tally.failed += 1
    return tally.line(seconds), dict(collections.Counter(row["status"] for row in rows))


def default_concurrency(cpus: Optional[float], cpus_per_actor: float) -> int:
    """Actors the cluster's CPUs hold at `cpus_per_actor` each (at least one)."""
    return max(1, int((cpus or os.cpu_count() or 1) // max(cpus_per_actor, 1e-9)))
