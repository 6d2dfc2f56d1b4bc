"""A minimal pcap reader for the tests (stdlib only)."""

from __future__ import annotations

import struct
from pathlib import Path


def read_pcap(path: Path) -> tuple[int, list[tuple[int, int, bytes]]]:
    """(link type, [(seconds, microseconds, frame bytes), ...]) of a little-endian pcap."""
    data = path.read_bytes()
    magic, _major, _minor, _zone, _sigfigs, _snaplen, linktype = struct.unpack_from(
        "<IHHiIII", data
    )
    assert magic == 0xA1B2C3D4, f"not a little-endian microsecond pcap: {magic:#x}"
    offset, records = 24, []
    while offset < len(data):
        seconds, micros, incl_len, orig_len = struct.unpack_from("<IIII", data, offset)
        assert incl_len == orig_len
        offset += 16
        records.append((seconds, micros, data[offset : offset + incl_len]))
        offset += incl_len
    return linktype, records
