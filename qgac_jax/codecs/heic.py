"""The quantization parameter an HEIC photo records, read from its HEVC parameter sets and slice headers.

An HEIC file is an ISO base media file (HEIF) whose primary image item is an
HEVC-coded picture (item type `hvc1`): the item's `hvcC` property holds the
sequence and picture parameter sets, the item's data the picture's slices.
A slice's luma quantization parameter is 26 + the PPS's init_qp_minus26 +
the slice header's slice_qp_delta (H.265 sections 7.3.2.3, 7.3.6.1 and
7.4.7.1), and its step is 2^((QP - 4) / 6) (8.6.2; QP 4 is a step of 1).
Chroma QPs come from the luma QP, the PPS's and slice's offsets and the 4:2:0
mapping table (8.6.1). Coding units may adjust the QP (cu_qp_delta) when the
PPS enables it; those adjustments sit in the coefficient data and are not
read: the slice QP is what the map holds, and `cu_qp_delta` says whether the
picture may depart from it.

Read: IDR pictures in I slices (what still-image encoders write, x265 among
them), alone or as the tiles of a grid image (phones write 512x512 tiles:
the QPs of every tile's slices are read). Pictures that are not IDR and
scaling lists raise UnsupportedHeic with the reason.
"""

from __future__ import annotations

import dataclasses
from typing import List, Tuple

import numpy as np

from qgac_jax.codecs import Damaged, heif
from qgac_jax.codecs.bits import BitReader
from qgac_jax.codecs.jpeg_tables import QMAP_SCALE

SLICE_HEADER_BYTES = 256  # more than the slice header fields up to slice_qp_delta can take
PARAMETER_SET_BYTES = 4096  # more than an SPS or PPS up to the fields read can take (they are tens of bytes)
VPS, SPS, PPS = 32, 33, 34  # NAL unit types (Table 7-1); the other non-VCL units (SEI, filler...) are not read
CHROMA_QP_420 = (29, 30, 31, 32, 33, 33, 34, 34, 35, 35, 36, 36, 37, 37)  # QpC for qPi 30..43 (Table 8-10)


class NotHeic(heif.NotHeif):
    """Not an HEIF file with an HEVC image."""


class UnsupportedHeic(ValueError):
    """An HEIC whose quantization this reader does not follow (grid, non-IDR, scaling lists)."""


def qp_step(qp: float) -> float:
    """The step of a QP (any QP `check_qp` admits: no overflow)."""
    return float(2.0 ** ((qp - 4) / 6))


def check_qp(qp: int, bit_depth: int, what: str = "slice QP") -> int:
    """`qp` when H.265 allows it (-QpBdOffsetY..51, 7.4.7.1); a ValueError calling the file damaged otherwise:
    an impossible quantizer is never averaged into a map."""
    low = -6 * (bit_depth - 8)
    if not low <= qp <= 51:
        raise Damaged(f"a damaged HEIC: its {what} {qp} lies outside HEVC's {low}..51")
    return qp


def chroma_qp(luma_qp: int, offset: int) -> int:
    """QpC of a 4:2:0 picture for a luma QP and the PPS + slice Cb offset (8-bit: QpBdOffsetC = 0)."""
    qpi = int(np.clip(luma_qp + offset, 0, 57))
    return qpi if qpi < 30 else CHROMA_QP_420[qpi - 30] if qpi <= 43 else qpi - 6


@dataclasses.dataclass(frozen=True)
class HeicQuantization:
    width: int
    height: int
    slice_qps: Tuple[int, ...]  # the luma QP of each slice, in order
    chroma_offset: int  # pps_cb_qp_offset + the first slice's offset
    chroma_format: int  # 0 grey, 1 4:2:0, 2 4:2:2, 3 4:4:4
    cu_qp_delta: bool  # coding units may change the QP
    tiles: int = 1  # the coded images of a grid (their slices' QPs are all in slice_qps); 1: a single image

    @property
    def qp(self) -> float:
        return float(np.mean(self.slice_qps))

    codec = "heic"
    block = 1  # the map is flat: any flip or transpose keeps it

    @property
    def is_grey(self) -> bool:
        return self.chroma_format == 0

    def qmap(self, height: int, width: int) -> np.ndarray:
        """[H, W, K] float32 steps / 255 of the slice QP, luma (and chroma), constant over the picture (HEVC's
        transforms vary in size from 4 to 32 pixels per block, so there is no fixed period to tile). HEVC defines
        its steps for an orthonormal transform already (see `codecs`)."""
        qp = int(round(self.qp))
        steps = [qp_step(qp)] + ([] if self.is_grey else [qp_step(chroma_qp(qp, self.chroma_offset))])
        # (in a deeper picture, QpBdOffset raises the QP by 6 per bit and so the step by 2 per bit: in 8-bit
        # units it is the same 2^((QP-4)/6))
        return np.broadcast_to(np.array(steps, np.float32) * np.float32(QMAP_SCALE), (height, width, len(steps))).copy()

    def transformed(self, transpose: bool, flip_v: bool, flip_h: bool) -> "HeicQuantization":
        return self

    def describe(self) -> str:
        return f"HEVC QP {self.qp:.0f}"


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


def sniff(data: bytes) -> bool:
    return heif.is_heic(data)


def read_quantization(data: bytes) -> HeicQuantization:
    """The slice QPs of an HEIC file's primary image, or of every tile of a grid image (see the module
    docstring for what is read)."""
    items = heif.coded_images(data, b"hvc1", "HEIC", NotHeic, UnsupportedHeic)
    pictures = heif.read_each(items, lambda item: _picture(_nals(item)))
    if len(pictures) == 1:
        return pictures[0]
    first = pictures[0]
    return dataclasses.replace(first, slice_qps=tuple(qp for p in pictures for qp in p.slice_qps),
                               cu_qp_delta=any(p.cu_qp_delta for p in pictures), tiles=len(pictures))


def _nals(item: heif.PrimaryItem) -> List[bytes]:
    """The parameter sets of an image item's hvcC, then the NAL units of its data."""
    if b"hvcC" not in item.properties:
        raise NotHeic("an HEVC image without its parameter sets (no hvcC)")
    config = item.properties[b"hvcC"]
    nals = _config_nals(config)
    length_size = (config[21] & 3) + 1
    pos = 0
    while pos + length_size <= len(item.data):
        n = int.from_bytes(item.data[pos:pos + length_size], "big")
        if pos + length_size + n > len(item.data):
            raise ValueError("truncated HEIC image data")
        nals.append(item.data[pos + length_size:pos + length_size + n])
        pos += length_size + n
    return nals


def _config_nals(config: bytes) -> List[bytes]:
    """The parameter sets of an hvcC box, each bounded by the box (ISO/IEC 14496-15 8.3.3)."""
    if len(config) < 23:
        raise ValueError("a damaged hvcC box")
    nals, pos = [], 23
    try:
        for _ in range(config[22]):
            count, pos = heif.uint(config, pos + 1, 2)
            for _ in range(count):
                n, pos = heif.uint(config, pos, 2)
                if pos + n > len(config):
                    raise heif.NotHeif("cut")
                nals.append(config[pos:pos + n])
                pos += n
    except heif.NotHeif:
        raise ValueError("a damaged hvcC box (its parameter sets run past its end)") from None
    return nals


def _picture(nals: List[bytes]) -> HeicQuantization:
    sps = pps = None
    qps, chroma_offset = [], None
    for nal in nals:
        if len(nal) < 3:
            continue
        kind = (nal[0] >> 1) & 63
        if kind >= VPS and kind not in (SPS, PPS):
            continue  # SEI, filler data, delimiters: nothing read, nothing copied
        # the fields read lie in the first bytes of a slice or parameter set: the rest is not copied
        bits = BitReader(rbsp(nal[:SLICE_HEADER_BYTES if kind < VPS else PARAMETER_SET_BYTES]),
                         "HEVC parameter set or slice header")
        if kind == 33:
            sps = _sps(bits)
        elif kind == 34:
            pps = _pps(bits)
        elif kind < 32:
            if kind not in (19, 20):
                raise UnsupportedHeic(f"an HEVC picture of NAL type {kind}, not IDR: its slice header is not read")
            if sps is None or pps is None:
                raise ValueError("HEVC slices without parameter sets")
            qp, offset = _slice_qp(bits, sps, pps)
            if qp is not None:
                qps.append(check_qp(qp, sps["bit_depth"]))
                chroma_offset = offset if chroma_offset is None else chroma_offset
    if not qps:
        raise ValueError("an HEIC image without slices (truncated?)")
    return HeicQuantization(sps["width"], sps["height"], tuple(qps), chroma_offset, sps["chroma_format"],
                            pps["cu_qp_delta"])


def _sps(r: BitReader) -> dict:
    r.u(4)
    sub_layers = r.u(3)
    r.u(1)
    r.u(96)  # general profile, tier and level
    present = [(r.u(1), r.u(1)) for _ in range(sub_layers)]
    if sub_layers:
        r.u(2 * (8 - sub_layers))
    for profile, level in present:
        r.u(88 * profile + 8 * level)
    r.ue()
    sps = {"chroma_format": r.ue()}
    sps["separate_planes"] = r.u(1) if sps["chroma_format"] == 3 else 0
    sps["width"], sps["height"] = r.ue(), r.ue()
    if r.u(1):  # conformance window, in chroma units
        left, right, top, bottom = r.ue(), r.ue(), r.ue(), r.ue()
        unit_x = 2 if sps["chroma_format"] in (1, 2) else 1
        unit_y = 2 if sps["chroma_format"] == 1 else 1
        sps["width"] -= unit_x * (left + right)
        sps["height"] -= unit_y * (top + bottom)
    sps["bit_depth"] = 8 + r.ue()
    r.ue()
    r.ue()  # log2_max_pic_order_cnt_lsb_minus4 (not needed for IDR)
    ordering = r.u(1)
    for _ in range(sub_layers + 1 if ordering else 1):
        r.ue(), r.ue(), r.ue()
    min_cb = 3 + r.ue()
    sps["ctb"] = 1 << (min_cb + r.ue())
    r.ue(), r.ue(), r.ue(), r.ue()  # transform sizes and depths
    if r.u(1):  # (default lists, when none are sent, are not flat either)
        raise UnsupportedHeic("an HEVC stream with scaling lists: its steps vary by frequency, which is not read")
    r.u(1)  # asymmetric motion partitions
    sps["sao"] = r.u(1)
    return sps


def _pps(r: BitReader) -> dict:
    r.ue(), r.ue()
    pps = {"dependent_slices": r.u(1), "output_flag": r.u(1), "extra_bits": r.u(3)}
    r.u(1), r.u(1)  # sign data hiding, cabac init present
    r.ue(), r.ue()
    pps["init_qp"] = 26 + r.se()
    r.u(1), r.u(1)  # constrained intra prediction, transform skip
    pps["cu_qp_delta"] = bool(r.u(1))
    if pps["cu_qp_delta"]:
        r.ue()
    pps["cb_offset"] = r.se()
    if not -12 <= pps["cb_offset"] <= 12:
        raise Damaged(f"a damaged HEIC: its PPS chroma QP offset {pps['cb_offset']} lies outside HEVC's -12..12")
    r.se()
    pps["slice_chroma_offsets"] = r.u(1)
    return pps


def _slice_qp(r: BitReader, sps: dict, pps: dict):
    """(luma QP, Cb offset) of an IDR slice segment; (None, None) for a dependent one (it has no QP of its own)."""
    first = r.u(1)
    r.u(1)  # no_output_of_prior_pics_flag
    r.ue()
    if not first:
        if pps["dependent_slices"] and r.u(1):
            return None, None
        ctbs = -(-sps["width"] // sps["ctb"]) * -(-sps["height"] // sps["ctb"])
        r.u(max(0, (ctbs - 1).bit_length()))
    r.u(pps["extra_bits"])
    if r.ue() != 2:
        raise UnsupportedHeic("an HEVC picture with P or B slices")
    if pps["output_flag"]:
        r.u(1)
    if sps["separate_planes"]:
        r.u(2)
    if sps["sao"]:
        r.u(1)
        if sps["chroma_format"] and not sps["separate_planes"]:
            r.u(1)
    qp = pps["init_qp"] + r.se()
    slice_offset = r.se() if pps["slice_chroma_offsets"] else 0
    if not -12 <= slice_offset <= 12 or not -12 <= pps["cb_offset"] + slice_offset <= 12:
        raise Damaged(f"a damaged HEIC: its slice chroma QP offset {slice_offset} lies outside HEVC's -12..12")
    return qp, pps["cb_offset"] + slice_offset
