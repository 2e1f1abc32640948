"""Mutates real files of every codec and feeds them to the readers and to `decode`; run by test_fuzz.py in a
process of its own, under an address-space limit. Clips too: each encoder's stream, a packet (or the stream's
parameter sets) mutated, through our HEVC, AV1 and H.264 header readers, and whole mutated clip files through
`clips.probe` and `clips.frames` (FFmpeg's demuxers and decoders, our readers behind them). Prints one JSON
line: calls, the slowest call, and every exception that was not a ValueError."""

import io
import json
import os
import sys
import tempfile
import time
import traceback

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from qgac_jax import codecs  # noqa: E402
from qgac_jax.files.images import decode  # noqa: E402


def originals():
    import skimage.data

    photo = skimage.data.astronaut()[100:196, 150:278]  # 96x128
    out = {}
    for fmt, kwargs in (("JPEG", {"quality": 40}), ("WEBP", {"quality": 40}), ("AVIF", {"quality": 40}),
                        ("PNG", {})):
        buf = io.BytesIO()
        try:
            Image.fromarray(photo).save(buf, fmt, **kwargs)
        except (KeyError, OSError):
            continue
        out[fmt] = buf.getvalue()
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        buf = io.BytesIO()
        Image.fromarray(photo).save(buf, "HEIF", quality=40)
        out["HEIF"] = buf.getvalue()
    except ImportError:
        pass
    return out


def clip_originals():
    """{codec: (the clip file's bytes, the stream's extradata, its packets)} for 12 frames from each encoder."""
    try:
        import av
    except ImportError:
        return {}
    from _clips import make_clip

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for codec in ("h264", "hevc", "vp9", "av1"):
            path = os.path.join(tmp, f"clip_{codec}.mkv")
            make_clip(path, codec, frames=12, crf=35)
            with av.open(path) as container:
                stream = container.streams.video[0]
                extradata = bytes(stream.codec_context.extradata or b"")
                packets = [bytes(p) for p in container.demux(stream) if p.size]
            out[codec] = (open(path, "rb").read(), extradata, packets)
    return out


def read_stream(codec: str, extradata: bytes, packets) -> None:
    """Our readers of a clip's headers over a whole stream, as `clips.frames` calls them."""
    from qgac_jax.codecs import av1_stream, h264, hevc_stream

    if codec == "h264":
        h264.chroma_offsets(extradata)
        return
    stream = (hevc_stream.HevcStream if codec == "hevc" else av1_stream.Av1Stream)(extradata)
    for packet in packets:
        stream.read(packet)


def read_clip(data: bytes) -> None:
    from qgac_jax.files import clips

    info = clips.probe(io.BytesIO(data))
    for _ in clips.frames(io.BytesIO(data), info):
        pass


def mutate(data: bytes, rng) -> bytes:
    out = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:  # a few bytes changed, mostly in the headers
        for _ in range(int(rng.integers(1, 8))):
            out[int(rng.integers(0, min(len(out), 1024)))] = int(rng.integers(0, 256))
    elif kind == 1:  # a 16- or 32-bit field set to an extreme
        at = int(rng.integers(0, min(len(out), 1024) - 4))
        out[at:at + 4] = bytes([0xFF] * 4) if rng.integers(2) else bytes([0x00, 0x00, 0xFF, 0xFF])
    elif kind == 2:  # cut
        out = out[:int(rng.integers(1, len(out)))]
    else:  # a slice of the file repeated inside itself
        a, b = sorted(int(v) for v in rng.integers(0, len(out), 2))
        at = int(rng.integers(0, len(out)))
        out = out[:at] + out[a:b] * int(rng.integers(1, 4)) + out[at:]
    return bytes(out)


def main(seed: int, per_format: int) -> None:
    rng = np.random.default_rng(seed)
    calls, slowest, escaped = 0, 0.0, []
    for fmt, data in originals().items():
        for _ in range(per_format):
            damaged = mutate(data, rng)
            for name, call in (("read_quantization", codecs.read_quantization), ("decode", decode)):
                start = time.perf_counter()
                try:
                    call(damaged)
                except ValueError:
                    pass
                except BaseException as err:  # noqa: BLE001 - what the test is looking for
                    escaped.append(f"{fmt} {name}: {type(err).__name__}: {err} "
                                   f"{traceback.format_exc().splitlines()[-3].strip()}")
                calls += 1
                slowest = max(slowest, time.perf_counter() - start)
    photo_calls = calls
    for codec, (data, extradata, packets) in clip_originals().items():
        trials = []
        if codec != "vp9":  # (VP9's q index is FFmpeg's side data: no reader of ours)
            for _ in range(per_format // 4):
                at = int(rng.integers(-1, len(packets)))  # -1: the parameter sets
                e = mutate(extradata, rng) if at < 0 else extradata
                trials.append(("stream", lambda e=e, at=at: read_stream(
                    codec, e, [mutate(p, rng) if i == at else p for i, p in enumerate(packets)])))
        for _ in range(per_format // 25):
            trials.append(("clip", lambda d=mutate(data, rng): read_clip(d)))
        for name, call in trials:
            start = time.perf_counter()
            try:
                call()
            except ValueError:
                pass
            except BaseException as err:  # noqa: BLE001
                escaped.append(f"{codec} {name}: {type(err).__name__}: {err} "
                               f"{traceback.format_exc().splitlines()[-3].strip()}")
            calls += 1
            slowest = max(slowest, time.perf_counter() - start)
    print(json.dumps({"calls": calls, "clip_calls": calls - photo_calls, "slowest_s": slowest,
                      "escaped": escaped[:20]}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
