"""The quantization parameter an HEIC photo records, read from its HEVC parameter sets and slice headers.

An HEIC file is an ISO base media file (HEIF) whose primary image item is an
HEVC-coded picture (item type `hvc1`): the item's `hvcC` property holds the
sequence and picture parameter sets, the item's data the picture's slices.
The slice QPs are read with HEVC's syntax (`hevc`: parameter sets, slice
headers, the QP's step and chroma mapping).

Read: IDR pictures in I slices (what still-image encoders write, x265 among
them), alone or as the tiles of a grid image (phones write 512x512 tiles:
the QPs of every tile's slices are read). Pictures that are not IDR and
scaling lists raise UnsupportedHeic with the reason.
"""

from __future__ import annotations

import dataclasses
from typing import List

from qgac_jax.codecs import heif, hevc
from qgac_jax.codecs.bits import BitReader
from qgac_jax.codecs.hevc import PPS, SPS, VPS, UnsupportedHevc, chroma_qp, config_nals, qp_step, rbsp
from qgac_jax.codecs.hevc_stream import HevcPicture

__all__ = ["HeicQuantization", "NotHeic", "UnsupportedHeic", "chroma_qp", "qp_step", "rbsp", "read_quantization",
           "sniff"]
SLICE_HEADER_BYTES = 256  # more than the slice header fields up to slice_qp_delta can take
PARAMETER_SET_BYTES = 4096  # more than an SPS or PPS up to the fields read can take (they are tens of bytes)


class NotHeic(heif.NotHeif):
    """Not an HEIF file with an HEVC image."""


class UnsupportedHeic(ValueError):
    """An HEIC whose quantization this reader does not follow (grid, non-IDR, scaling lists)."""


@dataclasses.dataclass(frozen=True)
class HeicQuantization(HevcPicture):
    codec = "heic"


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
    nals = config_nals(config)
    length_size = (config[21] & 3) + 1
    pos = 0
    while pos + length_size <= len(item.data):
        n = int.from_bytes(item.data[pos:pos + length_size], "big")
        if pos + length_size + n > len(item.data):
            raise ValueError("truncated HEIC image data")
        nals.append(item.data[pos + length_size:pos + length_size + n])
        pos += length_size + n
    return nals


def _picture(nals: List[bytes]) -> HeicQuantization:
    sps_sets, pps_sets, qps, found = {}, {}, [], None
    try:
        for nal in nals:
            if len(nal) < 3:
                continue
            kind = (nal[0] >> 1) & 63
            if kind >= VPS and kind not in (SPS, PPS):
                continue  # SEI, filler data, delimiters: nothing read, nothing copied
            # the fields read lie in the first bytes of a slice or parameter set: the rest is not copied
            bits = BitReader(rbsp(nal[:SLICE_HEADER_BYTES if kind < VPS else PARAMETER_SET_BYTES]),
                             "HEVC parameter set or slice header")
            if kind == SPS:
                sps_id, sps = hevc.parse_sps(bits)
                sps_sets[sps_id] = sps
            elif kind == PPS:
                pps_id, pps = hevc.parse_pps(bits, "HEIC")
                pps_sets[pps_id] = pps
            else:
                if kind not in (19, 20):
                    raise UnsupportedHeic(f"an HEVC picture of NAL type {kind}, not IDR: its slice header is not read")
                if not sps_sets or not pps_sets:
                    raise ValueError("HEVC slices without parameter sets")
                read = hevc.slice_qp(bits, kind, sps_sets, pps_sets, "HEIC")
                if read is not None:
                    qps.append(read[0])
                    found = found or read
    except UnsupportedHevc as err:
        raise UnsupportedHeic(str(err)) from None
    if not qps:
        raise ValueError("an HEIC image without slices (truncated?)")
    _, offset, sps, pps, _ = found
    return HeicQuantization(sps["width"], sps["height"], tuple(qps), offset, sps["chroma_format"], pps["cu_qp_delta"])
