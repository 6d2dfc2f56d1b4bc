"""Wire messages between radio and HAN: framing, round trips, malformed bodies."""

from __future__ import annotations

import asyncio

import pytest
import zigpy.types as t

from integrations.zigbee import wire
from integrations.zigbee.air import AirFrame

FRAME = AirFrame.single_hop(
    pan_id=0x1A62,
    nwk_src=0x0000,
    nwk_dst=0x1234,
    seq=9,
    src_endpoint=1,
    dst_endpoint=1,
    cluster_id=0x0702,
    profile_id=0x0109,
    payload=b"\x00\x01\x00\x00\x00",
)

MESSAGES = [
    wire.Hello(
        ieee=t.EUI64.convert("02:50:52:45:4d:00:00:01"),
        pan_id=0x1A62,
        extended_pan_id=t.ExtendedPanId.convert("50:52:45:4d:49:53:45:31"),
        channel=15,
    ),
    wire.Ready(),
    wire.Busy(),
    wire.NetworkUp(),
    wire.Permit(duration_s=60),
    wire.Tx(tx_id=0xBEEF, frame=FRAME),
    wire.TxResult(tx_id=0xBEEF, status=wire.TxStatus.NO_ROUTE),
    wire.Rx(frame=FRAME),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
async def test_messages_round_trip_over_a_stream(message: wire.Message) -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(wire.encode(message) + wire.encode(wire.Ready()))
    assert await wire.read_message(reader) == message
    assert await wire.read_message(reader) == wire.Ready()


def test_length_prefix_counts_type_and_body() -> None:
    assert wire.encode(wire.Permit(duration_s=5)) == b"\x00\x00\x00\x02\x07\x05"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty message"),
        (b"\x63", "unknown message type 99"),
        (b"\x01\x00", "HELLO body is 1 bytes"),
        (b"\x06\x00\x01", "RX carries a malformed air frame"),
        (b"\x05\x01\x00\x07", "TX_STATUS message is malformed"),
    ],
)
def test_malformed_bodies_raise_wire_error(body: bytes, message: str) -> None:
    with pytest.raises(wire.WireError, match=message):
        wire.decode(body)


async def test_impossible_length_is_a_framing_error() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"\xff\xff\xff\xff")
    with pytest.raises(wire.FramingError, match="outside 1..4096"):
        await wire.read_message(reader)


async def test_end_of_stream_raises_incomplete_read() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(b"\x00\x00")
    reader.feed_eof()
    with pytest.raises(asyncio.IncompleteReadError):
        await wire.read_message(reader)
