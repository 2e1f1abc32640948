"""The quantizer an AVIF photo records, read from its AV1 sequence and frame headers.

An AVIF file is HEIF around an AV1 key frame (item type `av01`): a stream of
OBUs (AV1 specification section 5.3) with a sequence header (5.5) and a frame
(5.9, 5.10). The frame header's quantization_params (5.9.12) hold base_q_idx
(0..255) and the DC and AC deltas of each plane; the dequantization steps of
an index come from the specification's tables (7.12.2). To reach them the
header is followed through the fields before (frame size, render size,
screen-content tools, tile_info 5.9.15). Segment and superblock deltas of the
index live in the tile data and are not read: `segment_q` and `delta_q` say
whether the picture departs from base_q_idx.

Read: the first frame of a still or an animation, with libavif's reduced
still-picture sequence header or the full one (libaom through ffmpeg,
animations). Frames that are not key frames, super-resolution and a stream
that starts by showing an existing frame raise UnsupportedAvif.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

from qgac_jax.codecs import av1_tables, heif, obu
from qgac_jax.codecs.bits import BitReader
from qgac_jax.codecs.jpeg_tables import QMAP_SCALE

DC_STEPS = np.array(av1_tables.DC_STEPS_8BIT)
AC_STEPS = np.array(av1_tables.AC_STEPS_8BIT)
ORTHONORMAL_GAIN = 8  # 8-bit AV1 coefficients are 8 times an orthonormal transform's (see `codecs`)


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
    sequence: bool = False  # the first frame of an image sequence without a primary item

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
        return f"AV1 base_q_idx {self.base_q_idx}" + (" (the first frame of a sequence)" if self.sequence else "")


def sniff(data: bytes) -> bool:
    return heif.is_avif(data)


def read_quantization(data: bytes) -> AvifQuantization:
    """The quantizer of an AVIF file's primary image; for a grid image, the tile with the median base_q_idx; for
    an image sequence without a primary item, its first frame (see the module docstring for what is read)."""
    try:
        items = heif.coded_images(data, b"av01", "AVIF", NotAvif, UnsupportedAvif)
    except NotAvif as not_avif:
        try:
            first = heif.first_sample(bytes(data), b"av01")
        except heif.NotHeif:  # (not even boxes: the first reason stands)
            first = None
        if first is None:
            raise not_avif from None
        return dataclasses.replace(_image(first.properties.get(b"av1C", b"")[4:] + first.data), sequence=True)
    tiles = heif.read_each(items, _sized)
    if len(tiles) == 1:
        return tiles[0]
    median = sorted(tiles, key=lambda t: t.base_q_idx)[len(tiles) // 2]
    return dataclasses.replace(median, tiles=len(tiles))


def _sized(item: heif.PrimaryItem) -> AvifQuantization:
    """An image item's quantization, its frame's size checked against the item's (libavif stretches a frame to
    the size the item claims: a tiny file would restore as a huge picture)."""
    q = _image(item.data)
    heif.check_coded_size(item, q.width, q.height, "AVIF", "AV1 frame")
    return q


def _image(data: bytes) -> AvifQuantization:
    seq = None
    for kind, payload in obu.units(data):
        if kind == obu.SEQUENCE_HEADER:
            seq = _sequence_header(BitReader(payload, "AV1 header"))
        elif kind in (obu.FRAME_HEADER, obu.FRAME):
            if seq is None:
                raise ValueError("an AV1 frame before its sequence header")
            return _frame_header(BitReader(payload, "AV1 header"), seq)
    raise ValueError("an AVIF image without a frame (truncated?)")


def _sequence_header(b: BitReader) -> dict:
    """Section 5.5: what the frame header's reading depends on, and the picture's format."""
    profile = b.f(3)
    b.f(1)  # still_picture
    seq = {"reduced": b.f(1), "decoder_model": 0, "equal_interval": 0, "ops": [], "frame_ids": 0,
           "sct": 2, "int_mv": 2, "order_hint_bits": 0,  # 2: SELECT, chosen per frame
           "ref_frame_mvs": 0, "delta_id_bits": 0}
    if seq["reduced"]:
        b.f(5)  # seq_level_idx
    else:
        _operating_points(b, seq)
    wbits, hbits = b.f(4) + 1, b.f(4) + 1
    seq["wbits"], seq["hbits"] = wbits, hbits
    seq["width"], seq["height"] = b.f(wbits) + 1, b.f(hbits) + 1
    if not seq["reduced"] and b.f(1):  # frame_id_numbers_present_flag
        seq["delta_id_bits"] = b.f(4) + 2
        seq["frame_ids"] = seq["delta_id_bits"] + b.f(3) + 1  # the id's length
    seq["sb128"] = b.f(1)
    b.f(2)  # filter intra, intra edge filter
    if not seq["reduced"]:
        b.f(4)  # interintra and masked compound, warped motion, dual filter
        order_hint = b.f(1)
        if order_hint:
            b.f(1)  # jnt_comp
            seq["ref_frame_mvs"] = b.f(1)  # (what inter frames' headers depend on: `av1_stream`)
        seq["sct"] = 2 if b.f(1) else b.f(1)  # seq_choose_screen_content_tools, seq_force_screen_content_tools
        if seq["sct"]:
            seq["int_mv"] = 2 if b.f(1) else b.f(1)
        if order_hint:
            seq["order_hint_bits"] = b.f(3) + 1
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


def _operating_points(b: BitReader, seq: dict) -> None:
    """Section 5.5.1's timing, decoder model and operating points of a full sequence header, read to be skipped
    but for what the frame header needs."""
    if b.f(1):  # timing_info_present_flag
        b.f(64)  # num_units_in_display_tick, time_scale
        seq["equal_interval"] = b.f(1)
        if seq["equal_interval"]:
            b.ue()  # num_ticks_per_picture_minus_1 (uvlc)
        if b.f(1):  # decoder_model_info_present_flag
            seq["decoder_model"] = 1
            seq["buffer_delay_bits"] = b.f(5) + 1
            b.f(32)  # num_units_in_decoding_tick
            seq["removal_time_bits"], seq["presentation_time_bits"] = b.f(5) + 1, b.f(5) + 1
    display_delay = b.f(1)
    for _ in range(b.f(5) + 1):
        idc, level = b.f(12), b.f(5)
        if level > 7:
            b.f(1)  # seq_tier
        model = 0
        if seq["decoder_model"] and b.f(1):  # decoder_model_present_for_this_op
            model = 1
            b.f(2 * seq["buffer_delay_bits"] + 1)  # decoder and encoder buffer delays, low_delay_mode_flag
        if display_delay and b.f(1):
            b.f(4)  # initial_display_delay_minus_1
        seq["ops"].append((idc, model))


def _frame_header(b: BitReader, seq: dict) -> AvifQuantization:
    """A key frame's header (the first frame of a still or of an animation), up to quantization, segmentation
    and delta-q (5.9.2)."""
    show, error_resilient = 1, 1
    if not seq["reduced"]:
        if b.f(1):  # show_existing_frame
            raise UnsupportedAvif("an AV1 stream that starts by showing an existing frame")
        frame_type, show = b.f(2), b.f(1)
        if frame_type != 0:
            raise UnsupportedAvif("an AV1 stream whose first frame is not a key frame")
        if show and seq["decoder_model"] and not seq["equal_interval"]:
            b.f(seq["presentation_time_bits"])  # temporal_point_info
        if not show:
            b.f(1)  # showable_frame
            error_resilient = b.f(1)
    disable_cdf = b.f(1)  # disable_cdf_update
    screen_content = b.f(1) if seq["sct"] == 2 else seq["sct"]  # allow_screen_content_tools
    if screen_content and seq["int_mv"] == 2:
        b.f(1)  # force_integer_mv
    width, height = seq["width"], seq["height"]
    if not seq["reduced"]:
        if seq["frame_ids"]:
            b.f(seq["frame_ids"])  # current_frame_id
        override = b.f(1)  # frame_size_override_flag
        b.f(seq["order_hint_bits"])  # order_hint
        if seq["decoder_model"] and b.f(1):  # buffer_removal_time_present_flag
            for idc, model in seq["ops"]:
                if model and (idc == 0 or (idc & 1 and (idc >> 8) & 1)):  # (temporal and spatial layer 0)
                    b.f(seq["removal_time_bits"])
        if not show and b.f(8) != 255 and error_resilient:  # a hidden key frame's refresh_frame_flags
            b.f(8 * seq["order_hint_bits"])  # ref_order_hint
        if override:
            width, height = b.f(seq["wbits"]) + 1, b.f(seq["hbits"]) + 1
    if seq["superres"] and b.f(1):  # use_superres
        raise UnsupportedAvif("an AV1 frame coded with super-resolution")
    if b.f(1):  # render_and_frame_size_different
        b.f(32)
    if screen_content:
        b.f(1)  # allow_intrabc
    if not seq["reduced"] and not disable_cdf:
        b.f(1)  # disable_frame_end_update_cdf
    _tile_info(b, width, height, seq["sb128"])
    return AvifQuantization(width, height, *quantization_params(b, seq))


def quantization_params(b: BitReader, seq: dict, primary_ref: bool = False, earlier: bool = False) -> tuple:
    """quantization_params (5.9.12), segmentation_params (5.9.14) and delta_q_params (5.9.17): AvifQuantization's
    fields after the frame size, in order (`primary_ref`, `earlier`: `_segmentation`'s)."""
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
    segment_q = _segmentation(b, primary_ref, earlier)
    delta_q = bool(base > 0 and b.f(1))
    return (base, (y_dc, u_dc, u_ac, v_dc, v_ac), seq["bit_depth"], bool(seq["mono"]), seq["subsampling"], segment_q,
            delta_q, qm_levels)


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


def _segmentation(b: BitReader, primary_ref: bool = False, earlier: bool = False) -> bool:
    """Section 5.9.14: whether any segment changes the quantizer index (`earlier`: the reference frame's answer,
    for a frame that keeps its segment data)."""
    if not b.f(1):
        return False
    if primary_ref:  # a frame with a primary reference may keep that frame's segment data
        if b.f(1):  # segmentation_update_map
            b.f(1)  # segmentation_temporal_update
        if not b.f(1):  # segmentation_update_data
            return earlier
    bits, signed = (8, 6, 6, 6, 6, 3, 0, 0), (1, 1, 1, 1, 1, 0, 0, 0)
    changes_q = False
    for _ in range(8):
        for feature in range(8):
            if b.f(1):
                changes_q |= feature == 0
                if bits[feature]:
                    b.f(bits[feature] + signed[feature])
    return changes_q
