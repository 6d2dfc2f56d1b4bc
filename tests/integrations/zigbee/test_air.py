"""AirFrame: byte layout of MAC/NWK/APS data frames, round trips and malformed input."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.zigbee.air import HEADER_LENGTH, AirFrame, AirFrameError

# Coordinator 0x0000 -> node 0x1234, PAN 0x1A62: ZCL Read Attributes (Basic, HA profile)
# for attributes 0x0004 and 0x0005, TSN 5.
UNICAST_ZCL = bytes.fromhex(
    "6188"
    "05"
    "621a"
    "3412"
    "0000"  # MAC: data, ack req, PAN compression, short/short
    "0800"
    "3412"
    "0000"
    "1e"
    "05"  # NWK: data, version 2, radius 30, seq 5
    "00"
    "01"
    "0000"
    "0401"
    "01"
    "05"  # APS: data, unicast; ep 1 -> 1, Basic, HA, counter 5
    "00"
    "05"
    "00"
    "0400"
    "0500"  # ZCL: global, client->server, TSN 5, Read Attributes
)
# Node 0x1234 broadcasts Device_annce to 0xFFFD.
BROADCAST_ZDO = bytes.fromhex(
    "4188"
    "07"
    "621a"
    "ffff"
    "3412"  # MAC: data, no ack, to 0xFFFF
    "0800"
    "fdff"
    "3412"
    "1e"
    "07"  # NWK to rx-on-when-idle devices
    "08"
    "00"
    "1300"
    "0000"
    "00"
    "07"  # APS: broadcast delivery, ZDO Device_annce
    "01"
    "3412"
    "f0debc0a006f0d00"
    "8e"  # ZDO: TSN 1, NWK, IEEE (little endian), capability
)


def test_unicast_zcl_frame_bytes() -> None:
    frame = AirFrame.single_hop(
        pan_id=0x1A62,
        nwk_src=0x0000,
        nwk_dst=0x1234,
        seq=5,
        src_endpoint=1,
        dst_endpoint=1,
        cluster_id=0x0000,
        profile_id=0x0104,
        payload=bytes.fromhex("000500040005 00".replace(" ", "")),
    )
    assert frame.encode() == UNICAST_ZCL
    assert AirFrame.decode(UNICAST_ZCL) == frame
    assert not frame.broadcast


def test_broadcast_zdo_frame_bytes() -> None:
    frame = AirFrame.decode(BROADCAST_ZDO)
    assert frame.broadcast
    assert (frame.mac_dst, frame.nwk_dst, frame.nwk_src) == (0xFFFF, 0xFFFD, 0x1234)
    assert (frame.cluster_id, frame.profile_id, frame.dst_endpoint) == (0x0013, 0x0000, 0)
    assert frame.payload == bytes.fromhex("013412f0debc0a006f0d008e")
    assert frame.encode() == BROADCAST_ZDO


def test_ack_request_bit_round_trips() -> None:
    frame = dataclasses.replace(AirFrame.decode(UNICAST_ZCL), ack_request=True)
    data = frame.encode()
    assert data[HEADER_LENGTH - 8] == 0x40  # APS frame control: ack request
    assert AirFrame.decode(data) == frame


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [
        (0, 0x63, "MAC frame type 3 is not data"),
        (0, 0x69, "MAC security"),
        (1, 0x8C, "MAC addressing modes"),
        (9, 0x0C, "NWK protocol version 3"),
        (10, 0x02, "NWK NWK security"),
        (10, 0x04, "NWK source route"),
        (17, 0x01, "APS frame type 1"),
        (17, 0x20, "APS security"),
        (17, 0x08, "does not match NWK destination"),
        (17, 0x0C, "APS delivery mode 3"),
    ],
)
def test_unsupported_frames_are_rejected(offset: int, value: int, message: str) -> None:
    data = bytearray(UNICAST_ZCL)
    data[offset] = value
    with pytest.raises(AirFrameError, match=message):
        AirFrame.decode(bytes(data))


@pytest.mark.parametrize("length", [0, 1, 8, HEADER_LENGTH - 1])
def test_truncated_frames_are_rejected(length: int) -> None:
    with pytest.raises(AirFrameError, match="shorter than"):
        AirFrame.decode(UNICAST_ZCL[:length])


def test_broadcast_needs_mac_broadcast() -> None:
    frame = AirFrame.decode(BROADCAST_ZDO)
    with pytest.raises(AirFrameError, match="MAC destination 0xFFFF"):
        dataclasses.replace(frame, mac_dst=0x0000)


def test_out_of_range_fields_are_rejected() -> None:
    with pytest.raises(AirFrameError, match="cluster_id must be an unsigned 16-bit"):
        dataclasses.replace(AirFrame.decode(UNICAST_ZCL), cluster_id=0x10000)


@given(st.binary(max_size=64))
def test_random_bytes_only_raise_air_frame_error(data: bytes) -> None:
    try:
        frame = AirFrame.decode(data)
    except AirFrameError:
        return
    assert AirFrame.decode(frame.encode()) == frame


@given(
    st.builds(
        AirFrame.single_hop,
        pan_id=st.integers(0, 0xFFFF),
        nwk_src=st.integers(0, 0xFFF7),
        nwk_dst=st.integers(0, 0xFFFF),
        seq=st.integers(0, 255),
        src_endpoint=st.integers(0, 255),
        dst_endpoint=st.integers(0, 255),
        cluster_id=st.integers(0, 0xFFFF),
        profile_id=st.integers(0, 0xFFFF),
        payload=st.binary(max_size=80),
        radius=st.integers(0, 255),
        ack_request=st.booleans(),
    )
)
def test_encode_decode_round_trip(frame: AirFrame) -> None:
    assert AirFrame.decode(frame.encode()) == frame


# Coordinator 0x0000 groupcasts On/Off "Off" to group 0x0E07 (HA profile), seq 9, ZCL TSN 9.
GROUPCAST_OFF = bytes.fromhex(
    "4188" "09" "621a" "ffff" "0000"  # MAC: data, no ack request (broadcast), PAN compression
    "0800" "fdff" "0000" "1e" "09"  # NWK: data, version 2, to 0xFFFD (rx-on-when-idle), radius 30
    "0c" "070e" "0600" "0401" "01" "09"  # APS: data, group delivery (0b11), group 0x0E07, On/Off, HA, ep 1
    "01" "09" "00"  # ZCL: cluster-specific, client->server, TSN 9, Off
)


def test_groupcast_frame_bytes() -> None:
    frame = AirFrame.groupcast(pan_id=0x1A62, nwk_src=0x0000, group=0x0E07, seq=9, src_endpoint=1,
                               cluster_id=0x0006, profile_id=0x0104, payload=bytes.fromhex("010900"))
    assert frame.encode() == GROUPCAST_OFF
    decoded = AirFrame.decode(GROUPCAST_OFF)
    assert decoded == frame
    assert (decoded.group, decoded.broadcast, decoded.dst_endpoint, decoded.payload) == (0x0E07, True, 0xFF,
                                                                                        bytes.fromhex("010900"))


@pytest.mark.parametrize("group", [0x0000, 0xFFF8, 0xFFFF])
def test_a_groupcast_needs_a_group_address(group: int) -> None:
    with pytest.raises(AirFrameError, match="group address"):
        AirFrame.groupcast(pan_id=1, nwk_src=0, group=group, seq=1, src_endpoint=1, cluster_id=6,
                           profile_id=0x0104, payload=b"")


def test_a_groupcast_travels_in_a_broadcast_without_aps_ack() -> None:
    frame = AirFrame.groupcast(pan_id=1, nwk_src=0, group=0x0E07, seq=1, src_endpoint=1, cluster_id=6,
                               profile_id=0x0104, payload=b"")
    with pytest.raises(AirFrameError, match="NWK broadcast"):
        dataclasses.replace(frame, nwk_dst=0x1234, mac_dst=0x1234)
    with pytest.raises(AirFrameError, match="acknowledgement"):
        dataclasses.replace(frame, ack_request=True)
    with pytest.raises(AirFrameError, match="shorter than its"):
        AirFrame.decode(GROUPCAST_OFF[:HEADER_LENGTH])  # the group header is one byte longer


@given(
    st.builds(
        AirFrame.groupcast,
        pan_id=st.integers(0, 0xFFFF),
        nwk_src=st.integers(0, 0xFFF7),
        group=st.integers(0x0001, 0xFFF7),
        seq=st.integers(0, 255),
        src_endpoint=st.integers(0, 255),
        cluster_id=st.integers(0, 0xFFFF),
        profile_id=st.integers(0, 0xFFFF),
        payload=st.binary(max_size=80),
        radius=st.integers(0, 255),
    )
)
def test_groupcast_encode_decode_round_trip(frame: AirFrame) -> None:
    assert AirFrame.decode(frame.encode()) == frame
