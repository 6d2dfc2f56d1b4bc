"""PcapWriter: link type 230 global header and one flushed record per frame."""

from __future__ import annotations

import struct
from pathlib import Path

from integrations.zigbee.air import AirFrame
from integrations.zigbee.pcap import LINKTYPE_IEEE802_15_4_NOFCS, PcapWriter

from .pcap_reader import read_pcap

FRAME = AirFrame.single_hop(
    pan_id=0x1A62,
    nwk_src=0x1234,
    nwk_dst=0x0000,
    seq=1,
    src_endpoint=1,
    dst_endpoint=1,
    cluster_id=0x0702,
    profile_id=0x0109,
    payload=b"\x18\x01\x0a\x00\x00\x25\x40\xe2\x01\x00\x00\x00",
)


def test_global_header_and_records(tmp_path: Path) -> None:
    path = tmp_path / "capture.pcap"
    with PcapWriter(path) as writer:
        writer.write(FRAME, timestamp=1_700_000_000.25)
        # Flushed per record: readable before close.
        linktype, records = read_pcap(path)
        assert records == [(1_700_000_000, 250_000, FRAME.encode())]
        writer.write(FRAME)
    assert writer.closed and writer.records == 2
    linktype, records = read_pcap(path)
    assert linktype == LINKTYPE_IEEE802_15_4_NOFCS == 230
    assert [data for _, _, data in records] == [FRAME.encode()] * 2
    magic, major, minor = struct.unpack_from("<IHH", path.read_bytes())
    assert (magic, major, minor) == (0xA1B2C3D4, 2, 4)


def test_close_twice_is_harmless(tmp_path: Path) -> None:
    writer = PcapWriter(tmp_path / "empty.pcap")
    writer.close()
    writer.close()
    assert read_pcap(tmp_path / "empty.pcap") == (230, [])


async def test_the_radio_captures_each_request_before_the_response_to_it(han, tmp_path: Path) -> None:
    """A frame the radio sends is written as it goes on the air, not once its delivery status
    is back: by then the node's answer has arrived (and was written) already."""
    from zigpy.zcl import foundation

    from .test_capture import capture_session

    _, records = read_pcap(await capture_session(han, tmp_path))
    frames = [AirFrame.decode(data) for _s, _us, data in records]
    zcl = [(f, foundation.ZCLHeader.deserialize(f.payload)[0]) for f in frames if f.dst_endpoint and f.src_endpoint]
    responses = 0
    for index, (frame, header) in enumerate(zcl):
        general = foundation.GeneralCommand(header.command_id) if header.frame_control.is_general else None
        if general is None or not general.name.endswith("_rsp"):
            continue
        responses += 1
        assert any(f.nwk_src == frame.nwk_dst and f.cluster_id == frame.cluster_id and h.tsn == header.tsn
                   for f, h in zcl[:index]), f"{general.name} TSN {header.tsn} is captured before its request"
    assert responses >= 3  # Read Attributes (interview, read), Configure Reporting
