"""HEIC's quantization parameter read from files written by x265 (through libheif and pillow-heif)."""

import io
import struct

import numpy as np
import pytest
from PIL import Image

from qgac_jax.codecs import heic
from conftest import coffee, encoded, jpeg_bytes, natural_image

pillow_heif = pytest.importorskip("pillow_heif", reason="HEIC files are written by pillow-heif (the extra `test`)")
pillow_heif.register_heif_opener()




@pytest.mark.parametrize("qp, cb_offset", [(22, 0), (30, 0), (35, 3)])
def test_the_slice_qp_is_the_qp_x265_was_told(qp, cb_offset):
    # constant QP, and the same for I frames as for P (ipratio 1), chroma offset as given
    params = {"x265:qp": str(qp), "x265:ipratio": "1", "x265:cbqpoffs": str(cb_offset)}
    odd = coffee()[:397, :593]  # odd sizes: the stream's conformance window crops its padding
    got = heic.read_quantization(encoded(odd, "HEIF", quality=50, enc_params=params))
    assert got.slice_qps == (qp,) and got.chroma_offset == cb_offset and not got.cu_qp_delta
    assert (got.width, got.height) == (594, 398) and got.chroma_format == 1  # 4:2:0 is coded at even sizes
    qmap = got.qmap(397, 593) * 255
    assert qmap.shape == (397, 593, 2)
    np.testing.assert_allclose(qmap[..., 0], 2 ** ((qp - 4) / 6), rtol=1e-6)
    np.testing.assert_allclose(qmap[..., 1], 2 ** ((heic.chroma_qp(qp, cb_offset) - 4) / 6), rtol=1e-6)


def test_chroma_qp_follows_the_420_table():
    assert [heic.chroma_qp(q, 0) for q in (0, 29, 30, 34, 38, 43, 44, 51)] == [0, 29, 29, 33, 35, 37, 38, 45]
    assert heic.chroma_qp(38, 3) == heic.chroma_qp(41, 0) == 36


def test_quality_orders_the_qp_and_adaptive_quantization_is_flagged():
    got = [heic.read_quantization(encoded(coffee(), "HEIF", quality=q)) for q in (10, 50, 90)]
    assert got[0].qp > got[1].qp > got[2].qp
    assert all(g.cu_qp_delta for g in got)  # x265's adaptive quantization moves coding units off the slice QP


def test_heic_is_told_from_avif_by_its_hevc_brand_not_by_the_container_brands():
    from PIL import features

    from qgac_jax.codecs import heif

    data = encoded(natural_image(32, 48), "HEIF", quality=40)
    assert heif.is_heic(data) and heif.is_heic(data[:8] + b"mif1" + data[12:])  # heic among compatible brands
    assert not heif.is_heic(jpeg_bytes(natural_image(16, 16))) and not heif.is_heic(data[:10])
    if features.check("avif"):
        avif = encoded(natural_image(32, 48), "AVIF", quality=40)
        assert not heif.is_heic(avif) and not heif.is_heic(avif[:8] + b"mif1" + avif[12:])


def test_truncated_and_other_files_are_value_errors():
    data = encoded(natural_image(64, 96), "HEIF", quality=40)
    for cut in (10, 40, len(data) // 2, len(data) - 20):
        with pytest.raises(ValueError):
            heic.read_quantization(data[:cut])
    with pytest.raises(heic.NotHeic):
        heic.read_quantization(jpeg_bytes(natural_image(16, 16)))


@pytest.mark.slow
def test_restore_reads_an_heics_qp_and_says_what_to_install_without_pillow_heif(tmp_path, capsys):
    import subprocess
    import sys

    from PIL import features

    from qgac_jax import restore

    path = tmp_path / "phone.heic"
    path.write_bytes(encoded(natural_image(64, 96), "HEIF", quality=40, enc_params={"x265:qp": "31",
                                                                                  "x265:ipratio": "1"}))
    assert restore.run([str(path), "--output", str(tmp_path / "out"), "--show-quality", "--quality", "file"]) == 0
    assert "HEIC: HEVC QP 31: the file's own quantizer" in "".join(capsys.readouterr())
    assert (tmp_path / "out" / "phone.png").is_file()
    avif = tmp_path / "mif1.avif"  # an AVIF whose major brand is the container's, mif1, as some encoders write
    avif.write_bytes(b"" if not features.check("avif") else (lambda d: d[:8] + b"mif1" + d[12:])(
        encoded(natural_image(64, 96), "AVIF", quality=40)))
    inputs = [str(path)] + ([str(avif)] if avif.stat().st_size else [])
    without = ("import sys; sys.modules['pillow_heif'] = None; from qgac_jax import restore; "
               f"sys.exit(restore.run({inputs!r} + ['--output', {str(tmp_path / 'o2')!r}, '--quality', '30']))")
    alone = subprocess.run([sys.executable, "-c", without], capture_output=True, text=True, timeout=300)
    assert alone.returncode == 1 and ("HEIC (HEVC QP 31): its pixels need pillow-heif: pip install pillow-heif"
                                      in alone.stderr), alone.stderr
    if len(inputs) > 1:  # restored as the AVIF it is, not refused as an HEIC
        assert "mif1.avif" not in alone.stderr and (tmp_path / "o2" / "mif1.png").is_file(), alone.stderr


def _box(kind: bytes, body: bytes, full: bool = False) -> bytes:
    body = (b"\0\0\0\0" if full else b"") + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _grid_heic(tiles, rows: int, cols: int, width: int, height: int) -> bytes:
    """An HEIF file whose primary item is a grid of `tiles` (single-image HEIC files, or their items, row by row),
    built box by box as ISO/IEC 23008-12 lays it out (the way phones store their photos)."""
    from qgac_jax.codecs import heif

    items = [t if isinstance(t, heif.PrimaryItem) else heif.primary_item(t) for t in tiles]
    grid_id, ids = 1, list(range(2, 2 + len(items)))
    infe = [_box(b"infe", struct.pack(">HH4s", i, 0, kind) + b"\0", full=False)
            for i, kind in [(grid_id, b"grid")] + [(i, b"hvc1") for i in ids]]
    infe = [struct.pack(">I4s", len(b) + 4, b"infe") + b"\x02\0\0\0" + b[8:] for b in infe]  # version 2
    iinf = _box(b"iinf", struct.pack(">H", len(infe)) + b"".join(infe), full=True)
    iref = _box(b"iref", _box(b"dimg", struct.pack(">HH", grid_id, len(ids)) + b"".join(struct.pack(">H", i)
                                                                                      for i in ids)), full=True)
    hvcc = [_box(b"hvcC", item.properties[b"hvcC"]) for item in items]
    ispe = _box(b"ispe", struct.pack(">II", width, height), full=True)
    tile_ispe = _box(b"ispe", struct.pack(">II", width // cols, height // rows), full=True)
    ipco = _box(b"ipco", ispe + tile_ispe + b"".join(hvcc))  # property indices 1, 2, then 3... for the hvcCs
    assoc = [struct.pack(">HB", grid_id, 1) + bytes([0x81])] + [
        struct.pack(">HB", i, 2) + bytes([0x80 | (3 + k), 0x02]) for k, i in enumerate(ids)]
    ipma = _box(b"ipma", struct.pack(">I", len(assoc)) + b"".join(assoc), full=True)
    grid = struct.pack(">BBBBHH", 0, 0, rows - 1, cols - 1, width, height)
    idat = _box(b"idat", grid)
    head = _box(b"ftyp", b"heic\0\0\0\0mif1heic")
    hdlr = _box(b"hdlr", b"\0\0\0\0pict" + b"\0" * 12 + b"\0", full=True)
    pitm = _box(b"pitm", struct.pack(">H", grid_id), full=True)

    def meta(offsets):
        entries = [struct.pack(">HHHHII", grid_id, 1, 0, 1, 0, len(grid))] + [
            struct.pack(">HHHHII", i, 0, 0, 1, o, len(item.data)) for i, o, item in zip(ids, offsets, items)]
        iloc = _box(b"iloc", b"\x01\0\0\0"[:0] + bytes([0x44, 0x00]) + struct.pack(">H", len(entries))
                    + b"".join(entries))
        iloc = struct.pack(">I4s", len(iloc) + 4, b"iloc") + b"\x01\0\0\0" + iloc[8:]  # version 1
        return _box(b"meta", hdlr + pitm + iinf + iref + _box(b"iprp", ipco + ipma) + iloc + idat, full=True)

    size = len(head) + len(meta([0] * len(items))) + 8
    offsets = list(np.cumsum([size] + [len(item.data) for item in items[:-1]]))
    return head + meta(offsets) + _box(b"mdat", b"".join(item.data for item in items))


def test_a_grid_image_is_read_tile_by_tile():
    photo = coffee()
    qps = (24, 33)
    tiles = [encoded(photo[:128, 128 * k:128 * (k + 1)], "HEIF", quality=50,
                     enc_params={"x265:qp": str(qp), "x265:ipratio": "1"}) for k, qp in enumerate(qps)]
    data = _grid_heic(tiles, 1, 2, 256, 128)
    got = heic.read_quantization(data)
    assert got.tiles == 2 and got.slice_qps == qps and got.qp == np.mean(qps)
    with Image.open(io.BytesIO(data)) as img:  # libheif agrees that the file is the grid it should be
        assert img.size == (256, 128)
        assert np.abs(np.asarray(img, np.float32)[:, :128] - photo[:128, :128]).mean() < 3
