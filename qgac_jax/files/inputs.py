"""Which files a restore reads and where each one's PNG goes below the output folder."""

from __future__ import annotations

import collections
import dataclasses
import glob
import pathlib
from pathlib import PurePath
from typing import List, Optional, Sequence, Tuple

from qgac_jax.files.clip_output import DEFAULT_CODEC, output_suffix
from qgac_jax.files.clips import VIDEO_SUFFIXES
from qgac_jax.files.images import IMAGE_SUFFIXES

SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES  # what a folder is searched for: photos and clips


@dataclasses.dataclass(frozen=True)
class Job:
    src: pathlib.Path
    rel: pathlib.Path  # the output's path below --output
    walked: bool  # found in a folder or by a glob, not named: a lossless file there is listed, not an error


def _inside(path: pathlib.Path, folder: pathlib.Path) -> bool:
    return path == folder or folder in path.parents


def output_path(path: PurePath, video_codec: str = DEFAULT_CODEC) -> PurePath:
    """A photo's PNG, or a clip in its own container where it can hold the video codec (else .mkv)."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return path.with_suffix(output_suffix(path.suffix, video_codec))
    return path.with_suffix(".png")


def collect_inputs(patterns: List[str], out_root: Optional[pathlib.Path] = None,
                   video_codec: str = DEFAULT_CODEC) -> Tuple[List[Job], List[str]]:
    """The jobs and the one-line errors of files, directories and globs; each file once however often named.

    Walking never enters the output tree: an output folder inside an input folder is not searched, and
    where input and output are the same folder its PNGs are earlier outputs, not inputs.
    """
    out = out_root.resolve() if out_root is not None else None
    jobs: List[Job] = []
    errors: List[str] = []
    seen = set()

    def add(f: pathlib.Path, rel: pathlib.Path, walked: bool):
        key = f.resolve()
        if walked and out is not None and _inside(key, out) and key.suffix.lower() == ".png":
            return  # an earlier output (input and output the same folder, or a glob reaching into --output)
        if key not in seen:
            seen.add(key)
            jobs.append(Job(f, rel, walked))

    for pattern in patterns:
        path = pathlib.Path(pattern)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                           and not (out is not None and out != path.resolve() and _inside(p.resolve(), out)))
            before = len(jobs)
            for f in files:
                add(f, output_path(f.relative_to(path), video_codec), True)
            if not files and len(jobs) == before:
                errors.append(f"{pattern}: no images in this directory")
        elif path.is_file():
            add(path, output_path(pathlib.Path(path.name), video_codec), False)
        else:
            files = [m for m in sorted(pathlib.Path(m) for m in glob.glob(pattern, recursive=True)) if m.is_file()]
            if not files:
                errors.append(f"{pattern}: no such file, directory or matching glob")
            for f in files:
                add(f, output_path(pathlib.Path(f.name), video_codec), True)
    return _distinct_outputs(jobs), errors


def _distinct_outputs(jobs: List[Job]) -> List[Job]:
    return [dataclasses.replace(j, rel=rel) for j, rel in zip(jobs, distinct([j.rel for j in jobs],
                                                                             [j.src.name for j in jobs]))]


def distinct(rels: Sequence[PurePath], names: Sequence[str]) -> List[PurePath]:
    """Inputs whose outputs would share a name (a.jpg and a.webp -> a.png) keep their whole names instead:
    a.jpg.png and a.webp.png. (Compared without case: a.JPG and a.jpg collide on some file systems.) `rels`:
    each output's path below the output folder; `names`: each input's file name."""
    counts = collections.Counter(str(r).lower() for r in rels)
    return [r.with_name(n + r.suffix) if counts[str(r).lower()] > 1 else r for r, n in zip(rels, names)]


def output_names(names: List[str], video_codec: str = DEFAULT_CODEC) -> List[str]:
    """The output names of files given by name alone (a web page's uploads: a photo's PNG, a clip's clip), by
    `distinct`'s rule; the same whole name twice (two folders' a.jpg) is numbered: a.jpg.png, a.jpg (2).png."""
    out, seen = [], collections.Counter()
    for chosen in distinct([output_path(PurePath(n), video_codec) for n in names], names):
        seen[str(chosen).lower()] += 1
        count = seen[str(chosen).lower()]
        out.append(str(chosen) if count == 1 else f"{chosen.name[:-len(chosen.suffix)]} ({count}){chosen.suffix}")
    return out
