"""The quantization each picture of an HEVC stream records: the QP of its slices, I, P and B alike.

A clip's packets hold one picture each, as NAL units behind length prefixes
(the hvcC record in the stream's extradata gives their size and the first
parameter sets; Annex B start codes are read too). A slice's QP is 26 +
the PPS's init_qp_minus26 + its slice_qp_delta (H.265 7.4.7.1), the last
field of the slice segment header before the chroma offsets: reaching it
in a P or B slice means reading the reference picture sets (7.3.7, in the
SPS and the slice), the long-term pictures, the reference list
modifications and the weighted prediction table (7.3.6.3) that come before
it. `heic` reads the still-image case (IDR pictures) of the same syntax.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Tuple

from qgac_jax.codecs import Damaged
from qgac_jax.codecs.bits import BitReader
from qgac_jax.codecs.heic import HeicQuantization, check_qp, rbsp

VPS, SPS, PPS = 32, 33, 34
HEADER_BYTES = 1024  # more than a slice segment header up to its QP takes (weight tables included)
B_SLICE, P_SLICE, I_SLICE = 0, 1, 2


class UnsupportedHevc(ValueError):
    """An HEVC stream whose headers this reader does not follow (scaling lists, extensions it does not parse)."""


@dataclasses.dataclass(frozen=True)
class HevcQuantization(HeicQuantization):
    """One picture's slice QPs, on HEIC's map (flat: the mean slice QP's step)."""

    frame_type: str = "?"

    codec = "hevc"

    def with_frame(self, kind: str, grey: bool) -> "HevcQuantization":
        return dataclasses.replace(self, frame_type=kind if kind != "?" else self.frame_type)

    def describe(self) -> str:
        return f"HEVC {self.frame_type}-frame, QP {self.qp:.0f}"


class HevcStream:
    """Reads the pictures of one stream in decode order, keeping its parameter sets as they come."""

    def __init__(self, extradata: bytes = b""):
        self.sps: Dict[int, dict] = {}
        self.pps: Dict[int, dict] = {}
        self.length_size = 0  # 0: Annex B start codes (no hvcC record), else the NAL units' length prefix
        if extradata[:1] == b"\x01" and len(extradata) >= 23:  # hvcC (ISO/IEC 14496-15 8.3.3)
            from qgac_jax.codecs.heic import _config_nals

            self.length_size = (extradata[21] & 3) + 1
            for nal in _config_nals(extradata):
                self._nal(nal)
        elif extradata:
            for nal in _annex_b(extradata):
                self._nal(nal)

    def read(self, packet: bytes) -> HevcQuantization:
        """The quantization of the picture in `packet`; ValueError when it has no slice this reader follows."""
        qps, found = [], None
        for nal in _prefixed(packet, self.length_size) if self.length_size else _annex_b(packet):
            slice_qp = self._nal(nal)
            if slice_qp is not None:
                qps.append(slice_qp[0])
                found = found or slice_qp
        if found is None:
            raise ValueError("an HEVC packet without a slice")
        _, offset, sps, pps, kind = found
        return HevcQuantization(sps["width"], sps["height"], tuple(qps), offset, sps["chroma_format"],
                                pps["cu_qp_delta"], frame_type=kind)

    def _nal(self, nal: bytes):
        if len(nal) < 3:
            return None
        kind = (nal[0] >> 1) & 63
        if kind in (SPS, PPS):
            r = BitReader(rbsp(nal[:4096]), "HEVC parameter set")
            if kind == SPS:
                sps_id, sps = _sps(r)
                self.sps[sps_id] = sps
            else:
                pps_id, pps = _pps(r)
                self.pps[pps_id] = pps
            return None
        if kind >= VPS:  # VPS, SEI, delimiters, filler: nothing read
            return None
        return _slice(BitReader(rbsp(nal[:HEADER_BYTES]), "HEVC slice header"), kind, self.sps, self.pps)


def _prefixed(data: bytes, size: int) -> List[bytes]:
    nals, pos = [], 0
    while pos + size <= len(data):
        n = int.from_bytes(data[pos:pos + size], "big")
        if n == 0 or pos + size + n > len(data):
            raise ValueError("a damaged HEVC packet (a NAL unit runs past its end)")
        nals.append(data[pos + size:pos + size + n])
        pos += size + n
    return nals


def _annex_b(data: bytes) -> List[bytes]:
    return [chunk.rstrip(b"\0") for chunk in data.split(b"\0\0\1") if chunk.strip(b"\0")]


def _profile_tier_level(r: BitReader, sub_layers: int) -> None:
    r.u(96)  # general profile, tier and level
    present = [(r.u(1), r.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        r.u(2 * (8 - sub_layers))
    for profile, level in present:
        r.u(88 * profile + 8 * level)


def _sps(r: BitReader) -> Tuple[int, dict]:
    r.u(4)
    sub_layers = r.u(3)
    r.u(1)
    _profile_tier_level(r, sub_layers)
    sps_id = r.ue()
    sps = {"chroma_format": r.ue()}
    sps["separate_planes"] = r.u(1) if sps["chroma_format"] == 3 else 0
    sps["width"], sps["height"] = r.ue(), r.ue()
    if r.u(1):
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        unit_x = 2 if sps["chroma_format"] in (1, 2) else 1
        unit_y = 2 if sps["chroma_format"] == 1 else 1
        sps["width"] -= unit_x * (left + right)
        sps["height"] -= unit_y * (top + bottom)
    sps["bit_depth"] = 8 + r.ue()
    r.ue()
    sps["poc_bits"] = 4 + r.ue()
    for _ in range(sub_layers + 1 if r.u(1) else 1):
        r.ue(), r.ue(), r.ue()
    min_cb = 3 + r.ue()
    ctb = 1 << (min_cb + r.ue())
    sps["ctbs"] = -(-sps["width"] // ctb) * -(-sps["height"] // ctb)  # (of the coded size: close enough for bits)
    r.ue(), r.ue(), r.ue(), r.ue()
    if r.u(1):
        raise UnsupportedHevc("an HEVC stream with scaling lists: its steps vary by frequency, which is not read")
    r.u(1)
    sps["sao"] = r.u(1)
    if r.u(1):  # PCM
        r.u(4), r.u(4), r.ue(), r.ue(), r.u(1)
    sets: List[Tuple[int, int]] = []
    for i in range(r.ue()):
        sets.append(_st_ref_pic_set(r, i, sets, in_slice=False))
    sps["rps"] = sets
    sps["long_term"] = bool(r.u(1))
    sps["lt_used"] = []
    if sps["long_term"]:
        for _ in range(r.ue()):
            r.u(sps["poc_bits"])
            sps["lt_used"].append(r.u(1))
    sps["temporal_mvp"] = r.u(1)
    return sps_id, sps


def _st_ref_pic_set(r: BitReader, index: int, sets: List[Tuple[int, int]], in_slice: bool) -> Tuple[int, int]:
    """(NumDeltaPocs, pictures used by the current one) of a short-term reference picture set (7.3.7)."""
    if index and r.u(1):  # predicted from an earlier set
        delta_idx = r.ue() + 1 if in_slice else 1
        if delta_idx > index:
            raise Damaged("a damaged HEVC stream: a reference picture set predicted from one that does not exist")
        r.u(1), r.ue()  # delta_rps_sign, abs_delta_rps_minus1
        count = used = 0
        for _ in range(sets[index - delta_idx][0] + 1):
            flag = r.u(1)
            keep = flag or r.u(1)
            count, used = count + keep, used + flag
        return count, used
    negative, positive = r.ue(), r.ue()
    if negative > 16 or positive > 16:
        raise Damaged("a damaged HEVC stream: a reference picture set of more than 16 pictures")
    used = 0
    for _ in range(negative + positive):
        r.ue()
        used += r.u(1)
    return negative + positive, used


def _pps(r: BitReader) -> Tuple[int, dict]:
    pps_id = r.ue()
    pps = {"sps": r.ue(), "dependent_slices": r.u(1), "output_flag": r.u(1), "extra_bits": r.u(3)}
    r.u(1)
    pps["cabac_init"] = r.u(1)
    pps["refs"] = (r.ue() + 1, r.ue() + 1)
    pps["init_qp"] = 26 + r.se()
    r.u(1), r.u(1)
    pps["cu_qp_delta"] = bool(r.u(1))
    if pps["cu_qp_delta"]:
        r.ue()
    pps["cb_offset"] = r.se()
    r.se()
    if not -12 <= pps["cb_offset"] <= 12:
        raise Damaged(f"a damaged HEVC stream: its PPS chroma QP offset {pps['cb_offset']} lies outside -12..12")
    pps["slice_chroma_offsets"] = r.u(1)
    pps["weighted"] = (r.u(1), r.u(1))  # P, B
    r.u(1)  # transquant bypass
    tiles = r.u(1)
    r.u(1)  # entropy coding sync
    if tiles:
        columns, rows = r.ue() + 1, r.ue() + 1
        if not r.u(1):
            for _ in range(columns - 1 + rows - 1):
                r.ue()
        r.u(1)
    r.u(1)  # loop filter across slices
    pps["deblocking_override"] = 0
    if r.u(1):
        pps["deblocking_override"] = r.u(1)
        if not r.u(1):
            r.se(), r.se()
    if r.u(1):
        raise UnsupportedHevc("an HEVC stream with scaling lists: its steps vary by frequency, which is not read")
    pps["list_modification"] = r.u(1)
    r.ue()
    pps["header_extension"] = r.u(1)
    return pps_id, pps


def _slice(r: BitReader, nal_type: int, sps_sets: Dict[int, dict], pps_sets: Dict[int, dict]):
    """(luma QP, Cb offset, sps, pps, I/P/B) of a slice segment (7.3.6.1); None for a dependent one."""
    first = r.u(1)
    if 16 <= nal_type <= 23:
        r.u(1)  # no_output_of_prior_pics_flag
    pps_id = r.ue()
    if pps_id not in pps_sets or pps_sets[pps_id]["sps"] not in sps_sets:
        raise ValueError("HEVC slices without their parameter sets")
    pps = pps_sets[pps_id]
    sps = sps_sets[pps["sps"]]
    if not first:
        if pps["dependent_slices"] and r.u(1):
            return None
        r.u(max(0, (sps["ctbs"] - 1).bit_length()))
    r.u(pps["extra_bits"])
    slice_type = r.ue()
    if slice_type > 2:
        raise Damaged(f"a damaged HEVC stream: slice type {slice_type}")
    if pps["output_flag"]:
        r.u(1)
    if sps["separate_planes"]:
        r.u(2)
    temporal_mvp, current = 0, 0
    if nal_type not in (19, 20):  # not IDR: the picture order count and its references
        r.u(sps["poc_bits"])
        sets = sps["rps"]
        if not r.u(1):
            current = _st_ref_pic_set(r, len(sets), sets, in_slice=True)[1]
        elif len(sets) > 1:
            current = sets[r.u((len(sets) - 1).bit_length())][1]
        elif sets:
            current = sets[0][1]
        if sps["long_term"]:
            current += _long_term(r, sps)
        if sps["temporal_mvp"]:
            temporal_mvp = r.u(1)
    chroma = 0 if sps["separate_planes"] else sps["chroma_format"]
    if sps["sao"]:
        r.u(1)
        if chroma:
            r.u(1)
    if slice_type != I_SLICE:
        _inter(r, slice_type, pps, chroma, temporal_mvp, current)
    qp = check_qp(pps["init_qp"] + r.se(), sps["bit_depth"])
    slice_offset = r.se() if pps["slice_chroma_offsets"] else 0
    if not -12 <= pps["cb_offset"] + slice_offset <= 12:
        raise Damaged(f"a damaged HEVC stream: its slice chroma QP offset {slice_offset} lies outside -12..12")
    return qp, pps["cb_offset"] + slice_offset, sps, pps, "BPI"[slice_type]


def _long_term(r: BitReader, sps: dict) -> int:
    """Reads a slice's long-term pictures; how many the current picture uses."""
    in_sps = r.ue() if sps["lt_used"] else 0
    used = 0
    for i in range(in_sps + r.ue()):
        if i < in_sps:
            index = r.u((len(sps["lt_used"]) - 1).bit_length()) if len(sps["lt_used"]) > 1 else 0
            used += sps["lt_used"][min(index, len(sps["lt_used"]) - 1)]
        else:
            r.u(sps["poc_bits"])
            used += r.u(1)
        if r.u(1):
            r.ue()
    return used


def _inter(r: BitReader, slice_type: int, pps: dict, chroma: int, temporal_mvp: int, current: int) -> None:
    """A P or B slice's fields between its SAO flags and its QP."""
    refs = list(pps["refs"])
    if r.u(1):  # num_ref_idx_active_override_flag
        refs[0] = r.ue() + 1
        if slice_type == B_SLICE:
            refs[1] = r.ue() + 1
    if max(refs) > 16:
        raise Damaged("a damaged HEVC stream: more than 16 reference pictures")
    lists = (0, 1) if slice_type == B_SLICE else (0,)
    if pps["list_modification"] and current > 1:
        for lx in lists:
            if r.u(1):
                for _ in range(refs[lx]):
                    r.u((current - 1).bit_length())
    if slice_type == B_SLICE:
        r.u(1)  # mvd_l1_zero_flag
    if pps["cabac_init"]:
        r.u(1)
    if temporal_mvp:
        from_l0 = r.u(1) if slice_type == B_SLICE else 1
        if refs[0 if from_l0 else 1] > 1:
            r.ue()
    if pps["weighted"][0 if slice_type == P_SLICE else 1]:
        _weights(r, [refs[lx] for lx in lists], chroma)
    r.ue()  # five_minus_max_num_merge_cand


def _weights(r: BitReader, refs: List[int], chroma: int) -> None:
    """pred_weight_table (7.3.6.3) of single-layer streams, read past."""
    r.ue()
    if chroma:
        r.se()
    for count in refs:
        luma = [r.u(1) for _ in range(count)]
        colour = [r.u(1) for _ in range(count)] if chroma else [0] * count
        for has_luma, has_colour in zip(luma, colour):
            if has_luma:
                r.se(), r.se()
            if has_colour:
                for _ in range(4):
                    r.se()
