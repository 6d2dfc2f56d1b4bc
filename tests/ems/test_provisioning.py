"""The provisioning facade (UC134): the log kept in the store and filterable, exports, the customer's
choices and each device's acknowledgement kept across a restart, the parameters a device gets."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems.clock import FixedClock
from ems.errors import NotReady, RejectedCommand
from ems.hub import Hub
from ems.model import PriceSignal
from ems.provisioning import (
    Acknowledgement,
    FoundDevice,
    JoinWindow,
    LinkTest,
    NetworkScan,
    ProgramParameters,
    Provisioning,
    ProvisioningEntry,
    to_csv,
    to_json,
)
from tests.hubs import new_hub

NOW = datetime(2026, 7, 15, 19, 0, tzinfo=UTC)
SPA, DOOR, PLUG = "02:50:52:45:4d:48:00:02", "02:50:52:45:4d:48:00:03", "02:50:52:45:4d:48:00:01"
CONFIG = "site: {timezone: America/Los_Angeles}\ndemand_response: {enrollment_group: 5}\n"


class Port:
    """A home network that found three devices and acknowledges what it is sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, ProgramParameters]] = []
        self.answer = Acknowledgement(True, "ready", "acknowledged")

    def join_window(self) -> JoinWindow:
        return JoinWindow(None)

    async def permit(self, duration_s: int, install_codes: dict[str, str]) -> JoinWindow:
        return JoinWindow(NOW + timedelta(seconds=duration_s))

    def found(self) -> list[FoundDevice]:
        return [FoundDevice(SPA, "0x2002", "Maker", "SimLoadController", ("load_control", "price_aware", "metering"),
                            "install_code", NOW),
                FoundDevice(DOOR, "0x2003", "Maker", "SimDoorSensor", ("sensor",), "network_key", NOW),
                FoundDevice(PLUG, "0x2001", "Maker", "SimPlug", ("metering", "switch"), "network_key", NOW)]

    async def send_program(self, device_id: str, parameters: ProgramParameters) -> Acknowledgement:
        self.sent.append((device_id, parameters))
        return self.answer

    async def test(self, device_id: str) -> LinkTest:
        return LinkTest(device_id, True, 255, -40, 3.0, 1, 1, 0, 0)

    async def scan(self) -> NetworkScan:
        return NetworkScan(15, "0x1A62", "dd:dd:dd:dd:dd:dd:dd:dd", False, 3)

    def totals(self) -> dict[str, int]:
        return {"sent": 1, "received": 1, "retries": 0, "failures": 0}


@pytest.fixture
async def hub(tmp_path: Path) -> Hub:
    hub = new_hub(tmp_path, CONFIG, clock=FixedClock(NOW))
    await hub.store.open()
    yield hub
    await hub.store.close()


async def started(hub: Hub) -> tuple[Provisioning, Port]:
    provisioning = Provisioning(hub)
    await provisioning.start()
    port = Port()
    provisioning.attach(port)
    return provisioning, port


async def test_every_step_is_published_and_kept_in_the_store_filterable(hub):
    provisioning, _port = await started(hub)
    heard: list[ProvisioningEntry] = []
    hub.bus.listen(ProvisioningEntry, heard.append)
    provisioning.log(SPA, "joined", "Device_annce", "ok", "joined with address 0x2002")
    provisioning.log(SPA, "test", "Read Attributes (Basic)", "failed", "no answer")
    provisioning.log(DOOR, "joined", "Device_annce", "ok")
    assert [e.stage for e in heard] == ["joined", "test", "joined"]  # at once, before the store has them
    assert [(e.device_id, e.stage) for e in await provisioning.entries()] == [
        (SPA, "joined"), (SPA, "test"), (DOOR, "joined")]
    assert [e.message for e in await provisioning.entries(device_id=SPA, result="failed")] == [
        "Read Attributes (Basic)"]
    assert [e.device_id for e in await provisioning.entries(stage="joined")] == [SPA, DOOR]
    assert (await provisioning.entries())[0].at == NOW


async def test_the_log_exports_as_csv_and_json_with_every_field():
    entries = [ProvisioningEntry(NOW, SPA, "joined", "Device_annce", "ok", 'joined, "quoted"')]
    rows = list(csv.reader(io.StringIO(to_csv(entries))))
    assert rows == [["at", "device_id", "stage", "message", "result", "detail"],
                    [NOW.isoformat(), SPA, "joined", "Device_annce", "ok", 'joined, "quoted"']]
    assert json.loads(to_json(entries)) == {"entries": [
        {"at": NOW.isoformat(), "device_id": SPA, "stage": "joined", "message": "Device_annce", "result": "ok",
         "detail": 'joined, "quoted"'}]}


async def test_a_door_sensor_can_stay_out_but_not_be_put_in_a_program_it_cannot_do(hub):
    provisioning, _port = await started(hub)
    await provisioning.choose(DOOR, name="Back door", location="kitchen", programs=[])
    with pytest.raises(RejectedCommand, match="cannot take part in load control"):
        await provisioning.choose(DOOR, programs=["load_control"])
    door = next(d for d in provisioning.devices() if d["device_id"] == DOOR)
    assert (door["name"], door["location"], door["programs"], door["possible_programs"]) == (
        "Back door", "kitchen", [], [])
    with pytest.raises(RejectedCommand, match="choose at least one program"):
        await provisioning.provision(DOOR)


async def test_a_price_aware_load_controller_gets_its_group_class_and_the_tier_prices(hub):
    provisioning, port = await started(hub)
    for tier, label, price in ((1, "Off-peak", 0.12), (2, "Peak", 0.38)):
        hub.state.apply(PriceSignal("m1", 1, 100 + tier, label, "USD", price, NOW - timedelta(hours=1) if tier == 1
                                    else NOW + timedelta(hours=2), None, tier=tier, number_of_tiers=2, received_at=NOW))
    await provisioning.choose(SPA, name="Spa", location="garden", programs=["load_control", "pricing"])
    choice = await provisioning.provision(SPA)
    (device_id, parameters), = port.sent
    assert device_id == SPA
    assert (parameters.programs, parameters.enrollment_group, parameters.device_class) == (
        ("load_control", "pricing"), 5, 0x0010)
    assert [(t.tier, t.label, t.price_per_kwh) for t in parameters.tiers] == [(1, "Off-peak", 0.12), (2, "Peak", 0.38)]
    assert (choice.readiness, choice.acknowledged_at, choice.enrollment_group) == ("ready", NOW, 5)
    assert (await provisioning.entries(stage="acknowledged"))[-1].result == "ok"


async def test_a_switch_in_load_control_gets_no_prices_and_a_refusal_is_kept(hub):
    provisioning, port = await started(hub)
    port.answer = Acknowledgement(False, "not_answering", "no answer")
    await provisioning.choose(PLUG, programs=["load_control"])
    choice = await provisioning.provision(PLUG)
    assert port.sent[0][1].tiers == () and port.sent[0][1].device_class == 0x0080
    assert (choice.readiness, choice.acknowledged_at) == ("not_answering", None)
    assert (await provisioning.entries(device_id=PLUG, stage="acknowledged"))[-1].result == "failed"


async def test_choices_and_acknowledgements_survive_a_restart(hub):
    provisioning, _port = await started(hub)
    await provisioning.choose(SPA, name="Spa", location="garden", programs=["load_control"])
    await provisioning.provision(SPA)
    await provisioning.stop()
    again, _ = await started(hub)
    spa = next(d for d in again.devices() if d["device_id"] == SPA)
    assert (spa["name"], spa["location"], spa["programs"], spa["readiness"]) == ("Spa", "garden", ["load_control"],
                                                                                 "ready")
    assert spa["acknowledged_at"] == NOW.isoformat()
    assert replace(again.choices[SPA]) == provisioning.choices[SPA]


async def test_without_a_home_network_the_tools_say_it_is_not_running(hub):
    provisioning = Provisioning(hub)
    await provisioning.start()
    assert provisioning.devices() == [] and provisioning.join_window().until is None
    with pytest.raises(NotReady):
        await provisioning.permit(60)
    with pytest.raises(RejectedCommand):
        await started_and_permit(provisioning, 300)


async def started_and_permit(provisioning: Provisioning, seconds: int) -> None:
    provisioning.attach(Port())
    await provisioning.permit(seconds)
