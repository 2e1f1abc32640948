"""The quantization an H.264 frame records: a QP per 16x16 macroblock, as FFmpeg's decoder exports it.

H.264 quantizes each macroblock's 4x4 (and 8x8) integer transform with a
step of 0.625 * 2^(QP / 6) for its luma QP (H.264 8.5.9, the LevelScale
tables), which is 2^((QP - 4) / 6) in an orthonormal transform's units: the
scale HEVC adopted (`heic.qp_step`), so both codecs share one map scale.
Chroma QPs come from the luma QP plus the picture parameter set's
chroma_qp_index_offset (second_chroma_qp_index_offset for Cr) through
Table 8-15. FFmpeg hands each decoded frame its macroblocks' QPs as
video-encoding-parameter side data (codec option `export_side_data=venc_params`);
the offsets are read from the stream's own parameter sets (its avcC
record, or Annex B start codes). Scaling matrices (rare: x264 writes flat
ones) would weight steps by frequency; they are not read.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from qgac_jax.codecs import Damaged
from qgac_jax.codecs.bits import BitReader
from qgac_jax.codecs.heic import qp_step, rbsp
from qgac_jax.codecs.jpeg_tables import QMAP_SCALE

MACROBLOCK = 16
# Table 8-15: QPc for qPI 30..51 (below 30, QPc = qPI)
CHROMA_QP = (29, 30, 31, 32, 32, 33, 34, 34, 35, 35, 36, 36, 37, 37, 37, 38, 38, 38, 39, 39, 39, 39)
PPS_NAL = 8


def chroma_qp(luma_qp: int, offset: int) -> int:
    qpi = int(np.clip(luma_qp + offset, 0, 51))
    return qpi if qpi < 30 else CHROMA_QP[qpi - 30]


@dataclasses.dataclass(frozen=True)
class H264Quantization:
    """One frame's macroblock QPs (`qps` [rows, columns] of macroblocks, as coded: the frame's size rounded up to
    16) and the parameter sets' chroma offsets."""

    qps: np.ndarray
    chroma_offsets: Tuple[int, int] = (0, 0)  # Cb, Cr
    grey: bool = False
    frame_type: str = "?"  # I, P or B

    codec = "h264"
    block = MACROBLOCK  # flips and transposes of a frame padded to 16 keep each macroblock whole

    def __post_init__(self):
        if self.qps.ndim != 2 or not self.qps.size:
            raise Damaged("an H.264 frame without macroblock QPs")
        if self.qps.min() < -12 or self.qps.max() > 51:  # (-6 * (bit depth - 8) in deeper streams)
            raise Damaged(f"a damaged H.264 frame: a macroblock QP of {int(self.qps.min())}..{int(self.qps.max())} "
                          "lies outside H.264's range")

    @property
    def is_grey(self) -> bool:
        return self.grey

    def qmap(self, height: int, width: int) -> np.ndarray:
        """[H, W, K] float32 steps / 255: each macroblock's luma step (and the mean of Cb's and Cr's), constant over
        its 16x16 pixels; a frame larger than its macroblocks (never, for a decoded frame) repeats the last ones."""
        rows = np.minimum(np.arange(height) // MACROBLOCK, self.qps.shape[0] - 1)
        cols = np.minimum(np.arange(width) // MACROBLOCK, self.qps.shape[1] - 1)
        qp = self.qps[np.ix_(rows, cols)]  # [H, W]
        planes = [_steps(qp)]
        if not self.grey:
            planes.append((_steps(qp, self.chroma_offsets[0]) + _steps(qp, self.chroma_offsets[1])) / 2)
        return (np.stack(planes, -1) * np.float32(QMAP_SCALE)).astype(np.float32)

    def transformed(self, transpose: bool, flip_v: bool, flip_h: bool) -> "H264Quantization":
        qps = self.qps
        if transpose:
            qps = qps.T
        if flip_v:
            qps = qps[::-1]
        if flip_h:
            qps = qps[:, ::-1]
        return dataclasses.replace(self, qps=np.ascontiguousarray(qps))

    def describe(self) -> str:
        low, high = int(self.qps.min()), int(self.qps.max())
        spread = f" ({low}-{high} over its macroblocks)" if low != high else ""
        return f"H.264 {self.frame_type}-frame, QP {float(self.qps.mean()):.0f}{spread}"


def _steps(qp: np.ndarray, chroma_offset: Optional[int] = None) -> np.ndarray:
    """Steps of luma QPs (chroma_offset None) or of the chroma QPs they give with that offset."""
    qps = range(-12, 52)
    table = np.array([qp_step(q if chroma_offset is None else chroma_qp(q, chroma_offset)) for q in qps], np.float32)
    return table[np.clip(qp, -12, 51) + 12]


def chroma_offsets(extradata: Optional[bytes]) -> Tuple[int, int]:
    """(Cb, Cr) chroma QP offsets of the first picture parameter set in a stream's extradata (an avcC record or
    Annex B NAL units); (0, 0) where there is none."""
    for nal in _nals(extradata or b""):
        if nal and nal[0] & 31 == PPS_NAL:
            # (rbsp() drops two header bytes, HEVC's; H.264's is one: a zero goes in front)
            return _pps_offsets(BitReader(rbsp(b"\0" + nal), "H.264 picture parameter set"))
    return 0, 0


def _nals(data: bytes):
    if data[:1] == b"\x01" and len(data) >= 7:  # avcC (ISO/IEC 14496-15 5.3.3.1): SPSs, then PPSs
        pos, count = 6, data[5] & 31
        for kind in range(2):
            for _ in range(count):
                size = int.from_bytes(data[pos:pos + 2], "big")
                yield data[pos + 2:pos + 2 + size]
                pos += 2 + size
            if kind == 0 and pos < len(data):
                count, pos = data[pos], pos + 1
        return
    for chunk in data.split(b"\x00\x00\x01"):  # Annex B
        yield chunk.rstrip(b"\x00")


def _pps_offsets(r: BitReader) -> Tuple[int, int]:
    """chroma_qp_index_offset and second_chroma_qp_index_offset (H.264 7.3.2.2)."""
    r.ue(), r.ue()  # pic_parameter_set_id, seq_parameter_set_id
    r.u(1), r.u(1)  # entropy_coding_mode_flag, bottom_field_pic_order_in_frame_present_flag
    if r.ue():  # num_slice_groups_minus1 (slice groups: Baseline's FMO, which no camera writes)
        return 0, 0
    r.ue(), r.ue()  # num_ref_idx_l0/l1_default_active_minus1
    r.u(1), r.u(2)  # weighted_pred_flag, weighted_bipred_idc
    r.se(), r.se()  # pic_init_qp_minus26, pic_init_qs_minus26
    cb = r.se()
    if not -12 <= cb <= 12:
        raise Damaged(f"a damaged H.264 stream: its chroma QP offset {cb} lies outside -12..12")
    r.u(1), r.u(1), r.u(1)  # deblocking control, constrained intra, redundant_pic_cnt
    if not r.more_data():  # no High profile extension: Cr's offset is Cb's
        return cb, cb
    r.u(1)  # transform_8x8_mode_flag
    if r.u(1):  # pic_scaling_matrix_present_flag: the lists come before Cr's offset (not read: Cb's for both)
        return cb, cb
    cr = r.se()
    if not -12 <= cr <= 12:
        raise Damaged(f"a damaged H.264 stream: its Cr QP offset {cr} lies outside -12..12")
    return cb, cr
