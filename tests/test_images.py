"""Hostile files, each built here by hand or by mutating a real encoder's output: every reader is bounded by
its box or chunk, work and memory by the file's size, impossible quantizers are refused, and only one-line
ValueErrors come out of `decode` (the HEIF boxes' own cases: test_heif.py)."""

import io
import struct
import warnings

import numpy as np
import pytest
from PIL import Image

from qgac_jax import codecs
from qgac_jax.codecs import heic, heif, jpeg, webp
from qgac_jax.files.images import decode
from conftest import coffee, encoded, jpeg_bytes, natural_image
from test_heif import _has_heif, _heif, _iloc, _one_tile_grid, _tile_with_slice_qp


def test_nested_animation_frames_are_refused_without_recursion():
    frame_chunk = encoded(natural_image(16, 16), "WEBP", quality=50)[12:]  # the VP8 chunk
    body = frame_chunk
    for _ in range(3000):  # 3,000 levels: "maximum recursion depth exceeded" before
        anmf = b"\0" * 16 + body
        body = b"ANMF" + struct.pack("<I", len(anmf)) + anmf
    data = b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
    with pytest.raises(ValueError, match="an animation frame inside a frame"):
        webp.read_quantization(data)
    one = b"\0" * 16 + frame_chunk
    animated = b"RIFF" + struct.pack("<I", 12 + len(one)) + b"WEBP" + b"ANMF" + struct.pack("<I", len(one)) + one
    assert webp.read_quantization(animated).animated


def test_a_cut_vp8_partition_of_a_huge_frame_stops_at_the_row_it_ran_out(monkeypatch):
    data = bytearray(encoded(natural_image(64, 64), "WEBP", quality=50))
    frame = data.index(b"\x9d\x01\x2a")
    data[frame + 3:frame + 7] = struct.pack("<HH", 16383, 16383)  # 1,024 x 1,024 macroblocks, headers for 16
    calls = [0]
    real = webp.BoolDecoder.bool

    def counted(self, prob):
        calls[0] += 1
        return real(self, prob)

    monkeypatch.setattr(webp.BoolDecoder, "bool", counted)
    with pytest.raises(ValueError, match="truncated VP8 frame"):
        webp.read_quantization(bytes(data))
    assert calls[0] < 200_000  # a few rows of 1,024 macroblocks, not all 1,048,576 of them


def test_an_avif_whose_header_size_contradicts_its_frame_is_refused():
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF")
    data = encoded(natural_image(96, 64), "AVIF", quality=50)
    at = data.index(b"ispe") + 8
    assert struct.unpack(">II", data[at:at + 8]) == (64, 96)
    stretched = data[:at] + struct.pack(">II", 32640, 96) + data[at + 8:]
    with pytest.raises(codecs.Damaged, match="header says 32640x96 pixels, its AV1 frame 64x96"):
        codecs.read_quantization(stretched)
    with pytest.raises(ValueError, match="damaged AVIF"):
        decode(stretched, full=False)  # refused even when told a quality


def test_short_parameter_boxes_and_odd_jpeg_headers_are_value_errors():
    with pytest.raises(ValueError, match="hvcC"):
        heic._nals(heif.PrimaryItem(b"hvc1", b"\0\0\0\5abcde", {b"hvcC": b"\x01" * 10}))
    small = jpeg_bytes(natural_image(16, 16), quality=50)
    sof = small.find(b"\xff\xc0")
    no_sampling = bytearray(small)
    no_sampling[sof + 11] = 0x00  # the first component's sampling factors: 0
    with pytest.raises(ValueError):
        jpeg.read_quantization(bytes(no_sampling))
    huge = small[:sof + 5] + struct.pack(">HH", 65535, 65535) + small[sof + 9:]
    tables = jpeg.read_quantization(huge)  # the tables of a header claiming 4 gigapixels still read
    assert tables.luma.shape == (8, 8)


def _exif_jpeg(orientation_entry: bytes) -> bytes:
    """A JPEG whose EXIF holds one IFD entry (the orientation tag) as given."""
    tiff = b"MM\0\x2a\0\0\0\x08" + b"\0\x01" + orientation_entry + b"\0\0\0\0"
    app1 = b"Exif\0\0" + tiff
    plain = jpeg_bytes(natural_image(32, 48), quality=50)
    return plain[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + plain[2:]


@pytest.mark.parametrize("entry, shown", [
    (struct.pack(">HHI", 0x0112, 8, 1) + struct.pack(">h", -3) + b"\0\0", -3),  # SSHORT -3
    (struct.pack(">HHI", 0x0112, 2, 4) + b"abc\0", "abc"),  # ASCII "abc"
])
def test_an_orientation_that_is_no_orientation_is_dropped_with_a_warning_and_the_photo_restored(entry, shown):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = decode(_exif_jpeg(entry))
    assert d.orientation == 1 and d.pixels.shape == (32, 48, 3)
    assert any("is not one of 1..8" in str(w.message) for w in caught)
    from qgac_jax.files import outputs

    outputs.write_png_atomically(np.zeros((4, 4, 3), np.uint8), _tmp_png(), d.metadata)  # its metadata writes


def _tmp_png():
    import pathlib
    import tempfile

    return pathlib.Path(tempfile.mkdtemp()) / "out.png"


def test_decode_lets_only_value_errors_out(monkeypatch):
    from qgac_jax.files import images

    for failure in (RuntimeError("Missing or empty image item"), ZeroDivisionError("division by zero"),
                    OverflowError("math range error"), MemoryError()):
        def broken(*args, failure=failure, **kwargs):
            raise failure

        monkeypatch.setattr(images, "_pixels", broken)
        with pytest.raises(ValueError) as caught:
            decode(jpeg_bytes(natural_image(16, 16), quality=50))
        assert type(caught.value) is ValueError and "\n" not in str(caught.value)
        assert ("out of memory" if isinstance(failure, MemoryError) else "damaged") in str(caught.value)


def test_a_cut_16_bit_png_is_refused_in_plain_words():
    from qgac_jax.files import png16

    deep = png16.encode(np.random.default_rng(0).integers(0, 65536, (200, 150, 3)).astype(np.uint16))
    with pytest.raises(ValueError, match="broken|cut|truncated") as caught:
        decode(deep[:len(deep) // 2])
    assert "reshape" not in str(caught.value)


def test_a_png_image_opens_as_before():
    buf = io.BytesIO()
    Image.fromarray(natural_image(8, 8)).save(buf, "PNG")
    assert decode(buf.getvalue()).recorded is None


def _nested_anmf(levels: int) -> bytes:
    body = encoded(natural_image(16, 16), "WEBP", quality=50)[12:]
    for _ in range(levels):
        anmf = b"\0" * 16 + body
        body = b"ANMF" + struct.pack("<I", len(anmf)) + anmf
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


def _hostile_folder(folder):
    """Good photos (two with odd metadata) beside one file of each hostile kind above; {name: 'good' | 'bad'}."""
    from PIL import features

    kinds = {"good.jpg": ("good", jpeg_bytes(natural_image(48, 64), quality=30)),
             "good_too.webp": ("good", encoded(natural_image(48, 64, seed=1), "WEBP", quality=30)),
             "sshort.jpg": ("good", _exif_jpeg(struct.pack(">HHI", 0x0112, 8, 1) + struct.pack(">h", -3) + b"\0\0")),
             "ascii.jpg": ("good", _exif_jpeg(struct.pack(">HHI", 0x0112, 2, 4) + b"abc\0")),
             "iloc_count.heic": ("bad", _heif(_iloc(2, 2**32 - 1, b""))),
             "extents.heic": ("bad", _heif(_iloc(1, 1, struct.pack(">HHHH", 1, 0, 0, 3000)
                                                 + struct.pack(">II", 0, 10_000) * 3000), mdat=b"\0" * 10_000)),
             "nested.webp": ("bad", _nested_anmf(3000)),
             "cut_huge.webp": ("bad", None)}
    data = bytearray(encoded(natural_image(64, 64), "WEBP", quality=50))
    frame = data.index(b"\x9d\x01\x2a")
    data[frame + 3:frame + 7] = struct.pack("<HH", 7000, 7000)  # under --max-pixels: refused by the reader
    kinds["cut_huge.webp"] = ("bad", bytes(data))
    if features.check("avif"):
        avif = encoded(natural_image(96, 64), "AVIF", quality=50)
        at = avif.index(b"ispe") + 8
        kinds["stretched.avif"] = ("bad", avif[:at] + struct.pack(">II", 6400, 96) + avif[at + 8:])
    if _has_heif():
        from test_heic import _grid_heic

        tiles = [encoded(coffee()[:64, 64 * k:64 * (k + 1)], "HEIF", quality=50,
                         enc_params={"x265:qp": "22", "x265:ipratio": "1"}) for k in range(2)]
        kinds["qp90.heic"] = ("bad", _grid_heic([tiles[0], _tile_with_slice_qp(tiles[1], 90)], 1, 2, 128, 64))
        tile = heif.primary_item(tiles[0])
        import dataclasses

        filler = (38 << 1).to_bytes(1, "big") + b"\x01" + b"\xff" * 900_000
        padded = dataclasses.replace(tile, data=tile.data + len(filler).to_bytes(4, "big") + filler)
        kinds["one_tile_grid.heic"] = ("good", _one_tile_grid(padded, 16, 64))  # 256 cells, one 900 KB tile
    for name, (_, body) in kinds.items():
        (folder / name).write_bytes(body)
    return {name: verdict for name, (verdict, _) in kinds.items()}


@pytest.mark.slow
def test_a_folder_of_good_and_hostile_files_restores_the_good_refuses_each_bad_in_one_line(tmp_path):
    import subprocess
    import sys

    (tmp_path / "in").mkdir()
    verdicts = _hostile_folder(tmp_path / "in")
    # restore itself, reporting its own peak: VmHWM of its own memory map (ru_maxrss would also hold the forked
    # copy of this pytest worker, and RUSAGE_CHILDREN the worker's other children)
    measured = ("import re, runpy, sys\n"
                "try:\n    runpy.run_module('qgac_jax.restore', run_name='__main__')\n"
                "finally:\n    status = open('/proc/self/status').read()\n"
                "    print('peak', re.search(r'VmHWM:\\s+(\\d+)', status).group(1), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", measured, str(tmp_path / "in"), "--output", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=900)
    peak_gib = int(proc.stderr.rsplit("peak ", 1)[1].split()[0]) / 2**20
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    for name, verdict in verdicts.items():
        said = [line for line in errors if f"/{name}: " in line]
        if verdict == "good":
            assert (tmp_path / "out" / (name.rsplit(".", 1)[0] + ".png")).is_file() and not said, (name, said)
        else:
            assert len(said) == 1 and not (tmp_path / "out" / (name.rsplit(".", 1)[0] + ".png")).exists(), name
    assert sum("is not one of 1..8" in line for line in proc.stderr.splitlines()) == 2  # the odd EXIF: warned
    assert peak_gib < 1.5, peak_gib
