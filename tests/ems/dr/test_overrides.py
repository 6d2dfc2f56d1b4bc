"""The customer's overrides go through the arbiter: a hand change seen in the snapshot, a command."""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType

from ems.dr.overrides import OverrideBook, hand_changes
from ems.model import (
    ControlledDevice,
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    DeviceOverride,
    DeviceReading,
    DeviceView,
    EventPhase,
    ProposalAction,
    Snapshot,
    Trigger,
    TriggerKind,
)

from .conftest import T0, make_event
from .test_cycle import PUMP, add_devices, cycle_at, start_control


def _snapshot(reading: DeviceReading, held: ControlledDevice) -> Snapshot:
    info = DeviceInfo(PUMP, "Pool pump", DeviceKind.SWITCH, DeviceClass.POOL_PUMP)
    return Snapshot(at=reading.at, local=reading.at, trigger=Trigger(TriggerKind.DEVICE),
                    devices=(DeviceView(info, reading),), controlled=MappingProxyType({PUMP: held}))


def test_a_report_contradicting_what_was_sent_after_it_settled_is_a_hand_change():
    held = ControlledDevice(PUMP, {"on": True}, T0, "event:main:1", sent_on=False, sent_at=T0,
                            sent_source="event:main:1", sent_event=("main", 1))
    (found,) = hand_changes(_snapshot(DeviceReading(PUMP, T0 + timedelta(seconds=30), on=True), held))
    assert (found.device_id, found.by, found.overrides, found.issuer_event_id) == (PUMP, "device", "event:main:1", 1)
    # A report right after the command may predate it; one that agrees is no change at all.
    assert hand_changes(_snapshot(DeviceReading(PUMP, T0 + timedelta(seconds=2), on=True), held)) == []
    assert hand_changes(_snapshot(DeviceReading(PUMP, T0 + timedelta(seconds=30), on=False), held)) == []


def test_an_override_made_over_an_event_lasts_until_the_event_ends():
    book = OverrideBook()
    book.add(DeviceOverride(PUMP, T0, "device", overrides="event:main:1", meter_id="main", issuer_event_id=1))
    running = (make_event_view(EventPhase.ACTIVE),)
    assert book.lapse([], running, T0) == [] and book.get(PUMP) is not None
    (ended,) = book.lapse([], (make_event_view(EventPhase.ENDED),), T0)
    assert ended.device_id == PUMP and book.get(PUMP) is None


def make_event_view(phase):
    from ems.model import EventView

    event = make_event()
    return EventView(event, phase, event.start, event.end)


async def test_the_customers_command_wins_over_the_event_and_ends_when_they_say(hub, clock):
    _registry, _lc, dispatcher, cycle, port, stop = await start_control(hub, clock)
    try:
        add_devices(hub, port, clock)
        hub.bus.publish(make_event())
        clock.advance(minutes=10)
        await cycle_at(cycle)
        assert ("switch", PUMP, False) in port.calls  # the event sheds the pump
        port.calls.clear()

        cycle.overrides.add(DeviceOverride(PUMP, clock.now, "mia", action=ProposalAction.ON))
        outcome = await cycle_at(cycle, TriggerKind.OVERRIDE)
        assert port.calls == [("switch", PUMP, True)]
        decision = outcome.decisions[PUMP]
        assert decision.winner is not None and decision.winner.action is ProposalAction.ON
        assert [str(why) for _p, why in decision.losers] == ["lost to override"]

        port.calls.clear()
        cycle.overrides.drop(PUMP)
        clock.advance(minutes=11)  # past the pump's shortest time on once back on (comfort limit)
        await cycle_at(cycle, TriggerKind.OVERRIDE)
        assert port.calls == [("switch", PUMP, False)]  # the event holds it again
    finally:
        await stop()


async def test_a_command_with_an_end_time_lapses_by_itself(hub, clock):
    _registry, _lc, _dispatcher, cycle, port, stop = await start_control(hub, clock)
    try:
        add_devices(hub, port, clock)
        cycle.overrides.add(DeviceOverride(PUMP, clock.now, "mia", action=ProposalAction.OFF,
                                           until=clock.now + timedelta(minutes=30)))
        await cycle_at(cycle)
        assert ("switch", PUMP, False) in port.calls
        port.calls.clear()
        clock.advance(minutes=31)
        await cycle_at(cycle)
        assert port.calls == [("switch", PUMP, True)]  # put back as it was
        assert cycle.overrides.get(PUMP) is None
    finally:
        await stop()


async def test_the_facade_takes_a_command_for_a_known_device_only_and_ends_it_once(hub, tmp_path):
    import pytest

    from ems.dr.component import DemandResponse
    from ems.errors import Conflict, NotFound, RejectedCommand
    from tests.web.control import NoRules

    control = DemandResponse(hub, NoRules(tmp_path / "rules.yaml"), {"start_randomization_min": 0})
    await control.start()
    try:
        hub.bus.publish(DeviceInfo(PUMP, "Pool pump", DeviceKind.SWITCH, DeviceClass.POOL_PUMP))
        with pytest.raises(NotFound):
            control.override_device("nobody", ProposalAction.ON, by="mia")
        with pytest.raises(RejectedCommand):
            control.override_device(PUMP, ProposalAction.DUTY_CYCLE, by="mia")
        made = control.override_device(PUMP, ProposalAction.ON, by="mia")
        assert control.device(PUMP).override == made
        control.end_override(PUMP)
        assert control.device(PUMP).override is None
        with pytest.raises(Conflict):
            control.end_override(PUMP)
    finally:
        await control.stop()
