"""AV1's open bitstream units (AV1 specification 5.3): how an AV1 stream is framed, and the unit types read."""

from __future__ import annotations

SEQUENCE_HEADER, FRAME_HEADER, FRAME = 1, 3, 6  # obu_type (6.2.2)


def units(data: bytes):
    """(type, payload) of each OBU of an AV1 stream with size fields (5.3)."""
    pos = 0
    while pos < len(data):
        header = data[pos]
        kind, extension, has_size = (header >> 3) & 15, (header >> 2) & 1, (header >> 1) & 1
        pos += 1 + extension
        if not has_size:
            yield kind, data[pos:]
            return
        size, shift = 0, 0
        while True:
            if pos >= len(data):
                raise ValueError("truncated AV1 stream")
            byte = data[pos]
            pos += 1
            size |= (byte & 127) << shift
            shift += 7
            if not byte & 128:
                break
        if pos + size > len(data):
            raise ValueError("truncated AV1 stream")
        yield kind, data[pos:pos + size]
        pos += size
