"""Issue 10 at the DR core's seam: which events and cancels are ours, what each status report says,
and in what order and at what time it goes (SE client rules, spec digest §2.8, §2.12)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from ems.dr.events import LoadControl, LoadControlSettings
from ems.model import (
    Criticality,
    DeviceClass,
    EventCancellation,
    EventPhase,
    EventRejected,
    EventStatus,
)
from ems.store import tables

from .conftest import T0, make_event

GROUP = 5


@pytest.fixture
async def control(hub, clock):
    lc = LoadControl(hub, LoadControlSettings(start_randomization_min=0, enrollment_group=GROUP), clock=clock,
                     device_classes=lambda: int(DeviceClass.HVAC | DeviceClass.POOL_PUMP))
    await lc.start()
    yield lc
    await lc.stop()


def statuses(reports, event_id=1):
    return [r.status for r in reports if r.issuer_event_id == event_id]


def cancel(event_id, clock, *, device_class=DeviceClass.HVAC, group=0, at=None):
    return EventCancellation("main", event_id, device_class, group, at or clock(), False, clock())


async def stored_cancel(hub, event_id):
    await hub.store.flush()

    async def read(conn):
        t = tables.dr_events
        return (await conn.execute(select(t.c.cancelled_at).where(t.c.issuer_event_id == event_id))).scalar_one()

    return await hub.store.read("read", read)


# -- defect 4: an event not addressed to this client ---------------------------------------------


@pytest.mark.parametrize("other", [{"device_class": DeviceClass.EXTERIOR_LIGHTING}, {"enrollment_group": GROUP + 1}])
async def test_an_event_for_another_class_or_group_is_not_answered_not_kept_and_not_shown(hub, control, clock,
                                                                                       reports, other):
    hub.bus.publish(replace(make_event(), **other))
    clock.advance(hours=2)  # past its end: it must not linger as "scheduled" either
    await control.advance()
    assert reports == []
    assert control.views() == () and control.all_views() == ()
    assert control.view("main", 1) is None


async def test_an_event_for_our_group_or_every_group_is_ours(hub, control, clock, reports):
    hub.bus.publish(replace(make_event(1), enrollment_group=GROUP))
    hub.bus.publish(make_event(2, start=T0 + timedelta(hours=3)))  # group 0: every group
    await control.advance()
    assert statuses(reports, 1) == statuses(reports, 2) == [EventStatus.RECEIVED]


async def test_an_event_not_ours_is_not_kept_after_a_restart_either(hub, control, clock, reports):
    hub.bus.publish(replace(make_event(), enrollment_group=GROUP + 1))
    await control.stop()
    await hub.store.flush()
    again = LoadControl(hub, LoadControlSettings(start_randomization_min=0, enrollment_group=GROUP), clock=clock)
    await again.start()
    try:
        clock.advance(hours=2)
        await again.advance()
        assert again.views() == () and reports == []
    finally:
        await again.stop()


# -- defect 5: a cancel not addressed to this client -----------------------------------------------


@pytest.mark.parametrize("other", [{"group": GROUP + 1}, {"device_class": DeviceClass.WATER_HEATER}])
async def test_a_cancel_for_another_class_or_group_is_ignored(hub, control, clock, reports, other):
    hub.bus.publish(make_event())
    clock.advance(minutes=15)
    await control.advance()
    hub.bus.publish(cancel(1, clock, **other))
    await control.advance()
    assert control.view("main", 1).cancelled_at is None
    clock.advance(minutes=60)
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.COMPLETED]
    assert await stored_cancel(hub, 1) is None


async def test_a_cancel_for_our_group_cancels_and_is_recorded(hub, control, clock, reports):
    hub.bus.publish(make_event())
    clock.advance(minutes=15)
    await control.advance()
    hub.bus.publish(cancel(1, clock, group=GROUP))
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.CANCELLED]
    assert await stored_cancel(hub, 1) == clock()


# -- defects 6, 7: received first, status times in causal order --------------------------------------


@pytest.mark.parametrize("start", [T0, T0 - timedelta(minutes=5)])
async def test_an_event_starting_at_once_is_received_before_it_starts(hub, control, clock, reports, start):
    hub.bus.publish(make_event(start=start))
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED]
    pending = await hub.outbox.pending()
    assert [p.item.status for p in pending] == [EventStatus.RECEIVED, EventStatus.STARTED]
    assert reports[0].at <= reports[1].at


async def test_no_status_is_stamped_before_the_event_arrived_nor_earlier_than_the_one_before(hub, control, clock,
                                                                                           reports):
    # The adapter stamped its arrival 5 s later than the core's clock says it is (two time bases).
    arrived = T0 + timedelta(seconds=5)
    hub.bus.publish(replace(make_event(start=T0), received_at=arrived))
    await control.advance()
    hub.bus.publish(EventRejected("main", 1, EventStatus.REJECTED_INVALID_CANCEL_TIME, "no time", T0))
    hub.bus.publish(cancel(1, clock))
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.REJECTED_INVALID_CANCEL_TIME,
                                 EventStatus.CANCELLED]
    times = [r.at for r in reports]
    assert all(at >= arrived for at in times)
    assert times == sorted(times)


# -- defect 10: rejections echo the event ----------------------------------------------------------


async def test_a_refused_event_echoes_its_criticality_and_event_control(hub, control, clock, reports):
    hub.bus.publish(EventRejected("main", 9, EventStatus.REJECTED_EXPIRED, "over", clock(),
                                  criticality=Criticality.LEVEL_4, randomize_start=True, randomize_end=True))
    hub.bus.publish(EventRejected("main", 10, EventStatus.REJECTED, "too long", clock(),
                                  criticality=Criticality.EMERGENCY, randomize_end=True))
    await control.advance()
    expired, rejected = reports
    assert (expired.status, expired.criticality_applied, expired.randomize_start, expired.randomize_end) == (
        EventStatus.REJECTED_EXPIRED, int(Criticality.LEVEL_4), True, True)
    assert (rejected.status, rejected.criticality_applied, rejected.randomize_start, rejected.randomize_end) == (
        EventStatus.REJECTED, int(Criticality.EMERGENCY), False, True)


async def test_a_refused_cancel_echoes_the_cancelled_events_criticality_and_event_control(hub, control, clock,
                                                                                        reports):
    event = make_event(randomize_end=True)
    hub.bus.publish(event)
    hub.bus.publish(cancel(1, clock, at=event.end + timedelta(minutes=5)))  # after its end: 0xF9
    hub.bus.publish(EventRejected("main", 1, EventStatus.REJECTED_INVALID_CANCEL_TIME, "0xFFFFFFFF", clock()))
    await control.advance()
    refusals = [r for r in reports if r.status is EventStatus.REJECTED_INVALID_CANCEL_TIME]
    assert len(refusals) == 2
    for refusal in refusals:
        assert refusal.criticality_applied == int(event.criticality) and refusal.randomize_end


# -- defect 11: cancels of ended events, reused ids, duplicates ------------------------------------


async def test_a_cancel_of_a_superseded_event_is_an_undefined_event(hub, control, clock, reports):
    hub.bus.publish(make_event(1))
    hub.bus.publish(make_event(2, start=T0 + timedelta(minutes=30)))
    await control.advance()
    hub.bus.publish(cancel(1, clock))
    await control.advance()
    assert statuses(reports, 1) == [EventStatus.RECEIVED, EventStatus.SUPERSEDED,
                                    EventStatus.REJECTED_UNDEFINED_EVENT]
    assert reports[-1].criticality_applied == int(make_event(1).criticality)
    assert statuses(reports, 2) == [EventStatus.RECEIVED]


async def test_a_cancel_of_a_completed_event_is_an_undefined_event(hub, control, clock, reports):
    hub.bus.publish(make_event())
    clock.advance(minutes=10)
    await control.advance()
    clock.advance(minutes=60)
    await control.advance()
    hub.bus.publish(cancel(1, clock))
    await control.advance()
    assert statuses(reports)[-1] is EventStatus.REJECTED_UNDEFINED_EVENT


async def test_a_reused_id_of_an_ended_event_is_rejected_as_expired_and_changes_nothing(hub, control, clock,
                                                                                      reports):
    hub.bus.publish(make_event())
    hub.bus.publish(cancel(1, clock))
    await control.advance()
    again = replace(make_event(start=T0 + timedelta(hours=2)), criticality=Criticality.EMERGENCY)
    hub.bus.publish(again)
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.CANCELLED, EventStatus.REJECTED_EXPIRED]
    assert reports[-1].criticality_applied == int(Criticality.EMERGENCY)
    view = control.view("main", 1)
    assert view.outcome is EventStatus.CANCELLED and view.event == make_event()
    await hub.store.flush()
    (stored,) = [s for s in await hub.store.events(T0 - timedelta(days=1)) if s.event.issuer_event_id == 1]
    assert stored.event == make_event()


async def test_a_live_event_heard_again_is_ignored(hub, control, clock, reports):
    hub.bus.publish(make_event())
    clock.advance(minutes=15)
    await control.advance()
    hub.bus.publish(make_event())
    await control.advance()
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.STARTED]


# -- defect 14, cancel all: only the addressed, live event changes ----------------------------------


async def test_cancel_all_cancels_the_live_events_only_and_leaves_finished_ones_as_they_ended(hub, control, clock,
                                                                                          reports):
    hub.bus.publish(make_event(1, duration_min=10))
    hub.bus.publish(make_event(2, start=T0 + timedelta(hours=3)))
    hub.bus.publish(make_event(3, start=T0 + timedelta(hours=5)))
    hub.bus.publish(cancel(3, clock))
    clock.advance(minutes=15)
    await control.advance()
    clock.advance(minutes=15)
    await control.advance()
    assert control.view("main", 1).outcome is EventStatus.COMPLETED
    hub.bus.publish(EventCancellation("main", None, DeviceClass(0xFFF), 0, clock(), False, clock()))
    await control.advance()
    assert statuses(reports, 1) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.COMPLETED]
    assert statuses(reports, 2) == [EventStatus.RECEIVED, EventStatus.CANCELLED]
    assert statuses(reports, 3) == [EventStatus.RECEIVED, EventStatus.CANCELLED]
    assert control.view("main", 1).cancelled_at is None
    assert control.view("main", 3).cancelled_at == T0
    assert await stored_cancel(hub, 1) is None
    assert await stored_cancel(hub, 3) == T0
    assert await stored_cancel(hub, 2) == clock()


async def test_a_cancel_not_for_us_leaves_a_finished_events_cancel_time_alone(hub, control, clock, reports):
    hub.bus.publish(make_event())
    hub.bus.publish(cancel(1, clock))
    await control.advance()
    clock.advance(minutes=5)
    hub.bus.publish(cancel(1, clock, group=GROUP + 1))
    hub.bus.publish(EventCancellation("main", None, DeviceClass(0xFFF), 0, clock(), False, clock()))
    await control.advance()
    assert control.view("main", 1).cancelled_at == T0
    assert await stored_cancel(hub, 1) == T0
    assert statuses(reports) == [EventStatus.RECEIVED, EventStatus.CANCELLED]


# -- superseding (§2.12 item 6) and restarts ---------------------------------------------------------


async def test_a_running_event_superseded_reports_one_second_before_the_new_start(hub, control, clock, reports):
    hub.bus.publish(make_event(1))
    clock.advance(minutes=15)
    await control.advance()
    hub.bus.publish(make_event(2, start=T0 + timedelta(minutes=40)))
    clock.now = T0 + timedelta(minutes=40)
    await control.advance()
    (superseded,) = [r for r in reports if r.status is EventStatus.SUPERSEDED]
    (started,) = [r for r in reports if r.status is EventStatus.STARTED and r.issuer_event_id == 2]
    # Even when the advance comes late (here: at the new start), 0x07 says when it happened.
    assert superseded.at == T0 + timedelta(minutes=40) - timedelta(seconds=1)
    assert started.at == T0 + timedelta(minutes=40)


async def test_after_a_restart_nothing_reported_is_reported_again_nor_stamped_earlier(hub, control, clock,
                                                                                   reports):
    hub.bus.publish(make_event(1))
    hub.bus.publish(make_event(2, start=T0 + timedelta(hours=3)))
    clock.advance(minutes=15)
    await control.advance()
    hub.bus.publish(cancel(2, clock))
    await control.advance()
    await control.stop()
    await hub.store.flush()
    before = list(reports)
    clock.now = T0 + timedelta(minutes=14)  # the clock stepped back over the restart
    again = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock)
    await again.start()
    try:
        hub.bus.publish(make_event(1))  # the ESI sends its events again after the restart
        await again.advance()
        assert reports == before
        assert again.view("main", 1).phase is EventPhase.ACTIVE
        assert again.view("main", 2).outcome is EventStatus.CANCELLED
        clock.now = T0 + timedelta(minutes=70)
        await again.advance()
        assert statuses(reports, 1) == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.COMPLETED]
        times = [r.at for r in reports if r.issuer_event_id == 1]
        assert times == sorted(times)
    finally:
        await again.stop()


async def test_what_was_decided_before_a_stop_is_still_written(hub, control, clock, reports):
    hub.bus.publish(make_event(1))
    hub.bus.publish(make_event(2, start=T0 + timedelta(hours=3)))
    await control.advance()
    hub.bus.publish(cancel(2, clock))
    hub.bus.publish(make_event(3, start=T0 + timedelta(hours=6)))
    await control.stop()  # before the loop took up the cancel and the new event's RECEIVED
    assert statuses(reports, 3) == [EventStatus.RECEIVED]
    assert await stored_cancel(hub, 2) == T0


async def test_a_refused_frame_not_for_this_client_gets_no_answer_either(hub, control, clock, reports):
    # The adapter passes whom the refused frame addressed (optional; None: it did not say).
    hub.bus.publish(EventRejected("main", 9, EventStatus.REJECTED_EXPIRED, "over", clock(),
                                  device_class=DeviceClass.HVAC, enrollment_group=GROUP + 1))
    hub.bus.publish(EventRejected("main", 10, EventStatus.REJECTED_EXPIRED, "over", clock(),
                                  device_class=DeviceClass.WATER_HEATER, enrollment_group=0))
    hub.bus.publish(EventRejected("main", 11, EventStatus.REJECTED_EXPIRED, "over", clock(),
                                  device_class=DeviceClass.HVAC, enrollment_group=GROUP))
    await control.advance()
    assert [r.issuer_event_id for r in reports] == [11]
