"""Clips restored as `restore` restores them: frames per second at 480p and 1080p (float32 and int8), the
pipeline's overhead against restoring the same frames as stills, and memory over a long clip.

    python benchmarks/restore_video.py [--sizes 480p,1080p] [--frames 24] [--hd-frames 6] [--long-frames 240]
                                       [--precisions float32,int8] [--rounds 2] [--json OUT]

Each clip is a camera panning over a real photo (scikit-image's coffee, enlarged), encoded by x264 at CRF 35
(MP4). For each size and precision the shipped video model (`restore`'s model for clips, through the same
`engines.Models`) restores the clip twice in this process: through the clip pipeline
(`Restorer.restore_clip`: decoding, the network and the x264 encode of the output at once) and as stills
(the frames decoded beforehand with their quantizers, then `restore_compressed` one after another, nothing
written), alternated, the best of --rounds each. Overhead is the first time over the second, less one.
Memory: the resident set (VmRSS) after every frame of a long 480p clip; flat when what it holds after the
first tenth of the clip grows no further.
"""

from __future__ import annotations

import argparse
import fractions
import json
import os
import pathlib
import platform
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from qgac_jax.commands import engines, jobs  # noqa: E402
from qgac_jax.files import clips  # noqa: E402
from qgac_jax.files.clip_output import quiet  # noqa: E402

SIZES = {"480p": (854, 480), "1080p": (1920, 1080)}


def make_clip(path: pathlib.Path, width: int, height: int, frames: int) -> None:
    """`frames` views of a photo 1.25 times the frame's size, the camera moving right and down; x264, CRF 35."""
    import av
    import skimage.data

    big = np.asarray(Image.fromarray(skimage.data.coffee()).resize((width * 5 // 4, height * 5 // 4),
                                                                   Image.Resampling.BICUBIC))
    room_x, room_y = big.shape[1] - width, big.shape[0] - height
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "35", "preset": "veryfast", **quiet("libx264")}
        for t in range(frames):
            x, y = (2 * t) % room_x, t % room_y
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(big[y:y + height, x:x + width]), format="rgb24")
            frame.pts, frame.time_base = t, fractions.Fraction(1, 25)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def rss_bytes() -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS")).split()[1]) * 1024


def measure(restorer, clip: pathlib.Path, out: pathlib.Path, rounds: int) -> dict:
    """Seconds for the clip pipeline and for the same frames as stills (decoded beforehand): the best of
    `rounds`, the two alternated."""
    frames = list(clips.frames(clip, clips.probe(clip)))
    restorer.restore_compressed(frames[0].pixels.astype(np.float32) / 255.0, frames[0].quantization, "file")  # warm
    pipeline = stills = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        report = restorer.restore_clip(clip, out)
        pipeline = min(pipeline, time.perf_counter() - start)
        out.unlink()
        assert report.frames == len(frames) and not report.lost
        start = time.perf_counter()
        for frame in frames:
            restorer.restore_compressed(frame.pixels.astype(np.float32) / 255.0, frame.quantization, "file")
        stills = min(stills, time.perf_counter() - start)
    return {"frames": len(frames), "pipeline_s": pipeline, "stills_s": stills,
            "pipeline_fps": len(frames) / pipeline, "stills_fps": len(frames) / stills,
            "overhead": pipeline / stills - 1.0}


def memory(restorer, clip: pathlib.Path, out: pathlib.Path) -> dict:
    samples = []
    restorer.restore_clip(clip, out, progress=lambda done, total: samples.append(rss_bytes()))
    out.unlink()
    settled = samples[len(samples) // 10]
    return {"frames": len(samples), "rss_after_tenth_mib": settled / 2**20, "rss_peak_mib": max(samples) / 2**20,
            "growth_after_tenth_mib": (max(samples[len(samples) // 10:]) - settled) / 2**20}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="480p,1080p", help=f"of {', '.join(SIZES)}")
    parser.add_argument("--frames", type=int, default=24, help="frames of the 480p clip")
    parser.add_argument("--hd-frames", type=int, default=6, help="frames of the 1080p clip")
    parser.add_argument("--long-frames", type=int, default=240, help="frames of the long 480p clip (memory)")
    parser.add_argument("--precisions", default="float32,int8")
    parser.add_argument("--rounds", type=int, default=2, help="of each measurement, alternated (the best is kept)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    sizes = args.sizes.split(",")
    if not set(sizes) <= set(SIZES):
        parser.error(f"--sizes: of {', '.join(SIZES)}")

    result = {"cpu": platform.processor() or platform.machine(), "cases": [], "memory": None}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        lengths = {"480p": args.frames, "1080p": args.hd_frames}
        for name in sizes:
            make_clip(tmp / f"{name}.mp4", *SIZES[name], lengths[name])
        if args.long_frames:
            make_clip(tmp / "long.mp4", *SIZES["480p"], args.long_frames)
        print("| clip | precision | frames | pipeline fps | stills fps | overhead |")
        print("|---|---|---|---|---|---|")
        for precision in args.precisions.split(","):
            restorer = engines.Models(jobs.Settings(precision=precision))(False, clip=True)
            for name in sizes:
                row = {"clip": name, "precision": precision,
                       **measure(restorer, tmp / f"{name}.mp4", tmp / f"out_{name}.mp4", args.rounds)}
                result["cases"].append(row)
                print(f"| {name} | {precision} | {row['frames']} | {row['pipeline_fps']:.2f} | "
                      f"{row['stills_fps']:.2f} | {100 * row['overhead']:+.1f}% |", flush=True)
            if precision == args.precisions.split(",")[-1] and args.long_frames:
                result["memory"] = {"precision": precision, **memory(restorer, tmp / "long.mp4", tmp / "out.mp4")}
        if result["memory"]:
            m = result["memory"]
            print(f"\nlong 480p clip, {m['frames']} frames, {m['precision']}: resident {m['rss_after_tenth_mib']:.0f} "
                  f"MiB after the first tenth, peak {m['rss_peak_mib']:.0f} MiB, growth after the first tenth "
                  f"{m['growth_after_tenth_mib']:+.0f} MiB")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
