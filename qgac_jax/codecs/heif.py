"""HEIF, the ISO base media file format HEIC and AVIF photos come in: the primary image item's data and
properties (ISO/IEC 23008-12), read from the boxes `meta` holds."""

from __future__ import annotations

import dataclasses
import struct
from typing import Dict, Iterator, List, Optional, Tuple


class NotHeif(ValueError):
    """Not an HEIF file, or one whose boxes are damaged."""


HEVC_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx")  # ftyp brands of HEVC-coded HEIF


AV1_BRANDS = (b"avif", b"avis")


def _brands(data: bytes) -> List[bytes]:
    """The ftyp box's major and compatible brands, or [] for a file that does not start with one."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return []
    end = min(int.from_bytes(data[:4], "big"), len(data))
    return [data[8:12]] + [data[i:i + 4] for i in range(16, end - 3, 4)]


def is_heic(data: bytes) -> bool:
    """Whether a file's ftyp box names an HEVC brand, major or compatible. (The container brands mif1 and
    msf1 alone say nothing: AVIF files carry them too.)"""
    return any(brand in HEVC_BRANDS for brand in _brands(data))


def is_avif(data: bytes) -> bool:
    """Whether a file's ftyp box names an AV1 image brand and no HEVC one."""
    brands = _brands(data)
    return any(b in AV1_BRANDS for b in brands) and not any(b in HEVC_BRANDS for b in brands)


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


def coded_images(data: bytes, kind: bytes, codec: str, not_this: type, unsupported: type) -> List[PrimaryItem]:
    """The coded images of the primary item: itself when it is one image coded with `kind` (b"hvc1", b"av01"),
    or the tiles of a grid (what phones write: 512x512 tiles), in order. `not_this` when the file is not HEIF
    or holds another codec, `unsupported` for a grid whose tiles are not `kind` (a grid of grids)."""
    try:
        items = primary_items(bytes(data))
    except NotHeif as err:
        raise not_this(str(err)) from None
    if len(items) == 1 and items[0].kind != kind:
        raise not_this(f"the primary image is not {codec} ({items[0].kind.decode('latin-1') or 'no type'})")
    if any(item.kind != kind for item in items):
        raise unsupported(f"a grid {codec} whose tiles are not all {codec} images")
    return items


def primary_items(data: bytes) -> List[PrimaryItem]:
    """The primary item of an HEIF file, or the tiles it references when it is a grid; NotHeif when there is
    none or the boxes are cut."""
    primary, types, locations, properties, idat, tiles = _parsed(data)
    if types.get(primary) == b"grid":
        if not tiles.get(primary):
            raise NotHeif("a grid image without tiles (no dimg references)")
        return [_item(data, t, types, locations, properties, idat) for t in tiles[primary]]
    return [_item(data, primary, types, locations, properties, idat)]


def image_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) the primary item's ispe property claims, read before any decoder sees the file (a
    header claiming 60000x60000 is refused on that), or None when unreadable."""
    try:
        body = primary_item(data).properties.get(b"ispe", b"")
    except NotHeif:
        return None
    return struct.unpack(">II", body[4:12]) if len(body) >= 12 else None


def primary_item(data: bytes) -> PrimaryItem:
    """The primary item of an HEIF file (a grid is one item of kind b"grid"); NotHeif when there is none."""
    primary, types, locations, properties, idat, _ = _parsed(data)
    return _item(data, primary, types, locations, properties, idat)


def _parsed(data: bytes):
    """`_items`, with a count or size that points past the box that holds it as NotHeif."""
    try:
        return _items(data)
    except (IndexError, struct.error):
        raise NotHeif("damaged HEIF boxes") from None


def _item(data: bytes, item: int, types, locations, properties, idat) -> PrimaryItem:
    parts = []
    for method, offset, length in locations.get(item, []):
        source = idat if method == 1 else data
        if offset + length > len(source):
            raise NotHeif("truncated HEIF file (the image data is cut)")
        parts.append(source[offset:offset + length])
    props = {}
    for kind, body in properties.get(item, []):
        props.setdefault(kind, body)
    return PrimaryItem(types.get(item, b""), b"".join(parts), props)


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
                                 bytes, Dict[int, List[int]]]:
    """(primary item, {item: type}, {item: [(method, offset, length)]}, {item: [(type, body)]}, idat,
    {item: [the items it is derived from (dimg: a grid's tiles)]})."""
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
    tiles = _references(data, *meta[b"iref"], b"dimg") if b"iref" in meta else {}
    if primary is None:
        raise NotHeif("an HEIF file without a primary item")
    return primary, types, locations, properties, idat, tiles


def _references(data: bytes, start: int, end: int, kind: bytes) -> Dict[int, List[int]]:
    """{from item: [to items]} of the iref box's references of type `kind`."""
    size = 2 if data[start] == 0 else 4
    out: Dict[int, List[int]] = {}
    for ref, rs, _ in boxes(data, start + 4, end):
        from_item, pos = uint(data, rs, size)
        count, pos = uint(data, pos, 2)
        targets = []
        for _ in range(count):
            target, pos = uint(data, pos, size)
            targets.append(target)
        if ref == kind:
            out[from_item] = targets
    return out


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


