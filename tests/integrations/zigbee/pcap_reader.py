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


def plain_frames(records: list[tuple[int, int, bytes]], keys: list[tuple[bytes, str]]) -> list[bytes]:
    """The records' frames with their NWK and APS security taken off (given the network key first,
    then the link keys); the trust center's Transport-Key (an APS command) is left out."""
    import zigpy.types as t

    from integrations.zigbee import security

    network_key = keys[0][0]
    frames = []
    for *_, data in records:
        if not security.is_nwk_secured(data):
            continue  # the Transport-Key, before the joiner has the network key
        nwk = None
        for link_key, _label in keys[1:] or [(network_key, "")]:
            try:
                aux_source = t.EUI64.deserialize(data[9 + 8 + 5 : 9 + 8 + 13])[0]
                nwk = security.unsecure(data, network_key=network_key, link_key_of={aux_source: link_key})
                break
            except security.SecurityError:
                continue
        assert nwk is not None, f"a frame that no key given opens: {data.hex()}"
        frames.append(nwk.frame)
    return frames
