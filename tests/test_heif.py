"""Hostile HEIF files, built box by box or from x265's output: every box read within its bounds, counts checked
against the bytes that could hold them, an item's data at most the file's, one tile read once however often a
grid names it, and a quantizer outside HEVC's range refused as damaged."""

import struct

import pytest

from qgac_jax import codecs
from qgac_jax.codecs import heic, heif, hevc
from qgac_jax.files.images import decode
from conftest import coffee, encoded


def _box(kind: bytes, body: bytes, version: int = -1) -> bytes:
    """An ISO box; a full box (version and flags) when `version` >= 0."""
    body = (bytes([version, 0, 0, 0]) if version >= 0 else b"") + body
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _heif(iloc: bytes, iref: bytes = b"", item_types=((1, b"hvc1"),), properties: bytes = b"",
          ipma: bytes = b"", mdat: bytes = b"") -> bytes:
    """A small HEIF file around the boxes a test makes hostile."""
    infe = b"".join(_box(b"infe", struct.pack(">HH4s", i, 0, kind) + b"\0", version=2) for i, kind in item_types)
    meta = (_box(b"hdlr", b"\0\0\0\0pict" + b"\0" * 13, version=0) + _box(b"pitm", struct.pack(">H", 1), version=0)
            + _box(b"iinf", struct.pack(">H", len(item_types)) + infe, version=0) + iref
            + _box(b"iprp", _box(b"ipco", properties) + ipma) + iloc)
    return _box(b"ftyp", b"heic\0\0\0\0mif1heic") + _box(b"meta", meta, version=0) + _box(b"mdat", mdat)


def _iloc(version: int, count: int, entries: bytes, sizes: int = 0x44) -> bytes:
    head = bytes([sizes, 0x00]) + count.to_bytes(2 if version < 2 else 4, "big")
    return _box(b"iloc", head + entries, version=version)


def test_an_iloc_count_its_box_cannot_hold_is_refused_before_any_loop():
    hostile = _heif(_iloc(2, 2**20, b""))  # the 3.5 KB file of 2^32 - 1 items took 51 minutes
    with pytest.raises(heif.NotHeif, match="count larger than its box"):
        heif.primary_items(hostile)
    assert heif.image_size(hostile) is None
    with pytest.raises(ValueError):
        decode(hostile)


def test_an_iloc_of_an_unknown_version_is_refused():
    data = encoded(coffee()[:64, :64], "HEIF", quality=50) if _has_heif() else None
    if data is None:
        pytest.skip("pillow-heif is not installed")
    at = data.index(b"iloc") + 4
    mutated = data[:at] + b"\x80" + data[at + 1:]  # a version byte of 0x80 (found by mutation)
    with pytest.raises(heif.NotHeif, match="unknown version 128"):
        heif.primary_items(mutated)
    assert heif.image_size(mutated) is None


def test_extents_that_claim_more_bytes_than_the_file_holds_are_refused():
    mdat = bytes(range(256)) * 40  # 10 KB
    extents = 3000  # each pointing at the whole mdat: 30 MB joined (65,535 of them in 266 KB took 1.9 GB)
    entry = struct.pack(">HHHH", 1, 0, 0, extents) + struct.pack(">II", 0, len(mdat)) * extents
    hostile = _heif(_iloc(1, 1, entry))
    with pytest.raises(heif.NotHeif, match="overlap"):
        heif.primary_items(hostile)
    sane = _heif(_iloc(1, 1, struct.pack(">HHHH", 1, 0, 0, 1) + struct.pack(">II", 0, 16)), mdat=mdat)
    assert heif.primary_items(sane)[0].data == sane[:16]  # (offset 0 of the file, as the box says)


def _has_heif() -> bool:
    try:
        import pillow_heif

        pillow_heif.register_heif_opener()
        return True
    except ImportError:
        return False


class _Bits:
    """An MSB-first bit writer with Exp-Golomb codes (H.265 9.2), for rewriting a parameter set."""

    def __init__(self):
        self.bits = []

    def u(self, value: int, n: int):
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]

    def ue(self, value: int):
        code = value + 1
        self.u(0, code.bit_length() - 1)
        self.u(code, code.bit_length())

    def se(self, value: int):
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def rbsp(self, tail) -> bytes:
        bits = self.bits + list(tail)
        bits += [1] + [0] * (-(len(bits) + 1) % 8)  # rbsp_trailing_bits
        raw = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))
        out, zeros = bytearray(), 0  # emulation prevention
        for b in raw:
            if zeros >= 2 and b <= 3:
                out.append(3)
                zeros = 0
            out.append(b)
            zeros = zeros + 1 if b == 0 else 0
        return bytes(out)


def _with_init_qp(pps: bytes, init_qp: int) -> bytes:
    """The PPS NAL unit with its init_qp_minus26 rewritten (every other field as it was)."""
    from qgac_jax.codecs.bits import BitReader

    r = BitReader(heic.rbsp(pps), "PPS")
    w = _Bits()
    w.ue(r.ue()), w.ue(r.ue())
    for n in (1, 1, 3, 1, 1):
        w.u(r.u(n), n)
    w.ue(r.ue()), w.ue(r.ue())
    r.se()
    w.se(init_qp - 26)
    rest = []
    try:
        while True:
            rest.append(r.u(1))
    except ValueError:
        pass
    while rest and rest[-1] == 0:  # the old trailing bits
        rest.pop()
    return pps[:2] + w.rbsp(rest[:-1])


def _hvcc_with_init_qp(hvcc: bytes, init_qp: int) -> bytes:
    out, pos = bytearray(hvcc[:23]), 23
    for _ in range(hvcc[22]):
        kind, count = hvcc[pos], int.from_bytes(hvcc[pos + 1:pos + 3], "big")
        out += hvcc[pos:pos + 3]
        pos += 3
        for _ in range(count):
            n = int.from_bytes(hvcc[pos:pos + 2], "big")
            nal = hvcc[pos + 2:pos + 2 + n]
            if kind & 63 == heic.PPS:
                nal = _with_init_qp(nal, init_qp)
            out += len(nal).to_bytes(2, "big") + nal
            pos += 2 + n
    return bytes(out)


def _tile_with_slice_qp(tile: bytes, qp: int) -> heif.PrimaryItem:
    """The image item of an x265 HEIC (slice QP 22) with its PPS rewritten so that its slice's QP is `qp`."""
    import dataclasses

    from qgac_jax.codecs.bits import BitReader

    item = heif.primary_item(tile)
    hvcc = item.properties[b"hvcC"]
    pps = next(n for n in hevc.config_nals(hvcc) if (n[0] >> 1) & 63 == hevc.PPS)
    delta = 22 - hevc.parse_pps(BitReader(heic.rbsp(pps), "PPS"))[1]["init_qp"]  # the slice's own slice_qp_delta
    return dataclasses.replace(item, properties={**item.properties, b"hvcC": _hvcc_with_init_qp(hvcc, qp - delta)})


@pytest.mark.parametrize("qp", [90, 200, -60])
def test_a_grid_tile_with_an_impossible_qp_is_refused_as_damaged_even_when_told_a_quality(qp):
    if not _has_heif():
        pytest.skip("pillow-heif is not installed")
    from test_heic import _grid_heic

    photo = coffee()
    tiles = [encoded(photo[:64, 64 * k:64 * (k + 1)], "HEIF", quality=50,
                     enc_params={"x265:qp": "22", "x265:ipratio": "1"}) for k in range(2)]
    assert heic.read_quantization(_grid_heic(tiles, 1, 2, 128, 64)).slice_qps == (22, 22)
    assert heic.read_quantization(_grid_heic([tiles[0], _tile_with_slice_qp(tiles[1], 30)], 1, 2, 128, 64)
                                  ).slice_qps == (22, 30)  # the rewrite does what it says
    bad = _grid_heic([tiles[0], _tile_with_slice_qp(tiles[1], qp)], 1, 2, 128, 64)
    with pytest.raises(codecs.Damaged, match=f"slice QP {qp} lies outside HEVC's 0..51"):
        heic.read_quantization(bad)
    for full in (True, False):  # told the file's quantizer, or a quality: refused either way
        with pytest.raises(ValueError, match="damaged HEIC"):
            decode(bad, full=full)


def _one_tile_grid(tile: heif.PrimaryItem, side: int, tile_side: int) -> bytes:
    """An HEIC whose side x side grid names one tile item in every cell (the item stored once)."""
    grid = struct.pack(">BBBBHH", 0, 0, side - 1, side - 1, side * tile_side, side * tile_side)
    iref = _box(b"iref", _box(b"dimg", struct.pack(">HH", 1, side * side) + struct.pack(">H", 2) * side * side),
                version=0)
    props = (_box(b"ispe", struct.pack(">II", side * tile_side, side * tile_side), version=0)
             + _box(b"ispe", struct.pack(">II", tile_side, tile_side), version=0)
             + _box(b"hvcC", tile.properties[b"hvcC"]))
    ipma = _box(b"ipma", struct.pack(">I", 2) + struct.pack(">HB", 1, 1) + bytes([0x81])
                + struct.pack(">HB", 2, 2) + bytes([0x82, 0x83]), version=0)

    def file(offset):
        entries = struct.pack(">HHHHII", 1, 1, 0, 1, 0, len(grid)) + struct.pack(">HHHHII", 2, 0, 0, 1, offset,
                                                                                 len(tile.data))
        data = _heif(_iloc(1, 2, entries) + _box(b"idat", grid), iref, ((1, b"grid"), (2, b"hvc1")), props, ipma,
                     tile.data)
        return data

    offset = len(file(0)) - len(tile.data)  # the tile's bytes are the mdat's, at the file's end
    return file(offset)


def test_one_tile_named_by_every_grid_cell_is_read_once_and_filler_data_is_never_unescaped(monkeypatch):
    if not _has_heif():
        pytest.skip("pillow-heif is not installed")
    import dataclasses

    tile = heif.primary_item(encoded(coffee()[:64, :64], "HEIF", quality=50,
                                     enc_params={"x265:qp": "27", "x265:ipratio": "1"}))
    filler = (38 << 1).to_bytes(1, "big") + b"\x01" + b"\xff" * 200_000  # a filler-data NAL unit of 200 KB
    padded = dataclasses.replace(tile, data=tile.data + len(filler).to_bytes(4, "big") + filler)
    hostile = _one_tile_grid(padded, 20, 64)  # 400 cells (961 of a 930 KB filler took 27 s and 1 GB)
    unescaped = []
    monkeypatch.setattr(heic, "rbsp", lambda nal, real=heic.rbsp: unescaped.append(len(nal)) or real(nal))
    got = heic.read_quantization(hostile)
    assert got.tiles == 400 and set(got.slice_qps) == {27}
    assert sum(unescaped) < 5_000  # parameter sets and slice headers of one tile, not 400 x 200 KB of filler
    items = heif.primary_items(hostile)
    assert len(items) == 400 and len({id(i) for i in items}) == 1
