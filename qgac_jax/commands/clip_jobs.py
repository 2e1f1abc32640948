"""One clip restored as `restore` restores it: the model of its colour, a bar of frames on a terminal and a line
every few seconds in a log, and the lines the run prints of it."""

from __future__ import annotations

from typing import List

from qgac_jax.commands import logs
from qgac_jax.restoring import video

def restore_clip(settings, models, src, dest, jobs_at_once: int = 1) -> video.ClipReport:
    """Restores `src` into `dest` with `settings` (quality, video codec, CRF); a ValueError with one line for a
    clip it cannot restore (nothing is written then)."""
    from tqdm import tqdm

    from qgac_jax.files import clips

    info = clips.probe(src)
    restorer = models(info.pix_fmt == "gray", clip=True)
    bar = tqdm(total=info.frames or None, desc=src.name, unit="frame", leave=False,
               disable=None if jobs_at_once == 1 else True)
    log = logs.ProgressLines(src, info.frames, "frames") if bar.disable and jobs_at_once == 1 else None

    def progress(done: int, total: int) -> None:
        bar.update(1)
        if log is not None:
            log.update(1)

    try:
        return video.restore_clip(restorer, src, dest, settings.quality, settings.video_codec, settings.crf,
                                  progress, info)
    finally:
        bar.close()


def lines(report: video.ClipReport, src, dest, show_quality: bool) -> List[str]:
    """What restore prints of a restored clip: its line, the frames it lost, what the network was told."""
    info = report.info
    fps = report.frames / report.seconds if report.seconds else 0.0
    out = [f"restored {src} -> {dest} ({info.width}x{info.height}, {report.frames} frames, {report.seconds:.1f} s, "
           f"{fps:.2f} frames/s)"]
    if report.lost:
        out.append(f"warning: {src}: {report.lost_line(shown=5)}")
    if show_quality:
        out.append(f"{src}: {report.told()}")
    return out
