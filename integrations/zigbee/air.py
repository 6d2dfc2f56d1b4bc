"""Over-the-air frames of the virtual HAN: IEEE 802.15.4 MAC + ZigBee NWK + APS, unencrypted.

The virtual radio and the simulated HAN exchange these exact bytes, so a capture of them
(see `pcap.py`) is what a sniffer would see on a network with security turned off.
Layouts follow IEEE 802.15.4-2003 §7.2 and ZigBee PRO (05-3474) §3.3 (NWK) and §2.2.5 (APS).
"""

from __future__ import annotations

import dataclasses
import enum
import struct

# MAC frame control (IEEE 802.15.4 §7.2.1.1)
_MAC_TYPE_DATA = 0b001
_MAC_TYPE_MASK = 0b111
_MAC_SECURITY = 1 << 3
_MAC_ACK_REQUEST = 1 << 5
_MAC_PAN_ID_COMPRESSION = 1 << 6
_MAC_DST_MODE_SHIFT = 10
_MAC_SRC_MODE_SHIFT = 14
_MAC_ADDR_MODE_SHORT = 0b10
_MAC_HEADER = struct.Struct("<HBHHH")  # fcf, seq, dst pan, dst short, src short

# NWK frame control (ZigBee PRO §3.3.1.1)
_NWK_TYPE_DATA = 0b00
_NWK_TYPE_MASK = 0b11
_NWK_VERSION_SHIFT = 2
_NWK_VERSION_MASK = 0b1111 << _NWK_VERSION_SHIFT
_NWK_PROTOCOL_VERSION = 2  # ZigBee 2007 / PRO
_NWK_UNSUPPORTED = (
    (1 << 8, "multicast"),
    (1 << 9, "NWK security"),
    (1 << 10, "source route"),
    (1 << 11, "destination IEEE address"),
    (1 << 12, "source IEEE address"),
)
_NWK_HEADER = struct.Struct("<HHHBB")  # fcf, dst, src, radius, seq

# APS frame control (ZigBee PRO §2.2.5.1.1)
_APS_TYPE_DATA = 0b00
_APS_TYPE_MASK = 0b11
_APS_DELIVERY_SHIFT = 2
_APS_DELIVERY_MASK = 0b11 << _APS_DELIVERY_SHIFT
_APS_SECURITY = 1 << 5
_APS_ACK_REQUEST = 1 << 6
_APS_EXTENDED_HEADER = 1 << 7
_APS_HEADER = struct.Struct("<BBHHBB")  # fcf, dst ep, cluster, profile, src ep, counter
_APS_GROUP_HEADER = struct.Struct("<BHHHBB")  # fcf, group address, cluster, profile, src ep, counter
_APS_DELIVERY_UNICAST, _APS_DELIVERY_BROADCAST, _APS_DELIVERY_GROUP = 0b00, 0b10, 0b11

MAC_BROADCAST = 0xFFFF
HEADER_LENGTH = _MAC_HEADER.size + _NWK_HEADER.size + _APS_HEADER.size
GROUP_HEADER_LENGTH = _MAC_HEADER.size + _NWK_HEADER.size + _APS_GROUP_HEADER.size
MAX_GROUP = 0xFFF7  # group addresses 0x0001-0xFFF7 (ZCL §3.6.1.1: 0x0000 and 0xFFF8-0xFFFF are not groups)


class AirFrameError(ValueError):
    """Bytes that are not an unencrypted MAC/NWK/APS data frame this HAN understands."""


class BroadcastAddress(enum.IntEnum):
    """NWK broadcast destinations (ZigBee PRO §3.6.5)."""

    ALL_DEVICES = 0xFFFF
    RX_ON_WHEN_IDLE = 0xFFFD
    ROUTERS_AND_COORDINATOR = 0xFFFC
    LOW_POWER_ROUTERS = 0xFFFB


def is_broadcast(nwk: int) -> bool:
    """True for the NWK broadcast range 0xFFF8-0xFFFF."""
    return nwk >= 0xFFF8


def _check_range(name: str, value: int, bits: int) -> None:
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise AirFrameError(f"{name} must be an unsigned {bits}-bit integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class AirFrame:
    """One over-the-air data frame; NWK broadcast destinations imply APS broadcast delivery.

    A groupcast (``group`` set) is an APS group-addressed frame (delivery mode 0b11, the group
    address in the place of the destination endpoint, ZigBee PRO §2.2.5.1.1.1 and §2.2.5.1.3)
    carried in a NWK broadcast to every node whose receiver is on when idle (0xFFFD, §3.6.5 and
    §2.2.4.1.1: group addressing without NWK multicast). One frame on the air reaches every member;
    a node delivers it to those of its endpoints that are in the group and ignores it otherwise.
    ``dst_endpoint`` is not sent for a groupcast (0xFF: whichever endpoints are members).
    """

    mac_seq: int
    pan_id: int
    mac_dst: int
    mac_src: int
    nwk_dst: int
    nwk_src: int
    radius: int
    nwk_seq: int
    dst_endpoint: int
    cluster_id: int
    profile_id: int
    src_endpoint: int
    aps_counter: int
    payload: bytes = b""
    ack_request: bool = False
    group: int | None = None

    def __post_init__(self) -> None:
        for name in ("mac_seq", "radius", "nwk_seq", "dst_endpoint", "src_endpoint", "aps_counter"):
            _check_range(name, getattr(self, name), 8)
        for name in (
            "pan_id",
            "mac_dst",
            "mac_src",
            "nwk_dst",
            "nwk_src",
            "cluster_id",
            "profile_id",
        ):
            _check_range(name, getattr(self, name), 16)
        if not isinstance(self.payload, bytes):
            raise AirFrameError(f"payload must be bytes, got {type(self.payload).__name__}")
        if self.broadcast and self.mac_dst != MAC_BROADCAST:
            raise AirFrameError(
                f"NWK broadcast to 0x{self.nwk_dst:04X} needs MAC destination 0xFFFF,"
                f" got 0x{self.mac_dst:04X}"
            )
        if self.group is not None:
            if not isinstance(self.group, int) or not 0x0001 <= self.group <= MAX_GROUP:
                raise AirFrameError(f"group must be a group address 0x0001-0xFFF7, got {self.group!r}")
            if not self.broadcast:
                raise AirFrameError(
                    f"a groupcast travels in a NWK broadcast, not to 0x{self.nwk_dst:04X}"
                )
            if self.ack_request:
                raise AirFrameError("a groupcast cannot ask for an APS acknowledgement")

    @classmethod
    def single_hop(
        cls,
        *,
        pan_id: int,
        nwk_src: int,
        nwk_dst: int,
        seq: int,
        src_endpoint: int,
        dst_endpoint: int,
        cluster_id: int,
        profile_id: int,
        payload: bytes,
        radius: int = 30,
        ack_request: bool = False,
    ) -> AirFrame:
        """A frame sent directly between neighbours: MAC addresses equal the NWK ones."""
        return cls(
            mac_seq=seq,
            pan_id=pan_id,
            mac_dst=MAC_BROADCAST if is_broadcast(nwk_dst) else nwk_dst,
            mac_src=nwk_src,
            nwk_dst=nwk_dst,
            nwk_src=nwk_src,
            radius=radius,
            nwk_seq=seq,
            dst_endpoint=dst_endpoint,
            cluster_id=cluster_id,
            profile_id=profile_id,
            src_endpoint=src_endpoint,
            aps_counter=seq,
            payload=payload,
            ack_request=ack_request,
        )

    @classmethod
    def groupcast(
        cls,
        *,
        pan_id: int,
        nwk_src: int,
        group: int,
        seq: int,
        src_endpoint: int,
        cluster_id: int,
        profile_id: int,
        payload: bytes,
        radius: int = 30,
    ) -> AirFrame:
        """A frame to every member of ``group``: APS group delivery in a NWK broadcast to 0xFFFD."""
        return cls(
            mac_seq=seq,
            pan_id=pan_id,
            mac_dst=MAC_BROADCAST,
            mac_src=nwk_src,
            nwk_dst=BroadcastAddress.RX_ON_WHEN_IDLE,
            nwk_src=nwk_src,
            radius=radius,
            nwk_seq=seq,
            dst_endpoint=0xFF,
            cluster_id=cluster_id,
            profile_id=profile_id,
            src_endpoint=src_endpoint,
            aps_counter=seq,
            payload=payload,
            group=group,
        )

    @property
    def broadcast(self) -> bool:
        """True when the NWK destination is a broadcast address (a groupcast's too)."""
        return is_broadcast(self.nwk_dst)

    def encode(self) -> bytes:
        """The frame's bytes, without the MAC FCS (as in LINKTYPE_IEEE802_15_4_NOFCS)."""
        mac_fcf = (
            _MAC_TYPE_DATA
            | _MAC_PAN_ID_COMPRESSION
            | (_MAC_ADDR_MODE_SHORT << _MAC_DST_MODE_SHIFT)
            | (_MAC_ADDR_MODE_SHORT << _MAC_SRC_MODE_SHIFT)
        )
        if self.mac_dst != MAC_BROADCAST:
            mac_fcf |= _MAC_ACK_REQUEST  # unicast MAC frames are acknowledged
        nwk_fcf = _NWK_TYPE_DATA | (_NWK_PROTOCOL_VERSION << _NWK_VERSION_SHIFT)
        if self.group is not None:
            delivery = _APS_DELIVERY_GROUP
        else:
            delivery = _APS_DELIVERY_BROADCAST if self.broadcast else _APS_DELIVERY_UNICAST
        aps_fcf = _APS_TYPE_DATA | (delivery << _APS_DELIVERY_SHIFT)
        if self.ack_request:
            aps_fcf |= _APS_ACK_REQUEST
        mac_nwk = _MAC_HEADER.pack(
            mac_fcf, self.mac_seq, self.pan_id, self.mac_dst, self.mac_src
        ) + _NWK_HEADER.pack(nwk_fcf, self.nwk_dst, self.nwk_src, self.radius, self.nwk_seq)
        if self.group is not None:
            return (
                mac_nwk
                + _APS_GROUP_HEADER.pack(
                    aps_fcf,
                    self.group,
                    self.cluster_id,
                    self.profile_id,
                    self.src_endpoint,
                    self.aps_counter,
                )
                + self.payload
            )
        return (
            mac_nwk
            + _APS_HEADER.pack(
                aps_fcf,
                self.dst_endpoint,
                self.cluster_id,
                self.profile_id,
                self.src_endpoint,
                self.aps_counter,
            )
            + self.payload
        )

    @classmethod
    def decode(cls, data: bytes) -> AirFrame:
        """Parse a frame; anything else raises `AirFrameError` naming the offending field."""
        if len(data) < HEADER_LENGTH:
            raise AirFrameError(
                f"frame of {len(data)} bytes is shorter than the {HEADER_LENGTH}-byte"
                " MAC+NWK+APS header"
            )
        mac_fcf, mac_seq, pan_id, mac_dst, mac_src = _MAC_HEADER.unpack_from(data, 0)
        if mac_fcf & _MAC_TYPE_MASK != _MAC_TYPE_DATA:
            raise AirFrameError(f"MAC frame type {mac_fcf & _MAC_TYPE_MASK} is not data (1)")
        if mac_fcf & _MAC_SECURITY:
            raise AirFrameError("MAC security is not supported")
        if not mac_fcf & _MAC_PAN_ID_COMPRESSION:
            raise AirFrameError("MAC frame without PAN ID compression is not supported")
        dst_mode = (mac_fcf >> _MAC_DST_MODE_SHIFT) & 0b11
        src_mode = (mac_fcf >> _MAC_SRC_MODE_SHIFT) & 0b11
        if dst_mode != _MAC_ADDR_MODE_SHORT or src_mode != _MAC_ADDR_MODE_SHORT:
            raise AirFrameError(
                f"MAC addressing modes dst={dst_mode} src={src_mode}: only short (2) is supported"
            )

        offset = _MAC_HEADER.size
        nwk_fcf, nwk_dst, nwk_src, radius, nwk_seq = _NWK_HEADER.unpack_from(data, offset)
        if nwk_fcf & _NWK_TYPE_MASK != _NWK_TYPE_DATA:
            raise AirFrameError(f"NWK frame type {nwk_fcf & _NWK_TYPE_MASK} is not data (0)")
        version = (nwk_fcf & _NWK_VERSION_MASK) >> _NWK_VERSION_SHIFT
        if version != _NWK_PROTOCOL_VERSION:
            raise AirFrameError(f"NWK protocol version {version} is not 2")
        for bit, name in _NWK_UNSUPPORTED:
            if nwk_fcf & bit:
                raise AirFrameError(f"NWK {name} is not supported")

        offset += _NWK_HEADER.size
        aps_fcf = data[offset]
        group: int | None = None
        header_length = HEADER_LENGTH
        if (aps_fcf & _APS_DELIVERY_MASK) >> _APS_DELIVERY_SHIFT == _APS_DELIVERY_GROUP:
            if len(data) < GROUP_HEADER_LENGTH:
                raise AirFrameError(
                    f"group frame of {len(data)} bytes is shorter than its"
                    f" {GROUP_HEADER_LENGTH}-byte header"
                )
            aps_fcf, group, cluster_id, profile_id, src_ep, counter = (
                _APS_GROUP_HEADER.unpack_from(data, offset)
            )
            dst_ep, header_length = 0xFF, GROUP_HEADER_LENGTH
        else:
            aps_fcf, dst_ep, cluster_id, profile_id, src_ep, counter = _APS_HEADER.unpack_from(
                data, offset
            )
        if aps_fcf & _APS_TYPE_MASK != _APS_TYPE_DATA:
            raise AirFrameError(f"APS frame type {aps_fcf & _APS_TYPE_MASK} is not data (0)")
        if aps_fcf & _APS_SECURITY:
            raise AirFrameError("APS security is not supported")
        if aps_fcf & _APS_EXTENDED_HEADER:
            raise AirFrameError("APS extended header (fragmentation) is not supported")
        delivery = (aps_fcf & _APS_DELIVERY_MASK) >> _APS_DELIVERY_SHIFT
        if delivery not in (_APS_DELIVERY_UNICAST, _APS_DELIVERY_BROADCAST, _APS_DELIVERY_GROUP):
            raise AirFrameError(
                f"APS delivery mode {delivery} is neither unicast (0), broadcast (2) nor group (3)"
            )
        if (delivery != _APS_DELIVERY_UNICAST) != is_broadcast(nwk_dst):
            raise AirFrameError(
                f"APS delivery mode {delivery} does not match NWK destination 0x{nwk_dst:04X}"
            )

        return cls(
            mac_seq=mac_seq,
            pan_id=pan_id,
            mac_dst=mac_dst,
            mac_src=mac_src,
            nwk_dst=nwk_dst,
            nwk_src=nwk_src,
            radius=radius,
            nwk_seq=nwk_seq,
            dst_endpoint=dst_ep,
            cluster_id=cluster_id,
            profile_id=profile_id,
            src_endpoint=src_ep,
            aps_counter=counter,
            payload=bytes(data[header_length:]),
            ack_request=bool(aps_fcf & _APS_ACK_REQUEST),
            group=group,
        )
