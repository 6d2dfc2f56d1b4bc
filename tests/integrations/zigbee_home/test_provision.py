"""Provisioning on the home network (UC134): joining with a countdown and install codes, what each
device can do, program parameters acknowledged, the test tool, and the Time cluster the EMS serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from ems.errors import RejectedCommand
from ems.provisioning import GUIDANCE, ProgramParameters, TierPrice
from integrations.zigbee_home import async_setup

from .conftest import NOON, eventually, home_section

PLUG = "02:50:52:45:4d:48:00:01"
SPA = "02:50:52:45:4d:48:00:02"
DOOR = "02:50:52:45:4d:48:00:03"
HOME = {
    "devices": [
        {"kind": "plug", "name": "Pool pump", "ieee": PLUG, "nominal_kw": 1.5},
        {"kind": "load_controller", "name": "Spa heater", "ieee": SPA, "nominal_kw": 2.0,
         "device_class": 0x0010, "price_aware": True},
        {"kind": "door_sensor", "name": "Back door", "ieee": DOOR},
    ],
}
# The published example of ZigBee SE §5.4.8.1.1.1: 83FED3407A939723A5C639B26916D505C3B5 (CRC C3B5).
GOOD_CODE = "83FED3407A939723A5C639B26916D505C3B5"


class Log:
    """What the network tells ``hub.provisioning``: the log's entries, in order."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str, str, str]] = []
        self.port: Any = None

    def attach(self, port: Any) -> None:
        self.port = port

    def log(self, device_id: str, stage: str, message: str, result: str, detail: str = "") -> None:
        self.entries.append((device_id, stage, message, result, detail))

    def of(self, device_id: str, stage: str | None = None) -> list[tuple[str, str, str, str, str]]:
        return [e for e in self.entries if e[0] == device_id and (stage is None or e[1] == stage)]


@pytest.fixture
def home_spec() -> dict[str, Any]:
    return HOME


@pytest.fixture
async def closed(hub: Any, sim: Any, clock: Any) -> AsyncIterator[Any]:
    """The home network up with joining closed: nothing has joined yet (on the test's clock)."""
    hub.provisioning = Log()
    hub.clock = clock
    network = await async_setup(hub, home_section(sim.home_port, devices={PLUG: {"name": "Pool pump"}}, permit_join_s=0))
    try:
        await eventually(lambda: network.app is not None)
        yield network
    finally:
        await network.close()


async def open_and_wait(network: Any, count: int, **codes: str) -> None:
    await network.provision.permit(30, codes)
    await eventually(lambda: len([d for d in network.provision.found() if d.model]) >= count, 5.0)


async def test_nothing_joins_until_joining_is_opened_then_each_device_is_logged_as_it_announces(hub, closed):
    assert closed.provision.found() == []
    assert closed.provision.join_window().until is None
    await open_and_wait(closed, 3)
    window = closed.provision.join_window()
    assert window.until is not None and window.until - hub.clock() <= timedelta(seconds=30)
    log = hub.provisioning
    assert ("", "joining", "Mgmt_Permit_Joining_req", "ok", "joining open for 30 s") in log.entries
    for device_id in (PLUG, SPA, DOOR):
        stages = [e[1] for e in log.of(device_id)]
        assert stages[:2] == ["joined", "discovered"], stages


async def test_each_device_says_what_it_can_do_from_its_clusters(closed):
    await open_and_wait(closed, 3)
    found = {d.device_id: d for d in closed.provision.found()}
    assert found[PLUG].capabilities == ("metering", "switch")
    assert set(found[SPA].capabilities) == {"load_control", "price_aware", "metering", "time"}
    assert found[DOOR].capabilities == ("sensor",)  # it stays out of every program
    assert (found[PLUG].manufacturer, found[PLUG].model) == ("Premise EMS simulator", "SimPlug")
    assert found[PLUG].address == "0x2001"
    await eventually(lambda: closed.provision.found()[0].name == "Pool pump")  # its configured name
    assert {d.device_id: d.name for d in closed.provision.found()} == {PLUG: "Pool pump", SPA: "", DOOR: ""}
    assert {d.credentials for d in found.values()} == {"network_key"}


async def test_a_device_given_an_install_code_is_shown_as_admitted_by_it(hub, closed):
    await open_and_wait(closed, 3, **{SPA: GOOD_CODE})
    found = {d.device_id: d for d in closed.provision.found()}
    assert found[SPA].credentials == "install_code"
    assert found[PLUG].credentials == "network_key"
    assert hub.provisioning.of(SPA, "joining")[0][2:4] == ("install code", "ok")
    assert GOOD_CODE not in repr(hub.provisioning.entries)  # the code itself is never logged


async def test_a_mistyped_install_code_is_refused_with_what_to_do_and_joining_stays_closed(hub, closed):
    with pytest.raises(RejectedCommand, match="Type it again"):
        await closed.provision.permit(30, {SPA: GOOD_CODE[:-1] + "4"})
    assert closed.provision.join_window().until is None
    assert hub.provisioning.of(SPA, "joining")[-1][3:] == ("failed", GUIDANCE["wrong_install_code"])


async def test_the_load_controller_acknowledges_its_enrollment_group_and_the_prices(hub, sim, closed):
    await open_and_wait(closed, 3)
    await eventually(lambda: closed.devices.get(SPA) is not None and closed.devices[SPA].ready)
    tiers = (TierPrice(1, "Off-peak", 0.12, "USD"), TierPrice(2, "Peak", 0.38, "USD"))
    ack = await closed.provision.send_program(SPA, ProgramParameters(("load_control", "pricing"), 7, 0x0010, tiers))
    assert (ack.accepted, ack.readiness) == (True, "ready")
    spa = sim.home.device("Spa heater")
    assert spa.node.get_attribute(1, 0x0701, "utility_enrollment_group", client=True) == 7
    assert [(bytes(p["rate_label"]), p["price"]) for p in spa.prices] == [(b"Off-peak", 120), (b"Peak", 380)]
    messages = [e[2] for e in hub.provisioning.of(SPA, "provisioning")]
    assert messages == ["Write Attributes (DRLC)", "Read Attributes rsp (DRLC)", "Publish Price", "Publish Price"]


async def test_a_silent_device_is_not_acknowledged_and_the_guidance_says_out_of_range(hub, sim, closed):
    await open_and_wait(closed, 3)
    sim.home.device("Pool pump").silent = True
    ack = await closed.provision.send_program(PLUG, ProgramParameters(("load_control",), 0, 0x0080))
    assert (ack.accepted, ack.readiness, ack.detail) == (False, "not_answering", GUIDANCE["out_of_range"])
    result = await closed.provision.test(PLUG)
    assert (result.ok, result.problem, result.round_trip_ms) == (False, "out_of_range", None)
    assert result.retries == 2 and result.failures == 1


async def test_the_test_tool_measures_a_round_trip_and_counts_packets(hub, closed):
    await open_and_wait(closed, 3)
    result = await closed.provision.test(PLUG)
    assert result.ok and result.round_trip_ms is not None and result.round_trip_ms >= 0
    assert (result.lqi, result.rssi_dbm) == (255, -40)  # what the virtual radio reports for every frame
    assert result.sent >= 1 and result.received >= 1 and result.failures == 0
    totals = closed.provision.totals()
    assert totals["sent"] >= result.sent and totals["received"] >= result.received
    missing = await closed.provision.test("02:50:52:45:4d:48:00:99")
    assert (missing.ok, missing.problem) == (False, "not_joining")


async def test_the_scan_reports_the_network_and_says_what_the_radio_cannot_measure(closed):
    await open_and_wait(closed, 3)
    scan = await closed.provision.scan()
    assert scan.channel is not None and scan.pan_id.startswith("0x")
    assert scan.devices == 3 and scan.permit_joining
    assert scan.energy_by_channel == {} and "cannot measure" in scan.note


async def test_a_device_reads_the_time_the_ems_serves_which_is_the_hubs(hub, sim, closed, clock):
    await open_and_wait(closed, 3)
    spa = sim.home.device("Spa heater")
    clock.now = NOON + timedelta(minutes=7)
    served = await spa.read_time()
    assert served == NOON + timedelta(minutes=7)  # the hub's clock, not the host's
    assert spa.time_status & 0x01  # Master
    assert hub.provisioning.of(SPA, "clock")[0][3] == "ok"
    assert {d.device_id: d.device_time for d in closed.provision.found()}[SPA] == served


async def test_when_the_countdown_ends_a_device_given_a_code_that_never_joined_gets_guidance(hub, closed):
    await closed.provision.permit(1, {"02:50:52:45:4d:48:00:99": GOOD_CODE})
    await eventually(lambda: any(e[3] == "failed" for e in hub.provisioning.of("02:50:52:45:4d:48:00:99")), 4.0)
    assert GUIDANCE["not_joining"] in hub.provisioning.of("02:50:52:45:4d:48:00:99")[-1][4]

