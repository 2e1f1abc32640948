"""HEIF, the ISO base media file format HEIC and AVIF photos come in: the primary image item's data and
properties (ISO/IEC 23008-12), read from the boxes `meta` holds."""

from __future__ import annotations

import dataclasses
import struct
from typing import Dict, Iterator, List, Tuple


class NotHeif(ValueError):
    """Not an HEIF file, or one whose boxes are damaged."""


HEVC_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx")  # ftyp brands of HEVC-coded HEIF


def is_heic(data: bytes) -> bool:
    """Whether a file's ftyp box names an HEVC brand, major or compatible. (The container brands mif1 and
    msf1 alone say nothing: AVIF files carry them too.)"""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    end = min(int.from_bytes(data[:4], "big"), len(data))
    brands = [data[8:12]] + [data[i:i + 4] for i in range(16, end - 3, 4)]
    return any(brand in HEVC_BRANDS for brand in brands)


def register_pillow_plugin() -> bool:
    """Registers pillow-heif's HEIF reader and writer with Pillow; False when pillow-heif is not installed."""
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


@dataclasses.dataclass(frozen=True)
class PrimaryItem:
    kind: bytes  # item type: b"hvc1" (HEVC), b"av01" (AV1), b"grid" (tiles), ...
    data: bytes  # the item's bytes, extents joined
    properties: Dict[bytes, bytes]  # property type -> body (the first of each type associated with the item)


def coded_image(data: bytes, kind: bytes, codec: str, not_this: type, unsupported: type) -> PrimaryItem:
    """The primary item when it is one image coded with `kind` (b"hvc1", b"av01"): `not_this` when the file is
    not HEIF or holds another codec, `unsupported` for a grid of tiles."""
    try:
        item = primary_item(bytes(data))
    except NotHeif as err:
        raise not_this(str(err)) from None
    if item.kind == b"grid":
        raise unsupported(f"a grid {codec} (an image made of tiles): its tiles' quantization is not read yet")
    if item.kind != kind:
        raise not_this(f"the primary image is not {codec} ({item.kind.decode('latin-1') or 'no type'})")
    return item


def primary_item(data: bytes) -> PrimaryItem:
    """The primary item of an HEIF file; NotHeif when there is none or the boxes are cut."""
    try:
        primary, types, locations, properties, idat = _items(data)
    except (IndexError, struct.error):  # a count or size that points past the box that holds it
        raise NotHeif("damaged HEIF boxes") from None
    parts = []
    for method, offset, length in locations.get(primary, []):
        source = idat if method == 1 else data
        if offset + length > len(source):
            raise NotHeif("truncated HEIF file (the image data is cut)")
        parts.append(source[offset:offset + length])
    props = {}
    for kind, body in properties.get(primary, []):
        props.setdefault(kind, body)
    return PrimaryItem(types.get(primary, b""), b"".join(parts), props)


def boxes(data: bytes, start: int, end: int) -> Iterator[Tuple[bytes, int, int]]:
    """(type, body start, body end) of the ISO boxes in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise NotHeif("truncated or damaged HEIF box " + kind.decode("latin-1"))
        yield kind, pos + header, pos + size
        pos += size


def uint(data: bytes, pos: int, size: int) -> Tuple[int, int]:
    return (int.from_bytes(data[pos:pos + size], "big") if size else 0), pos + size


def _items(data: bytes) -> Tuple[int, Dict[int, bytes], Dict[int, List[Tuple[int, int, int]]], Dict[int, list],
                                 bytes]:
    """(primary item, {item: type}, {item: [(method, offset, length)]}, {item: [(type, body)]}, idat)."""
    top = {kind: (s, e) for kind, s, e in boxes(data, 0, len(data))}
    if b"ftyp" not in top or b"meta" not in top:
        raise NotHeif("not an HEIF file (no ftyp or meta box)")
    s, e = top[b"meta"]
    meta = {kind: (bs, be) for kind, bs, be in boxes(data, s + 4, e)}  # a full box: 4 bytes of version and flags
    primary = None
    if b"pitm" in meta:
        bs, _ = meta[b"pitm"]
        primary = uint(data, bs + 4, 2 if data[bs] == 0 else 4)[0]
    types, locations, properties = {}, {}, {}
    if b"iinf" in meta:
        bs, be = meta[b"iinf"]
        for kind, is_, ie in boxes(data, bs + 4 + (2 if data[bs] == 0 else 4), be):
            if kind == b"infe" and data[is_] >= 2:
                item, p = uint(data, is_ + 4, 2 if data[is_] == 2 else 4)
                types[item] = data[p + 2:p + 6]
    if b"iloc" in meta:
        locations = _locations(data, *meta[b"iloc"])
    idat = data[slice(*meta[b"idat"])] if b"idat" in meta else b""
    if b"iprp" in meta:
        children = {kind: (cs, ce) for kind, cs, ce in boxes(data, *meta[b"iprp"])}
        props = [(kind, data[ps:pe]) for kind, ps, pe in boxes(data, *children.get(b"ipco", (0, 0)))]
        if b"ipma" in children:
            for item, indices in _associations(data, *children[b"ipma"]).items():
                properties[item] = [props[i - 1] for i in indices if 0 < i <= len(props)]
    if primary is None:
        raise NotHeif("an HEIF file without a primary item")
    return primary, types, locations, properties, idat


def _locations(data: bytes, start: int, end: int) -> Dict[int, List[Tuple[int, int, int]]]:
    version = data[start]
    offset_size, length_size = data[start + 4] >> 4, data[start + 4] & 15
    base_size, index_size = data[start + 5] >> 4, (data[start + 5] & 15) if version in (1, 2) else 0
    count, pos = uint(data, start + 6, 2 if version < 2 else 4)
    out = {}
    for _ in range(count):
        item, pos = uint(data, pos, 2 if version < 2 else 4)
        method = 0
        if version in (1, 2):
            method, pos = uint(data, pos, 2)
            method &= 15
        pos += 2  # data reference index
        base, pos = uint(data, pos, base_size)
        extents, pos = uint(data, pos, 2)
        out[item] = []
        for _ in range(extents):
            pos += index_size
            offset, pos = uint(data, pos, offset_size)
            length, pos = uint(data, pos, length_size)
            out[item].append((method, base + offset, length))
    return out


def _associations(data: bytes, start: int, end: int) -> Dict[int, List[int]]:
    version, flags = data[start], data[start + 3]
    count, pos = uint(data, start + 4, 4)
    out = {}
    for _ in range(count):
        item, pos = uint(data, pos, 2 if version < 1 else 4)
        n, pos = data[pos], pos + 1
        wide = flags & 1
        indices = []
        for _ in range(n):
            value, pos = uint(data, pos, 2 if wide else 1)
            indices.append(value & (0x7FFF if wide else 0x7F))
        out[item] = indices
    return out


