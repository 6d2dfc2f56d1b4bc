"""The control cycle end to end in the core: event -> rules -> arbiter -> dispatcher -> device ports -> restore."""

from __future__ import annotations

import asyncio

import pytest

from ems.dr.cycle import ControlCycle
from ems.dr.devices import DeviceRegistry
from ems.dr.dispatch import PUT_BACK, Dispatcher
from ems.dr.events import LoadControl, LoadControlSettings
from ems.errors import DeviceError
from ems.model import (
    ComfortLimits,
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    DevicePreference,
    DeviceReading,
    EventParticipationChanged,
    EventPhase,
    EventStatus,
    Proposal,
    ProposalAction,
    ProposalSource,
    Text,
    Trigger,
    TriggerKind,
    english,
)

from .conftest import make_event

THERMOSTAT, PUMP = "00:00:00:00:00:00:00:01", "00:00:00:00:00:00:00:02"


class FakePort:
    """Records commands and plays the device's answer (or its silence)."""

    def __init__(self, hub) -> None:
        self.hub = hub
        self.calls: list[tuple] = []
        self.silent: set[str] = set()

    def _check(self, device_id: str) -> None:
        if device_id in self.silent:
            raise DeviceError(f"{device_id} did not answer within 5 s")

    async def switch(self, device_id, on):
        self._check(device_id)
        self.calls.append(("switch", device_id, on))

    async def set_setpoints(self, device_id, *, cooling_c, heating_c):
        self._check(device_id)
        self.calls.append(("setpoints", device_id, cooling_c, heating_c))

    async def relay_event(self, device_id, event):
        self._check(device_id)
        self.calls.append(("relay", device_id, event.issuer_event_id))

    async def cancel_event(self, device_id, issuer_event_id):
        self._check(device_id)
        self.calls.append(("cancel", device_id, issuer_event_id))


class EventFollower:
    """A stand-in for the rule engine: follows every active event (offset thermostats, switch off plugs)."""

    def __init__(self, preferences=()) -> None:
        self._preferences = tuple(preferences)

    def evaluate(self, snapshot):
        proposals = []
        for view in snapshot.events:
            if view.phase is not EventPhase.ACTIVE:
                continue
            for device in snapshot.devices:
                common = dict(source=ProposalSource.EVENT, reason=Text(f"event {view.event.issuer_event_id}"),
                              meter_id=view.event.meter_id, issuer_event_id=view.event.issuer_event_id)
                if device.info.kind is DeviceKind.LOAD_CONTROLLER:
                    proposals.append(Proposal(device.info.device_id, ProposalAction.RELAY_EVENT, **common))
                elif device.info.kind is DeviceKind.THERMOSTAT:
                    proposals.append(Proposal(device.info.device_id, ProposalAction.OFFSET,
                                              value=view.event.cooling_offset_c, **common))
                else:
                    proposals.append(Proposal(device.info.device_id, ProposalAction.OFF,
                                              expected_kw_reduction=device.info.nominal_kw or 0.0, **common))
        return proposals

    def preferences(self):
        return self._preferences


async def start_control(hub, clock, rulebook=None):
    registry = DeviceRegistry(hub)
    await registry.start()
    dispatcher = Dispatcher(hub, registry, clock=clock)
    lc = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock,
                     dispatch_record=lambda: dispatcher.record()[0])
    await lc.start()
    await dispatcher.start()
    cycle = ControlCycle(hub, registry, lc, dispatcher, rulebook or EventFollower(), clock=clock, tick_s=3600)
    await cycle.start()
    port = FakePort(hub)

    async def stop():
        await cycle.stop()
        await lc.stop()
        await registry.stop()

    return registry, lc, dispatcher, cycle, port, stop


def add_devices(hub, port, clock):
    hub.bus.publish(DeviceInfo(THERMOSTAT, "Living room", DeviceKind.THERMOSTAT, DeviceClass.HVAC,
                               min_setpoint_c=7.0, max_setpoint_c=32.0))
    hub.bus.publish(DeviceInfo(PUMP, "Pool pump", DeviceKind.SWITCH, DeviceClass.POOL_PUMP, nominal_kw=1.5))
    hub.bus.publish(DeviceReading(THERMOSTAT, clock.now, indoor_c=24.5, cooling_setpoint_c=24.0,
                                  heating_setpoint_c=20.0, system_mode="cool"))
    hub.bus.publish(DeviceReading(PUMP, clock.now, on=True, power_kw=1.5))
    hub.device_ports[THERMOSTAT] = hub.device_ports[PUMP] = port


async def cycle_at(cycle, trigger=TriggerKind.TICK):
    return await cycle.run_once(Trigger(trigger))


@pytest.fixture
async def control(hub, clock):
    registry, lc, dispatcher, cycle, port, stop = await start_control(hub, clock)
    add_devices(hub, port, clock)
    yield registry, lc, dispatcher, cycle, port
    await stop()


async def test_an_active_event_moves_the_thermostat_and_switches_the_pump_off(hub, clock, control):
    _registry, _lc, _dispatcher, cycle, port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    assert sorted(port.calls) == [("setpoints", THERMOSTAT, 26.0, None), ("switch", PUMP, False)]


async def test_devices_are_put_back_as_they_were_when_the_event_ends(hub, clock, control):
    _registry, _lc, dispatcher, cycle, port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    port.calls.clear()
    clock.advance(minutes=60)
    await cycle_at(cycle)
    assert sorted(port.calls) == [("setpoints", THERMOSTAT, 24.0, None), ("switch", PUMP, True)]
    assert dispatcher.controlled == {}


async def test_a_command_is_sent_once_while_the_decision_holds(hub, clock, control):
    *_, cycle, port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    clock.advance(minutes=1)
    await cycle_at(cycle)
    assert len(port.calls) == 2


async def test_opting_out_restores_the_devices_at_once(hub, clock, control):
    _registry, lc, _dispatcher, cycle, port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    port.calls.clear()
    await lc.set_participation("main", 1, opted_out=True)
    await cycle_at(cycle)
    assert sorted(port.calls) == [("setpoints", THERMOSTAT, 24.0, None), ("switch", PUMP, True)]


async def test_a_device_taken_out_of_the_event_is_restored_and_the_others_stay(hub, clock, control):
    _registry, lc, _dispatcher, cycle, port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    port.calls.clear()
    await lc.set_participation("main", 1, opted_out=True, device_id=PUMP)
    await cycle_at(cycle)
    assert port.calls == [("switch", PUMP, True)]


async def test_a_device_that_does_not_answer_is_restored_once_it_answers_again(hub, clock, control):
    _registry, _lc, dispatcher, cycle, port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    port.silent.add(PUMP)
    clock.advance(minutes=60)
    await cycle_at(cycle)
    assert PUMP in dispatcher.controlled  # not forgotten: still to be put back
    port.silent.clear()
    clock.advance(minutes=1)
    await cycle_at(cycle)
    assert ("switch", PUMP, True) in port.calls
    assert dispatcher.controlled == {}


async def test_a_setpoint_changed_by_hand_during_the_event_is_the_customers_override(hub, clock, control):
    _registry, lc, dispatcher, cycle, port = control
    changes = []
    hub.bus.listen(EventParticipationChanged, changes.append)
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    clock.advance(seconds=30)
    hub.bus.publish(DeviceReading(THERMOSTAT, clock.now, cooling_setpoint_c=22.0))  # by hand
    await cycle_at(cycle, TriggerKind.DEVICE)
    assert [(c.device_id, c.opted_out, c.by) for c in changes] == [(THERMOSTAT, True, "device")]
    port.calls.clear()
    await cycle_at(cycle)
    assert port.calls == []  # the customer's 22 °C stays; nothing is "restored" over it
    clock.advance(minutes=60)
    await cycle_at(cycle)
    assert ("setpoints", THERMOSTAT, 24.0, None) not in port.calls


async def test_the_override_reaches_the_utility_as_a_partial_completion(hub, clock, control):
    _registry, _lc, dispatcher, cycle, _port = control
    reports = []
    from ems.model import EventStatusReport

    hub.bus.listen(EventStatusReport, reports.append)
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    clock.advance(seconds=30)
    hub.bus.publish(DeviceReading(PUMP, clock.now, on=True))  # switched back on by hand
    await cycle_at(cycle, TriggerKind.DEVICE)
    clock.advance(minutes=60)
    await cycle_at(cycle)
    assert [r.status for r in reports] == [EventStatus.RECEIVED, EventStatus.STARTED,
                                          EventStatus.PARTIALLY_COMPLETED_OPT_OUT]


async def test_a_device_left_controlled_by_a_crash_is_restored_after_the_restart(hub, clock):
    registry, _lc, _dispatcher, cycle, port, stop = await start_control(hub, clock)
    add_devices(hub, port, clock)
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    await stop()  # as if the appliance went away mid-event
    clock.advance(hours=2)
    registry, _lc, dispatcher, cycle, port, stop = await start_control(hub, clock)
    try:
        add_devices(hub, port, clock)
        await asyncio.sleep(0)
        await cycle_at(cycle)
        # After a restart it is not known which setpoint was changed: both are put back as noted.
        assert sorted(port.calls) == [("setpoints", THERMOSTAT, 24.0, 20.0), ("switch", PUMP, True)]
        assert dispatcher.controlled == {}
    finally:
        await stop()


async def test_an_offset_beyond_the_comfort_limit_is_held_to_it(hub, clock):
    limits = DevicePreference("Living room", comfort=ComfortLimits(max_offset_c=1.5))
    registry, _lc, _dispatcher, cycle, port, stop = await start_control(hub, clock, EventFollower([limits]))
    try:
        add_devices(hub, port, clock)
        hub.bus.publish(make_event(cooling_offset_c=4.0))
        clock.advance(minutes=10)
        outcome = await cycle_at(cycle)
        assert ("setpoints", THERMOSTAT, 25.5, None) in port.calls
        assert "comfort limit" in english(outcome.decisions[THERMOSTAT].note)
    finally:
        await stop()


async def test_a_load_kept_off_longer_than_its_limit_goes_back_on(hub, clock):
    limits = DevicePreference("Pool pump", comfort=ComfortLimits(max_off_min=30, min_on_min=10))
    registry, _lc, _dispatcher, cycle, port, stop = await start_control(hub, clock, EventFollower([limits]))
    try:
        add_devices(hub, port, clock)
        hub.bus.publish(make_event(duration_min=120, cooling_offset_c=1.0))
        clock.advance(minutes=10)
        await cycle_at(cycle)
        clock.advance(minutes=31)
        await cycle_at(cycle)
        assert [c for c in port.calls if c[1] == PUMP] == [("switch", PUMP, False), ("switch", PUMP, True)]
        clock.advance(minutes=5)
        await cycle_at(cycle)  # min on time: stays on
        assert [c for c in port.calls if c[1] == PUMP][-1] == ("switch", PUMP, True)
    finally:
        await stop()


async def test_a_failing_rule_engine_keeps_the_previous_decisions(hub, clock, control):
    _registry, _lc, _dispatcher, cycle, port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    port.calls.clear()

    def broken(_snapshot):
        raise ZeroDivisionError("a rule's bug")

    cycle._rulebook.evaluate = broken
    await cycle_at(cycle)
    assert port.calls == []


async def test_every_command_is_logged_in_the_store(hub, clock, control):
    *_, cycle, _port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    from sqlalchemy import select

    from ems.store import tables

    async def rows(conn):
        return (await conn.execute(select(tables.device_commands))).all()

    logged = await hub.store.read("read", rows)
    assert sorted((r.device_id, r.action, r.source) for r in logged) == [
        (THERMOSTAT, "setpoints", "event:main:1"), (PUMP, "off", "event:main:1")]


async def test_a_restore_is_logged_with_its_reason_in_english_and_as_its_msgid_and_values(hub, clock, control):
    *_, cycle, _port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    clock.advance(minutes=60)
    await cycle_at(cycle)
    from sqlalchemy import select

    from ems.store import tables

    async def rows(conn):
        return (await conn.execute(select(tables.device_commands).where(tables.device_commands.c.source == "restore")
                                   .where(tables.device_commands.c.device_id == PUMP))).all()

    (restore,) = await hub.store.read("read", rows)
    assert restore.reason == "Put back as it was before event:main:1"
    assert restore.detail["reason_template"] == PUT_BACK
    assert restore.detail["reason_params"] == {"source": "event:main:1"}


SPA = "00:00:00:00:00:00:00:03"


def add_load_controller(hub, port):
    hub.bus.publish(DeviceInfo(SPA, "Spa heater", DeviceKind.LOAD_CONTROLLER, DeviceClass.HVAC, nominal_kw=2.0))
    hub.device_ports[SPA] = port


async def test_a_load_controller_gets_the_event_relayed_and_nothing_when_it_ends_by_itself(hub, clock, control):
    *_, cycle, port = control
    add_load_controller(hub, port)
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    assert ("relay", SPA, 1) in port.calls
    clock.advance(minutes=60)
    await cycle_at(cycle)
    assert [c for c in port.calls if c[1] == SPA] == [("relay", SPA, 1)]


async def test_a_load_controller_taken_out_mid_event_gets_a_cancel(hub, clock, control):
    _registry, lc, _dispatcher, cycle, port = control
    add_load_controller(hub, port)
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    await lc.set_participation("main", 1, opted_out=True, device_id=SPA)
    await cycle_at(cycle)
    assert [c for c in port.calls if c[1] == SPA] == [("relay", SPA, 1), ("cancel", SPA, 1)]


def _reports(hub):
    from ems.model import EventStatusReport

    seen = []
    hub.bus.listen(EventStatusReport, seen.append)
    return seen


def _of(reports, status):
    return [r for r in reports if r.status is status]


async def test_an_event_that_asked_no_adjustment_reports_none_applied_not_the_homes_shed_share(hub, clock, control):
    # Issue 10, defect 9: the completion carried -25 (the EMS's own shed share) for an event that asked none.
    from ems.model import MeterReading

    *_, cycle, _port = control
    reports = _reports(hub)
    hub.bus.publish(MeterReading("main", clock.now, demand_kw=4.5))
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    await cycle.settled()
    await cycle_at(cycle)
    clock.advance(minutes=60)
    await cycle_at(cycle)
    (started,), (completed,) = _of(reports, EventStatus.STARTED), _of(reports, EventStatus.COMPLETED)
    for report in (started, completed):
        assert report.average_load_adjustment_applied_pct is None and report.duty_cycle_applied_pct is None
        assert report.cooling_setpoint_applied_c == 26.0  # what the thermostat was set to: 24 + 2
    assert _control_lc(control).view("main", 1).achieved_pct == -25  # the pages still show the share


def _control_lc(control):
    return control[1]


@pytest.mark.parametrize(("asked", "field"), [({"average_load_adjustment_pct": -15}, "average_load_adjustment"),
                                              ({"duty_cycle_pct": 40}, "duty_cycle")])
async def test_an_adjustment_or_duty_cycle_asked_and_carried_out_is_reported_applied(hub, clock, control, asked,
                                                                                   field):
    # Issue 10, defect 9: an event asking -15 was reported 0 (the measured share), not -15.
    *_, cycle, _port = control
    reports = _reports(hub)
    hub.bus.publish(make_event(**asked))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    await _control_lc(control).advance()
    clock.advance(minutes=60)
    await cycle_at(cycle)
    (started,), (completed,) = _of(reports, EventStatus.STARTED), _of(reports, EventStatus.COMPLETED)
    for report in (started, completed):
        assert report.average_load_adjustment_applied_pct == asked.get("average_load_adjustment_pct")
        assert report.duty_cycle_applied_pct == asked.get("duty_cycle_pct")


async def test_started_waits_for_the_cycle_and_carries_the_setpoint_the_thermostat_was_set_to(hub, clock):
    # Issue 10, defect 8: STARTED carried the requested 26.35 °C, not the 26.5 °C sent (half degrees).
    class SetPoints(EventFollower):
        def evaluate(self, snapshot):
            return [Proposal(THERMOSTAT, ProposalAction.SETPOINTS, ProposalSource.EVENT, Text("event"),
                             cooling_setpoint_c=v.event.cooling_setpoint_c, meter_id="main", issuer_event_id=1)
                    for v in snapshot.events if v.phase is EventPhase.ACTIVE]

    registry, lc, _dispatcher, cycle, port, stop = await start_control(hub, clock, SetPoints())
    try:
        add_devices(hub, port, clock)
        reports = _reports(hub)
        hub.bus.publish(make_event(cooling_setpoint_c=26.35))
        clock.advance(minutes=10)
        await lc.advance()
        assert [r.status for r in reports] == [EventStatus.RECEIVED]  # not before the devices were set
        await cycle_at(cycle)
        await lc.advance()
        assert ("setpoints", THERMOSTAT, 26.5, None) in port.calls
        (started,) = _of(reports, EventStatus.STARTED)
        assert started.cooling_setpoint_applied_c == 26.5 and started.heating_setpoint_applied_c is None
        assert started.at == clock.now  # the time it started, not when the report went
    finally:
        await stop()


async def test_started_goes_out_with_nothing_applied_when_the_cycle_never_carries_the_event_out(hub, clock):
    from ems.dr.events import START_REPORT_WAIT

    registry, lc, _dispatcher, cycle, port, stop = await start_control(hub, clock)
    try:
        await cycle.stop()  # no cycle: STARTED must not wait for ever
        reports = _reports(hub)
        hub.bus.publish(make_event(cooling_setpoint_c=26.35))
        clock.advance(minutes=10)
        await lc.advance()
        began = clock.now
        clock.now = began + START_REPORT_WAIT
        await lc.advance()
        (started,) = _of(reports, EventStatus.STARTED)
        assert started.at == began and started.cooling_setpoint_applied_c is None
    finally:
        await stop()


async def test_a_setpoint_beyond_the_thermostats_own_limit_is_held_to_it(hub, clock):
    class Hot(EventFollower):
        def evaluate(self, snapshot):
            return [Proposal(THERMOSTAT, ProposalAction.SETPOINTS, ProposalSource.RULE, Text("too hot"),
                             cooling_setpoint_c=40.0)]

    registry, _lc, _dispatcher, cycle, port, stop = await start_control(hub, clock, Hot())
    try:
        add_devices(hub, port, clock)
        outcome = await cycle_at(cycle)
        assert ("setpoints", THERMOSTAT, 28.0, None) in port.calls  # comfort: 24 + 4 °C at most
        assert "comfort limit" in english(outcome.decisions[THERMOSTAT].note)
    finally:
        await stop()


async def test_a_duty_cycle_switches_the_load_on_and_off_within_each_period(hub, clock):
    class Half(EventFollower):
        def evaluate(self, snapshot):
            return [Proposal(PUMP, ProposalAction.DUTY_CYCLE, ProposalSource.RULE, Text("half"), value=50)]

    registry, _lc, _dispatcher, cycle, port, stop = await start_control(hub, clock, Half([
        DevicePreference("Pool pump", comfort=ComfortLimits(min_on_min=0))]))
    try:
        add_devices(hub, port, clock)
        await cycle_at(cycle)  # the first half of the 30-minute period: on
        clock.advance(minutes=16)
        await cycle_at(cycle)  # the second half: off
        clock.advance(minutes=15)
        await cycle_at(cycle)  # the next period: on again
        assert [c for c in port.calls if c[1] == PUMP] == [("switch", PUMP, True), ("switch", PUMP, False),
                                                           ("switch", PUMP, True)]
    finally:
        await stop()


async def test_the_home_took_part_in_an_event_once_a_device_was_set_for_it(hub, clock, control):
    _registry, lc, _dispatcher, cycle, _port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    clock.advance(minutes=10)
    await cycle_at(cycle)
    assert lc.views()[0].acted


async def test_an_event_every_device_was_taken_out_of_ends_without_the_home_taking_part(hub, clock, control):
    """Not opted out, yet nothing was set for it: no "completed, thank you" for an event the home sat out."""
    _registry, lc, _dispatcher, cycle, port = control
    hub.bus.publish(make_event(cooling_offset_c=2.0))
    await lc.set_participation("main", 1, opted_out=True, device_id=THERMOSTAT)
    await lc.set_participation("main", 1, opted_out=True, device_id=PUMP)
    clock.advance(minutes=10)
    await cycle_at(cycle)
    clock.advance(minutes=60)
    await cycle_at(cycle)
    assert port.calls == []
    view = lc.views()[0]
    assert view.phase is EventPhase.ENDED and not view.opted_out
    assert not view.acted
