"""The outbox routes per meter and kind: one meter's outage holds none of another's reports.

Each route (meter, kind) has its own order and backoff; a report whose route has no sender
waits in the store; a restart routes what was pending again. Time is a FixedClock the test moves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ems.clock import FixedClock
from ems.config import StoreConfig, load_config
from ems.errors import NotReady
from ems.hub import Hub
from ems.model import (
    DeviceKind,
    EventStatus,
    EventStatusReport,
    MessageConfirmed,
    TelemetryReport,
)
from ems.outbox import Outbox, Route
from ems.store import Store
from tests.hubs import started_hub

T0 = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)


def report(meter_id: str, issuer_event_id: int, status: EventStatus = EventStatus.STARTED) -> EventStatusReport:
    return EventStatusReport(meter_id, issuer_event_id, status, T0, criticality_applied=3)


def telemetry(soc_pct: float = 50.0) -> TelemetryReport:
    return TelemetryReport("battery-1", DeviceKind.BATTERY, T0, soc_pct=soc_pct)


class Channel:
    """One meter's upstream channel: records what it carried; raises NotReady while ``down``."""

    def __init__(self, name: str, *, down: bool = False, hangs: bool = False) -> None:
        self.name = name
        self.down = down
        self.hangs = hangs
        self.attempts: list[Any] = []
        self.delivered: list[Any] = []
        self._changed = asyncio.Condition()

    async def __call__(self, item: Any) -> None:
        self.attempts.append(item)
        async with self._changed:
            self._changed.notify_all()
        if self.hangs:
            await asyncio.Event().wait()  # a meter that never answers (until the outbox stops)
        if self.down:
            raise NotReady(f"meter {self.name} is not linked")
        self.delivered.append(item)
        async with self._changed:
            self._changed.notify_all()

    async def until(self, predicate: Callable[[], bool], store: Store) -> None:
        """Wait until ``predicate()`` holds, then for the outbox's bookkeeping to be committed."""
        async with asyncio.timeout(5):
            async with self._changed:
                await self._changed.wait_for(predicate)
        await store.flush()

    def ids(self) -> list[int]:
        return [r.issuer_event_id for r in self.delivered]


async def pending_ids(outbox: Outbox, meter_id: str) -> list[int]:
    return [p.item.issuer_event_id for p in await outbox.pending() if p.meter_id == meter_id]


# --- the outbox on a store -------------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(StoreConfig(None, 24.0, 400), tmp_path)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
async def outbox(store: Store, clock: FixedClock) -> AsyncIterator[Outbox]:
    outbox = Outbox(store, clock=clock)
    yield outbox
    await outbox.stop()


async def test_one_meters_outage_does_not_hold_another_meters_reports(
    outbox: Outbox, store: Store, clock: FixedClock
) -> None:
    a, b = Channel("a", down=True), Channel("b")
    outbox.register_sender(EventStatusReport, a, meter_id="a")
    outbox.register_sender(EventStatusReport, b, meter_id="b")
    for meter_id, event_id in (("a", 1), ("b", 2), ("a", 3), ("b", 4)):
        await outbox.enqueue(report(meter_id, event_id))

    await outbox.start()
    await b.until(lambda: len(b.delivered) == 2, store)
    await a.until(lambda: len(a.attempts) >= 1, store)

    assert b.ids() == [2, 4]
    assert a.delivered == [] and {r.issuer_event_id for r in a.attempts} == {1}  # 3 waits behind 1
    assert await pending_ids(outbox, "a") == [1, 3]
    assert [p.route for p in await outbox.pending()] == [Route("a", "EventStatusReport")] * 2

    a.down = False  # meter a is back; its item is retried once the clock is past its backoff
    clock.advance(minutes=5)
    outbox.wake()  # (the wait may have begun before the clock moved; a wake has it look again)
    await a.until(lambda: len(a.delivered) == 2, store)

    assert a.ids() == [1, 3]
    assert await outbox.pending() == []


async def test_a_meter_that_never_answers_does_not_hold_another_meters_reports(
    outbox: Outbox, store: Store
) -> None:
    a, b = Channel("a", hangs=True), Channel("b")
    outbox.register_sender(EventStatusReport, a, meter_id="a")
    outbox.register_sender(EventStatusReport, b, meter_id="b")
    await outbox.start()

    await outbox.enqueue(report("a", 1))
    await a.until(lambda: len(a.attempts) == 1, store)
    await outbox.enqueue(report("b", 2))
    await b.until(lambda: len(b.delivered) == 1, store)

    assert b.ids() == [2]
    assert await pending_ids(outbox, "a") == [1]


async def test_a_premise_channel_failing_for_one_meter_still_carries_the_others(
    outbox: Outbox, store: Store
) -> None:
    """The older single-sender registration: the routes are still per meter (this failed before)."""
    delivered: list[EventStatusReport] = []
    sent = asyncio.Event()

    async def send(item: EventStatusReport) -> None:
        if item.meter_id == "a":
            raise NotReady("meter a is not linked")
        delivered.append(item)
        sent.set()

    outbox.register_sender(EventStatusReport, send)
    await outbox.enqueue(report("a", 1))
    await outbox.enqueue(report("b", 2))
    await outbox.start()
    async with asyncio.timeout(5):
        await sent.wait()

    assert [r.issuer_event_id for r in delivered] == [2]


async def test_resume_cuts_a_meters_backoff_short(outbox: Outbox, store: Store, clock: FixedClock) -> None:
    a = Channel("a", down=True)
    outbox.register_sender(EventStatusReport, a, meter_id="a")
    await outbox.start()
    await outbox.enqueue(report("a", 1))
    await a.until(lambda: len(a.attempts) == 1, store)

    a.down = False
    outbox.resume("a")  # what a meter link does when it is online again; the clock stands still
    await a.until(lambda: len(a.delivered) == 1, store)

    assert a.ids() == [1]


async def test_a_report_whose_meter_has_no_sender_waits_logged_once_and_goes_when_one_registers(
    outbox: Outbox, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    b = Channel("b")
    outbox.register_sender(EventStatusReport, b, meter_id="b")
    await outbox.start()
    caplog.set_level(logging.INFO, logger="ems.outbox")

    for event_id in (1, 2):
        await outbox.enqueue(report("a", event_id))
    await outbox.enqueue(report("b", 3))
    await b.until(lambda: len(b.delivered) == 1, store)
    outbox.wake()
    await outbox.enqueue(report("b", 4))
    await b.until(lambda: len(b.delivered) == 2, store)

    waits = [r for r in caplog.records if "no upstream channel" in r.getMessage()]
    assert len(waits) == 1 and "EventStatusReport for meter a" in waits[0].getMessage()
    assert await pending_ids(outbox, "a") == [1, 2]

    a = Channel("a")
    outbox.register_sender(EventStatusReport, a, meter_id="a")
    await a.until(lambda: len(a.delivered) == 2, store)
    assert a.ids() == [1, 2]


async def test_each_meter_registers_its_own_sender_and_a_second_for_one_meter_is_refused(
    outbox: Outbox,
) -> None:
    outbox.register_sender(EventStatusReport, Channel("a"), meter_id="a")
    outbox.register_sender(EventStatusReport, Channel("b"), meter_id="b")
    outbox.register_sender(MessageConfirmed, Channel("a"), meter_id="a")

    with pytest.raises(ValueError, match="EventStatusReport for meter a"):
        outbox.register_sender(EventStatusReport, Channel("a"), meter_id="a")


async def test_carries_says_whether_a_meters_item_would_be_delivered(outbox: Outbox) -> None:
    unregister = outbox.register_sender(TelemetryReport, Channel("a"), meter_id="a")

    assert outbox.carries(TelemetryReport, "a")
    assert not outbox.carries(TelemetryReport, "b")
    assert not outbox.carries(TelemetryReport)  # the premise-wide route has no channel
    unregister()
    assert not outbox.carries(TelemetryReport, "a")

    outbox.register_sender(TelemetryReport, Channel("premise"))  # the premise's channel
    assert outbox.carries(TelemetryReport) and outbox.carries(TelemetryReport, "b")


async def test_an_item_without_a_meter_takes_the_premise_route_or_the_meter_named(
    outbox: Outbox, store: Store
) -> None:
    premise, a = Channel("premise"), Channel("a")
    outbox.register_sender(TelemetryReport, premise)
    outbox.register_sender(TelemetryReport, a, meter_id="a")
    await outbox.start()

    await outbox.enqueue(telemetry(10.0))
    await outbox.enqueue(telemetry(20.0), meter_id="a")
    await premise.until(lambda: len(premise.delivered) == 1, store)
    await a.until(lambda: len(a.delivered) == 1, store)

    assert [t.soc_pct for t in premise.delivered] == [10.0]
    assert [t.soc_pct for t in a.delivered] == [20.0]
    with pytest.raises(ValueError, match="meter 'a' cannot go to meter 'b'"):
        await outbox.enqueue(report("a", 1), meter_id="b")


async def test_a_meter_with_its_own_sender_does_not_use_the_premise_channel(
    outbox: Outbox, store: Store
) -> None:
    premise, a = Channel("premise"), Channel("a")
    outbox.register_sender(EventStatusReport, premise)
    outbox.register_sender(EventStatusReport, a, meter_id="a")
    await outbox.start()

    await outbox.enqueue(report("a", 1))
    await outbox.enqueue(report("b", 2))
    await a.until(lambda: len(a.delivered) == 1, store)
    await premise.until(lambda: len(premise.delivered) == 1, store)

    assert (a.ids(), premise.ids()) == ([1], [2])


# --- on a real hub, and across a restart ----------------------------------------------------


def register(hub: Hub, **channels: Channel) -> list[Callable[[], None]]:
    return [hub.outbox.register_sender(EventStatusReport, channel, meter_id=meter_id)
            for meter_id, channel in channels.items()]


async def test_on_a_hub_the_other_meters_reports_go_while_one_meter_is_down(tmp_path: Path) -> None:
    async with started_hub(tmp_path, clock=FixedClock(T0)) as hub:
        a, b = Channel("a", down=True), Channel("b")
        register(hub, a=a, b=b)
        for meter_id, event_id in (("a", 1), ("a", 2), ("b", 3), ("a", 4), ("b", 5)):
            await hub.outbox.enqueue(report(meter_id, event_id))

        await b.until(lambda: len(b.delivered) == 2, hub.store)
        await a.until(lambda: len(a.attempts) >= 1, hub.store)
        assert b.ids() == [3, 5]
        assert await pending_ids(hub.outbox, "a") == [1, 2, 4]

        a.down = False
        hub.outbox.resume("a")
        await a.until(lambda: len(a.delivered) == 3, hub.store)

        assert a.ids() == [1, 2, 4]
        assert await hub.outbox.pending() == []


async def test_after_a_restart_each_meters_pending_reports_are_routed_again_in_order(tmp_path: Path) -> None:
    async with started_hub(tmp_path, clock=FixedClock(T0)) as hub:
        a, b = Channel("a", down=True), Channel("b")
        register(hub, a=a, b=b)
        await hub.outbox.enqueue(report("b", 1))
        await b.until(lambda: len(b.delivered) == 1, hub.store)
        for meter_id, event_id in (("a", 2), ("c", 3), ("a", 4), ("c", 5)):
            await hub.outbox.enqueue(report(meter_id, event_id))  # meter c has no channel yet
        await a.until(lambda: len(a.attempts) >= 1, hub.store)
    # The hub stopped with meter a down and meter c unheard of: nothing of theirs went out.

    again = Hub(load_config(tmp_path / "config"), tmp_path / "data", FixedClock(T0))
    await again.start()
    try:
        assert [(p.meter_id, p.item.issuer_event_id) for p in await again.outbox.pending()] == [
            ("a", 2), ("c", 3), ("a", 4), ("c", 5)]
        a_again, c = Channel("a"), Channel("c", down=True)
        register(again, a=a_again, c=c)
        again.outbox.resume("a")  # its backoff from before the restart is cut short
        await a_again.until(lambda: len(a_again.delivered) == 2, again.store)
        await c.until(lambda: len(c.attempts) >= 1, again.store)
        assert a_again.ids() == [2, 4]
        assert await pending_ids(again.outbox, "c") == [3, 5]

        c.down = False
        again.outbox.resume("c")
        await c.until(lambda: len(c.delivered) == 2, again.store)
        assert c.ids() == [3, 5]
        assert await again.outbox.pending() == []
    finally:
        await again.stop()
