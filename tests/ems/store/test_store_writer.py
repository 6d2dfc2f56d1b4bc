"""The writer persists each kind of bus event, and restore_state brings it back after a restart."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial

import pytest

from ems.bus import EventBus
from ems.dr.events import save_cancel
from ems.model import (
    DeviceClass,
    EventCancellation,
    EventStatus,
    EventStatusReport,
    FrameRejected,
    LinkState,
    MessageCancelled,
    MessageConfirmed,
    MeterLinkChanged,
    MeterReading,
)
from ems.outbox import encode
from ems.state import CurrentState
from ems.store import Store, commands
from tests.ems.store.store_samples import (
    NOW,
    dr_event,
    interval,
    message,
    meter_info,
    price,
    status_report,
)

OpenStore = Callable[..., Awaitable[Store]]


async def restart_and_restore(store: Store, open_store: OpenStore, now: datetime = NOW) -> CurrentState:
    """Close the store, open a fresh one on the same file and restore a fresh state from it."""
    await store.close()
    reopened = await open_store()
    state = CurrentState(timedelta(hours=24))
    await reopened.restore_state(state, now=now)
    return state


async def test_meter_info_is_restored(store: Store, bus: EventBus, open_store: OpenStore) -> None:
    bus.publish(meter_info("m1"))

    state = await restart_and_restore(store, open_store)

    assert state.meters["m1"].info == meter_info("m1")


async def test_latest_demand_and_register_readings_are_restored(
    store: Store, bus: EventBus, open_store: OpenStore
) -> None:
    bus.publish(MeterReading("m1", NOW - timedelta(minutes=2), demand_kw=1.0))
    bus.publish(MeterReading("m1", NOW - timedelta(minutes=1), demand_kw=2.5))
    bus.publish(MeterReading("m1", NOW - timedelta(minutes=3), summation_delivered_kwh=1234.5,
                             summation_received_kwh=10.0))

    state = await restart_and_restore(store, open_store)

    meter = state.meters["m1"]
    assert meter.value("demand_kw") == 2.5
    assert meter.value("summation_delivered_kwh") == 1234.5
    assert meter.value("summation_received_kwh") == 10.0
    assert meter.last_reading_at == NOW - timedelta(minutes=1)


async def test_demand_samples_are_read_back_in_a_range(store: Store, bus: EventBus) -> None:
    for minutes in range(5):
        bus.publish(MeterReading("m1", NOW + timedelta(minutes=minutes), demand_kw=float(minutes)))
    await store.flush()

    samples = await store.demand_samples("m1", NOW + timedelta(minutes=1), NOW + timedelta(minutes=3))

    assert [s.demand_kw for s in samples] == [1.0, 2.0]
    assert samples[0].read_at == NOW + timedelta(minutes=1)


async def test_latest_interval_is_restored(store: Store, bus: EventBus, open_store: OpenStore) -> None:
    bus.publish(interval(NOW - timedelta(minutes=30), consumed_kwh=0.1))
    bus.publish(interval(NOW - timedelta(minutes=15), consumed_kwh=0.2))

    state = await restart_and_restore(store, open_store)

    assert state.meters["m1"].last_interval == interval(NOW - timedelta(minutes=15), consumed_kwh=0.2)


async def test_current_price_is_restored(store: Store, bus: EventBus, open_store: OpenStore) -> None:
    bus.publish(price(1, 0.12))

    state = await restart_and_restore(store, open_store)

    assert state.active_price("m1", NOW) == price(1, 0.12)


async def test_a_price_with_the_same_issuer_event_id_replaces_the_older(
    store: Store, bus: EventBus
) -> None:
    bus.publish(price(1, 0.12))
    bus.publish(price(1, 0.30))
    await store.flush()

    assert await store.prices("m1", NOW) == [price(1, 0.30)]


async def test_ended_prices_are_not_restored(store: Store, bus: EventBus, open_store: OpenStore) -> None:
    bus.publish(price(1, 0.12, start=NOW - timedelta(days=3), end=NOW - timedelta(days=2)))

    state = await restart_and_restore(store, open_store)

    assert state.prices.get("m1", []) == []


async def test_message_with_its_cancel_and_confirm_marks_is_restored(
    store: Store, bus: EventBus, open_store: OpenStore
) -> None:
    bus.publish(message(7))
    bus.publish(message(8))
    bus.publish(MessageConfirmed("m1", 7, NOW + timedelta(minutes=1), answer="yes"))
    bus.publish(MessageCancelled("m1", 8, NOW + timedelta(minutes=2)))

    state = await restart_and_restore(store, open_store, now=NOW + timedelta(minutes=5))

    confirmed, cancelled = state.messages[("m1", 7)], state.messages[("m1", 8)]
    assert confirmed.message == message(7)
    assert confirmed.confirmed_at == NOW + timedelta(minutes=1)
    assert confirmed.read
    assert cancelled.cancelled_at == NOW + timedelta(minutes=2)
    assert cancelled.confirmed_at is None


async def test_message_read_mark_is_restored(
    store: Store, bus: EventBus, open_store: OpenStore
) -> None:
    bus.publish(message(7))
    await store.flush()

    assert await store.mark_message_read("m1", 7)
    state = await restart_and_restore(store, open_store)

    assert state.messages[("m1", 7)].read
    assert state.messages[("m1", 7)].confirmed_at is None


async def test_mark_message_read_of_an_unknown_message_says_so(store: Store) -> None:
    assert not await store.mark_message_read("m1", 999)


async def test_messages_outside_the_retention_window_are_not_restored(
    store: Store, bus: EventBus, open_store: OpenStore
) -> None:
    bus.publish(message(1, received_at=NOW - timedelta(hours=30)))
    bus.publish(message(2, received_at=NOW - timedelta(hours=2)))

    state = await restart_and_restore(store, open_store)

    assert set(state.messages) == {("m1", 2)}


async def test_a_new_message_with_the_same_id_replaces_the_old_and_its_marks(
    store: Store, bus: EventBus
) -> None:
    bus.publish(message(7, text="old"))
    bus.publish(MessageCancelled("m1", 7, NOW))
    bus.publish(message(7, text="new"))
    await store.flush()

    [stored] = await store.messages(NOW - timedelta(hours=1))

    assert stored.message.text == "new"
    assert stored.cancelled_at is None


async def test_the_same_message_heard_again_keeps_its_confirmation_and_read_mark(
    store: Store, bus: EventBus, open_store: OpenStore
) -> None:
    # Issue 11 finding 3: the meter re-sends its last message (GetLastMessage at each reconnect).
    bus.publish(message(7))
    bus.publish(MessageConfirmed("m1", 7, NOW + timedelta(minutes=1), answer="yes"))
    await store.flush()
    assert await store.mark_message_read("m1", 7)
    bus.publish(message(7, received_at=NOW + timedelta(minutes=3)))
    await store.flush()

    [stored] = await store.messages(NOW - timedelta(hours=1))
    assert (stored.confirmed_at, stored.confirmation_answer, stored.read) == (NOW + timedelta(minutes=1), "yes", True)
    assert stored.message == message(7)  # the first one heard, when it came
    state = await restart_and_restore(store, open_store, now=NOW + timedelta(minutes=5))
    assert state.messages[("m1", 7)].confirmed_at == NOW + timedelta(minutes=1)
    assert state.messages[("m1", 7)].read


async def test_dr_event_and_its_cancellation_are_restored(
    store: Store, bus: EventBus, open_store: OpenStore
) -> None:
    # The DR core (ems.dr.events) reads them back at start; the current state keeps no events.
    bus.publish(dr_event(100))
    bus.publish(dr_event(101, start=NOW + timedelta(hours=3)))
    # The DR core records the cancel of an addressed, live event (ems.dr.events.save_cancel).
    await store.write("cancel", partial(save_cancel, meter_id="m1", event_id=100, at=NOW + timedelta(minutes=10)))
    await store.close()
    reopened = await open_store()

    events = {(e.event.meter_id, e.event.issuer_event_id): e for e in await reopened.events(NOW - timedelta(days=1))}

    assert events[("m1", 100)].event == dr_event(100)
    assert events[("m1", 100)].cancelled_at == NOW + timedelta(minutes=10)
    assert events[("m1", 101)].cancelled_at is None


async def test_a_cancel_frame_alone_changes_no_stored_event(store: Store, bus: EventBus) -> None:
    # Whether a cancel applies (addressed to this client, the event still live) is the DR core's to
    # decide: a cancel for another group, or a cancel-all, must not mark every event cancelled.
    bus.publish(dr_event(100))
    bus.publish(dr_event(101))
    bus.publish(EventCancellation("m1", None, DeviceClass.HVAC, 0, NOW, False, NOW))
    bus.publish(EventCancellation("m1", 100, DeviceClass.HVAC, 7, NOW, False, NOW))
    await store.flush()

    events = {(e.event.meter_id, e.event.issuer_event_id): e for e in await store.events(NOW)}

    assert events[("m1", 100)].cancelled_at is None
    assert events[("m1", 101)].cancelled_at is None


async def test_the_first_event_heard_under_an_id_is_kept(store: Store, bus: EventBus) -> None:
    # SE §2.12 item 4: the same id again is the same event; a reused id of an ended one is refused.
    bus.publish(dr_event(100))
    bus.publish(dr_event(100, start=NOW + timedelta(hours=5)))
    await store.flush()

    [stored] = [e for e in await store.events(NOW - timedelta(days=1)) if e.event.issuer_event_id == 100]

    assert stored.event == dr_event(100)


async def test_dr_events_ended_over_a_day_ago_are_not_restored(
    store: Store, bus: EventBus, open_store: OpenStore
) -> None:
    bus.publish(dr_event(100, start=NOW - timedelta(days=3)))
    bus.publish(dr_event(101, start=NOW - timedelta(hours=10)))
    await store.close()
    reopened = await open_store()

    # What the DR core asks for at start (ems.dr.events.RESTORE_HISTORY: a day).
    events = await reopened.events(NOW - timedelta(days=1))
    assert {(e.event.meter_id, e.event.issuer_event_id) for e in events} == {("m1", 101)}


async def record_status(store: Store, report: EventStatusReport) -> int | None:
    """How the DR core records a status: its history row and outbox item in one durable write."""
    return await store.write("record", partial(commands.record_event_status, report=report,
                                               payload=encode(report)[1], created_at=NOW), durable=True)


async def test_event_status_reports_are_kept_as_history(store: Store, bus: EventBus) -> None:
    await record_status(store, status_report(100, EventStatus.RECEIVED, NOW))
    await record_status(store, status_report(100, EventStatus.STARTED, NOW + timedelta(minutes=5)))
    await record_status(store, status_report(200, EventStatus.RECEIVED, NOW))
    bus.publish(status_report(100, EventStatus.COMPLETED, NOW))  # the bus carries it; the writer does not write it
    await store.flush()

    history = await store.event_status_history(100)

    assert history == [
        status_report(100, EventStatus.RECEIVED, NOW),
        status_report(100, EventStatus.STARTED, NOW + timedelta(minutes=5)),
    ]


async def test_events_the_store_does_not_keep_are_ignored(store: Store, bus: EventBus) -> None:
    bus.publish(MeterLinkChanged("m1", LinkState.ONLINE, NOW))
    bus.publish(FrameRejected("m1", "bad length", "malformed", NOW))
    await store.flush()

    assert await store.meter_ids() == []
    assert store.backlog == 0


async def test_meter_ids_include_meters_known_only_by_their_readings(
    store: Store, bus: EventBus
) -> None:
    bus.publish(meter_info("m1"))
    bus.publish(MeterReading("m2", NOW, demand_kw=1.0))
    bus.publish(interval(NOW, meter_id="m3"))
    await store.flush()

    assert await store.meter_ids() == ["m1", "m2", "m3"]


async def test_a_bad_event_is_logged_and_the_writer_goes_on(
    store: Store, bus: EventBus, caplog: pytest.LogCaptureFixture
) -> None:
    naive = NOW.replace(tzinfo=None)
    with caplog.at_level(logging.ERROR, logger="ems.store.writer"):
        bus.publish(message(1))
        bus.publish(message(2, received_at=naive))
        bus.publish(message(3))
        await store.flush()

    stored = await store.messages(NOW - timedelta(hours=1))
    assert [m.message.message_id for m in stored] == [1, 3]
    assert "message_id=2" in caplog.text
    assert "naive" in caplog.text


async def test_close_writes_what_is_still_queued(store: Store, bus: EventBus, open_store: OpenStore) -> None:
    bus.publish(message(7))
    await store.close()

    reopened = await open_store()

    assert len(await reopened.messages(NOW - timedelta(hours=1))) == 1


async def test_an_overflowing_queue_drops_the_oldest_readings_and_never_a_message(
    open_store: OpenStore,
) -> None:
    store = await open_store(max_backlog=4)
    bus = EventBus()
    store.attach(bus)
    # Published in one go, the writer task cannot run in between: the queue overflows.
    for minute in range(3):
        bus.publish(MeterReading("m1", NOW + timedelta(minutes=minute), demand_kw=float(minute)))
    for message_id in range(1, 5):
        bus.publish(message(message_id))
    await store.flush()

    samples = await store.demand_samples("m1", NOW, NOW + timedelta(hours=1))
    assert [s.demand_kw for s in samples] == []
    assert len(await store.messages(NOW - timedelta(hours=1))) == 4
    assert store.dropped == {"MeterReading": 3}


async def test_an_overflowing_queue_keeps_the_newest_readings(open_store: OpenStore) -> None:
    store = await open_store(max_backlog=2)
    bus = EventBus()
    store.attach(bus)
    for minute in range(5):
        bus.publish(MeterReading("m1", NOW + timedelta(minutes=minute), demand_kw=float(minute)))
    await store.flush()

    samples = await store.demand_samples("m1", NOW, NOW + timedelta(hours=1))
    assert [s.demand_kw for s in samples] == [3.0, 4.0]
    assert store.dropped == {"MeterReading": 3}


async def test_a_message_marked_read_stays_read_after_a_restart(
    store: Store, bus: EventBus, open_store: OpenStore
) -> None:
    # Issue 13 item 9: read marks came back unread after a restart (only a confirmation was replayed).
    bus.publish(message(8))
    bus.publish(message(9))
    await store.flush()
    assert await store.mark_message_read("m1", 8)

    state = await restart_and_restore(store, open_store, now=NOW + timedelta(minutes=5))

    assert state.messages[("m1", 8)].read
    assert not state.messages[("m1", 9)].read
    assert state.messages[("m1", 8)].confirmed_at is None
