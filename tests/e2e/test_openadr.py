"""An OpenADR 2.0b program end to end: openleadr's own VTN on loopback sends an event, the VEN
registered by the appliance brings it to the DR core, the home's devices are controlled and the VTN
hears optIn; the customer opts out mid-event, the devices are put back and the VTN hears optOut (in
oadrCreatedEvent and in EiOpt) and sees the override with its time in the status reports, the
meter's demand and the devices' states in the telemetry reports, each report once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ems.clock import REAL
from ems.model import MeterReading
from tests.e2e.conftest import (
    HOME_CONFIG,
    HOME_IEEE,
    HOME_RULES,
    HOME_SCENARIO,
    Appliance,
    running_appliance,
)
from tests.integrations.openadr.vtn import VEN_ID, Vtn

SCENARIO: dict[str, Any] = {**HOME_SCENARIO, "events": []}  # the meter sends no event: the program does


def config(vtn: Vtn) -> str:
    return HOME_CONFIG + f"""
openadr:
  vtn_url: {vtn.url}
  ven_name: home
  poll_interval_s: 1
"""


@contextlib.asynccontextmanager
async def program_home(tmp_path: Path, vtn: Vtn, data_dir: Path | None = None) -> AsyncIterator[Appliance]:
    # Real time: openleadr's VTN and VEN schedule events and reports on the real clock.
    async with running_appliance(tmp_path, SCENARIO, config_text=config(vtn), rules_text=HOME_RULES, clock=REAL,
                                 data_dir=data_dir) as running:
        await running.online()
        await running.wait_until(lambda: len(running.hub.control.registry.devices) == 3
                                 and all(d.reading is not None for d in running.hub.control.registry.devices.values()),
                                 timeout_s=15, what="the three home devices set up")
        await running.wait_until(lambda: running.hub.integrations["openadr"].registered.is_set(),
                                 what="the VEN registered")
        yield running


@pytest.fixture
async def vtn() -> AsyncIterator[Vtn]:
    server = Vtn()
    await server.start()
    yield server
    await server.stop()


def simple_event(vtn: Vtn, event_id: str, level: int = 2, minutes: int = 5) -> None:
    def answered(ven_id: str, event_id: str, opt_type: str) -> None:
        return None
    vtn.server.add_event(ven_id=VEN_ID, signal_name="SIMPLE", signal_type="level", event_id=event_id,
                         intervals=[{"dtstart": datetime.now(UTC), "duration": timedelta(minutes=minutes),
                                     "signal_payload": level}], callback=answered)


async def test_a_program_event_moves_the_devices_and_the_customer_opts_out(tmp_path: Path, vtn: Vtn) -> None:
    async with program_home(tmp_path, vtn) as home:
        metered = {home.hub.state.meter("main").value("demand_kw")}  # the latest before listening, and each after
        home.hub.bus.listen(MeterReading, lambda r: metered.add(r.demand_kw) if r.demand_kw is not None else None)
        pump = home.simulator.home.device("Pool pump")
        pump_on = f"{HOME_IEEE['pump']}/on"
        assert pump.on
        await home.wait_until(lambda: vtn.seen.report_values(pump_on), what="the pump's state in a status report")
        simple_event(vtn, "ev-1")

        await home.wait_until(lambda: not pump.on, timeout_s=15, what="the pump shed for the program's event")
        await home.wait_until(lambda: ("ev-1", "optIn") in vtn.seen.opt_types, what="optIn at the VTN")
        [view] = [v for v in home.hub.control.events() if v.event.meter_id == "openadr"]
        assert int(view.event.criticality) == 4  # SIMPLE level 2 (high) is SE criticality level 3
        await home.wait_until(lambda: [v for _, v in vtn.seen.report_values(pump_on)][-1:] == [0.0],
                              what="the pump reported off while shed")

        # The customer takes the spa heater out: the VTN hears an EiOpt for that resource only.
        spa = HOME_IEEE["spa"]
        async with home.http.post(f"{home.url}/api/v1/events/openadr/{view.event.issuer_event_id}/devices/{spa}/opt-out") as response:
            assert response.status in (200, 204), await response.text()
        await home.wait_until(lambda: vtn.seen.opts, what="the device's EiOpt at the VTN")
        [device_opt] = vtn.seen.opts
        assert (device_opt["event_id"], device_opt["opt_type"]) == ("ev-1", "optOut")
        assert device_opt["targets"] == [{"resource_id": spa}]
        assert vtn.seen.opt_types == [("ev-1", "optIn")]  # the event itself: still in

        path = f"/api/v1/events/openadr/{view.event.issuer_event_id}/opt-out"
        async with home.http.post(home.url + path) as response:
            assert response.status in (200, 204), await response.text()
        await home.wait_until(lambda: pump.on, timeout_s=15, what="the pump back on after the opt-out")
        await home.wait_until(lambda: vtn.seen.opt_types[-1:] == [("ev-1", "optOut")], what="optOut at the VTN")
        await home.wait_until(lambda: len(vtn.seen.opts) == 2, what="the event's EiOpt at the VTN")
        opt = vtn.seen.opts[-1]
        assert (opt["event_id"], opt["opt_type"], opt["opt_reason"]) == ("ev-1", "optOut", "overrideStatus")

        # The status reports: the override from the time of the opt-out, the pump's state before and after.
        await home.wait_until(lambda: any(v == 1.0 for _, v in vtn.seen.report_values("override")),
                              what="the override in a status report")
        await home.wait_until(lambda: [v for _, v in vtn.seen.report_values(pump_on)][-1:] == [1.0],
                              what="the pump's state back on in a status report")
        [override_at] = {at for at, v in vtn.seen.report_values("override") if v == 1.0}
        assert override_at == opted_at_time(home, view.event.issuer_event_id)
        demand = [v for _, v in vtn.seen.report_values("demand_kw")]
        assert demand and set(demand) <= metered  # the meter's own demand readings, as read
        # Each report reached the VTN under its own id, none twice.
        ids = [r["report_id"] for r in vtn.seen.reports]
        assert len(ids) == len(set(ids)) and all(ids)


def opted_at_time(home: Appliance, issuer_event_id: int) -> datetime:
    """When the customer opted out of the program's event, as the VEN recorded it from the DR core."""
    return home.hub.integrations["openadr"]._opted_out_at[issuer_event_id]


async def test_reports_the_vtn_refused_survive_a_restart_and_reach_it_once(tmp_path: Path, vtn: Vtn) -> None:
    data_dir = tmp_path / "data"
    vtn.seen.refuse_reports = True  # the VTN is down for reports: they wait in the outbox
    async with program_home(tmp_path / "first", vtn, data_dir=data_dir) as home:
        async def waiting() -> list[int]:
            return [p.id for p in await home.hub.outbox.pending() if p.kind == "OpenAdrReport"]
        await home.wait_until(lambda: _at_least(waiting, 3), what="reports waiting in the outbox")
        held = await waiting()
    assert not vtn.seen.reports

    vtn.seen.refuse_reports = False
    async with program_home(tmp_path / "second", vtn, data_dir=data_dir) as home:
        wanted = {f"home-{record_id}" for record_id in held}
        await home.wait_until(lambda: wanted <= {r["report_id"] for r in vtn.seen.reports},
                              what="the reports held over the restart at the VTN")
        ids = [r["report_id"] for r in vtn.seen.reports]
        assert len(ids) == len(set(ids))  # none twice


async def _at_least(query: Any, n: int) -> bool:
    return len(await query()) >= n


OVERLAP_SCENARIO: dict[str, Any] = {
    **HOME_SCENARIO,
    "cancellations": [{"at": 25.0, "id": 5101, "device_class": 0x0019}],
}


async def test_overlapping_meter_and_program_events_both_run_and_the_stronger_wins_per_device(
        tmp_path: Path, vtn: Vtn) -> None:
    """The meter's event 5101 (criticality 3: cooling offset +2 °C) and a program's weaker one
    (LOAD_CONTROL set point 27 °C: criticality 2) overlap: both run, the thermostat follows the
    meter's; once the meter cancels its event the program's takes the thermostat."""
    async with running_appliance(tmp_path, OVERLAP_SCENARIO, config_text=config(vtn), rules_text=HOME_RULES, clock=REAL) as home:
        await home.online()
        thermostat = home.simulator.home.device("Living room").logic
        await home.wait_until(lambda: home.hub.integrations["openadr"].registered.is_set(), what="the VEN registered")
        await home.wait_until(lambda: thermostat.cooling_setpoint_c == 26, timeout_s=15,
                              what="the meter's event applied (+2 °C)")
        vtn.server.add_event(ven_id=VEN_ID, signal_name="LOAD_CONTROL", signal_type="x-loadControlSetpoint",
                             event_id="ev-overlap", callback=_answered,
                             intervals=[{"dtstart": datetime.now(UTC), "duration": timedelta(minutes=5),
                                         "signal_payload": 27.0}])

        def program_active() -> bool:
            return any(v.event.meter_id == "openadr" and v.phase.value == "active" for v in home.hub.control.events())
        await home.wait_until(program_active, what="the program's event running")
        await home.wait_until(lambda: ("ev-overlap", "optIn") in vtn.seen.opt_types, what="optIn at the VTN")

        def winner() -> str | None:
            d = home.hub.control.device(HOME_IEEE["thermostat"]).decision
            return d.winner.meter_id if d is not None and d.winner is not None else None
        # Both run; the meter's (stronger) holds the thermostat through the cycles that see both.
        await home.hub.control.cycle.settled()
        assert program_active() and winner() == "main"
        assert any(v.event.meter_id == "main" and v.phase.value == "active" for v in home.hub.control.events())
        assert thermostat.cooling_setpoint_c == 26
        await home.wait_until(lambda: thermostat.cooling_setpoint_c == 27, timeout_s=30,
                              what="the program's set point once the meter's event is cancelled")
        assert winner() == "openadr"


def _answered(ven_id: str, event_id: str, opt_type: str) -> None:
    return None


async def test_the_ven_registers_once_the_vtn_comes_up_after_the_appliance(tmp_path: Path) -> None:
    vtn = Vtn()  # its port chosen, not yet listening: the appliance starts without its VTN
    async with running_appliance(tmp_path, SCENARIO, config_text=config(vtn), rules_text=HOME_RULES, clock=REAL) as home:
        await home.online()
        ven = home.hub.integrations["openadr"]
        assert not ven.registered.is_set()
        await vtn.start()
        try:
            await home.wait_until(lambda: ven.registered.is_set(), what="the VEN registered once the VTN is up")
            simple_event(vtn, "ev-late")
            await home.wait_until(lambda: ("ev-late", "optIn") in vtn.seen.opt_types, what="optIn at the VTN")
        finally:
            await vtn.stop()


async def test_reports_sampled_faster_than_sent_go_out_at_the_report_back_duration(tmp_path: Path) -> None:
    """The VTN asks for a sample each second, sent every three: each report carries three samplings,
    also of a report where some values are not known (no device here reports a state of charge)."""
    vtn = Vtn(sampling=timedelta(seconds=1), report_back=timedelta(seconds=3))
    await vtn.start()
    try:
        async with program_home(tmp_path, vtn) as home:
            pump_on = f"{HOME_IEEE['pump']}/on"

            def status_reports() -> list[dict[str, Any]]:
                return [r for r in vtn.seen.reports
                        if any(i["report_payload"]["r_id"] == pump_on for i in r.get("intervals") or [])]
            await home.wait_until(lambda: len(status_reports()) >= 2, what="two status reports")
            for report in status_reports()[1:]:  # the first may follow a re-registration mid-way
                values = [i for i in report["intervals"] if i["report_payload"]["r_id"] == pump_on]
                assert len(values) == 3
                assert not [i for i in report["intervals"] if i["report_payload"]["r_id"].endswith("/soc_pct")]
    finally:
        await vtn.stop()
