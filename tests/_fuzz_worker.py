"""Mutates real files of every codec and feeds them to the readers and to `decode`; run by test_fuzz.py in a
process of its own, under an address-space limit. Prints one JSON line: calls, the slowest call, and every
exception that was not a ValueError."""

import io
import json
import os
import sys
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
    print(json.dumps({"calls": calls, "slowest_s": slowest, "escaped": escaped[:20]}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
