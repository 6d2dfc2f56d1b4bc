"""NWK and APS frame security on bytes: what goes on the secured air comes back exactly, and a frame
that is changed, or opened with another key, does not (Wireshark's reading of the same bytes is
tests/integrations/zigbee/test_join.py's)."""

from __future__ import annotations

import pytest
import zigpy.types as t

from integrations.zigbee import security
from integrations.zigbee.air import AirFrame

NETWORK_KEY = bytes(range(16))
LINK_KEY = bytes.fromhex("66B6900981E1EE3CA4206B6B861C02BB")  # SE 1.x's example install code's key
METER = t.EUI64.convert("00:0d:6f:00:0a:90:69:e7")
EMS = t.EUI64.convert("02:50:52:45:4d:00:00:01")


def report() -> AirFrame:
    return AirFrame.single_hop(pan_id=0x1A62, nwk_src=0x0000, nwk_dst=0x2A01, seq=7, src_endpoint=1,
                               dst_endpoint=1, cluster_id=0x0702, profile_id=0x0109,
                               payload=bytes.fromhex("08 01 0a 00 04 2a dc 05 00"))


def secured(link_key: bytes | None = LINK_KEY) -> bytes:
    return security.secure(report().encode(), source=METER, network_key=NETWORK_KEY, key_seq=0,
                           nwk_counter=5, link_key=link_key, aps_counter=9)


def test_a_secured_frame_carries_the_headers_and_hides_the_payload() -> None:
    data = secured()
    assert security.is_nwk_secured(data) and not security.is_nwk_secured(report().encode())
    aux = data[9 + 8:]
    assert aux[0] == 0x28  # key id 1 (network key), extended nonce, security level 0 on the air
    assert aux[1:5] == (5).to_bytes(4, "little") and aux[5:13] == METER.serialize() and aux[13] == 0
    assert bytes.fromhex("0a 00 04 2a") not in data  # neither the APS header nor the ZCL in clear
    assert len(data) == len(report().encode()) + 14 + 4 + 13 + 4  # NWK aux + MIC, APS aux + MIC


def test_unsecure_gives_back_the_plain_frame_and_who_sent_it() -> None:
    plain = security.unsecure(secured(), network_key=NETWORK_KEY, link_key_of={METER: LINK_KEY})
    assert plain.frame == report().encode() and AirFrame.decode(plain.frame) == report()
    assert (plain.source, plain.nwk_counter, plain.aps_secured) == (METER, 5, True)


def test_a_frame_without_aps_security_needs_only_the_network_key() -> None:
    plain = security.unsecure(secured(link_key=None), network_key=NETWORK_KEY)
    assert plain.frame == report().encode() and not plain.aps_secured


@pytest.mark.parametrize("where", [3, 9 + 2, 9 + 8 + 1, -1])  # MAC header is not covered; NWK header, aux, MIC are
def test_a_changed_frame_or_another_key_does_not_open(where: int) -> None:
    data = bytearray(secured())
    data[where] ^= 0x01
    if where == 3:  # the MAC sequence number: outside what the NWK MIC covers, as on a real network
        security.unsecure(bytes(data), network_key=NETWORK_KEY, link_key_of={METER: LINK_KEY})
        return
    with pytest.raises(security.SecurityError):
        security.unsecure(bytes(data), network_key=NETWORK_KEY, link_key_of={METER: LINK_KEY})


def test_the_wrong_link_key_does_not_open_the_aps_payload() -> None:
    with pytest.raises(security.SecurityError, match="MIC"):
        security.unsecure(secured(), network_key=NETWORK_KEY, link_key_of={METER: bytes(16)})
    with pytest.raises(security.SecurityError, match="no link key"):
        security.unsecure(secured(), network_key=NETWORK_KEY)


def test_the_transport_key_opens_only_with_the_joiners_install_code_key() -> None:
    key = security.TransportKey(NETWORK_KEY, 0, EMS, METER)
    data = security.encode_transport_key(key, link_key=LINK_KEY, pan_id=0x1A62, nwk_src=0, nwk_dst=0x2A01,
                                         seq=1, counter=1)
    assert NETWORK_KEY not in data
    assert security.decode_transport_key(data, link_key=LINK_KEY) == key
    with pytest.raises(security.SecurityError):
        security.decode_transport_key(data, link_key=bytes(16))


def test_the_key_transport_key_is_the_keyed_hash_of_the_link_key_with_zero() -> None:
    assert security.key_transport_key(LINK_KEY) == security.keyed_hash(LINK_KEY, b"\x00")
    assert security.key_transport_key(LINK_KEY) not in (LINK_KEY, security.keyed_hash(LINK_KEY, b"\x02"))
