"""Joining the meter's network: the meter is the coordinator and trust center, the radio joins it
with its install code, and every frame after the join is secured (and decodes in Wireshark given
the keys, and only then)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import zigpy.exceptions
import zigpy.types as t

from integrations.zigbee import security
from integrations.zigbee.han import VirtualHan
from integrations.zigbee.install_code import InstallCode
from integrations.zigbee.radio import JoinRefused, VirtualRadioApplication, join_refusal
from integrations.zigbee.trust_center import JoinRefusal, Registration, TrustCenter
from integrations.zigbee.virtual_node import COORDINATOR_NWK, VirtualNode
from tests.conftest import require_tool

from .conftest import METER_IEEE, initialized_device, make_meter
from .pcap_reader import read_pcap

TSHARK = "/usr/bin/tshark"
RADIO_IEEE = t.EUI64.convert("02:50:52:45:4d:00:00:01")
CODE = InstallCode.parse("83FE D340 7A93 9723 A5C6 39B2 6916 D505 C3B5")  # SE 1.x's example code
OTHER_CODE = InstallCode(bytes(range(16)))
NETWORK_KEY = bytes.fromhex("a1b2c3d4e5f60718293a4b5c6d7e8f90")


def coordinator_meter() -> VirtualNode:
    return make_meter(nwk=COORDINATOR_NWK)


@pytest.fixture
def trust_center() -> TrustCenter:
    return TrustCenter(METER_IEEE, network_key=NETWORK_KEY,
                       registrations=[Registration(RADIO_IEEE, CODE)],
                       approved_device_types=("energy_management_system", "in_home_display"))


@pytest.fixture
async def meter_han(tmp_path: Path, trust_center: TrustCenter) -> AsyncIterator[VirtualHan]:
    han = VirtualHan(pcap_path=tmp_path / "han.pcap", trust_center=trust_center)
    han.add_node(coordinator_meter())
    await han.start()
    try:
        yield han
    finally:
        await han.stop()


def joiner(han: VirtualHan, tmp_path: Path, code: InstallCode = CODE, ieee: t.EUI64 = RADIO_IEEE,
           device_type: str = "energy_management_system") -> VirtualRadioApplication:
    return VirtualRadioApplication({
        "device": {"path": han.radio_path}, "pcap_path": str(tmp_path / "radio.pcap"),
        "coordinator_ieee": str(ieee), "join": {"install_code": code.hex(), "device_type": device_type},
    })


async def read_demand(app: VirtualRadioApplication) -> int:
    metering = (await initialized_device(app)).endpoints[1].smartenergy_metering
    await metering.bind()
    values, _ = await metering.read_attributes(["instantaneous_demand"])
    await asyncio.sleep(0.05)
    return values["instantaneous_demand"]


async def test_a_registered_appliance_joins_under_the_meter_and_talks_secured(
    meter_han: VirtualHan, trust_center: TrustCenter, tmp_path: Path
) -> None:
    app = joiner(meter_han, tmp_path)
    await app.startup()
    try:
        assert app.joined is not None and app.joined.trust_center == METER_IEEE
        assert app.state.node_info.nwk == app.joined.nwk != COORDINATOR_NWK
        assert meter_han.nodes[COORDINATOR_NWK].ieee == METER_IEEE  # the meter is the coordinator
        assert await read_demand(app) == 1_500
    finally:
        await app.shutdown()
    assert meter_han.counters["security_failures"] == meter_han.counters["aps_unsecured"] == 0
    assert [(r.ieee, r.outcome) for r in trust_center.log] == [(RADIO_IEEE, "admitted"), (RADIO_IEEE, "authenticated")]
    _, records = read_pcap(tmp_path / "radio.pcap")
    assert all(security.is_nwk_secured(data) for *_, data in records[1:])  # all but the Transport-Key


async def test_an_unknown_appliance_is_refused_with_what_to_do(
    meter_han: VirtualHan, trust_center: TrustCenter, tmp_path: Path
) -> None:
    app = joiner(meter_han, tmp_path, ieee=t.EUI64.convert("02:50:52:45:4d:00:00:99"))
    with pytest.raises(zigpy.exceptions.TransientConnectionError) as raised:
        await app.startup()
    refused = join_refusal(raised.value)
    assert isinstance(refused, JoinRefused)
    assert refused.reason is JoinRefusal.NOT_REGISTERED
    assert "give them the install code on the Commissioning page" in refused.text
    assert trust_center.log[-1].outcome == "refused"


async def test_a_wrong_install_code_cannot_read_the_network_key(
    meter_han: VirtualHan, trust_center: TrustCenter, tmp_path: Path
) -> None:
    app = joiner(meter_han, tmp_path, code=OTHER_CODE)
    with pytest.raises(zigpy.exceptions.TransientConnectionError) as raised:
        await app.startup()
    refused = join_refusal(raised.value)
    assert isinstance(refused, JoinRefused)
    assert refused.reason is JoinRefusal.WRONG_INSTALL_CODE
    await meter_han.wait_connected(False)
    assert [r.outcome for r in trust_center.log] == ["admitted", "refused"]
    assert "another install code" in trust_center.log[-1].detail


async def test_a_device_type_the_utility_has_not_approved_is_refused(
    meter_han: VirtualHan, trust_center: TrustCenter, tmp_path: Path
) -> None:
    trust_center.register(Registration(RADIO_IEEE, CODE, "smart_appliance"))
    app = joiner(meter_han, tmp_path, device_type="smart_appliance")
    with pytest.raises(zigpy.exceptions.TransientConnectionError) as raised:
        await app.startup()
    refused = join_refusal(raised.value)
    assert isinstance(refused, JoinRefused)
    assert refused.reason is JoinRefusal.DEVICE_TYPE_NOT_APPROVED


async def tshark(*args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        TSHARK, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()


def key_option(key: bytes, label: str) -> list[str]:
    return ["-o", f'uat:zigbee_pc_keys:"{key.hex()}","Normal","{label}"']


@pytest.mark.tshark
async def test_wireshark_decodes_the_secured_capture_given_the_keys_and_not_without(
    meter_han: VirtualHan, tmp_path: Path
) -> None:
    require_tool(TSHARK, "decodes the secured capture")
    app = joiner(meter_han, tmp_path)
    await app.startup()
    try:
        await read_demand(app)
    finally:
        await app.shutdown()
    for pcap in (tmp_path / "radio.pcap", tmp_path / "han.pcap"):
        fields = ["-T", "fields", "-e", "zbee_aps.cluster", "-e", "zbee_zcl.cmd.id", "-e", "zbee_aps.cmd.key"]
        plain = await tshark("-r", str(pcap), *fields)
        keyed = await tshark("-r", str(pcap), *key_option(NETWORK_KEY, "network"),
                             *key_option(CODE.link_key, "install code"), *fields)
        assert "0x0702" not in plain and NETWORK_KEY.hex() not in plain.replace(":", "")
        rows = [line.split("\t") for line in keyed.splitlines()]
        assert any(row[0] == "0x0702" for row in rows), keyed  # the metering reads, decrypted
        assert any(NETWORK_KEY.hex() in row[2].replace(":", "") for row in rows)  # the Transport-Key
        # With the network key alone the NWK layer opens but the SE frames stay APS-encrypted.
        nwk_only = await tshark("-r", str(pcap), *key_option(NETWORK_KEY, "network"), *fields)
        assert "0x0702" in nwk_only and not any(
            line.split("\t")[1] for line in nwk_only.splitlines() if line.startswith("0x0702")
        )
