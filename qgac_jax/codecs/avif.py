"""The quantizer an AVIF photo records, read from its AV1 sequence and frame headers.

An AVIF file is HEIF around an AV1 key frame (item type `av01`): a stream of
OBUs (AV1 specification section 5.3) with a sequence header (5.5) and a frame
(5.9, 5.10). The frame header's quantization_params (5.9.12) hold base_q_idx
(0..255) and the DC and AC deltas of each plane; the dequantization steps of
an index come from the specification's tables (7.12.2). To reach them the
header is followed through the fields before: frame size, render size,
screen-content tools and tile_info (5.9.15), with the sequence header's
flags. Segment and superblock deltas of the index live in the tile data and
are not read: `segment_q` and `delta_q` say whether the picture departs from
base_q_idx.

Read: still images coded with a reduced still-picture sequence header (what
libavif writes for a single image). Other streams raise UnsupportedAvif with
the reason; callers fall back to estimating the quality from pixels.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

from qgac_jax.codecs import av1_tables, heif
from qgac_jax.codecs.bits import BitReader
from qgac_jax.quantization import QMAP_SCALE

DC_STEPS = np.array(av1_tables.DC_STEPS_8BIT)
AC_STEPS = np.array(av1_tables.AC_STEPS_8BIT)
ORTHONORMAL_GAIN = 8  # 8-bit AV1 coefficients are 8 times an orthonormal transform's (see `codecs`)
OBU_SEQUENCE_HEADER, OBU_FRAME_HEADER, OBU_FRAME = 1, 3, 6


class NotAvif(heif.NotHeif):
    """Not an HEIF file with an AV1 image."""


class UnsupportedAvif(ValueError):
    """An AVIF whose headers this reader does not follow."""


@dataclasses.dataclass(frozen=True)
class AvifQuantization:
    width: int
    height: int
    base_q_idx: int
    deltas: Tuple[int, int, int, int, int]  # DC of Y, then DC and AC of U, DC and AC of V (5.9.12)
    bit_depth: int
    monochrome: bool
    subsampling: Tuple[int, int]  # (x, y): (1, 1) is 4:2:0
    segment_q: bool  # segments may move the index off base_q_idx
    delta_q: bool  # superblocks may move it (delta_q_present)
    qm_levels: Optional[Tuple[int, int, int]] = None  # quantizer matrix levels of Y, U, V (15: flat), when used
    tiles: int = 1  # the coded images of a grid (this is the one with the median base_q_idx); 1: a single image

    def steps(self) -> Dict[str, int]:
        """8-bit dequantization steps (the tables of higher bit depths are 4 and 16 times larger)."""
        q = self.base_q_idx
        y_dc, u_dc, u_ac, v_dc, v_ac = self.deltas
        at = lambda table, d: int(table[int(np.clip(q + d, 0, 255))])  # noqa: E731
        return {"y_dc": at(DC_STEPS, y_dc), "y_ac": at(AC_STEPS, 0), "u_dc": at(DC_STEPS, u_dc),
                "u_ac": at(AC_STEPS, u_ac), "v_dc": at(DC_STEPS, v_dc), "v_ac": at(AC_STEPS, v_ac)}

    codec = "avif"
    block = 1  # the map is flat: any flip or transpose keeps it

    @property
    def is_grey(self) -> bool:
        return self.monochrome

    def qmap(self, height: int, width: int) -> np.ndarray:
        """[H, W, K] float32 orthonormal-equivalent steps / 255, luma (and chroma: the larger of U's and V's), AC
        steps flat over the picture: AV1's transforms range from 4x4 to 64x64 per block, so no period ties pixels
        to frequencies. AV1's 8-bit steps are for coefficients 8 times orthonormal (see `codecs`)."""
        s = self.steps()
        steps = [s["y_ac"]] + ([] if self.monochrome else [max(s["u_ac"], s["v_ac"])])
        scaled = np.array(steps, np.float32) / np.float32(ORTHONORMAL_GAIN) * np.float32(QMAP_SCALE)
        return np.broadcast_to(scaled, (height, width, len(steps))).copy()

    def transformed(self, transpose: bool, flip_v: bool, flip_h: bool) -> "AvifQuantization":
        return self

    def describe(self) -> str:
        return f"AV1 base_q_idx {self.base_q_idx}"


def _obus(data: bytes):
    """(type, payload) of each OBU of an AV1 stream with size fields (5.3)."""
    pos = 0
    while pos < len(data):
        header = data[pos]
        kind, extension, has_size = (header >> 3) & 15, (header >> 2) & 1, (header >> 1) & 1
        pos += 1 + extension
        if not has_size:
            yield kind, data[pos:]
            return
        size, shift = 0, 0
        while True:
            if pos >= len(data):
                raise ValueError("truncated AV1 stream")
            byte = data[pos]
            pos += 1
            size |= (byte & 127) << shift
            shift += 7
            if not byte & 128:
                break
        if pos + size > len(data):
            raise ValueError("truncated AV1 stream")
        yield kind, data[pos:pos + size]
        pos += size


def sniff(data: bytes) -> bool:
    return heif.is_avif(data)


def read_quantization(data: bytes) -> AvifQuantization:
    """The quantizer of an AVIF file's primary image; for a grid image, the tile with the median base_q_idx
    (see the module docstring for what is read)."""
    tiles = [_image(item.data) for item in heif.coded_images(data, b"av01", "AVIF", NotAvif, UnsupportedAvif)]
    if len(tiles) == 1:
        return tiles[0]
    median = sorted(tiles, key=lambda t: t.base_q_idx)[len(tiles) // 2]
    return dataclasses.replace(median, tiles=len(tiles))


def _image(data: bytes) -> AvifQuantization:
    seq = None
    for kind, payload in _obus(data):
        if kind == OBU_SEQUENCE_HEADER:
            seq = _sequence_header(BitReader(payload, "AV1 header"))
        elif kind in (OBU_FRAME_HEADER, OBU_FRAME):
            if seq is None:
                raise ValueError("an AV1 frame before its sequence header")
            return _frame_header(BitReader(payload, "AV1 header"), seq)
    raise ValueError("an AVIF image without a frame (truncated?)")


def _sequence_header(b: BitReader) -> dict:
    profile = b.f(3)
    b.f(1)  # still_picture
    if not b.f(1):
        raise UnsupportedAvif("an AV1 stream without a reduced still-picture header: not read yet")
    b.f(5)  # seq_level_idx
    wbits, hbits = b.f(4) + 1, b.f(4) + 1
    seq = {"width": b.f(wbits) + 1, "height": b.f(hbits) + 1, "sb128": b.f(1)}
    b.f(2)  # filter intra, intra edge filter
    seq["superres"] = b.f(1)
    b.f(2)  # cdef, restoration
    high = b.f(1)
    seq["bit_depth"] = (12 if b.f(1) else 10) if profile == 2 and high else (10 if high else 8)
    seq["mono"] = 0 if profile == 1 else b.f(1)
    cp = tc = mc = 2  # unspecified
    if b.f(1):
        cp, tc, mc = b.f(8), b.f(8), b.f(8)
    seq["separate_uv"] = 0
    if seq["mono"]:
        b.f(1)
        seq["subsampling"] = (1, 1)
        return seq
    if (cp, tc, mc) == (1, 13, 0):  # sRGB: 4:4:4, full range
        seq["subsampling"] = (0, 0)
    else:
        b.f(1)  # colour range
        if profile == 0:
            seq["subsampling"] = (1, 1)
        elif profile == 1:
            seq["subsampling"] = (0, 0)
        else:
            x = b.f(1) if seq["bit_depth"] == 12 else 1
            seq["subsampling"] = (x, b.f(1) if x and seq["bit_depth"] == 12 else 0)
        if seq["subsampling"] == (1, 1):
            b.f(2)  # chroma sample position
    seq["separate_uv"] = b.f(1)
    return seq


def _frame_header(b: BitReader, seq: dict) -> AvifQuantization:
    """A reduced still-picture key frame's header, up to quantization, segmentation and delta-q (5.9)."""
    b.f(1)  # disable_cdf_update
    screen_content = b.f(1)  # allow_screen_content_tools (the sequence lets each frame choose)
    if screen_content:
        b.f(1)  # force_integer_mv
    width, height = seq["width"], seq["height"]
    if seq["superres"] and b.f(1):  # use_superres
        raise UnsupportedAvif("an AV1 frame coded with super-resolution")
    if b.f(1):  # render_and_frame_size_different
        b.f(32)
    if screen_content:
        b.f(1)  # allow_intrabc
    _tile_info(b, width, height, seq["sb128"])
    base = b.f(8)

    def delta() -> int:
        return b.su(7) if b.f(1) else 0

    y_dc = delta()
    u_dc = u_ac = v_dc = v_ac = 0
    if not seq["mono"]:
        diff_uv = b.f(1) if seq["separate_uv"] else 0
        u_dc, u_ac = delta(), delta()
        v_dc, v_ac = (delta(), delta()) if diff_uv else (u_dc, u_ac)
    qm_levels = None
    if b.f(1):  # using_qmatrix
        qm_levels = (b.f(4), b.f(4))
        qm_levels += (b.f(4),) if seq["separate_uv"] else qm_levels[1:]
    segment_q = _segmentation(b)
    delta_q = bool(base > 0 and b.f(1))
    return AvifQuantization(seq["width"], seq["height"], base, (y_dc, u_dc, u_ac, v_dc, v_ac), seq["bit_depth"],
                            bool(seq["mono"]), seq["subsampling"], segment_q, delta_q, qm_levels)


def _tile_log2(block: int, target: int) -> int:
    k = 0
    while (block << k) < target:
        k += 1
    return k


def _tile_info(b: BitReader, width: int, height: int, sb128: int) -> None:
    """Section 5.9.15, read to be skipped."""
    mi_cols, mi_rows = 2 * ((width + 7) >> 3), 2 * ((height + 7) >> 3)
    shift = 5 if sb128 else 4
    sb_cols, sb_rows = (mi_cols + (1 << shift) - 1) >> shift, (mi_rows + (1 << shift) - 1) >> shift
    sb_size = shift + 2
    max_width_sb, max_area_sb = 4096 >> sb_size, (4096 * 2304) >> (2 * sb_size)
    min_log2_cols = _tile_log2(max_width_sb, sb_cols)
    max_log2_cols, max_log2_rows = _tile_log2(1, min(sb_cols, 64)), _tile_log2(1, min(sb_rows, 64))
    min_log2_tiles = max(min_log2_cols, _tile_log2(max_area_sb, sb_rows * sb_cols))
    if b.f(1):  # uniform spacing
        cols_log2 = min_log2_cols
        while cols_log2 < max_log2_cols and b.f(1):
            cols_log2 += 1
        rows_log2 = max(min_log2_tiles - cols_log2, 0)
        while rows_log2 < max_log2_rows and b.f(1):
            rows_log2 += 1
    else:
        start, widest, cols = 0, 0, 0
        while start < sb_cols:
            size = b.ns(min(sb_cols - start, max_width_sb)) + 1
            widest, start, cols = max(widest, size), start + size, cols + 1
        area = (sb_rows * sb_cols) >> (min_log2_tiles + 1) if min_log2_tiles else sb_rows * sb_cols
        max_height_sb = max(area // widest, 1)
        start, rows = 0, 0
        while start < sb_rows:
            start, rows = start + b.ns(min(sb_rows - start, max_height_sb)) + 1, rows + 1
        cols_log2, rows_log2 = _tile_log2(1, cols), _tile_log2(1, rows)
    if cols_log2 or rows_log2:
        b.f(cols_log2 + rows_log2 + 2)  # context_update_tile_id, tile_size_bytes_minus_1


def _segmentation(b: BitReader) -> bool:
    """Section 5.9.14 for a frame without a reference: whether any segment changes the quantizer index."""
    if not b.f(1):
        return False
    bits, signed = (8, 6, 6, 6, 6, 3, 0, 0), (1, 1, 1, 1, 1, 0, 0, 0)
    changes_q = False
    for _ in range(8):
        for feature in range(8):
            if b.f(1):
                changes_q |= feature == 0
                if bits[feature]:
                    b.f(bits[feature] + signed[feature])
    return changes_q
