"""The quantization each frame of an AV1 stream records: base_q_idx and its deltas, key and inter frames alike.

A clip's packets are temporal units: a few OBUs (AV1 5.3), among them the
frame headers of the frames decoded for one shown picture (a hidden
alternate reference and the shown frame, or a header that shows an earlier
frame again). Reaching an inter frame's quantization_params (5.9.12) means
reading its header (5.9.2) past the reference frames, the frame size and
the interpolation filter; a frame's size taken from a reference, and a
header that shows an existing frame, need what earlier frames left in the
eight reference slots, which is kept here as the decoder keeps it. The
map is `avif`'s: base_q_idx's AC steps / 8, flat.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

from qgac_jax.codecs import obu
from qgac_jax.codecs.avif import (AvifQuantization, UnsupportedAvif, _sequence_header, _tile_info,
                                  quantization_params)
from qgac_jax.codecs.bits import BitReader

KEY, INTER, INTRA_ONLY, SWITCH = 0, 1, 2, 3
REDUNDANT_FRAME_HEADER = 7
KINDS = {KEY: "I", INTER: "P", INTRA_ONLY: "I", SWITCH: "P"}


@dataclasses.dataclass(frozen=True)
class Av1Quantization(AvifQuantization):
    frame_type: str = "?"

    codec = "av1"

    def with_frame(self, kind: str) -> "Av1Quantization":
        return self  # (its type is its header's: a re-shown frame is not the decoder's I/P/B)

    def describe(self) -> str:
        return f"AV1 {self.frame_type}-frame, base_q_idx {self.base_q_idx}"


@dataclasses.dataclass
class _Slot:
    """What a reference slot holds of a decoded frame."""

    quantization: Av1Quantization
    width: int
    height: int
    frame_type: int
    segment_q: bool


class Av1Stream:
    """Reads the temporal units of one stream in decode order, keeping its sequence header and reference slots."""

    def __init__(self, extradata: bytes = b""):
        self.seq: Optional[dict] = None
        self.slots: List[Optional[_Slot]] = [None] * 8
        if len(extradata) > 4 and extradata[0] & 0x80:  # av1C (AV1-ISOBMFF 2.3.3): 4 bytes, then config OBUs
            self._units(extradata[4:])

    def read(self, packet: bytes) -> Av1Quantization:
        """The quantization of the frame a temporal unit shows; ValueError when it shows none."""
        shown = self._units(packet)
        if shown is None:
            raise ValueError("an AV1 packet without a shown frame")
        return shown

    def _units(self, data: bytes) -> Optional[Av1Quantization]:
        shown = None
        for kind, payload in obu.units(data):
            if kind == obu.SEQUENCE_HEADER:
                self.seq = _sequence_header(BitReader(payload, "AV1 sequence header"))
            elif kind in (obu.FRAME_HEADER, obu.FRAME):
                if self.seq is None:
                    raise ValueError("an AV1 frame before its sequence header")
                shown = self._frame(BitReader(payload, "AV1 frame header")) or shown
        return shown

    def _frame(self, b: BitReader) -> Optional[Av1Quantization]:
        """Reads a frame header (5.9.2) and updates the slots; the quantization when the frame is shown."""
        seq = self.seq
        if b.f(1):  # show_existing_frame
            slot = self.slots[b.f(3)]
            if slot is None:
                raise ValueError("an AV1 frame that shows a reference slot never filled")
            if slot.frame_type == KEY:  # a shown key frame refreshes every slot
                self.slots = [slot] * 8
            return slot.quantization
        frame_type, show = b.f(2), b.f(1)
        intra = frame_type in (KEY, INTRA_ONLY)
        if show and seq["decoder_model"] and not seq["equal_interval"]:
            b.f(seq["presentation_time_bits"])
        if not show:
            b.f(1)  # showable_frame
        error_resilient = 1 if frame_type == SWITCH or (frame_type == KEY and show) else b.f(1)
        disable_cdf = b.f(1)
        screen_content = b.f(1) if seq["sct"] == 2 else seq["sct"]
        force_integer_mv = (b.f(1) if seq["int_mv"] == 2 else seq["int_mv"]) if screen_content else 0
        if seq["frame_ids"]:
            b.f(seq["frame_ids"])
        override = 1 if frame_type == SWITCH else b.f(1)
        b.f(seq["order_hint_bits"])
        primary_ref = not (intra or error_resilient) and b.f(3) != 7  # PRIMARY_REF_NONE
        if seq["decoder_model"] and b.f(1):
            for idc, model in seq["ops"]:
                if model and (idc == 0 or (idc & 1 and (idc >> 8) & 1)):
                    b.f(seq["removal_time_bits"])
        refresh = 0xFF if frame_type == SWITCH or (frame_type == KEY and show) else b.f(8)
        if (not intra or refresh != 0xFF) and error_resilient and seq["order_hint_bits"]:
            b.f(8 * seq["order_hint_bits"])
        if intra:
            width, height = self._frame_size(b, override)
            if screen_content and not self._superres:
                b.f(1)  # allow_intrabc
        else:
            width, height = self._inter_refs(b, override, error_resilient)
            if not force_integer_mv:
                b.f(1)  # allow_high_precision_mv
            if not b.f(1):  # is_filter_switchable
                b.f(2)
            b.f(1)  # is_motion_mode_switchable
            if not error_resilient and seq["ref_frame_mvs"]:
                b.f(1)
        if not disable_cdf:
            b.f(1)  # disable_frame_end_update_cdf
        _tile_info(b, width, height, seq["sb128"])
        q = self._quantization(b, width, height, frame_type, primary_ref)
        for i in range(8):
            if refresh >> i & 1:
                self.slots[i] = _Slot(q, width, height, frame_type, q.segment_q)
        return q if show else None

    def _frame_size(self, b: BitReader, override: int):
        """frame_size() and render_size() (5.9.5-5.9.7): (width, height)."""
        seq = self.seq
        width, height = (b.f(seq["wbits"]) + 1, b.f(seq["hbits"]) + 1) if override else (seq["width"],
                                                                                          seq["height"])
        self._superres_params(b)
        if b.f(1):  # render_and_frame_size_different
            b.f(32)
        return width, height

    def _superres_params(self, b: BitReader) -> None:
        self._superres = bool(self.seq["superres"] and b.f(1))
        if self._superres:
            raise UnsupportedAvif("an AV1 frame coded with super-resolution")

    def _inter_refs(self, b: BitReader, override: int, error_resilient: int):
        """The reference frames of an inter frame and its size (5.9.2, 5.9.7): (width, height)."""
        seq = self.seq
        short = b.f(1) if seq["order_hint_bits"] else 0
        if short:
            b.f(6)  # last_frame_idx, gold_frame_idx
        refs = []
        for _ in range(7):
            refs.append(b.f(3) if not short else None)
            if seq["frame_ids"]:
                b.f(seq["delta_id_bits"])
        if override and not error_resilient:
            for ref in refs:
                if b.f(1):  # found_ref: the size of that reference
                    slot = self.slots[ref] if ref is not None else None
                    size = (slot.width, slot.height) if slot is not None else (seq["width"], seq["height"])
                    self._superres_params(b)
                    return size
        return self._frame_size(b, override)

    _superres = False

    def _quantization(self, b: BitReader, width: int, height: int, frame_type: int,
                      primary_ref: bool) -> Av1Quantization:
        """quantization_params, segmentation and delta_q (`avif.quantization_params`)."""
        earlier = any(s.segment_q for s in self.slots if s is not None)
        return Av1Quantization(width, height, *quantization_params(b, self.seq, primary_ref, earlier),
                               frame_type=KINDS[frame_type])
