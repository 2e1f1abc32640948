"""The quantization a VP9 frame records: its base quantizer index, as FFmpeg's decoder exports it.

VP9's 8-bit dequantization tables (dc_qlookup and ac_qlookup of libvpx's
vp9_quant_common.c) are the ones AV1 kept as Dc_Qlookup[0] and Ac_Qlookup[0]
(`av1_tables`), and its coefficients are likewise 8 times orthonormal, so a
VP9 frame's steps are its table entries / 8 as AV1's are (`avif`). FFmpeg
hands each decoded frame its base q index as video-encoding-parameter side
data; the per-plane deltas (which libvpx leaves at 0) and segment quantizers
are not in it: the map is the base index's, flat over the frame.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from qgac_jax.codecs import Damaged
from qgac_jax.codecs.av1_tables import AC_STEPS_8BIT, DC_STEPS_8BIT
from qgac_jax.codecs.avif import ORTHONORMAL_GAIN
from qgac_jax.codecs.jpeg_tables import QMAP_SCALE


@dataclasses.dataclass(frozen=True)
class Vp9Quantization:
    q_index: int
    grey: bool = False
    frame_type: str = "?"  # I or P (VP9 has no B-frames: its alternate reference frames are hidden P-frames)

    codec = "vp9"
    block = 1  # flat: any flip or transpose keeps it

    def __post_init__(self):
        if not 0 <= self.q_index <= 255:
            raise Damaged(f"a damaged VP9 frame: its q index {self.q_index} lies outside 0..255")

    @property
    def is_grey(self) -> bool:
        return self.grey

    def qmap(self, height: int, width: int) -> np.ndarray:
        """[H, W, K] float32: the AC step (luma and chroma alike without deltas) / 8 / 255, flat; the DC step, a
        little finer, is in `describe` only, as AVIF's map has it (`avif.AvifQuantization.qmap`)."""
        steps = [AC_STEPS_8BIT[self.q_index]] * (1 if self.grey else 2)
        scaled = np.array(steps, np.float32) / np.float32(ORTHONORMAL_GAIN) * np.float32(QMAP_SCALE)
        return np.broadcast_to(scaled, (height, width, len(steps))).copy()

    def transformed(self, transpose: bool, flip_v: bool, flip_h: bool) -> "Vp9Quantization":
        return self

    def describe(self) -> str:
        return (f"VP9 {self.frame_type}-frame, q index {self.q_index} (steps DC {DC_STEPS_8BIT[self.q_index]}, "
                f"AC {AC_STEPS_8BIT[self.q_index]})")
