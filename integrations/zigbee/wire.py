"""Length-prefixed messages between the virtual radio and the simulated HAN over asyncio streams.

Each message is `length (uint32 BE) | type (uint8) | body`, where `length` counts type and
body. Air frames cross unchanged (`Tx`, `Rx`); the few control messages stand in for what a
real radio's firmware would know or do by itself (its own address, permit-join, delivery
status of a unicast).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import struct

import zigpy.types as t

from .air import AirFrame, AirFrameError

MAX_MESSAGE = 4096
_LENGTH = struct.Struct(">I")
_HELLO = struct.Struct("<8sH8sB")
_TX_ID = struct.Struct("<H")


class WireError(ValueError):
    """A message that cannot be framed or parsed; the stream stays usable unless said so."""


class _Type(enum.IntEnum):
    HELLO = 1
    READY = 2
    BUSY = 3
    TX = 4
    TX_STATUS = 5
    RX = 6
    PERMIT = 7
    NETWORK_UP = 8
    JOIN = 9
    JOINED = 10
    REFUSED = 11
    SECURED_TX = 12
    SECURED_RX = 13


class TxStatus(enum.IntEnum):
    """What the HAN did with a frame the radio transmitted."""

    SUCCESS = 0
    NO_ROUTE = 1  # no node with that NWK address (a real radio: no MAC ack / route)
    INVALID_FRAME = 2
    NO_ACK = 3  # lost on the air (a link fault): the MAC's retries got no ack


@dataclasses.dataclass(frozen=True)
class Hello:
    """Radio -> HAN on connect: the coordinator's identity and network settings."""

    ieee: t.EUI64
    pan_id: int
    extended_pan_id: t.ExtendedPanId
    channel: int


@dataclasses.dataclass(frozen=True)
class Ready:
    """HAN -> radio: the HAN accepted this radio as its coordinator."""


@dataclasses.dataclass(frozen=True)
class Busy:
    """HAN -> radio: refused, another coordinator is connected; the HAN then closes."""


@dataclasses.dataclass(frozen=True)
class NetworkUp:
    """Radio -> HAN: the coordinator's network is running; nodes may announce themselves."""


@dataclasses.dataclass(frozen=True)
class Permit:
    """Radio -> HAN: permit joining for `duration_s` seconds (0 closes)."""

    duration_s: int


@dataclasses.dataclass(frozen=True)
class Tx:
    """Radio -> HAN: transmit `frame`; the HAN answers with a `TxResult` of the same id."""

    tx_id: int
    frame: AirFrame


@dataclasses.dataclass(frozen=True)
class TxResult:
    """HAN -> radio: delivery status of the `Tx` with `tx_id`."""

    tx_id: int
    status: TxStatus


@dataclasses.dataclass(frozen=True)
class Rx:
    """HAN -> radio: a frame the coordinator received."""

    frame: AirFrame


@dataclasses.dataclass(frozen=True)
class Join:
    """Radio -> HAN on connect, instead of `Hello`: join the network whose trust center the HAN
    hosts (the meter's), as a device of `device_type` (a `trust_center.DEVICE_TYPES` name)."""

    ieee: t.EUI64
    device_type: str


@dataclasses.dataclass(frozen=True)
class Joined:
    """HAN -> radio: admitted with NWK address `nwk`; `transport_key` is the trust center's
    over-the-air Transport-Key frame (the network key under the joiner's install-code link key)."""

    nwk: int
    pan_id: int
    extended_pan_id: t.ExtendedPanId
    channel: int
    trust_center: t.EUI64
    transport_key: bytes


@dataclasses.dataclass(frozen=True)
class Refused:
    """HAN -> radio: the trust center did not admit the joiner (a `JoinRefusal`); the HAN closes."""

    reason: int


@dataclasses.dataclass(frozen=True)
class SecuredTx:
    """Radio -> HAN on a secured network: a `Tx` whose frame is in its secured over-the-air bytes."""

    tx_id: int
    data: bytes


@dataclasses.dataclass(frozen=True)
class SecuredRx:
    """HAN -> radio on a secured network: a received frame in its secured over-the-air bytes."""

    data: bytes


Message = (
    Hello | Ready | Busy | NetworkUp | Permit | Tx | TxResult | Rx | Join | Joined | Refused | SecuredTx | SecuredRx
)
_JOINED = struct.Struct("<HH8sB8s")


def encode(message: Message) -> bytes:
    """The message with its length prefix."""
    match message:
        case Hello():
            kind = _Type.HELLO
            body = _HELLO.pack(
                message.ieee.serialize(),
                message.pan_id,
                message.extended_pan_id.serialize(),
                message.channel,
            )
        case Ready():
            kind, body = _Type.READY, b""
        case Busy():
            kind, body = _Type.BUSY, b""
        case NetworkUp():
            kind, body = _Type.NETWORK_UP, b""
        case Permit():
            kind, body = _Type.PERMIT, bytes([message.duration_s])
        case Tx():
            kind, body = _Type.TX, _TX_ID.pack(message.tx_id) + message.frame.encode()
        case TxResult():
            kind, body = _Type.TX_STATUS, _TX_ID.pack(message.tx_id) + bytes([message.status])
        case Rx():
            kind, body = _Type.RX, message.frame.encode()
        case Join():
            kind, body = _Type.JOIN, message.ieee.serialize() + message.device_type.encode()
        case Joined():
            kind = _Type.JOINED
            body = _JOINED.pack(
                message.nwk, message.pan_id, message.extended_pan_id.serialize(), message.channel,
                message.trust_center.serialize(),
            ) + message.transport_key
        case Refused():
            kind, body = _Type.REFUSED, bytes([message.reason])
        case SecuredTx():
            kind, body = _Type.SECURED_TX, _TX_ID.pack(message.tx_id) + message.data
        case SecuredRx():
            kind, body = _Type.SECURED_RX, message.data
        case _:
            raise TypeError(f"not a wire message: {message!r}")
    if len(body) + 1 > MAX_MESSAGE:
        raise WireError(f"{kind.name} message of {len(body) + 1} bytes exceeds {MAX_MESSAGE}")
    return _LENGTH.pack(len(body) + 1) + bytes([kind]) + body


def decode(data: bytes) -> Message:
    """Parse one message (type byte and body, without the length prefix)."""
    if not data:
        raise WireError("empty message")
    try:
        kind = _Type(data[0])
    except ValueError:
        raise WireError(f"unknown message type {data[0]}") from None
    body = data[1:]
    try:
        match kind:
            case _Type.HELLO:
                if len(body) != _HELLO.size:
                    raise WireError(f"HELLO body is {len(body)} bytes, expected {_HELLO.size}")
                ieee, pan_id, ext_pan, channel = _HELLO.unpack(body)
                return Hello(
                    ieee=t.EUI64.deserialize(ieee)[0],
                    pan_id=pan_id,
                    extended_pan_id=t.ExtendedPanId.deserialize(ext_pan)[0],
                    channel=channel,
                )
            case _Type.READY:
                return Ready()
            case _Type.BUSY:
                return Busy()
            case _Type.NETWORK_UP:
                return NetworkUp()
            case _Type.PERMIT:
                if len(body) != 1:
                    raise WireError(f"PERMIT body is {len(body)} bytes, expected 1")
                return Permit(duration_s=body[0])
            case _Type.TX:
                if len(body) < _TX_ID.size:
                    raise WireError("TX message without a transmission id")
                (tx_id,) = _TX_ID.unpack_from(body)
                return Tx(tx_id=tx_id, frame=AirFrame.decode(body[_TX_ID.size :]))
            case _Type.TX_STATUS:
                if len(body) != _TX_ID.size + 1:
                    raise WireError(f"TX_STATUS body is {len(body)} bytes, expected 3")
                (tx_id,) = _TX_ID.unpack_from(body)
                return TxResult(tx_id=tx_id, status=TxStatus(body[_TX_ID.size]))
            case _Type.RX:
                return Rx(frame=AirFrame.decode(body))
            case _Type.JOIN:
                if len(body) < 8:
                    raise WireError("JOIN message without an IEEE address")
                return Join(ieee=t.EUI64.deserialize(body[:8])[0], device_type=body[8:].decode())
            case _Type.JOINED:
                if len(body) < _JOINED.size:
                    raise WireError(f"JOINED body is {len(body)} bytes, expected at least {_JOINED.size}")
                nwk, pan_id, ext_pan, channel, tc = _JOINED.unpack_from(body)
                return Joined(
                    nwk=nwk, pan_id=pan_id, extended_pan_id=t.ExtendedPanId.deserialize(ext_pan)[0],
                    channel=channel, trust_center=t.EUI64.deserialize(tc)[0],
                    transport_key=bytes(body[_JOINED.size :]),
                )
            case _Type.REFUSED:
                if len(body) != 1:
                    raise WireError(f"REFUSED body is {len(body)} bytes, expected 1")
                return Refused(reason=body[0])
            case _Type.SECURED_TX:
                if len(body) < _TX_ID.size:
                    raise WireError("SECURED_TX message without a transmission id")
                (tx_id,) = _TX_ID.unpack_from(body)
                return SecuredTx(tx_id=tx_id, data=bytes(body[_TX_ID.size :]))
            case _Type.SECURED_RX:
                return SecuredRx(data=bytes(body))
    except AirFrameError as err:
        raise WireError(f"{kind.name} carries a malformed air frame: {err}") from err
    except ValueError as err:  # an unknown TxStatus, a device type that is not UTF-8
        raise WireError(f"{kind.name} message is malformed: {err}") from err
    raise AssertionError(kind)  # pragma: no cover - every _Type is matched above


async def read_message(reader: asyncio.StreamReader) -> Message:
    """Read the next message.

    Raises `asyncio.IncompleteReadError` at end of stream, and `WireError` for a bad body
    (the stream is still in step) or an impossible length (it is not: close it).
    """
    header = await reader.readexactly(_LENGTH.size)
    (length,) = _LENGTH.unpack(header)
    if not 0 < length <= MAX_MESSAGE:
        raise FramingError(f"message length {length} outside 1..{MAX_MESSAGE}")
    return decode(await reader.readexactly(length))


class FramingError(WireError):
    """The stream lost message boundaries; the connection must be closed."""


def write_message(writer: asyncio.StreamWriter, message: Message) -> None:
    """Queue `message` on `writer` (the caller drains when it needs back-pressure)."""
    writer.write(encode(message))
