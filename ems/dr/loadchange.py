"""Measured load change of a DR event: kW reduced, energy shifted, money saved, rebate (C6 3.3 step 6).

The event's net load (consumed - generated) is compared slot by slot with the customer's
baseline (``ems.dr.baseline``), during the event and for ``rebound_hours`` after it:

- ``reduced_kwh``: baseline - actual over the event's slots that were read;
  ``kw_reduced`` is that over the hours read (the elapsed part while the event runs), and
  ``peak_kw_reduced`` the largest reduction of one slot, in kW.
- ``rebound_kwh``: how far the load rose above the baseline in the hours after the event, net
  over those hours and never below 0 (a lower load afterwards is not counted as more saving).
- ``energy_shifted_kwh`` = ``reduced_kwh`` - ``rebound_kwh``: the energy moved out of the event
  window and not taken back right after it.
- ``money_saved``: what the bill would have been at the baseline minus what it is, from the cost
  engine (``ems.costs.price_intervals``: periods, tiers, critical-peak adders, meter prices), over
  the event and the rebound hours. Each slot is priced as net energy (import at the energy price,
  export at the generation credit); the rest of the billing cycle is the same on both sides, so a
  tier crossed or avoided is counted. The rebate is not part of it.
- ``rebate_earned``: on a peak-time-rebate plan, the engine's own rule (``ems.costs._rebates``:
  its baseline of the same hours on the plan's ``baseline_days`` weekdays, consumption only,
  credit only once every minute is read). An event the rates file lists for that day is used as
  listed; otherwise the DR event becomes the PTR event (to the minute), and other DR event days are
  kept out of its baseline. While the event runs, it is the rebate for the whole intervals so far
  (the engine counts a reading by its start, so a window cut inside an interval would not compare
  like with like).

Live, the elapsed part uses the completed intervals plus the meter's live demand samples for
the part no interval covers yet (each sample held until the next, at most ``max_sample_hold_s``).
Status: "scheduled" (not started), "live" (until the rebound hours are over), "final", or
"insufficient history" (too few similar days: no baseline, and no number is made up).
"""

from __future__ import annotations

import asyncio
import enum
import functools
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np

from ems.costs import DEFAULT_INTERVAL_S, ReadingArrays, nominal_interval_s, price_intervals
from ems.dr.baseline import (
    DEFAULT_ADJUSTMENT,
    DEFAULT_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    DEFAULT_MIN_DAYS,
    NetEnergy,
    SameDayAdjustment,
    estimate_baseline,
    slot_bounds,
    utc,
)
from ems.local_text import N_
from ems.model import EventView, LoadControlEvent, PriceSignal, Text, require_utc
from ems.tariff import MINUTES_PER_DAY, EventWindow, RatePlan

if TYPE_CHECKING:
    from ems.dr.ports import DrHub as Hub

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The notes as catalog msgids (web.control_api.dr_text renders them in the reader's language).
NOT_STARTED = Text(N_("the event has not started yet"))
CANCELLED_BEFORE = Text(N_("the event was cancelled before it started"))
FROM_DEMAND = N_("measured to {now_at}; the part after {tail_at} from live demand samples")
ONE_MISSING = N_("1 interval not read (left out of the totals)")
MISSING = N_("{missing_num} intervals not read (left out of the totals)")


class LoadChangeStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    FINAL = "final"
    INSUFFICIENT = "insufficient history"


class UnknownEvent(LookupError):
    """No DR event with that meter and issuer event id is known."""


@dataclass(frozen=True, slots=True)
class MeasureSettings:
    """How an event is measured (the defaults follow the common "10 in 10" practice)."""

    days: int = DEFAULT_DAYS
    min_days: int = DEFAULT_MIN_DAYS
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    rebound_hours: float = 2.0
    adjustment: SameDayAdjustment | None = DEFAULT_ADJUSTMENT
    max_sample_hold_s: int = 300


DEFAULT_SETTINGS = MeasureSettings()


@dataclass(frozen=True, slots=True)
class IntervalChange:
    """One slot for the chart: baseline and actual net kWh (None: not known)."""

    start: datetime
    end: datetime
    part: str  # "event" | "after"
    baseline_kwh: float | None
    actual_kwh: float | None
    from_demand: bool = False  # some of it is from live demand samples (no interval yet)

    @property
    def hours(self) -> float:
        return (self.end - self.start).total_seconds() / 3600

    @property
    def baseline_kw(self) -> float | None:
        return None if self.baseline_kwh is None else self.baseline_kwh / self.hours

    @property
    def actual_kw(self) -> float | None:
        return None if self.actual_kwh is None else self.actual_kwh / self.hours


@dataclass(frozen=True, slots=True)
class LoadChange:
    """What one DR event changed in the home's load, as measured at ``as_of``."""

    meter_id: str
    issuer_event_id: int
    status: LoadChangeStatus
    as_of: datetime
    start: datetime  # the event's effective window
    end: datetime
    rebound_end: datetime  # the end of the hours after the event that are watched for a rebound
    baseline_kwh: float | None  # over the event slots read so far
    actual_kwh: float | None
    reduced_kwh: float | None
    kw_reduced: float | None  # average over the elapsed part read
    peak_kw_reduced: float | None
    rebound_kwh: float | None
    energy_shifted_kwh: float | None
    money_saved: float | None
    rebate_earned: float | None  # None: no peak-time-rebate plan
    rebate_baseline_kwh: float | None  # the engine's PTR baseline
    currency: str | None
    intervals: tuple[IntervalChange, ...]
    baseline_days: tuple[date, ...]
    day_kind: str
    adjustment_factor: float | None
    adjustment: str
    missing_intervals: int
    note: tuple[Text, ...]  # what to know about the figures, in parts (shown joined by "; ")

    @property
    def key(self) -> tuple[str, int]:
        return (self.meter_id, self.issuer_event_id)


# --- Pure computation -------------------------------------------------------------------------


def effective_window(event: LoadControlEvent, cancelled_at: datetime | None) -> tuple[datetime, datetime]:
    """When the event ran: its start to its end, or to its cancellation (never before the start)."""
    end = event.end
    if cancelled_at is not None and cancelled_at < end:
        end = max(cancelled_at, event.start)
    return event.start, end


def tail_from_s(readings: ReadingArrays, not_before_s: int) -> int:
    """Where the completed intervals end: live demand samples fill from here."""
    if len(readings) == 0:
        return not_before_s
    return max(int((readings.start_s + readings.duration_s).max()), not_before_s)


def demand_readings(
    samples: Sequence[tuple[int, float]], from_s: int, to_s: int, max_hold_s: int
) -> ReadingArrays:
    """Live demand samples (epoch s, net kW) as short readings over [from_s, to_s)."""
    if not samples or to_s <= from_s:
        return ReadingArrays.from_columns([], [], [], [])
    t = np.asarray([s for s, _ in samples], dtype=np.int64)
    kw = np.asarray([v for _, v in samples], dtype=np.float64)
    nxt = np.append(t[1:], to_s)
    a = np.maximum(t, from_s)
    b = np.minimum(np.minimum(nxt, t + max_hold_s), to_s)
    keep = b > a
    a, b, kw = a[keep], b[keep], kw[keep]
    net = kw * (b - a) / 3600
    return ReadingArrays.from_columns(a, b - a, np.maximum(net, 0.0), np.maximum(-net, 0.0))


def _net_as_readings(a: np.ndarray, b: np.ndarray, net_kwh: np.ndarray) -> ReadingArrays:
    return ReadingArrays.from_columns(a, b - a, np.maximum(net_kwh, 0.0), np.maximum(-net_kwh, 0.0))


def _cut_out(readings: ReadingArrays, a0: int, a1: int) -> ReadingArrays:
    """The readings with the part inside [a0, a1) removed (a reading across an edge keeps its share)."""
    s = readings.start_s
    e = s + readings.duration_s
    d = np.maximum(readings.duration_s, 1).astype(np.float64)
    parts = []
    for lo, hi, mask in ((s, np.minimum(e, a0), s < a0), (np.maximum(s, a1), e, e > a1)):
        share = (hi - lo)[mask] / d[mask]
        parts.append((lo[mask], (hi - lo)[mask], readings.consumed_kwh[mask] * share, readings.generated_kwh[mask] * share))
    return ReadingArrays.from_columns(*(np.concatenate([p[i] for p in parts]) for i in range(4)))


def _grid_floor(t_s: int, interval_s: int, tz: ZoneInfo) -> int:
    """The last interval boundary (local wall-clock grid) at or before ``t_s``."""
    offset = datetime.fromtimestamp(t_s, tz).utcoffset()
    offset_s = int(offset.total_seconds()) if offset is not None else 0
    return (t_s + offset_s) // interval_s * interval_s - offset_s


def _local_minute(t_s: int, tz: ZoneInfo) -> tuple[date, int]:
    local = datetime.fromtimestamp(t_s, tz)
    return local.date(), local.hour * 60 + local.minute


def _window_start(window: EventWindow, tz: ZoneInfo) -> datetime:
    local = datetime.combine(window.day, time()) + timedelta(minutes=window.start_min)
    return local.replace(tzinfo=tz).astimezone(UTC)


def ptr_rebate(
    plan: RatePlan,
    readings: ReadingArrays,
    *,
    start_s: int,
    end_s: int,
    timezone: str,
    event_days: Collection[date],
    climate_zone: str | None = None,
) -> tuple[float | None, float | None]:
    """(credit, the engine's baseline kWh) of the event by the plan's PTR rule; (None, None) off PTR."""
    tz = ZoneInfo(timezone)
    if plan.version_at(utc(start_s), tz).peak_time_rebate is None:
        return None, None
    day, start_min = _local_minute(start_s, tz)
    end_day, end_min = _local_minute(end_s, tz)
    if end_day > day:
        end_min = MINUTES_PER_DAY  # an event past midnight: its first day's part
    listed = {e.day: e for e in plan.peak_time_rebate_events}
    if day in listed:
        window = listed[day]
        events = plan.peak_time_rebate_events
    else:
        if end_min <= start_min:
            return 0.0, None  # not a whole minute yet
        window = EventWindow(day, start_min, end_min)
        others = tuple(EventWindow(d, 0, MINUTES_PER_DAY) for d in sorted(event_days) if d != day and d not in listed)
        events = (*plan.peak_time_rebate_events, window, *others)
    priced = price_intervals(
        replace(plan, peak_time_rebate_events=events), readings, timezone=timezone, climate_zone=climate_zone
    )
    wanted = _window_start(window, tz)
    result = next((r for r in priced.rebates if r.start == wanted), None)
    if result is None:
        return 0.0, None
    return result.credit, result.baseline_kwh


def compute_load_change(
    *,
    meter_id: str,
    issuer_event_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
    history: ReadingArrays,
    timezone: str,
    event_days: Collection[date],
    demand: Sequence[tuple[int, float]] = (),
    plan: RatePlan | None = None,
    climate_zone: str | None = None,
    price_signals: Sequence[PriceSignal] = (),
    settings: MeasureSettings = DEFAULT_SETTINGS,
) -> LoadChange:
    """The load change of one event from readings and samples in memory (pure; see the module)."""
    tz = ZoneInfo(timezone)
    start_s, end_s, now_s = int(start.timestamp()), int(end.timestamp()), int(now.timestamp())
    rebound_end_s = end_s + round(settings.rebound_hours * 3600)
    currency = plan.currency if plan is not None else None
    empty = LoadChange(
        meter_id=meter_id, issuer_event_id=issuer_event_id, status=LoadChangeStatus.SCHEDULED, as_of=now,
        start=start, end=end, rebound_end=utc(rebound_end_s), baseline_kwh=None, actual_kwh=None,
        reduced_kwh=None, kw_reduced=None, peak_kw_reduced=None, rebound_kwh=None, energy_shifted_kwh=None,
        money_saved=None, rebate_earned=None, rebate_baseline_kwh=None, currency=currency, intervals=(),
        baseline_days=(), day_kind="", adjustment_factor=None, adjustment="", missing_intervals=0, note=(),
    )
    if now_s < start_s:
        return replace(empty, note=(NOT_STARTED,))
    if end_s <= start_s:
        return replace(empty, status=LoadChangeStatus.FINAL, note=(CANCELLED_BEFORE,))

    span_end_s = min(now_s, rebound_end_s)
    history = history.between(0, span_end_s)
    adjust_from_s = settings.adjustment.window_s(start_s)[0] if settings.adjustment else start_s
    live = now_s < rebound_end_s
    tail_s = tail_from_s(history, adjust_from_s) if live else span_end_s
    tail = demand_readings(demand, tail_s, now_s, settings.max_sample_hold_s) if live else None
    read = history + tail if tail is not None and len(tail) else history
    curve = NetEnergy.of(read)

    interval_s = nominal_interval_s(history) if len(history) else DEFAULT_INTERVAL_S
    ev_a, ev_b = slot_bounds(start_s, min(end_s, span_end_s), interval_s, timezone)
    af_a, af_b = slot_bounds(end_s, span_end_s, interval_s, timezone)
    a, b = np.concatenate([ev_a, af_a]), np.concatenate([ev_b, af_b])
    in_event = np.arange(len(a)) < len(ev_a)
    actual = curve.measured_kwh(a, b)
    got = ~np.isnan(actual)
    baseline = estimate_baseline(
        curve, a, b, event_start=start, timezone=timezone, event_days=event_days,
        holidays=plan.holidays.dates(range(start.astimezone(tz).year - 1, start.astimezone(tz).year + 1)) if plan else (),
        days=settings.days, min_days=settings.min_days, lookback_days=settings.lookback_days,
        adjustment=settings.adjustment,
    )
    status = LoadChangeStatus.LIVE if live else LoadChangeStatus.FINAL
    intervals = tuple(
        IntervalChange(
            utc(a[i]), utc(b[i]), "event" if in_event[i] else "after",
            None if baseline.kwh is None else float(baseline.kwh[i]),
            float(actual[i]) if got[i] else None,
            bool(tail is not None and len(tail) and b[i] > tail_s),
        )
        for i in range(len(a))
    )
    notes: list[Text] = []
    if live and intervals and intervals[-1].from_demand:
        notes.append(Text.of(FROM_DEMAND, now_at=utc(now_s), tail_at=utc(tail_s)))
    missing = int(np.count_nonzero(~got))
    if missing:
        notes.append(Text.of(ONE_MISSING if missing == 1 else MISSING, missing_num=missing))

    ev = in_event & got
    actual_kwh = float(actual[ev].sum()) if ev.any() else None
    rebate, rebate_baseline = (None, None)
    if plan is not None:
        rebate, rebate_baseline = ptr_rebate(
            plan, read, start_s=start_s, end_s=end_s if now_s >= end_s else _grid_floor(now_s, interval_s, tz),
            timezone=timezone,
            event_days=event_days, climate_zone=climate_zone,
        )
    common: dict[str, Any] = {
        "actual_kwh": actual_kwh, "rebate_earned": rebate, "rebate_baseline_kwh": rebate_baseline,
        "intervals": intervals, "baseline_days": baseline.days, "day_kind": baseline.day_kind,
        "missing_intervals": missing,
    }
    if baseline.kwh is None:
        if baseline.reason is not None:
            notes.insert(0, baseline.reason)
        return replace(
            empty, status=LoadChangeStatus.INSUFFICIENT, adjustment=baseline.adjustment, note=tuple(notes), **common
        )

    bl = baseline.kwh
    hours = (b - a) / 3600
    baseline_kwh = float(bl[ev].sum()) if ev.any() else None
    reduced = float((bl[ev] - actual[ev]).sum()) if ev.any() else None
    read_hours = float(hours[ev].sum())
    kw_reduced = reduced / read_hours if reduced is not None and read_hours > 0 else None
    peak = float(((bl[ev] - actual[ev]) / hours[ev]).max()) if ev.any() else None
    after = ~in_event & got
    rebound = max(0.0, float((actual[after] - bl[after]).sum())) if after.any() else 0.0
    shifted = None if reduced is None else reduced - rebound
    money = None
    if plan is not None and got.any():
        money = _money_saved(plan, read, a[got], b[got], actual[got], bl[got], start_s, span_end_s,
                             timezone, climate_zone, price_signals)
    return replace(
        empty,
        status=status,
        baseline_kwh=baseline_kwh,
        reduced_kwh=reduced,
        kw_reduced=kw_reduced,
        peak_kw_reduced=peak,
        rebound_kwh=rebound,
        energy_shifted_kwh=shifted,
        money_saved=money,
        adjustment_factor=baseline.factor,
        adjustment=baseline.adjustment,
        note=tuple(notes),
        **common,
    )


def _money_saved(
    plan: RatePlan,
    read: ReadingArrays,
    a: np.ndarray,
    b: np.ndarray,
    actual_kwh: np.ndarray,
    baseline_kwh: np.ndarray,
    span_start_s: int,
    span_end_s: int,
    timezone: str,
    climate_zone: str | None,
    price_signals: Sequence[PriceSignal],
) -> float:
    """Bill at the baseline minus bill as read: the same readings outside the slots, priced by the engine."""
    outside = _cut_out(read, span_start_s, span_end_s)
    bills = []
    for net in (baseline_kwh, actual_kwh):
        priced = price_intervals(
            plan, outside + _net_as_readings(a, b, net), timezone=timezone,
            climate_zone=climate_zone, price_signals=price_signals,
        )
        bills.append(float(priced.cost.sum()))
    return bills[0] - bills[1]


# --- Reading the store ------------------------------------------------------------------------


async def find_event(hub: Hub, meter_id: str, issuer_event_id: int,
                     views: Iterable[EventView] = ()) -> tuple[LoadControlEvent, datetime | None]:
    """The event and when it was cancelled: the DR core's views first, then the store."""
    for view in views:
        if view.key == (meter_id, issuer_event_id):
            return view.event, view.cancelled_at
    for stored in await hub.store.events(EPOCH):
        if (stored.event.meter_id, stored.event.issuer_event_id) == (meter_id, issuer_event_id):
            return stored.event, stored.cancelled_at
    raise UnknownEvent(f"no DR event {issuer_event_id} from meter {meter_id!r}")


def event_dates(events: Iterable[tuple[LoadControlEvent, datetime | None]], timezone: str) -> frozenset[date]:
    """Every local date a DR event ran on (an event cancelled before it started did not run)."""
    tz = ZoneInfo(timezone)
    days: set[date] = set()
    for event, cancelled_at in events:
        start, end = effective_window(event, cancelled_at)
        if end <= start:
            continue
        day, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
        while day <= last:
            days.add(day)
            day += timedelta(days=1)
    return frozenset(days)


async def measure_event(
    hub: Hub,
    meter_id: str,
    issuer_event_id: int,
    now: datetime,
    *,
    window: tuple[datetime, datetime] | None = None,
    settings: MeasureSettings = DEFAULT_SETTINGS,
    views: Iterable[EventView] = (),
) -> LoadChange:
    """Measure one event from the store; UnknownEvent if there is no such event.

    ``window`` gives the effective start and end when the caller knows them (start randomisation
    of ``ems.dr.events``); otherwise the event's own start and end, cut at a cancellation.
    ``views`` are the DR core's events (those not yet in the store count too).
    """
    now = require_utc(now, "now")
    views = tuple(views)
    event, cancelled_at = await find_event(hub, meter_id, issuer_event_id, views)
    start, end = window if window is not None else effective_window(event, cancelled_at)
    timezone = hub.config.site.timezone
    tz = ZoneInfo(timezone)
    tariff = hub.config.tariff
    plan: RatePlan | None = tariff.active_plan if tariff is not None else None
    climate_zone = tariff.climate_zone if tariff is not None else None
    work: dict[str, Any] = {
        "meter_id": meter_id, "issuer_event_id": issuer_event_id, "start": start, "end": end, "now": now,
        "timezone": timezone, "plan": plan, "climate_zone": climate_zone, "settings": settings,
    }
    if now < start:
        return compute_load_change(history=ReadingArrays.from_columns([], [], [], []), event_days=(), **work)

    event_day = start.astimezone(tz).date()
    first = event_day - timedelta(days=settings.lookback_days + 1)
    if plan is not None:
        first = min(first, plan.billing_cycle.cycle_of(event_day)[0])
    since = datetime.combine(first, time(), tz).astimezone(UTC)
    rebound_end = end + timedelta(hours=settings.rebound_hours)
    until = min(now, rebound_end)
    # Everything after the reads runs in a thread: the baseline and the pricing (whose first use
    # builds the holiday calendars) held the loop for up to 170 ms under the API fuzzer. The weeks of
    # intervals come as columns (most of them from the store's memory, ems.store.recent), never as
    # one object per row: read so, they held it for up to 200 ms more (bench/soak.py's API fuzzer).
    # What the thread gets is its own: arrays, lists, a frozen plan.
    history = await hub.store.interval_columns(meter_id, since, until)
    demand: list[tuple[int, float]] = []
    if now < rebound_end:
        adjust_from = settings.adjustment.window_s(int(start.timestamp()))[0] if settings.adjustment else int(start.timestamp())
        tail = tail_from_s(history, adjust_from) - settings.max_sample_hold_s
        samples = await hub.store.demand_samples(meter_id, utc(tail), now)
        demand = [(int(s.read_at.timestamp()), s.demand_kw) for s in samples if s.demand_kw is not None]
    known = [(s.event, s.cancelled_at) for s in await hub.store.events(since)]
    known += [(v.event, v.cancelled_at) for v in views if v.event.meter_id == meter_id]
    days = event_dates(((e, c) for e, c in known if e.meter_id == meter_id), timezone)
    signals: list[PriceSignal] = []
    if plan is not None and tariff is not None and tariff.use_meter_prices:
        signals = await hub.store.prices(meter_id, since)
    work.update(history=history, event_days=days, demand=demand, price_signals=signals)
    return await asyncio.to_thread(functools.partial(compute_load_change, **work))
