"""The SE client rules for DR events (spec digest §2.12), carried out by ems.dr.events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ems.dr.events import LoadControl, LoadControlSettings
from ems.errors import RejectedCommand
from ems.model import DeviceClass, EventCancellation, EventPhase, EventRejected, EventStatus

from .conftest import T0, make_event


@pytest.fixture
async def control(hub, clock):
    lc = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock)
    await lc.start()
    yield lc
    await lc.stop()


def statuses(reports, event_id=1):
    return [r.status for r in reports if r.issuer_event_id == event_id]


async def test_an_event_starts_and_completes_with_a_report_each(hub, control, clock, reports):
    hub.bus.publish(make_event())
    await control.advance()
    assert control.views()[0].phase is EventPhase.SCHEDULED
    clock.advance(minutes=10)
    await control.advance()
    assert control.views()[0].phase is EventPhase.ACTIVE
    clock.advance(minutes=60)
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.COMPLETED]


async def test_status_reports_are_queued_in_the_durable_outbox(hub, control, clock):
    hub.bus.publish(make_event())
    clock.advance(minutes=10)
    await control.advance()
    pending = await hub.outbox.pending()
    assert [p.item.status for p in pending] == [EventStatus.RECEIVED, EventStatus.STARTED]


async def test_start_randomisation_delays_the_start_within_the_limit_and_repeatably(hub, clock):
    settings = LoadControlSettings(start_randomization_min=30, seed="home-1")
    first, second = LoadControl(hub, settings, clock=clock), LoadControl(hub, settings, clock=clock)
    event = make_event(randomize_start=True)
    delays = {(lc._new_run(event, T0).effective_start - event.start) for lc in (first, second)}
    assert len(delays) == 1
    (delay,) = delays
    assert timedelta(0) <= delay < timedelta(minutes=30)


async def test_end_randomisation_extends_the_end_only_when_asked(hub, clock):
    lc = LoadControl(hub, LoadControlSettings(duration_randomization_min=10), clock=clock)
    asked = lc._new_run(make_event(randomize_end=True), T0)
    not_asked = lc._new_run(make_event(), T0)
    assert asked.effective_end >= make_event().end and asked.effective_end < make_event().end + timedelta(minutes=10)
    assert not_asked.effective_end == make_event().end


async def test_an_event_for_a_class_no_device_has_is_ignored(hub, clock, reports):
    lc = LoadControl(hub, clock=clock, device_classes=lambda: int(DeviceClass.POOL_PUMP))
    await lc.start()
    try:
        hub.bus.publish(make_event(device_class=DeviceClass.EXTERIOR_LIGHTING))
        clock.advance(minutes=10)
        await lc.advance()
        assert lc.views() == ()
        assert reports == []
    finally:
        await lc.stop()


async def test_a_newer_overlapping_event_supersedes_a_scheduled_one_at_once(hub, control, clock, reports):
    hub.bus.publish(make_event(1))
    hub.bus.publish(make_event(2, start=T0 + timedelta(minutes=30)))
    await control.advance()
    assert statuses(reports, 1) == [EventStatus.RECEIVED, EventStatus.SUPERSEDED]
    assert [v.event.issuer_event_id for v in control.views() if v.phase is not EventPhase.ENDED] == [2]


async def test_a_running_event_is_superseded_one_second_before_the_new_one_starts(hub, control, clock, reports):
    hub.bus.publish(make_event(1))
    clock.advance(minutes=15)
    await control.advance()
    hub.bus.publish(make_event(2, start=T0 + timedelta(minutes=40)))
    clock.now = T0 + timedelta(minutes=40) - timedelta(seconds=2)
    await control.advance()
    assert statuses(reports, 1) == [EventStatus.RECEIVED, EventStatus.STARTED]
    clock.advance(seconds=1)
    await control.advance()
    assert statuses(reports, 1) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.SUPERSEDED]
    clock.advance(seconds=1)
    await control.advance()
    assert statuses(reports, 2) == [EventStatus.RECEIVED, EventStatus.STARTED]


async def test_a_cancel_ends_the_event_at_its_effective_time(hub, control, clock, reports):
    hub.bus.publish(make_event())
    clock.advance(minutes=15)
    await control.advance()
    hub.bus.publish(EventCancellation("main", 1, DeviceClass.HVAC, 0, T0 + timedelta(minutes=20), False, clock.now))
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED]
    clock.advance(minutes=5)
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.CANCELLED]


async def test_a_cancel_with_randomisation_keeps_the_events_end_randomisation(hub, clock):
    lc = LoadControl(hub, LoadControlSettings(start_randomization_min=0, duration_randomization_min=10), clock=clock)
    await lc.start()
    try:
        hub.bus.publish(make_event(randomize_end=True))
        run = lc.run("main", 1)
        effective = T0 + timedelta(minutes=20)
        hub.bus.publish(EventCancellation("main", 1, DeviceClass.HVAC, 0, effective, True, clock.now))
        assert run.cancel_at == effective + run.end_randomization
    finally:
        await lc.stop()


async def test_cancel_all_cancels_every_event_with_one_report_each(hub, control, clock, reports):
    hub.bus.publish(make_event(1))
    hub.bus.publish(make_event(2, start=T0 + timedelta(hours=3), device_class=DeviceClass.POOL_PUMP))
    hub.bus.publish(EventCancellation("main", None, DeviceClass(0xFFF), 0, clock.now, False, clock.now))
    await control.advance()
    assert statuses(reports, 1) == [EventStatus.RECEIVED, EventStatus.CANCELLED]
    assert statuses(reports, 2) == [EventStatus.RECEIVED, EventStatus.CANCELLED]


async def test_an_opt_out_before_the_start_is_reported_when_the_event_starts(hub, control, clock, reports):
    hub.bus.publish(make_event())
    await control.set_participation("main", 1, opted_out=True)
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED]  # the opt-out waits for the start
    clock.advance(minutes=10)
    await control.advance()
    clock.advance(minutes=60)
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.OPTED_OUT, EventStatus.COMPLETED_NO_PARTICIPATION]


async def test_opting_out_and_back_in_during_the_event_is_reported_at_once(hub, control, clock, reports):
    hub.bus.publish(make_event())
    clock.advance(minutes=15)
    await control.advance()
    await control.set_participation("main", 1, opted_out=True)
    await control.set_participation("main", 1, opted_out=False)
    clock.advance(minutes=60)
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.OPTED_OUT, EventStatus.OPTED_IN,
                                 EventStatus.PARTIALLY_COMPLETED_OPT_IN]


async def test_ending_opted_out_is_a_partial_completion_with_opt_out(hub, control, clock, reports):
    hub.bus.publish(make_event())
    clock.advance(minutes=15)
    await control.advance()
    await control.set_participation("main", 1, opted_out=True)
    clock.advance(minutes=60)
    await control.advance()
    assert statuses(reports)[-1] is EventStatus.PARTIALLY_COMPLETED_OPT_OUT


async def test_taking_one_device_out_during_the_event_is_reported_as_a_partial_opt_out(hub, control, clock, reports):
    hub.bus.publish(make_event())
    clock.advance(minutes=15)
    await control.advance()
    await control.set_participation("main", 1, opted_out=True, device_id="00:11")
    assert control.views()[0].excluded_devices == {"00:11"}
    clock.advance(minutes=60)
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.PARTIALLY_COMPLETED_OPT_OUT]


async def test_opting_out_twice_or_of_an_unknown_or_ended_event_is_refused(hub, control, clock):
    hub.bus.publish(make_event())
    await control.set_participation("main", 1, opted_out=True)
    with pytest.raises(RejectedCommand, match="already opted out"):
        await control.set_participation("main", 1, opted_out=True)
    with pytest.raises(RejectedCommand, match="no event 9"):
        await control.set_participation("main", 9, opted_out=True)
    clock.advance(hours=2)
    await control.advance()
    with pytest.raises(RejectedCommand, match="is over"):
        await control.set_participation("main", 1, opted_out=False)


async def test_the_customers_opt_out_survives_a_restart(hub, control, clock, reports):
    hub.bus.publish(make_event())
    await control.set_participation("main", 1, opted_out=True)
    await control.set_participation("main", 1, opted_out=True, device_id="00:22")
    await control.stop()
    again = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock)
    await again.start()
    try:
        (view,) = again.views()
        assert view.opted_out and view.excluded_devices == {"00:22"}
    finally:
        await again.stop()


async def test_a_restart_does_not_report_a_start_twice(hub, control, clock, reports):
    hub.bus.publish(make_event())
    clock.advance(minutes=15)
    await control.advance()
    await control.stop()
    await hub.store.flush()
    again = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock)
    await again.start()
    try:
        await again.advance()
        assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED]
        assert again.views()[0].phase is EventPhase.ACTIVE
    finally:
        await again.stop()


async def test_while_an_event_runs_the_load_control_sleeps_until_its_next_boundary(hub, control, clock):
    # Its effective start lies behind it once it runs: that boundary must not make the wait 0 (which
    # spun the event loop, a whole core, for as long as the event ran).
    hub.bus.publish(make_event(start=clock() + timedelta(minutes=10), duration_min=60))
    clock.advance(minutes=20)
    await control.advance()
    assert control.views()[0].phase is EventPhase.ACTIVE
    assert control._next_boundary_s(clock()) == pytest.approx(60.0)  # the cap: the end is 50 min away
    clock.advance(minutes=49, seconds=30)
    assert control._next_boundary_s(clock()) == pytest.approx(30.0)


# -- the DR core authors every status report (RECEIVED and REJECTED_* too) -----------------------


async def test_an_event_is_reported_received_once_even_when_the_meter_sends_it_again(hub, control, clock, reports):
    hub.bus.publish(make_event())
    hub.bus.publish(make_event())  # §2.12 item 4: the ESI repeats it
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED]
    pending = await hub.outbox.pending()
    assert [p.item.status for p in pending] == [EventStatus.RECEIVED]


async def test_a_cancel_of_an_event_not_known_here_is_reported_undefined(hub, control, clock, reports):
    hub.bus.publish(EventCancellation("main", 7, DeviceClass.HVAC, 0, clock(), False, clock()))
    await control.advance()
    assert statuses(reports, 7) == [EventStatus.REJECTED_UNDEFINED_EVENT]


async def test_a_cancel_effective_after_the_event_ends_is_refused_and_the_event_runs_on(hub, control, clock, reports):
    event = make_event()
    hub.bus.publish(event)
    hub.bus.publish(EventCancellation("main", 1, DeviceClass.HVAC, 0, event.end + timedelta(minutes=5), False,
                                      clock()))
    clock.advance(minutes=10)
    await control.advance()
    clock.advance(minutes=60)
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.REJECTED_INVALID_CANCEL_TIME,
                                 EventStatus.STARTED, EventStatus.COMPLETED]


async def test_what_the_adapter_refused_is_reported_by_the_core_and_kept_in_the_history(hub, control, clock, reports):
    hub.bus.publish(EventRejected("main", 9, EventStatus.REJECTED_EXPIRED, "event 9 was already over", clock()))
    await control.advance()
    assert statuses(reports, 9) == [EventStatus.REJECTED_EXPIRED]
    assert reports[-1].reason == "event 9 was already over"
    await hub.store.flush()
    history = await control._reported_history()
    assert [status for status, _at in history[("main", 9)]] == [EventStatus.REJECTED_EXPIRED]
