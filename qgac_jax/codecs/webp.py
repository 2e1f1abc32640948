"""The quantization a lossy WebP file records, read from its VP8 bitstream, and its Q-map.

A lossy WebP holds one VP8 key frame (RFC 6386). Its first partition starts
with the frame header: a base quantizer index and five deltas (section 9.6),
and a segmentation header (9.3) giving up to four segments their own index,
absolute or relative to the base. libwebp's encoder puts smooth and textured
macroblocks in different segments, so the quantization varies over the
picture. The macroblock headers that follow (section 19.3) name each 16x16
macroblock's segment; they are read with the boolean decoder (section 7),
through the intra prediction modes that sit between them (section 11), and
the token probability updates before them (13.4) are skipped over the same
way. No coefficient is decoded: the header partition alone is read.

Steps come from the index by the specification's tables (14.1). VP8
transforms 4x4 blocks with one step for the DC coefficient and one for the
15 others; in a macroblock predicted as a whole (not 4x4), the 16 luma DCs
go through a second 4x4 transform (Y2) with steps of their own.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Tuple

import numpy as np

from qgac_jax.codecs import vp8_tables
from qgac_jax.codecs.jpeg_tables import QMAP_SCALE

# Section 14.1: quantizer index (0..127) -> dequantization step, DC and AC.
DC_STEPS = np.array([
    4, 5, 6, 7, 8, 9, 10, 10, 11, 12, 13, 14, 15, 16, 17, 17, 18, 19, 20, 20, 21, 21, 22, 22, 23, 23, 24, 25, 25,
    26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 46, 47, 48, 49, 50,
    51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 76,
    77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 91, 93, 95, 96, 98, 100, 101, 102, 104, 106, 108, 110,
    112, 114, 116, 118, 122, 124, 126, 128, 130, 132, 134, 136, 138, 140, 143, 145, 148, 151, 154, 157])
AC_STEPS = np.array([
    4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
    33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 60,
    62, 64, 66, 68, 70, 72, 74, 76, 78, 80, 82, 84, 86, 88, 90, 92, 94, 96, 98, 100, 102, 104, 106, 108, 110,
    112, 114, 116, 119, 122, 125, 128, 131, 134, 137, 140, 143, 146, 149, 152, 155, 158, 161, 164, 167, 170,
    173, 177, 181, 185, 189, 193, 197, 201, 205, 209, 213, 217, 221, 225, 229, 234, 239, 245, 249, 254, 259,
    264, 269, 274, 279, 284])
KF_BMODE_PROBS = np.array(vp8_tables.KF_BMODE_PROBS, np.int32).reshape(10, 10, 9)
COEFF_UPDATE_PROBS = vp8_tables.COEFF_UPDATE_PROBS
# Sub-block modes, numbered as KF_BMODE_PROBS is indexed; a whole-macroblock mode counts as its sub-block twin.
B_DC, B_TM, B_VE, B_HE, B_RD, B_VR, B_LD, B_VL, B_HD, B_HU = range(10)


class NotLossyWebp(ValueError):
    """The file is not a WebP with a VP8 frame (lossless VP8L, another format, or damaged)."""


class BoolDecoder:
    """The boolean entropy decoder of RFC 6386 section 7; reads past the end as zeros (as libvpx does)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 2
        self.value = int.from_bytes(data[:2].ljust(2, b"\0"), "big")
        self.range, self.bit_count = 255, 0

    def bool(self, prob: int) -> int:
        split = 1 + (((self.range - 1) * prob) >> 8)
        big_split = split << 8
        if self.value >= big_split:
            bit, self.range, self.value = 1, self.range - split, self.value - big_split
        else:
            bit, self.range = 0, split
        while self.range < 128:
            self.value, self.range = self.value << 1, self.range << 1
            self.bit_count += 1
            if self.bit_count == 8:
                self.bit_count = 0
                if self.pos < len(self.data):
                    self.value |= self.data[self.pos]
                self.pos += 1
        return bit

    def literal(self, bits: int) -> int:
        value = 0
        for _ in range(bits):
            value = (value << 1) | self.bool(128)
        return value

    def signed(self, bits: int) -> int:
        """A magnitude then its sign bit (sections 9.3 and 9.6)."""
        value = self.literal(bits)
        return -value if self.bool(128) else value

    def flagged(self, bits: int, signed: bool = True) -> int:
        """A one-bit flag and, when set, a value (0 when not)."""
        if not self.bool(128):
            return 0
        return self.signed(bits) if signed else self.literal(bits)

    @property
    def overran(self) -> bool:
        return self.pos > len(self.data) + 2


@dataclasses.dataclass(frozen=True)
class WebpQuantization:
    """A VP8 frame's quantization. Indices are the specification's (0..127); steps are dequantization steps."""

    width: int
    height: int
    base_index: int
    deltas: Tuple[int, int, int, int, int]  # y1 DC, y2 DC, y2 AC, uv DC, uv AC (section 9.6)
    segment_indices: Tuple[int, int, int, int]  # each segment's quantizer index, deltas not applied
    segment_map: np.ndarray  # [MB rows, MB columns] uint8: each macroblock's segment
    whole_mb: np.ndarray  # [MB rows, MB columns] bool: predicted as a whole, its luma DCs through Y2
    animated: bool = False  # only the first frame was read

    def steps(self, segment: int) -> dict:
        """The dequantization steps of a segment (libwebp's decoder computes the same)."""
        q = self.segment_indices[segment]
        y1_dc, y2_dc, y2_ac, uv_dc, uv_ac = self.deltas
        clip = lambda v, top=127: int(min(max(v, 0), top))  # noqa: E731
        return {"y_dc": int(DC_STEPS[clip(q + y1_dc)]), "y_ac": int(AC_STEPS[clip(q)]),
                "y2_dc": 2 * int(DC_STEPS[clip(q + y2_dc)]),
                "y2_ac": max(8, int(AC_STEPS[clip(q + y2_ac)]) * 155 // 100),
                "uv_dc": int(DC_STEPS[clip(q + uv_dc, 117)]), "uv_ac": int(AC_STEPS[clip(q + uv_ac)])}

    codec = "webp"
    is_grey = False  # VP8 always codes 4:2:0 colour
    block = 16  # a macroblock: flips and transposes of an image padded to it keep macroblocks whole

    def qmap(self, height: int, width: int) -> np.ndarray:
        """[H, W, 2] float32 orthonormal-equivalent steps / 255 (see `codecs`): each pixel gets the step of its
        frequency in its 4x4 transform.

        Luma (channel 0): (i % 4, j % 4) == (0, 0) is the block's DC, whose step in a whole-predicted
        macroblock is Y2's: the DC of the macroblock's block (u, v) is Y2's coefficient (u, v), DC for
        (0, 0) and AC otherwise. Chroma (channel 1): 4:2:0, the chroma pixel (i // 2, j // 2) in its
        4x4 block, the same way. The macroblock's segment chooses the steps.
        """
        rows, cols = self.segment_map.shape
        tiles = self._macroblock_tiles()[self.segment_map.astype(np.int64) * 2 + self.whole_mb]  # [R, C, 16, 16, 2]
        full = tiles.transpose(0, 2, 1, 3, 4).reshape(16 * rows, 16 * cols, 2)
        if height > 16 * rows or width > 16 * cols:  # asked beyond the frame: its edge repeats
            full = np.pad(full, ((0, max(0, height - 16 * rows)), (0, max(0, width - 16 * cols)), (0, 0)), "edge")
        return np.ascontiguousarray(full[:height, :width]) * np.float32(QMAP_SCALE)

    def transformed(self, transpose: bool, flip_v: bool, flip_h: bool) -> "WebpQuantization":
        """The quantization of this frame flipped and transposed (macroblocks move; each 4x4 transform keeps its
        frequencies at its own positions, as the Q-map convention puts them)."""
        maps = [self.segment_map, self.whole_mb]
        maps = [m.T if transpose else m for m in maps]
        maps = [m[::-1] if flip_v else m for m in maps]
        maps = [np.ascontiguousarray(m[:, ::-1] if flip_h else m) for m in maps]
        w, h = (self.height, self.width) if transpose else (self.width, self.height)
        return dataclasses.replace(self, width=w, height=h, segment_map=maps[0], whole_mb=maps[1])

    def describe(self) -> str:
        return _describe(self.base_index, self.segment_indices)

    def _macroblock_tiles(self) -> np.ndarray:
        """[8, 16, 16, 2] orthonormal-equivalent steps of one macroblock: index 2 * segment + (predicted as a whole).

        VP8's 4x4 transform scales coefficients to twice orthonormal, and Y2 takes the luma DCs at that scale
        through a Walsh-Hadamard transform twice orthonormal again: steps / 2, and Y2's / 4 (see `codecs`).
        """
        i, j = np.arange(16)[:, None], np.arange(16)[None, :]
        at_dc, mb_dc = (i % 4 == 0) & (j % 4 == 0), (i == 0) & (j == 0)
        uv_dc = ((i // 2) % 4 == 0) & ((j // 2) % 4 == 0)
        tiles = []
        for segment in range(4):
            s = self.steps(segment)
            chroma = np.where(uv_dc, s["uv_dc"], s["uv_ac"]) / 2
            split = np.where(at_dc, s["y_dc"], s["y_ac"]) / 2
            whole = np.where(at_dc, np.where(mb_dc, s["y2_dc"], s["y2_ac"]) / 4, s["y_ac"] / 2)
            tiles += [np.stack([split, chroma], -1), np.stack([whole, chroma], -1)]
        return np.array(tiles, np.float32)


def vp8_frame(data: bytes) -> Tuple[bytes, bool]:
    """(the VP8 frame of a WebP file, whether the file is animated: then the first frame's).

    Chunks are walked in place, each bounded by the one that holds it: an animation frame (ANMF) is entered
    once, and a frame inside a frame, which the container does not allow, is refused as damaged.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise NotLossyWebp("not a WebP file")
    pos, end, animated = 12, len(data), False
    while pos + 8 <= end:
        fourcc, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body_end = min(pos + 8 + size, end)
        if fourcc == b"VP8 ":
            return data[pos + 8:body_end], animated
        if fourcc == b"VP8L":
            raise NotLossyWebp("a lossless WebP (VP8L): nothing was quantized, nothing to restore")
        if fourcc == b"ANMF":  # a frame: 16 bytes of placement, then its own chunks
            if animated:
                raise ValueError("a damaged animated WebP (an animation frame inside a frame)")
            animated, pos, end = True, pos + 8 + 16, body_end
            continue
        pos += 8 + size + (size & 1)
    raise NotLossyWebp("a WebP file without a VP8 frame (truncated?)")


@dataclasses.dataclass(frozen=True)
class WebpHeader:
    """A VP8 frame header's quantizer indices, without the macroblocks' segment map."""

    width: int
    height: int
    base_index: int
    deltas: Tuple[int, int, int, int, int]
    segment_indices: Tuple[int, int, int, int]
    animated: bool

    def describe(self) -> str:
        return _describe(self.base_index, self.segment_indices)


def _describe(base_index: int, segment_indices) -> str:
    segments = sorted(set(segment_indices), reverse=True)
    return f"VP8 quantizer index {base_index}" + (
        f" (segments {', '.join(map(str, segments))})" if len(segments) > 1 else "")


def read_header(data: bytes) -> WebpHeader:
    """The frame header alone: what a one-line description needs, without walking every macroblock."""
    header, d, _ = _read_header(data)
    if d.overran:
        raise ValueError("truncated VP8 frame (its header is cut)")
    return header


def sniff(data: bytes) -> bool:
    """Any WebP, lossless ones too (`read_quantization` says why it has nothing to read)."""
    return len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP"


def read_quantization(data: bytes) -> WebpQuantization:
    """The quantization of a lossy WebP file's (first) frame; NotLossyWebp or ValueError when unreadable."""
    h, d, map_args = _read_header(data)
    segment_map, whole = _macroblock_headers(d, h.width, h.height, *map_args)
    if d.overran:
        raise ValueError("truncated VP8 frame (its macroblock headers are cut)")
    return WebpQuantization(h.width, h.height, h.base_index, h.deltas, h.segment_indices, segment_map, whole,
                            h.animated)


def _read_header(data: bytes):
    """(WebpHeader, the decoder left at the first macroblock header, (update_map, tree_probs, skip_prob))."""
    frame, animated = vp8_frame(bytes(data))
    if len(frame) < 10:
        raise ValueError("truncated VP8 frame")
    tag = frame[0] | frame[1] << 8 | frame[2] << 16
    if tag & 1:
        raise ValueError("the VP8 frame is not a key frame")
    first_size = tag >> 5
    if frame[3:6] != b"\x9d\x01\x2a":
        raise ValueError("the VP8 frame lacks its start code")
    width, height = (struct.unpack("<H", frame[k:k + 2])[0] & 0x3FFF for k in (6, 8))
    if not width or not height:
        raise ValueError("the VP8 frame has no pixels")
    first = frame[10:10 + first_size]
    if len(first) < first_size:
        raise ValueError("truncated VP8 frame (its header partition is cut)")
    d = BoolDecoder(first)
    d.literal(2)  # colour space, clamping
    use_segments = d.bool(128)
    update_map, absolute, quantizers, tree_probs = False, False, [0, 0, 0, 0], [255, 255, 255]
    if use_segments:
        update_map = bool(d.bool(128))
        if d.bool(128):  # segment data
            absolute = bool(d.bool(128))
            quantizers = [d.flagged(7) for _ in range(4)]
            for _ in range(4):
                d.flagged(6)  # loop filter strengths
        if update_map:
            tree_probs = [d.literal(8) if d.bool(128) else 255 for _ in range(3)]
    _skip_loop_filter_header(d)
    d.literal(2)  # log2 of the number of DCT partitions
    base = d.literal(7)
    deltas = tuple(d.flagged(4) for _ in range(5))
    d.bool(128)  # refresh entropy probabilities
    for prob in COEFF_UPDATE_PROBS:
        if d.bool(prob):
            d.literal(8)
    skip_prob = d.literal(8) if d.bool(128) else None
    indices = tuple(int(q if absolute else base + q) for q in quantizers) if use_segments else (base,) * 4
    return WebpHeader(width, height, base, deltas, indices, animated), d, (update_map, tree_probs, skip_prob)


def _skip_loop_filter_header(d: BoolDecoder) -> None:
    """Section 9.6's loop filter fields and 9.7's deltas: read, not needed."""
    d.literal(1 + 6 + 3)  # filter type, level, sharpness
    if d.bool(128) and d.bool(128):  # deltas enabled and updated
        for _ in range(8):
            d.flagged(6)


def _macroblock_headers(d: BoolDecoder, width: int, height: int, update_map: bool, tree_probs, skip_prob):
    """([rows, cols] segment of each macroblock, [rows, cols] whether it is predicted as a whole)."""
    rows, cols = (height + 15) // 16, (width + 15) // 16
    segments = np.zeros((rows, cols), np.uint8)
    whole = np.zeros((rows, cols), bool)
    above = [B_DC] * (4 * cols)  # the sub-block modes along the bottom of the row above
    bool_ = d.bool
    for r in range(rows):
        if d.overran:  # a cut partition: stop at the row it ran out, not after every macroblock of the frame
            raise ValueError("truncated VP8 frame (its macroblock headers are cut)")
        left = [B_DC] * 4
        for c in range(cols):
            if update_map:
                segments[r, c] = (2 + bool_(tree_probs[2])) if bool_(tree_probs[0]) else bool_(tree_probs[1])
            if skip_prob is not None:
                bool_(skip_prob)
            if bool_(145):  # a whole-macroblock mode (section 11.2)
                mode = (B_TM if bool_(128) else B_HE) if bool_(156) else (B_VE if bool_(163) else B_DC)
                whole[r, c] = True
                above[4 * c:4 * c + 4] = [mode] * 4
                left = [mode] * 4
            else:
                for y in range(4):
                    mode = left[y]
                    for x in range(4):
                        mode = _sub_block_mode(bool_, KF_BMODE_PROBS[above[4 * c + x], mode])
                        above[4 * c + x] = mode
                    left[y] = mode
            if bool_(142):  # chroma mode (section 11.4)
                if bool_(114):
                    bool_(183)
    return segments, whole


def _sub_block_mode(bool_, p) -> int:
    """Section 11.5's tree, in KF_BMODE_PROBS's numbering."""
    if not bool_(p[0]):
        return B_DC
    if not bool_(p[1]):
        return B_TM
    if not bool_(p[2]):
        return B_VE
    if not bool_(p[3]):
        return B_HE if not bool_(p[4]) else (B_RD if not bool_(p[5]) else B_VR)
    if not bool_(p[6]):
        return B_LD
    if not bool_(p[7]):
        return B_VL
    return B_HD if not bool_(p[8]) else B_HU
