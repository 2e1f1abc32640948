"""HEIF, the ISO base media file format HEIC and AVIF photos come in: the primary image item's data and
properties (ISO/IEC 23008-12), read from the boxes `meta` holds.

Every read is bounded by the box that holds it (a count or field past its end is NotHeif, never zeros), a
count is checked against the bytes that could hold its entries before it is looped over, and an item's
data is at most the file's size: the work and memory of reading a file grow with the file, not with what
its boxes claim.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Callable, Dict, Iterator, List, Optional, Tuple, TypeVar

from qgac_jax.codecs import Damaged

T = TypeVar("T")


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
    item: int = 0  # its item id: a grid may name one tile many times, and a reader reads it once


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


def read_each(items: List[PrimaryItem], read: Callable[[PrimaryItem], T]) -> List[T]:
    """`read(item)` for each item, run once per distinct item however often a grid names it."""
    done = {item.item: read(item) for item in {i.item: i for i in items}.values()}
    return [done[item.item] for item in items]


def primary_items(data: bytes) -> List[PrimaryItem]:
    """The primary item of an HEIF file, or the tiles it references when it is a grid; NotHeif when there is
    none or the boxes are cut."""
    primary, types, locations, properties, idat, tiles = _parsed(data)
    if types.get(primary) == b"grid":
        if not tiles.get(primary):
            raise NotHeif("a grid image without tiles (no dimg references)")
        read = {t: _item(data, t, types, locations, properties, idat) for t in dict.fromkeys(tiles[primary])}
        if sum(len(item.data) for item in read.values()) > len(data) + len(idat):
            raise NotHeif("damaged HEIF boxes (the tiles' data overlap)")
        return [read[t] for t in tiles[primary]]  # one object per distinct tile, however often it is named
    return [_item(data, primary, types, locations, properties, idat)]


def first_sample(data: bytes, kind: bytes) -> Optional[PrimaryItem]:
    """The first sample of an image sequence's track whose sample entry is `kind` (b"av01"), as an item whose
    properties hold the entry's boxes (av1C: the sequence header), or None when the file has no such track:
    an animated AVIF without a primary item (ISO/IEC 14496-12 8.5-8.7), whose first frame is restored."""
    top = {k: (s, e) for k, s, e in boxes(data, 0, len(data))}
    if b"moov" not in top:
        return None
    for trak_kind, ts, te in boxes(data, *top[b"moov"]):
        if trak_kind != b"trak":
            continue
        stbl = _path(data, ts, te, (b"mdia", b"minf", b"stbl"))
        if stbl is None:
            continue
        tables = {k: (s, e) for k, s, e in boxes(data, *stbl)}
        if not {b"stsd", b"stsz"} <= set(tables) or not ({b"stco", b"co64"} & set(tables)):
            continue
        ss, se = tables[b"stsd"]
        entries = list(boxes(data, ss + 8, se))  # (version, flags, entry_count)
        if not entries or entries[0][0] != kind:
            continue
        _, es, ee = entries[0]
        config = {k: data[s:e] for k, s, e in boxes(data, es + 78, ee)}  # after the visual sample entry's fields
        zs, ze = tables[b"stsz"]
        size, _ = uint(data, zs + 4, 4, ze)
        if size == 0:
            size = uint(data, zs + 12, 4, ze)[0]  # the first entry of the table of sizes
        chunk_box = b"stco" if b"stco" in tables else b"co64"
        cs, ce = tables[chunk_box]
        offset = uint(data, cs + 8, 4 if chunk_box == b"stco" else 8, ce)[0]
        if offset + size > len(data):
            raise NotHeif("truncated HEIF file (the first frame is cut)")
        return PrimaryItem(kind, data[offset:offset + size], config)
    return None


def _path(data: bytes, start: int, end: int, kinds) -> Optional[Tuple[int, int]]:
    """(start, end) of the box reached through nested boxes of `kinds`, or None."""
    for kind in kinds:
        found = next(((s, e) for k, s, e in boxes(data, start, end) if k == kind), None)
        if found is None:
            return None
        start, end = found
    return start, end


def image_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(width, height) the primary item's ispe property claims, read before any decoder sees the file (a
    header claiming 60000x60000 is refused on that), or None when unreadable."""
    try:
        primary, _, _, properties, _, _ = _parsed(data)  # (the item's data is not joined)
    except NotHeif:
        return None
    return _ispe(next((b for kind, b in properties.get(primary, []) if kind == b"ispe"), b""))


def _ispe(body: bytes) -> Optional[Tuple[int, int]]:
    return struct.unpack(">II", body[4:12]) if len(body) >= 12 else None


def check_coded_size(item: PrimaryItem, width: int, height: int, container: str, coded: str) -> None:
    """codecs.Damaged when the item's ispe size is not that of its coded picture (`width` x `height`)."""
    claimed = _ispe(item.properties.get(b"ispe", b""))
    if claimed is not None and claimed != (width, height):
        raise Damaged(f"a damaged {container}: its header says {claimed[0]}x{claimed[1]} pixels, its {coded} "
                      f"{width}x{height}")


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
    parts, total = [], 0
    for method, offset, length in locations.get(item, []):
        source = idat if method == 1 else data
        if offset + length > len(source):
            raise NotHeif("truncated HEIF file (the image data is cut)")
        total += length
        if total > len(source):  # extents that overlap: more bytes than the file holds
            raise NotHeif("damaged HEIF boxes (an item's extents overlap)")
        parts.append(source[offset:offset + length])
    props = {}
    for kind, body in properties.get(item, []):
        props.setdefault(kind, body)
    return PrimaryItem(types.get(item, b""), b"".join(parts), props, item)


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


def uint(data: bytes, pos: int, size: int, end: Optional[int] = None) -> Tuple[int, int]:
    """(the big-endian unsigned `size`-byte number at `pos`, the position after it); NotHeif when it would end
    past `end` (default: the data's end) instead of reading zeros."""
    if pos + size > (len(data) if end is None else end):
        raise NotHeif("damaged HEIF boxes (a field runs past its box)")
    return (int.from_bytes(data[pos:pos + size], "big") if size else 0), pos + size


def _count(count: int, pos: int, end: int, entry_bytes: int) -> int:
    """`count` when `count` entries of at least `entry_bytes` each fit in data[pos:end]; NotHeif otherwise."""
    if count * max(entry_bytes, 1) > end - pos:
        raise NotHeif("damaged HEIF boxes (a count larger than its box can hold)")
    return count


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
        bs, be = meta[b"pitm"]
        primary = uint(data, bs + 4, 2 if uint(data, bs, 1, be)[0] == 0 else 4, be)[0]
    types, locations, properties = {}, {}, {}
    if b"iinf" in meta:
        bs, be = meta[b"iinf"]
        for kind, is_, ie in boxes(data, bs + 4 + (2 if uint(data, bs, 1, be)[0] == 0 else 4), be):
            version = uint(data, is_, 1, ie)[0] if kind == b"infe" else 0
            if version >= 2:
                item, p = uint(data, is_ + 4, 2 if version == 2 else 4, ie)
                types[item] = uint(data, p + 2, 4, ie)[0].to_bytes(4, "big")
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
    version, _ = uint(data, start, 1, end)
    size = 2 if version == 0 else 4
    out: Dict[int, List[int]] = {}
    for ref, rs, re_ in boxes(data, start + 4, end):
        from_item, pos = uint(data, rs, size, re_)
        count, pos = uint(data, pos, 2, re_)
        targets = []
        for _ in range(_count(count, pos, re_, size)):
            target, pos = uint(data, pos, size, re_)
            targets.append(target)
        if ref == kind:
            out[from_item] = targets
    return out


def _locations(data: bytes, start: int, end: int) -> Dict[int, List[Tuple[int, int, int]]]:
    """{item: [(construction method, offset, length)]} of the iloc box data[start:end] (ISO/IEC 14496-12 8.11.3)."""
    version, _ = uint(data, start, 1, end)
    if version > 2:
        raise NotHeif(f"an HEIF iloc box of unknown version {version}")
    (sizes, _), (more, _) = uint(data, start + 4, 1, end), uint(data, start + 5, 1, end)
    offset_size, length_size, base_size = sizes >> 4, sizes & 15, more >> 4
    index_size = (more & 15) if version in (1, 2) else 0
    if any(s not in (0, 4, 8) for s in (offset_size, length_size, base_size, index_size)):
        raise NotHeif("damaged HEIF iloc box (a field size other than 0, 4 or 8 bytes)")
    id_size = 2 if version < 2 else 4
    count, pos = uint(data, start + 6, id_size, end)
    entry = id_size + (2 if version in (1, 2) else 0) + 2 + base_size + 2  # an item with no extents
    extent_bytes = index_size + offset_size + length_size
    out: Dict[int, List[Tuple[int, int, int]]] = {}
    extents_left = end - start  # all items together: at most one extent per byte of the box
    for _ in range(_count(count, pos, end, entry)):
        item, pos = uint(data, pos, id_size, end)
        method = 0
        if version in (1, 2):
            method, pos = uint(data, pos, 2, end)
            method &= 15
        pos += 2  # data reference index
        base, pos = uint(data, pos, base_size, end)
        extents, pos = uint(data, pos, 2, end)
        extents_left -= _count(extents, pos, end, extent_bytes)
        if extents_left < 0:
            raise NotHeif("damaged HEIF iloc box (more extents than it has bytes)")
        out[item] = []
        for _ in range(extents):
            pos += index_size
            offset, pos = uint(data, pos, offset_size, end)
            length, pos = uint(data, pos, length_size, end)
            out[item].append((method, base + offset, length))
    return out


def _associations(data: bytes, start: int, end: int) -> Dict[int, List[int]]:
    """{item: [property indices]} of the ipma box data[start:end]."""
    (version, _), (flags, _) = uint(data, start, 1, end), uint(data, start + 3, 1, end)
    id_size, wide = (2 if version < 1 else 4), flags & 1
    count, pos = uint(data, start + 4, 4, end)
    out = {}
    for _ in range(_count(count, pos, end, id_size + 1)):
        item, pos = uint(data, pos, id_size, end)
        n, pos = uint(data, pos, 1, end)
        indices = []
        for _ in range(_count(n, pos, end, 2 if wide else 1)):
            value, pos = uint(data, pos, 2 if wide else 1, end)
            indices.append(value & (0x7FFF if wide else 0x7F))
        out[item] = indices
    return out
