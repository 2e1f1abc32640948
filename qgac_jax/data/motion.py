"""Training pairs from video: a short clip of a photo under a moving camera, encoded by a real video encoder, and
one of its frames with the quantizers its codec recorded for it.

A frame of a P- or B-frame is not a still saved at its quantizer: much of
it is predicted from better frames, so its error is not what its QP says.
Only frames of real encodes teach the model that. The camera pans, zooms
and shakes over the crop (an affine warp per frame, bicubic), the clip
(`FRAMES` frames of the patch size) is encoded in memory by x264, x265,
libvpx-vp9 or SVT-AV1 at a CRF drawn from that codec's range and a fast
preset, decoded with its quantizers (`files.clips`, as restore reads a
clip), and one frame is drawn, I, P and B alike.
"""

from __future__ import annotations

import io
from typing import Dict

import numpy as np
from PIL import Image

VIDEO_CODECS = ("h264", "hevc", "vp9", "av1")
FRAMES = 6
# Per codec: the encoder, the CRF range drawn from, fast settings (a training example must cost tens of ms)
ENCODERS = {
    "h264": ("libx264", (20, 45), {"preset": "veryfast"}),
    "hevc": ("libx265", (22, 45), {"preset": "ultrafast"}),
    "vp9": ("libvpx-vp9", (24, 56), {"b": "0", "deadline": "realtime", "cpu-used": "8"}),
    "av1": ("libsvtav1", (24, 56), {"preset": "12"}),
}


def camera(crop: np.ndarray, size: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """[T, size, size, C] views of `crop` [S, S, C] from a camera that pans, zooms and shakes."""
    s = crop.shape[0]
    room = max(s - size, 0) / 2
    pan = rng.uniform(-1, 1, 2) * min(3.0, room / max(frames, 1))  # pixels per frame
    zoom = rng.uniform(-0.02, 0.02)  # scale change per frame
    shake = rng.uniform(0, 1.0)
    grey = crop.shape[-1] == 1
    image = Image.fromarray(crop[..., 0] if grey else crop)
    out = []
    for t in range(frames):
        scale = 1.0 + zoom * (t - frames / 2)
        cx, cy = (s - 1) / 2 + pan * (t - frames / 2) + rng.normal(0, shake, 2)
        half = size * scale / 2
        # PIL's AFFINE maps output (x, y) to input (a x + b y + c, d x + e y + f)
        warped = image.transform((size, size), Image.Transform.AFFINE,
                                 (scale, 0, cx - half, 0, scale, cy - half), Image.Resampling.BICUBIC)
        out.append(np.asarray(warped))
    clip = np.stack(out)
    return clip[..., None] if grey else clip


def encode(frames: np.ndarray, codec: str, crf: int) -> bytes:
    """The clip [T, H, W, 3] uint8 encoded by `codec`'s encoder at `crf`, in Matroska, in memory."""
    import av

    from qgac_jax.files.clip_output import quiet

    encoder, _, options = ENCODERS[codec]
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as container:
        stream = container.add_stream(encoder, rate=24)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": str(crf), **options, **quiet(encoder)}
        packets = []
        for pixels in frames:
            packets += stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24"))
        packets += stream.encode()
        for packet in packets:
            container.mux(packet)
    return buf.getvalue()


def video_example(crop: np.ndarray, size: int, codec: str, grey: bool, rng: np.random.Generator
                  ) -> Dict[str, np.ndarray]:
    """One frame of an encoded clip: uint8 'compressed' and 'target' [P, P, C], float32 'qmap' [P, P, K], the
    CRF as 'quality' and the frame's type (0 I, 1 P, 2 B) as 'frame_type'."""
    from qgac_jax.files import clips

    colour = np.repeat(crop, 3, -1) if crop.shape[-1] == 1 else crop
    originals = camera(colour, size, FRAMES, rng)
    lo, hi = ENCODERS[codec][1]
    crf = int(rng.integers(lo, hi + 1))
    data = io.BytesIO(encode(originals, codec, crf))
    frames = list(clips.frames(data, clips.probe(io.BytesIO(data.getvalue()))))
    if len(frames) != FRAMES:
        raise ValueError(f"a {codec} training clip decoded to {len(frames)} frames of {FRAMES}")
    t = int(rng.integers(FRAMES))
    frame, target = frames[t], originals[t]
    qmap = frame.quantization.qmap(size, size)
    compressed = frame.pixels
    if grey:
        compressed = np.asarray(Image.fromarray(compressed).convert("L"))[..., None]
        target = np.asarray(Image.fromarray(target).convert("L"))[..., None]
        qmap = qmap[..., :1]
    return {"compressed": np.ascontiguousarray(compressed), "target": np.ascontiguousarray(target),
            "qmap": np.ascontiguousarray(qmap, dtype=np.float32), "quality": np.int32(crf),
            "frame_type": np.int32("IPB".index(frame.quantization.frame_type)
                                   if frame.quantization.frame_type in "IPB" else 0)}
