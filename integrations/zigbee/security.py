"""ZigBee PRO frame security for the virtual SE network: NWK security with the network key, APS
security with a link key, and the trust center's APS Transport-Key command.

Works on the over-the-air bytes of `air.AirFrame` (MAC + NWK + APS, no FCS). ``secure`` turns a
plain frame into the one a secured network carries and ``unsecure`` turns it back (the result
parses with `AirFrame.decode`), so the virtual radio and the simulated meter exchange, and both
capture, exactly what a sniffer sees on a real SE HAN; Wireshark decodes it given the keys.

Layouts and rules from ZigBee PRO (05-3474-21) §4.5.1 (auxiliary frame header), §4.5.2.2 (CCM*
nonce), §4.3.1 / §4.4.1 (outgoing NWK and APS frames: the authenticated data is the header up to
and including the auxiliary header, with the security level the network uses written into its
copy of the security control field, while the frame on the air carries level 0), §4.4.11.1
(Transport-Key) and §B.1.4 / §4.5.3 (keyed hash: key-transport key = HMAC(link key, 0x00)).
Security level 5 (ENC-MIC-32) as SE 1.x requires: AES-128 in CCM* with a 4-byte MIC.
"""

from __future__ import annotations

import dataclasses
import struct

import zigpy.types as t
import zigpy.util
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESCCM

SECURITY_LEVEL = 5  # ENC-MIC-32
MIC_LENGTH = 4
KEY_LENGTH = 16

KEY_ID_DATA = 0  # a link key
KEY_ID_NETWORK = 1
KEY_ID_KEY_TRANSPORT = 2
KEY_ID_KEY_LOAD = 3
_EXTENDED_NONCE = 1 << 5

_MAC_LENGTH = 9  # fcf, seq, dst pan, dst short, src short (PAN ID compression)
_NWK_LENGTH = 8  # fcf, dst, src, radius, seq (no optional fields)
_NWK_SECURITY = 1 << 9
_APS_SECURITY = 1 << 5
_APS_TYPE_MASK = 0b11
_APS_TYPE_COMMAND = 0b01
_APS_DELIVERY_GROUP = 0b11
_APS_UNICAST_LENGTH = 8  # fcf, dst ep, cluster, profile, src ep, counter
_APS_GROUP_LENGTH = 9
_APS_COMMAND_LENGTH = 2  # fcf, counter

APS_CMD_TRANSPORT_KEY = 0x05
KEY_TYPE_STANDARD_NETWORK = 0x01


class SecurityError(ValueError):
    """A secured frame that does not authenticate with the keys at hand, or is malformed."""


def keyed_hash(key: bytes, data: bytes) -> bytes:
    """ZigBee's keyed hash (HMAC over the AES-MMO hash, block size 16; §B.1.4)."""
    if len(key) != KEY_LENGTH:
        raise ValueError(f"a ZigBee key has 16 bytes, not {len(key)}")
    inner = bytes(b ^ 0x36 for b in key)
    outer = bytes(b ^ 0x5C for b in key)
    return bytes(zigpy.util.aes_mmo_hash(outer + bytes(zigpy.util.aes_mmo_hash(inner + data))))


def key_transport_key(link_key: bytes) -> bytes:
    """The key that protects an APS Transport-Key command (§4.5.3: hash of the link key with 0x00)."""
    return keyed_hash(link_key, b"\x00")


@dataclasses.dataclass(frozen=True, slots=True)
class AuxHeader:
    """The auxiliary security header (§4.5.1) of a frame, as found on the air."""

    key_id: int
    counter: int
    source: t.EUI64
    key_seq: int | None  # only with the network key

    @property
    def control(self) -> int:
        """The security control field with the network's level, as the nonce and MIC use it."""
        return SECURITY_LEVEL | (self.key_id << 3) | _EXTENDED_NONCE

    def encode(self, *, level: int = 0) -> bytes:
        head = bytes([level | (self.key_id << 3) | _EXTENDED_NONCE]) + struct.pack("<I", self.counter)
        head += self.source.serialize()
        return head + (bytes([self.key_seq]) if self.key_seq is not None else b"")

    @classmethod
    def decode(cls, data: bytes, offset: int) -> tuple[AuxHeader, int]:
        if len(data) < offset + 5:
            raise SecurityError("secured frame too short for its auxiliary header")
        control = data[offset]
        key_id = (control >> 3) & 0b11
        if not control & _EXTENDED_NONCE:
            raise SecurityError("secured frame without the source address in its header")
        (counter,) = struct.unpack_from("<I", data, offset + 1)
        end = offset + 5 + 8
        source, _ = t.EUI64.deserialize(data[offset + 5 : end])
        key_seq = None
        if key_id == KEY_ID_NETWORK:
            key_seq = data[end]
            end += 1
        if len(data) < end + MIC_LENGTH:
            raise SecurityError("secured frame too short for its MIC")
        return cls(key_id, counter, source, key_seq), end

    def nonce(self) -> bytes:
        return self.source.serialize() + struct.pack("<I", self.counter) + bytes([self.control])


def _seal(key: bytes, aux: AuxHeader, header: bytes, plain: bytes) -> bytes:
    """Header (with the aux header on the air) + ciphertext + MIC."""
    authenticated = header + aux.encode(level=SECURITY_LEVEL)
    sealed = AESCCM(key, tag_length=MIC_LENGTH).encrypt(aux.nonce(), plain, authenticated)
    return header + aux.encode() + sealed


def _open(key: bytes, aux: AuxHeader, header: bytes, sealed: bytes) -> bytes:
    authenticated = header + aux.encode(level=SECURITY_LEVEL)
    try:
        return AESCCM(key, tag_length=MIC_LENGTH).decrypt(aux.nonce(), sealed, authenticated)
    except InvalidTag as err:
        raise SecurityError("the frame does not authenticate with this key (MIC mismatch)") from err


def _aps_header_length(data: bytes, offset: int) -> int:
    fcf = data[offset]
    if fcf & _APS_TYPE_MASK == _APS_TYPE_COMMAND:
        return _APS_COMMAND_LENGTH
    if (fcf >> 2) & 0b11 == _APS_DELIVERY_GROUP:
        return _APS_GROUP_LENGTH
    return _APS_UNICAST_LENGTH


def secure(
    frame: bytes,
    *,
    source: t.EUI64,
    network_key: bytes,
    key_seq: int,
    nwk_counter: int,
    link_key: bytes | None = None,
    aps_counter: int = 0,
) -> bytes:
    """The plain frame with APS security (with ``link_key``, if given) and then NWK security."""
    if len(frame) < _MAC_LENGTH + _NWK_LENGTH + 2:
        raise SecurityError(f"frame of {len(frame)} bytes is too short to secure")
    mac_nwk, aps = frame[: _MAC_LENGTH + _NWK_LENGTH], frame[_MAC_LENGTH + _NWK_LENGTH :]
    if link_key is not None:
        length = _aps_header_length(aps, 0)
        header = bytes([aps[0] | _APS_SECURITY]) + aps[1:length]
        aps = _seal(link_key, AuxHeader(KEY_ID_DATA, aps_counter, source, None), header, aps[length:])
    (nwk_fcf,) = struct.unpack_from("<H", mac_nwk, _MAC_LENGTH)
    nwk_header = struct.pack("<H", nwk_fcf | _NWK_SECURITY) + mac_nwk[_MAC_LENGTH + 2 :]
    aux = AuxHeader(KEY_ID_NETWORK, nwk_counter, source, key_seq)
    return mac_nwk[:_MAC_LENGTH] + _seal(network_key, aux, nwk_header, aps)


def is_nwk_secured(frame: bytes) -> bool:
    """Whether the frame's NWK header says it is secured."""
    return len(frame) >= _MAC_LENGTH + 2 and bool(
        struct.unpack_from("<H", frame, _MAC_LENGTH)[0] & _NWK_SECURITY
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Unsecured:
    """A frame taken out of its security: the plain bytes, who sent it, and how it was secured."""

    frame: bytes
    source: t.EUI64
    nwk_counter: int
    aps_secured: bool


def unsecure(
    frame: bytes, *, network_key: bytes, link_key_of: dict[t.EUI64, bytes] | None = None
) -> Unsecured:
    """The plain frame of a NWK-secured (and maybe APS-secured) one; SecurityError if it fails."""
    if not is_nwk_secured(frame):
        raise SecurityError("frame is not NWK-secured")
    nwk_end = _MAC_LENGTH + _NWK_LENGTH
    aux, offset = AuxHeader.decode(frame, nwk_end)
    if aux.key_id != KEY_ID_NETWORK:
        raise SecurityError(f"NWK frame secured with key id {aux.key_id}, not the network key")
    (nwk_fcf,) = struct.unpack_from("<H", frame, _MAC_LENGTH)
    aps = _open(network_key, aux, frame[_MAC_LENGTH:nwk_end], frame[offset:])
    plain_nwk = struct.pack("<H", nwk_fcf & ~_NWK_SECURITY) + frame[_MAC_LENGTH + 2 : nwk_end]
    aps_secured = bool(aps and aps[0] & _APS_SECURITY)
    if aps_secured:
        length = _aps_header_length(aps, 0)
        aps_aux, aps_offset = AuxHeader.decode(aps, length)
        if aps_aux.key_id != KEY_ID_DATA:
            raise SecurityError(f"APS data secured with key id {aps_aux.key_id}, not a link key")
        link_key = (link_key_of or {}).get(aps_aux.source)
        if link_key is None:
            raise SecurityError(f"no link key with {aps_aux.source}")
        payload = _open(link_key, aps_aux, aps[:length], aps[aps_offset:])
        aps = bytes([aps[0] & ~_APS_SECURITY]) + aps[1:length] + payload
    return Unsecured(frame[:_MAC_LENGTH] + plain_nwk + aps, aux.source, aux.counter, aps_secured)


class ReplayGuard:
    """Freshness of secured frames (ZigBee PRO §4.3.1.2 step 5, §4.5.2: the incoming frame counter).

    A receiver keeps, per sender, the highest NWK frame counter it accepted from that sender and
    drops a frame whose counter is not above it: a frame recorded off the air and sent again (a
    replay) authenticates like the original, so only its counter gives it away. Checked after the
    MIC (a forged counter does not authenticate, so cannot move the mark). ``forget`` starts a
    sender afresh when it joins again (it then counts from 1, as the virtual radio does after a
    restart). Each refused sender is logged once by the caller: ``first_refusal`` says when.
    """

    def __init__(self) -> None:
        self._highest: dict[t.EUI64, int] = {}
        self._refused: set[t.EUI64] = set()

    def fresh(self, source: t.EUI64, counter: int) -> bool:
        """Whether the frame is new (and if so its counter becomes the sender's mark)."""
        if counter <= self._highest.get(source, -1):
            return False
        self._highest[source] = counter
        return True

    def first_refusal(self, source: t.EUI64) -> bool:
        """True the first time a sender's frame is refused (log then, not on every replayed frame)."""
        if source in self._refused:
            return False
        self._refused.add(source)
        return True

    def forget(self, source: t.EUI64 | None = None) -> None:
        """Start one sender (or, with None, every sender) afresh: a new join."""
        if source is None:
            self._highest.clear()
            self._refused.clear()
        else:
            self._highest.pop(source, None)
            self._refused.discard(source)


# --- the trust center's Transport-Key (§4.4.11.1), sent before the joiner has the network key ---


@dataclasses.dataclass(frozen=True, slots=True)
class TransportKey:
    """A standard network key as the trust center hands it to a joiner."""

    network_key: bytes
    key_seq: int
    destination: t.EUI64
    source: t.EUI64  # the trust center


def encode_transport_key(
    key: TransportKey, *, link_key: bytes, pan_id: int, nwk_src: int, nwk_dst: int, seq: int, counter: int
) -> bytes:
    """The over-the-air Transport-Key frame: NWK unsecured, APS secured with the key-transport key."""
    mac = struct.pack("<HBHHH", 0x8861, seq, pan_id, nwk_dst, nwk_src)  # data, ack, PAN compression, short
    nwk = struct.pack("<HHHBB", 0x0008, nwk_dst, nwk_src, 1, seq)  # data, protocol version 2, radius 1
    aps_header = bytes([_APS_TYPE_COMMAND | _APS_SECURITY, seq])
    command = bytes([APS_CMD_TRANSPORT_KEY, KEY_TYPE_STANDARD_NETWORK]) + key.network_key
    command += bytes([key.key_seq]) + key.destination.serialize() + key.source.serialize()
    aux = AuxHeader(KEY_ID_KEY_TRANSPORT, counter, key.source, None)
    return mac + nwk + _seal(key_transport_key(link_key), aux, aps_header, command)


def decode_transport_key(frame: bytes, *, link_key: bytes) -> TransportKey:
    """The network key of a Transport-Key frame; SecurityError if ``link_key`` is not the one used."""
    nwk_end = _MAC_LENGTH + _NWK_LENGTH
    if len(frame) < nwk_end + _APS_COMMAND_LENGTH or frame[nwk_end] & _APS_TYPE_MASK != _APS_TYPE_COMMAND:
        raise SecurityError("not an APS command frame")
    aux, offset = AuxHeader.decode(frame, nwk_end + _APS_COMMAND_LENGTH)
    if aux.key_id != KEY_ID_KEY_TRANSPORT:
        raise SecurityError(f"Transport-Key secured with key id {aux.key_id}")
    command = _open(key_transport_key(link_key), aux, frame[nwk_end : nwk_end + _APS_COMMAND_LENGTH], frame[offset:])
    if len(command) != 35 or command[0] != APS_CMD_TRANSPORT_KEY or command[1] != KEY_TYPE_STANDARD_NETWORK:
        raise SecurityError("APS command is not a standard network key transport")
    return TransportKey(
        network_key=command[2:18],
        key_seq=command[18],
        destination=t.EUI64.deserialize(command[19:27])[0],
        source=t.EUI64.deserialize(command[27:35])[0],
    )
