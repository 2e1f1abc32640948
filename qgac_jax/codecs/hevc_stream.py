"""The quantization each picture of an HEVC stream records: the QP of its slices, I, P and B alike.

A clip's packets hold one picture each, as NAL units behind length prefixes
(the hvcC record in the stream's extradata gives their size and the first
parameter sets; Annex B start codes are read too). Each slice's QP is read
with HEVC's syntax (`hevc`), P and B slices included; the parameter sets
are kept as they come.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Tuple

import numpy as np

from qgac_jax.codecs import hevc
from qgac_jax.codecs.bits import BitReader
from qgac_jax.codecs.hevc import PPS, SPS, VPS, chroma_qp, qp_step, rbsp
from qgac_jax.codecs.jpeg_tables import QMAP_SCALE

HEADER_BYTES = 1024  # more than a slice segment header up to its QP takes (weight tables included)


@dataclasses.dataclass(frozen=True)
class HevcPicture:
    """The slice QPs of one HEVC picture (or of every tile of an HEIC grid), on a flat map of their mean's step."""

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

    codec = "hevc"
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

    def transformed(self, transpose: bool, flip_v: bool, flip_h: bool) -> "HevcPicture":
        return self

    def describe(self) -> str:
        return f"HEVC QP {self.qp:.0f}"


@dataclasses.dataclass(frozen=True)
class HevcQuantization(HevcPicture):
    """One picture's slice QPs, on HEIC's map (flat: the mean slice QP's step)."""

    frame_type: str = "?"

    codec = "hevc"

    def with_frame(self, kind: str) -> "HevcQuantization":
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
            self.length_size = (extradata[21] & 3) + 1
            for nal in hevc.config_nals(extradata):
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
                sps_id, sps = hevc.parse_sps(r)
                self.sps[sps_id] = sps
            else:
                pps_id, pps = hevc.parse_pps(r)
                self.pps[pps_id] = pps
            return None
        if kind >= VPS:  # VPS, SEI, delimiters, filler: nothing read
            return None
        return hevc.slice_qp(BitReader(rbsp(nal[:HEADER_BYTES]), "HEVC slice header"), kind, self.sps, self.pps)


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
