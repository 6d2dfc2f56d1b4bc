"""Daylight-saving changes during a time-of-use period and during a DR event (the issue's Clock bullet).

Tariff periods are local wall-clock time; readings and events are UTC. On the day the clocks go
forwards the local day has 23 hours and the hour 02:00-03:00 does not exist; on the day they go
back it has 25 and 01:00-02:00 (New York) or 02:00-03:00 (Madrid) happens twice. A period that
holds the change lasts one hour less or more of real time, and every other period keeps its length.
Events keep their length in real minutes whatever the wall clock does. On the injectable clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ems.clock import FixedClock
from ems.costs import ReadingArrays, cost_report, price_intervals, summarize
from ems.dr.events import LoadControl, LoadControlSettings
from ems.dr.loadchange import event_dates
from ems.model import (
    Criticality,
    DeviceClass,
    EventPhase,
    EventStatus,
    EventStatusReport,
    IntervalReading,
    LoadControlEvent,
)
from ems.tariff import parse_plan
from tests.hubs import started_hub

NEW_YORK, MADRID = "America/New_York", "Europe/Madrid"

# The shoulder period holds the change in both zones (New York at 02:00, Madrid at 02:00 / 03:00).
PLAN = parse_plan("DST", {
    "currency": "USD",
    "billing_cycle": {"start_day": 1},
    "versions": [{
        "effective_from": date(2026, 1, 1),
        "time_of_use": {"all": {"weekday": [
            {"period": "off-peak", "start": "21:00", "end": "01:00", "price_per_kwh": 0.10},
            {"period": "shoulder", "start": "01:00", "end": "04:00", "price_per_kwh": 0.20},
            {"period": "day", "start": "04:00", "end": "16:00", "price_per_kwh": 0.30},
            {"period": "peak", "start": "16:00", "end": "21:00", "price_per_kwh": 0.50},
        ]}},
        "tiers": [{"price_per_kwh": 0.0}],
    }],
})
PRICES = {"off-peak": 0.10, "shoulder": 0.20, "day": 0.30, "peak": 0.50}

# (zone, day, real hours of the local day, real hours of the shoulder 01:00-04:00)
CHANGES = [
    (NEW_YORK, date(2026, 3, 8), 23, 2),  # 02:00 EST -> 03:00 EDT
    (NEW_YORK, date(2026, 11, 1), 25, 4),  # 02:00 EDT -> 01:00 EST
    (MADRID, date(2026, 3, 29), 23, 2),  # 02:00 CET -> 03:00 CEST
    (MADRID, date(2026, 10, 25), 25, 4),  # 03:00 CEST -> 02:00 CET
    (NEW_YORK, date(2026, 7, 15), 24, 3),  # an ordinary day, for comparison
]
KWH_PER_QUARTER = 0.25  # 1 kWh an hour of real time


def midnight(zone: str, day: date) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC)


def quarters(zone: str, day: date) -> list[IntervalReading]:
    """The meter's 15-minute intervals over the local day, in real (UTC) time."""
    start, end = midnight(zone, day), midnight(zone, day + timedelta(days=1))
    count = int((end - start).total_seconds()) // 900
    return [IntervalReading("m1", start + timedelta(minutes=15 * i), 900, KWH_PER_QUARTER, 0.0) for i in range(count)]


@pytest.mark.parametrize(("zone", "day", "hours", "shoulder_h"), CHANGES, ids=lambda v: str(v))
def test_costs_per_period_on_a_daylight_saving_day(zone: str, day: date, hours: int, shoulder_h: int) -> None:
    readings = quarters(zone, day)
    assert len(readings) == hours * 4
    priced = price_intervals(PLAN, ReadingArrays.from_readings(readings), timezone=zone)
    bill = summarize(priced, midnight(zone, day), midnight(zone, day + timedelta(days=1)), include_fixed=False)
    expected_h = {"off-peak": 4, "shoulder": shoulder_h, "day": 12, "peak": 5}
    periods = {p.period: (round(p.energy_kwh, 6), round(p.cost, 6)) for p in bill.periods}
    assert periods == {name: (float(h), round(h * PRICES[name], 6)) for name, h in expected_h.items()}
    assert round(bill.energy_kwh, 6) == hours
    assert round(bill.energy_cost, 6) == round(sum(h * PRICES[n] for n, h in expected_h.items()), 6)


@pytest.mark.parametrize(("zone", "day", "hours", "shoulder_h"), CHANGES[:4], ids=lambda v: str(v))
def test_todays_cost_in_the_shoulder_while_the_clocks_change(zone: str, day: date, hours: int,
                                                            shoulder_h: int) -> None:
    """The cost so far, asked at 03:30 local (inside the shoulder, after the change): everything since
    local midnight, each hour in its period, whichever way the clocks went."""
    now = datetime.combine(day, time(3, 30), ZoneInfo(zone)).astimezone(UTC)
    report = cost_report(PLAN, ReadingArrays.from_readings(quarters(zone, day)), now=now, timezone=zone)
    real_h = (now - midnight(zone, day)).total_seconds() / 3600  # 2.5 (forwards), 4.5 (back), ...
    periods = {p.period: round(p.energy_kwh, 6) for p in report.today.periods}
    assert periods == {"off-peak": 1.0, "shoulder": real_h - 1}
    assert round(report.today.energy_kwh, 6) == real_h
    assert report.today.start == midnight(zone, day)


# -- DR events across a change -----------------------------------------------------------------


async def until(predicate: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - the predicate is the code under test's state
            await asyncio.sleep(0.005)
    assert predicate(), what


def local_at(zone: str, day: date, hhmm: str, fold: int = 0) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), ZoneInfo(zone)).replace(fold=fold).astimezone(UTC)


# (zone, day, local start, minutes, local end shown as, its UTC offset at the end)
EVENTS = [
    (NEW_YORK, date(2026, 3, 8), "01:30", 60, "03:30", timedelta(hours=-4)),  # an hour of real time
    (NEW_YORK, date(2026, 11, 1), "00:30", 120, "01:30", timedelta(hours=-5)),  # the second 01:30
    (MADRID, date(2026, 3, 29), "01:30", 60, "03:30", timedelta(hours=2)),
    (MADRID, date(2026, 10, 25), "01:30", 120, "02:30", timedelta(hours=1)),  # the second 02:30
]


@pytest.mark.parametrize(("zone", "day", "start_hhmm", "minutes", "end_hhmm", "end_offset"), EVENTS,
                         ids=lambda v: str(v))
async def test_an_event_across_a_change_runs_its_minutes_of_real_time(
    tmp_path: Path, zone: str, day: date, start_hhmm: str, minutes: int, end_hhmm: str, end_offset: timedelta
) -> None:
    start = local_at(zone, day, start_hhmm)
    clock = FixedClock(start - timedelta(minutes=10))
    site = f"site: {{name: Test home, timezone: {zone}}}\n"
    async with started_hub(tmp_path, site, clock=clock) as hub:
        seen: list[EventStatusReport] = []
        hub.bus.listen(EventStatusReport, seen.append)
        lc = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock)
        await lc.start()
        try:
            hub.bus.publish(LoadControlEvent("main", 9, DeviceClass.HVAC, 0, start, minutes, Criticality.LEVEL_2,
                                             clock()))
            await until(lambda: [r.status for r in seen] == [EventStatus.RECEIVED], "received")
            step = timedelta(minutes=5)
            while clock() < start + timedelta(minutes=minutes + 10):  # the load control's own loop, no advance by hand
                clock.advance(seconds=step.total_seconds())
                await until(lambda: lc.views()[0].phase is _phase(clock(), start, minutes), f"its phase at {clock()}")
            await until(lambda: len(seen) == 3, "the completion reported")
            statuses = [(r.status, r.at) for r in seen]
            end = start + timedelta(minutes=minutes)
            assert statuses == [(EventStatus.RECEIVED, start - timedelta(minutes=10)), (EventStatus.STARTED, start),
                                (EventStatus.COMPLETED, end)]
            local_end = end.astimezone(ZoneInfo(zone))
            assert (local_end.strftime("%H:%M"), local_end.utcoffset()) == (end_hhmm, end_offset)
            view = lc.views()[0]
            assert view.effective_end - view.effective_start == timedelta(minutes=minutes)
            assert event_dates([(view.event, None)], zone) == frozenset({day})
        finally:
            await lc.stop()


def _phase(now: datetime, start: datetime, minutes: int) -> EventPhase:
    if now < start:
        return EventPhase.SCHEDULED
    return EventPhase.ACTIVE if now < start + timedelta(minutes=minutes) else EventPhase.ENDED
