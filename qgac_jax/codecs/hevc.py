"""HEVC's syntax, read for the quantization it records: NAL unit payloads, the hvcC record's parameter sets,
sequence and picture parameter sets, and slice segment headers of every slice type (H.265 7.3).

A slice's luma quantization parameter is 26 + the PPS's init_qp_minus26 +
the slice header's slice_qp_delta (7.4.7.1), and its step is
2^((QP - 4) / 6) (8.6.2; QP 4 is a step of 1). Chroma QPs come from the luma
QP, the PPS's and slice's offsets and the 4:2:0 mapping table (8.6.1).
Coding units may adjust the QP (cu_qp_delta) when the PPS enables it; those
adjustments sit in the coefficient data and are not read: the slice QP is
what the map holds, and `cu_qp_delta` says whether the picture may depart
from it. Reaching slice_qp_delta in a P or B slice means reading the
reference picture sets (7.3.7, in the SPS and the slice), the long-term
pictures, the reference list modifications and the weighted prediction
table (7.3.6.3) before it. `heic` reads HEIC photos with it, `hevc_stream`
the pictures of a clip.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from qgac_jax.codecs import Damaged
from qgac_jax.codecs.bits import BitReader

VPS, SPS, PPS = 32, 33, 34  # NAL unit types (Table 7-1); the other non-VCL units (SEI, filler...) are not read
CHROMA_QP_420 = (29, 30, 31, 32, 33, 33, 34, 34, 35, 35, 36, 36, 37, 37)  # QpC for qPi 30..43 (Table 8-10)
B_SLICE, P_SLICE, I_SLICE = 0, 1, 2


class UnsupportedHevc(ValueError):
    """HEVC whose quantization this reader does not follow (scaling lists)."""


def qp_step(qp: float) -> float:
    """The step of a QP (any QP `check_qp` admits: no overflow)."""
    return float(2.0 ** ((qp - 4) / 6))


def check_qp(qp: int, bit_depth: int, what: str = "slice QP", name: str = "HEIC") -> int:
    """`qp` when H.265 allows it (-QpBdOffsetY..51, 7.4.7.1); a ValueError calling the file damaged otherwise:
    an impossible quantizer is never averaged into a map."""
    low = -6 * (bit_depth - 8)
    if not low <= qp <= 51:
        raise Damaged(f"a damaged {name}: its {what} {qp} lies outside HEVC's {low}..51")
    return qp


def chroma_qp(luma_qp: int, offset: int) -> int:
    """QpC of a 4:2:0 picture for a luma QP and the PPS + slice Cb offset (8-bit: QpBdOffsetC = 0)."""
    qpi = int(np.clip(luma_qp + offset, 0, 57))
    return qpi if qpi < 30 else CHROMA_QP_420[qpi - 30] if qpi <= 43 else qpi - 6


def rbsp(nal: bytes) -> bytes:
    """A NAL unit's payload without its 2-byte header and emulation prevention bytes (00 00 03 -> 00 00)."""
    out, zeros = bytearray(), 0
    for b in nal[2:]:
        if zeros >= 2 and b == 3:
            zeros = 0
            continue
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def _uint16(data: bytes, pos: int):
    if pos + 2 > len(data):
        raise ValueError("cut")
    return int.from_bytes(data[pos:pos + 2], "big"), pos + 2


def config_nals(config: bytes) -> List[bytes]:
    """The parameter sets of an hvcC box, each bounded by the box (ISO/IEC 14496-15 8.3.3)."""
    if len(config) < 23:
        raise ValueError("a damaged hvcC box")
    nals, pos = [], 23
    try:
        for _ in range(config[22]):
            count, pos = _uint16(config, pos + 1)
            for _ in range(count):
                n, pos = _uint16(config, pos)
                if pos + n > len(config):
                    raise ValueError("cut")
                nals.append(config[pos:pos + n])
                pos += n
    except ValueError:
        raise ValueError("a damaged hvcC box (its parameter sets run past its end)") from None
    return nals


def _profile_tier_level(r: BitReader, sub_layers: int) -> None:
    r.u(96)  # general profile, tier and level
    present = [(r.u(1), r.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        r.u(2 * (8 - sub_layers))
    for profile, level in present:
        r.u(88 * profile + 8 * level)


def parse_sps(r: BitReader) -> Tuple[int, dict]:
    """(sps id, what slice headers and maps need) of a sequence parameter set (7.3.2.2)."""
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


def parse_pps(r: BitReader, name: str = "HEVC stream") -> Tuple[int, dict]:
    """(pps id, what slice headers need) of a picture parameter set (7.3.2.3)."""
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
        raise Damaged(f"a damaged {name}: its PPS chroma QP offset {pps['cb_offset']} lies outside HEVC's -12..12")
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


def slice_qp(r: BitReader, nal_type: int, sps_sets: Dict[int, dict], pps_sets: Dict[int, dict],
             name: str = "HEVC stream"):
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
        raise Damaged(f"a damaged {name}: slice type {slice_type}")
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
    qp = check_qp(pps["init_qp"] + r.se(), sps["bit_depth"], name=name)
    slice_offset = r.se() if pps["slice_chroma_offsets"] else 0
    if not -12 <= pps["cb_offset"] + slice_offset <= 12:
        raise Damaged(f"a damaged {name}: its slice chroma QP offset {slice_offset} lies outside HEVC's -12..12")
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
