"""The video protocol: clips a moving camera makes of clean photos, encoded by a real encoder, restored frame by
frame and compared with the frames the camera saw.

Each photo of the folder gives one clip (`data.motion.camera` over its
centre, FRAMES frames of SIZE x SIZE, the camera's path drawn from a seed of
the photo's index, so every run and every model sees the same clips). Per
case CODEC:CRF: the mean PSNR of the decoded frames and of the restored ones
against the originals; the same for the workaround of decoding the frames to
PNGs and restoring them told one JPEG quality for the whole clip (each of
WORKAROUND_QUALITIES; the best is reported); and the temporal error, the mean
|(R_t - R_t-1) - (O_t - O_t-1)| over consecutive frames (8-bit levels), of
the decoded and the restored clip: flicker the restorer adds shows there.
"""

from __future__ import annotations

import io
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np

FRAMES = 12
SIZE = 128
WORKAROUND_QUALITIES = (10, 20, 30, 50)
Restore = Callable[[np.ndarray, object, object], np.ndarray]  # (pixels [H, W, 3] float, quantization, mode)


def parse_cases(text: str) -> List[Tuple[str, int]]:
    """`h264:35,hevc:32` -> [("h264", 35), ("hevc", 32)]; a ValueError naming what is wrong."""
    from qgac_jax.data.motion import VIDEO_CODECS

    cases = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        codec, _, crf = item.partition(":")
        if codec not in VIDEO_CODECS or not crf.isdigit() or not 0 <= int(crf) <= 63:
            raise ValueError(f"--video takes CODEC:CRF with CODEC one of {', '.join(VIDEO_CODECS)} and CRF 0..63, "
                             f"got {item!r}")
        cases.append((codec, int(crf)))
    if not cases:
        raise ValueError("--video names no case")
    return cases


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def temporal_error(frames: Sequence[np.ndarray], originals: Sequence[np.ndarray]) -> float:
    """Mean |(R_t - R_t-1) - (O_t - O_t-1)| over consecutive frames, in 8-bit levels."""
    r = np.stack(frames).astype(np.float64)
    o = np.stack(originals).astype(np.float64)
    return float(np.mean(np.abs(np.diff(r, axis=0) - np.diff(o, axis=0))))


def clip_of(photo: np.ndarray, index: int) -> np.ndarray:
    """The clip [FRAMES, SIZE, SIZE, 3] the camera makes of a photo's centre (its path seeded by `index`)."""
    from qgac_jax.data.motion import camera

    side = min(photo.shape[0], photo.shape[1], SIZE + 48)
    y, x = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
    return camera(np.ascontiguousarray(photo[y:y + side, x:x + side]), SIZE, FRAMES, np.random.default_rng(index))


def evaluate_clip(restore: Restore, originals: np.ndarray, codec: str, crf: int,
                  workaround: Sequence[int] = WORKAROUND_QUALITIES) -> Dict[str, float]:
    """One clip's figures (see the module docstring)."""
    from qgac_jax.data.motion import encode
    from qgac_jax.files import clips

    data = encode(originals, codec, crf)
    frames = list(clips.frames(io.BytesIO(data), clips.probe(io.BytesIO(data))))
    decoded = [f.pixels for f in frames]

    def restored(mode) -> List[np.ndarray]:
        return [np.clip(np.rint(restore(f.pixels.astype(np.float32) / 255.0, f.quantization, mode) * 255), 0, 255)
                .astype(np.uint8) for f in frames]

    model = restored("file")
    out = {"bpp": 8 * len(data) / (originals.shape[0] * originals.shape[1] * originals.shape[2]),
           "decoded_psnr": float(np.mean([_psnr(d, o) for d, o in zip(decoded, originals)])),
           "model_psnr": float(np.mean([_psnr(m, o) for m, o in zip(model, originals)])),
           "decoded_temporal": temporal_error(decoded, originals), "model_temporal": temporal_error(model, originals)}
    for q in workaround:
        out[f"told_{q}_psnr"] = float(np.mean([_psnr(m, o) for m, o in zip(restored(q), originals)]))
    return out


def evaluate_clips(restore: Restore, source: str, cases: Sequence[Tuple[str, int]], max_images: int = 0,
                   workaround: Sequence[int] = WORKAROUND_QUALITIES, progress: bool = False) -> Dict:
    """{'images': n, 'cases': {"codec:crf": {figure: mean over the clips}}} for the photos of `source`."""
    from qgac_jax.data import sources

    files = sources.source_files(source, False)
    photos = [sources.load_image(path, False, 64_000_000) for path in files[:max_images or None]]
    result: Dict = {"images": len(photos), "frames": FRAMES, "size": SIZE, "cases": {}}
    for codec, crf in cases:
        per_clip = [evaluate_clip(restore, clip_of(photo, i), codec, crf, workaround) for i, photo in
                    enumerate(photos)]
        means = {k: float(np.mean([c[k] for c in per_clip])) for k in per_clip[0]}
        best = max(workaround, key=lambda q: means[f"told_{q}_psnr"])
        means["best_workaround"], means["best_workaround_psnr"] = best, means[f"told_{best}_psnr"]
        result["cases"][f"{codec}:{crf}"] = means
        if progress:
            print(f"{codec}:{crf}: decoded {means['decoded_psnr']:.2f} dB -> model {means['model_psnr']:.2f} dB "
                  f"(best told-a-quality workaround, {best}: {means['best_workaround_psnr']:.2f})", flush=True)
    return result


def markdown_table(result: Dict) -> str:
    rows = ["| clip | bpp | decoded, dB | restored, dB (gain) | best workaround, dB (gain, quality) | "
            "temporal error, decoded -> restored |", "|---|---|---|---|---|---|"]
    for name, m in result["cases"].items():
        rows.append(f"| {name} | {m['bpp']:.3f} | {m['decoded_psnr']:.2f} | {m['model_psnr']:.2f} "
                    f"({m['model_psnr'] - m['decoded_psnr']:+.2f}) | {m['best_workaround_psnr']:.2f} "
                    f"({m['best_workaround_psnr'] - m['decoded_psnr']:+.2f}, {m['best_workaround']}) | "
                    f"{m['decoded_temporal']:.2f} -> {m['model_temporal']:.2f} |")
    return "\n".join(rows)
