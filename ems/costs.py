"""The cost engine: what the customer's energy cost, from interval readings as read (C6 3.2 step 7).

Gaps are never estimated: a gap stays a gap and is reported as missing intervals. A daily or
monthly reading (longer than ``COARSE_S``) is priced as flat shares of its energy over the time it
spans, by the time in each period and day type, and its cost is marked as estimated. Every
interval is priced at once with numpy: its local day, season, day type and time-of-use period
(by the wall-clock time at its start), its billing cycle, and the split of its energy over the
tiers from the cycle's cumulative consumption (an interval that crosses a tier boundary is
split in proportion). Summaries then add up any window (the last interval, today, the cycle).
A history of any length is priced one billing cycle at a time (``CyclePricer``), in memory
bounded by a cycle, with the same figures as pricing it at once.

Everything here is pure (no I/O, no asyncio) so the web layer can run it in an executor.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from ems import local_text
from ems.demand import DemandPeak, cycle_demand
from ems.model import (
    IntervalReading,
    MessageImportance,
    PriceSignal,
    UtilityMessage,
)
from ems.tariff import ALL_YEAR, DAY_TYPES, MINUTES_PER_DAY, EventWindow, RatePlan, RateVersion

EPOCH_DATE = date(1970, 1, 1)
DEFAULT_INTERVAL_S = 900
TYPICAL_DAYS = 14
LOCAL_MESSAGE_ID_BASE = 0x7E000000  # ids of the appliance's own messages (never the utility's)


# --- Readings as columns -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadingArrays:
    """Interval readings as numpy columns, sorted by start (epoch seconds, UTC).

    A reading longer than ``COARSE_S`` (a day's or a month's, from a Green Button file) is priced
    and shown as flat shares of its energy over the time it spans (``spread_coarse``); each share
    keeps the reading it comes from in ``whole_start_s`` and ``whole_duration_s`` (None: every row
    is a reading as read).
    """

    start_s: np.ndarray  # int64
    duration_s: np.ndarray  # int64
    consumed_kwh: np.ndarray  # float64
    generated_kwh: np.ndarray  # float64
    whole_start_s: np.ndarray | None = None  # int64: the start of the reading a row is a share of
    whole_duration_s: np.ndarray | None = None  # int64: that reading's length

    @classmethod
    def from_readings(cls, readings: Iterable[IntervalReading]) -> ReadingArrays:
        rows = sorted(readings, key=lambda r: r.start)
        return cls.from_columns(
            [int(r.start.timestamp()) for r in rows],
            [r.duration_s for r in rows],
            [r.consumed_kwh for r in rows],
            [r.generated_kwh for r in rows],
        )

    @classmethod
    def from_columns(
        cls,
        start_s: Sequence[int] | np.ndarray,
        duration_s: Sequence[int] | np.ndarray,
        consumed_kwh: Sequence[float] | np.ndarray,
        generated_kwh: Sequence[float] | np.ndarray,
        whole_start_s: np.ndarray | None = None,
        whole_duration_s: np.ndarray | None = None,
    ) -> ReadingArrays:
        start = np.asarray(start_s, dtype=np.int64)
        order = np.argsort(start, kind="stable") if np.any(np.diff(start) < 0) else slice(None)
        return cls(
            start[order],
            np.asarray(duration_s, dtype=np.int64)[order],
            np.asarray(consumed_kwh, dtype=np.float64)[order],
            np.asarray(generated_kwh, dtype=np.float64)[order],
            None if whole_start_s is None else np.asarray(whole_start_s, dtype=np.int64)[order],
            None if whole_duration_s is None else np.asarray(whole_duration_s, dtype=np.int64)[order],
        )

    def __len__(self) -> int:
        return len(self.start_s)

    def rows(self, i0: int, i1: int) -> ReadingArrays:
        """Readings i0 to i1 - 1 (views, no copy)."""
        return ReadingArrays(
            self.start_s[i0:i1], self.duration_s[i0:i1], self.consumed_kwh[i0:i1], self.generated_kwh[i0:i1],
            None if self.whole_start_s is None else self.whole_start_s[i0:i1],
            None if self.whole_duration_s is None else self.whole_duration_s[i0:i1],
        )

    def between(self, start_s: int, end_s: int) -> ReadingArrays:
        """The readings that start in [start_s, end_s)."""
        i0, i1 = np.searchsorted(self.start_s, [start_s, end_s], side="left")
        return self.rows(int(i0), int(i1))

    def wholes(self) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the start and length of the reading as read it comes from (itself, unless spread)."""
        if self.whole_start_s is None or self.whole_duration_s is None:
            return self.start_s, self.duration_s
        return self.whole_start_s, self.whole_duration_s

    @property
    def estimated(self) -> np.ndarray | None:
        """Per row, whether its energy is a flat share of a longer reading (None: no row is)."""
        if self.whole_duration_s is None:
            return None
        spread: np.ndarray = self.whole_duration_s != self.duration_s
        return spread

    def readings_count(self, i0: int = 0, i1: int | None = None) -> int:
        """How many readings as read rows i0 to i1 - 1 hold (a spread one counts at its first share)."""
        i1 = len(self) if i1 is None else i1
        if self.whole_start_s is None:
            return max(0, i1 - i0)
        return int(np.count_nonzero(self.whole_start_s[i0:i1] == self.start_s[i0:i1]))

    @staticmethod
    def concatenate(parts: Sequence[ReadingArrays]) -> ReadingArrays:
        """Parts in time order, one after the other, as one (no sorting)."""
        spread = any(p.whole_start_s is not None for p in parts)
        start, duration, consumed, generated = (np.concatenate([getattr(p, name) for p in parts])
                                                for name in ("start_s", "duration_s", "consumed_kwh", "generated_kwh"))
        if not spread:
            return ReadingArrays(start, duration, consumed, generated)
        wholes = [p.wholes() for p in parts]
        return ReadingArrays(start, duration, consumed, generated,
                             np.concatenate([w[0] for w in wholes]), np.concatenate([w[1] for w in wholes]))

    def __add__(self, other: ReadingArrays) -> ReadingArrays:
        joined = ReadingArrays.concatenate([self, other])
        return ReadingArrays.from_columns(joined.start_s, joined.duration_s, joined.consumed_kwh,
                                          joined.generated_kwh, joined.whole_start_s, joined.whole_duration_s)


# --- Coarse readings: flat shares over their span --------------------------------------------

# A reading longer than this (a day's, a month's) is not priced at the rate of its first minute:
# its energy is spread as a flat share over the time it spans, cut at every local quarter hour and
# every minute where the plan's price may change, and the cost is marked as estimated.
COARSE_S = 3600
SHARE_S = 900


def _price_change_minutes(plan: RatePlan | None) -> list[int]:
    """Local minutes of the day, off the quarter hours, where a plan's price may change."""
    if plan is None:
        return []
    minutes = {e.start_min for e in (*plan.critical_peak_events, *plan.peak_time_rebate_events)}
    minutes |= {e.end_min % MINUTES_PER_DAY for e in (*plan.critical_peak_events, *plan.peak_time_rebate_events)}
    for version in plan.versions:
        minutes.add(version.effective_from.hour * 60 + version.effective_from.minute)
        for season in version.time_of_use.values():
            for day_type in DAY_TYPES:
                for period in season.periods(day_type):
                    minutes |= {period.start_min, period.end_min}
    return sorted(m for m in minutes if m % (SHARE_S // 60))


def _local_cuts_s(start_s: int, end_s: int, tz: ZoneInfo, minutes: Iterable[int]) -> np.ndarray:
    """Epoch seconds of the given local minutes of every local day from start_s to end_s."""
    day = datetime.fromtimestamp(start_s, tz).date()
    last = datetime.fromtimestamp(end_s, tz).date()
    cuts = []
    wanted = list(minutes)
    while day <= last:
        cuts += [_epoch_s(day, tz, m) for m in wanted]
        day += timedelta(days=1)
    return np.asarray(cuts, dtype=np.int64)


def spread_coarse(readings: ReadingArrays, *, timezone: str, plan: RatePlan | None = None) -> ReadingArrays:
    """Readings longer than ``COARSE_S`` as flat shares of their energy over the time they span.

    Each share runs from one cut to the next: every local quarter hour (``SHARE_S``) and every local
    minute where the plan's price may change (``_price_change_minutes``), so each share lies in one
    time-of-use period, day type, season, billing cycle and chart bucket; its energy is the reading's
    times its share of the reading's time. Shorter readings are left as they are (no copy when none is
    longer); doing it twice changes nothing.
    """
    long = np.nonzero(readings.duration_s > COARSE_S)[0]
    if not len(long):
        return readings
    tz = ZoneInfo(timezone)
    odd = _price_change_minutes(plan)
    first_s = int(readings.start_s[long[0]])
    last_s = int((readings.start_s[long] + readings.duration_s[long]).max())
    # Local quarter hours are UTC quarter hours where every UTC offset is a whole number of them.
    on_grid = all(offset % SHARE_S == 0 for _, offset in _transitions(tz.key, first_s, last_s))
    whole_start, whole_duration = readings.wholes()
    keep = np.ones(len(readings), dtype=bool)
    keep[long] = False
    parts = [ReadingArrays(readings.start_s[keep], readings.duration_s[keep], readings.consumed_kwh[keep],
                           readings.generated_kwh[keep], whole_start[keep], whole_duration[keep])]
    for i in long:
        s, d = int(readings.start_s[i]), int(readings.duration_s[i])
        e = s + d
        if on_grid:
            cuts = np.arange(-(-s // SHARE_S) * SHARE_S, e, SHARE_S, dtype=np.int64)
        else:
            cuts = _local_cuts_s(s, e, tz, range(0, MINUTES_PER_DAY, SHARE_S // 60))
        if odd:
            cuts = np.union1d(cuts, _local_cuts_s(s, e, tz, odd))
        bounds = np.unique(np.concatenate([[s], cuts[(cuts > s) & (cuts < e)], [e]]))
        length = np.diff(bounds)
        share = length / d
        n = len(length)
        parts.append(ReadingArrays(
            bounds[:-1], length, readings.consumed_kwh[i] * share, readings.generated_kwh[i] * share,
            np.full(n, whole_start[i], dtype=np.int64), np.full(n, whole_duration[i], dtype=np.int64),
        ))
    joined = ReadingArrays.concatenate(parts)
    order = np.argsort(joined.start_s, kind="stable")
    return ReadingArrays(*(getattr(joined, name)[order] for name in (
        "start_s", "duration_s", "consumed_kwh", "generated_kwh", "whole_start_s", "whole_duration_s")))


# --- Local time, vectorised ------------------------------------------------------------------


def _epoch_s(day: date, tz: ZoneInfo, minute: int = 0) -> int:
    """Epoch seconds of a local date and minute (a minute skipped by DST: the old offset)."""
    local = datetime.combine(day, time()) + timedelta(minutes=minute)
    return int(local.replace(tzinfo=tz).timestamp())


def _offset_at(tz: ZoneInfo, t: int) -> int:
    offset = datetime.fromtimestamp(t, tz).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _transitions(tz_name: str, first_s: int, last_s: int) -> tuple[tuple[int, int], ...]:
    """(from epoch second, UTC offset seconds) for every offset in force in [first_s, last_s].

    Put together from each UTC year's offsets (worked out once per year and zone): a series priced
    a billing cycle at a time asks about a new span every cycle.
    """
    first_year = datetime.fromtimestamp(first_s, UTC).year
    last_year = datetime.fromtimestamp(last_s, UTC).year
    result: list[tuple[int, int]] = []
    for year in range(first_year, last_year + 1):
        for t, offset in _year_transitions(tz_name, year):
            if t > last_s:
                break
            if t <= first_s:
                result[:] = [(first_s, offset)]
            elif offset != result[-1][1]:
                result.append((t, offset))
    return tuple(result)


@lru_cache(maxsize=256)
def _year_transitions(tz_name: str, year: int) -> tuple[tuple[int, int], ...]:
    """The offsets in force during one UTC year, the first from the year's first second."""
    first_s = int(datetime(year, 1, 1, tzinfo=UTC).timestamp())
    return _scan_transitions(tz_name, first_s, int(datetime(year + 1, 1, 1, tzinfo=UTC).timestamp()) - 1)


def _scan_transitions(tz_name: str, first_s: int, last_s: int) -> tuple[tuple[int, int], ...]:
    """(from epoch second, UTC offset seconds) for every offset in force in [first_s, last_s]."""
    tz = ZoneInfo(tz_name)
    result = [(first_s, _offset_at(tz, first_s))]
    t = first_s
    while t < last_s:
        step = min(86400, last_s - t)
        if _offset_at(tz, t + step) != result[-1][1]:
            lo, hi = t, t + step  # the offset changes in (lo, hi]: find the first second
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset_at(tz, mid) == result[-1][1]:
                    lo = mid
                else:
                    hi = mid
            result.append((hi, _offset_at(tz, hi)))
            t = hi
        else:
            t += step
    return tuple(result)


def utc_offsets_s(start_s: np.ndarray, tz_name: str) -> np.ndarray:
    """The UTC offset in force at each (sorted) epoch second."""
    offsets = np.empty(len(start_s), dtype=np.int64)
    if len(start_s) == 0:
        return offsets
    transitions = _transitions(tz_name, int(start_s[0]), int(start_s[-1]))
    cuts = np.searchsorted(start_s, [t for t, _ in transitions[1:]], side="left")
    bounds = [0, *cuts.tolist(), len(start_s)]
    for (_, offset), lo, hi in zip(transitions, bounds, bounds[1:], strict=False):
        offsets[lo:hi] = offset
    return offsets


def local_date(at: datetime, tz: ZoneInfo) -> date:
    return at.astimezone(tz).date()


def _day_type(day: date, holidays: frozenset[date]) -> int:
    if day in holidays:
        return 2
    return 1 if day.weekday() >= 5 else 0


# --- Priced intervals -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RebateResult:
    """One peak time rebate event: baseline, what was used, and the credit earned."""

    start: datetime
    end: datetime
    baseline_kwh: float | None  # None: no typical day to compare with
    used_kwh: float
    complete: bool  # every minute of the event was read
    credit: float


@dataclass(frozen=True, slots=True)
class PricedIntervals:
    """Every interval priced: the engine's per-interval arrays (index i = reading i)."""

    plan: RatePlan
    timezone: str
    readings: ReadingArrays
    day_number: np.ndarray  # local days since 1970-01-01
    version_index: np.ndarray
    cycle_index: np.ndarray  # into ``cycles``
    cycles: tuple[tuple[date, date], ...]
    tier_bounds_kwh: np.ndarray  # [cycles, tiers - 1], cumulative upper bounds per cycle
    cycle_after_kwh: np.ndarray  # energy used in the cycle up to the end of each interval
    period_index: np.ndarray  # into ``period_labels``; -1 for none
    period_labels: tuple[tuple[str, str], ...]  # (season, period)
    unit_price_per_kwh: np.ndarray  # energy price without the tier's price
    tier_energy_kwh: np.ndarray  # [tiers, n]
    tier_cost: np.ndarray  # [tiers, n]
    energy_cost: np.ndarray
    generation_credit: np.ndarray
    rebates: tuple[RebateResult, ...]

    @property
    def cost(self) -> np.ndarray:
        """Cost of each interval: energy minus generation credit."""
        cost: np.ndarray = self.energy_cost - self.generation_credit
        return cost

    def __len__(self) -> int:
        return len(self.readings)


def _segment_index(start_s: np.ndarray, boundaries_s: Sequence[int]) -> np.ndarray:
    """For sorted times, the index of the segment each falls in (segment k from boundary k)."""
    n = len(start_s)
    cuts = np.searchsorted(start_s, np.asarray(boundaries_s[1:], dtype=np.int64), side="left")
    counts = np.diff(np.concatenate([[0], cuts, [n]]))
    return np.repeat(np.arange(len(boundaries_s), dtype=np.int64), counts)


class _PeriodTable:
    """Time-of-use periods as one lookup table: row (version, season, day type) x minute."""

    def __init__(self, plan: RatePlan) -> None:
        self.labels: dict[tuple[str, str], int] = {}
        self.period_label: list[int] = []
        self.period_price: list[float] = []
        rows: list[np.ndarray] = []
        self.row_of: list[dict[tuple[str, int], int]] = []
        for version in plan.versions:
            index: dict[tuple[str, int], int] = {}
            if not version.time_of_use:
                pid = self._period(None, version.energy_price_per_kwh)
                rows.append(np.full(MINUTES_PER_DAY, pid, dtype=np.int64))
                for season in version.season_names():
                    for d in range(3):
                        index[(season, d)] = len(rows) - 1
            else:
                for season in version.season_names():
                    tou = version.time_of_use[season]
                    for d, day_type in enumerate(DAY_TYPES):
                        row = np.empty(MINUTES_PER_DAY, dtype=np.int64)
                        for p in tou.periods(day_type):
                            pid = self._period((season, p.name), p.price_per_kwh)
                            if p.start_min < p.end_min:
                                row[p.start_min : p.end_min] = pid
                            else:
                                row[p.start_min :] = pid
                                row[: p.end_min] = pid
                        rows.append(row)
                        index[(season, d)] = len(rows) - 1
            self.row_of.append(index)
        self.table = np.concatenate(rows)

    def _period(self, label: tuple[str, str] | None, price: float) -> int:
        label_id = -1 if label is None else self.labels.setdefault(label, len(self.labels))
        self.period_label.append(label_id)
        self.period_price.append(price)
        return len(self.period_price) - 1


# Energy in a tier below this is float residue of the tier split, not use of the tier.
ENTERED_KWH = 1e-9


def price_intervals(
    plan: RatePlan,
    readings: ReadingArrays,
    *,
    timezone: str,
    climate_zone: str | None = None,
    price_signals: Sequence[PriceSignal] = (),
    billed: tuple[date, date] | None = None,
) -> PricedIntervals:
    """Price every reading under a plan (vectorised).

    A price signal from the meter replaces the whole energy price (tier and critical-peak
    included) for its time span; later-received signals win. A reading longer than ``COARSE_S``
    is priced as flat shares over its span (``spread_coarse``): the result's readings are the shares.
    ``billed``: the local days [first, end) billed; a cycle cut by them has its allowances prorated
    (``RatePlan.billed_allowances_kwh``).
    """
    readings = spread_coarse(readings, timezone=timezone, plan=plan)
    return _price(plan, readings, timezone=timezone, climate_zone=climate_zone, price_signals=price_signals,
                  table=_PeriodTable(plan), carried=_Carried(billed=billed))[0]


@dataclass(frozen=True, slots=True)
class _Carried:
    """What pricing one billing cycle of a longer series needs from the readings before it.

    ``price_intervals`` over the whole series works these out itself; ``CyclePricer`` hands
    them over, so each cycle is priced exactly (to the bit) as it is within the whole series.
    """

    running_kwh: float = 0.0  # the series' cumulative consumption before these readings
    first_day: date | None = None  # the series' first local day (its holidays count from that year)
    rebate_days: tuple[date, date] | None = None  # the peak time rebate events priced here (first, last day)
    earlier: ReadingArrays | None = None  # readings before these (the rebate's baseline days)
    billed: tuple[date, date] | None = None  # the local days billed: a cycle they cut has prorated allowances


def _price(
    plan: RatePlan,
    readings: ReadingArrays,
    *,
    timezone: str,
    climate_zone: str | None,
    price_signals: Sequence[PriceSignal],
    table: _PeriodTable,
    carried: _Carried,
) -> tuple[PricedIntervals, float]:
    """``price_intervals`` for part of a series (``carried``); also the running kWh at its end."""
    tz = ZoneInfo(timezone)
    n = len(readings)
    start_s = readings.start_s
    consumed = readings.consumed_kwh
    versions = plan.versions
    labels = tuple(table.labels)
    tiers = plan.number_of_tiers
    if n == 0:
        empty_f = np.zeros(0)
        empty_i = np.zeros(0, dtype=np.int64)
        return PricedIntervals(
            plan, timezone, readings, empty_i, empty_i, empty_i, (), np.zeros((0, max(tiers - 1, 0))),
            empty_f, empty_i, labels, empty_f, np.zeros((tiers, 0)), np.zeros((tiers, 0)), empty_f, empty_f, (),
        ), carried.running_kwh

    # Local wall clock of each interval's start.
    local_s = start_s + utc_offsets_s(start_s, timezone)
    day_number = local_s // 86400
    minute = (local_s - day_number * 86400) // 60
    first_day = int(day_number[0])
    days = int(day_number[-1]) - first_day + 1
    day_index = day_number - first_day
    dates = [EPOCH_DATE + timedelta(days=first_day + i) for i in range(days)]

    # Which version applies (from its start instant).
    version_starts = [int(t.timestamp()) for t in plan.version_starts_utc(tz)]
    version_index = _segment_index(start_s, version_starts) if len(versions) > 1 else np.zeros(n, dtype=np.int64)

    # Per version and local day: the row of the period table (season x day type).
    series_first = carried.first_day or dates[0]
    holidays = plan.holidays.dates(range(series_first.year, dates[-1].year + 1))
    day_types = [_day_type(d, holidays) for d in dates]
    day_rows = np.empty((len(versions), days), dtype=np.int64)
    for v, version in enumerate(versions):
        season_of_day = _seasons_of(version, dates)
        row_of = table.row_of[v]
        day_rows[v] = [row_of[(s, t)] for s, t in zip(season_of_day, day_types, strict=True)]
    row_start = day_rows * MINUTES_PER_DAY  # where each (version, day)'s minutes begin
    if len(versions) == 1:
        period_id = table.table[row_start[0][day_index] + minute]
    else:
        period_id = table.table[row_start.ravel()[version_index * days + day_index] + minute]
    unit = np.asarray(table.period_price)[period_id]
    period_index = np.asarray(table.period_label, dtype=np.int64)[period_id]

    # Hourly prices replace the period price for their hours.
    if any(v.hourly_prices for v in versions):
        hourly = np.full((len(versions), days * 24), np.nan)
        for v, version in enumerate(versions):
            for day, prices in version.hourly_prices.items():
                i = (day - dates[0]).days
                if 0 <= i < days:
                    hourly[v, i * 24 : i * 24 + 24] = prices
        hour_price = hourly.ravel()[version_index * days * 24 + day_index * 24 + minute // 60]
        unit = np.where(np.isnan(hour_price), unit, hour_price)

    # Critical peak events add their adder.
    adders = np.asarray([v.critical_peak_adder_per_kwh for v in versions])
    event_minutes = _event_minutes(plan.critical_peak_events, dates)
    if event_minutes is not None and adders.any():
        rows_of_day, mask = event_minutes
        event_row = rows_of_day[day_index]
        in_event = (event_row >= 0) & mask.ravel()[np.maximum(event_row, 0) * MINUTES_PER_DAY + minute]
        unit = unit + np.where(in_event, adders[version_index], 0.0)

    # Prices the meter published replace the whole energy price for their span.
    overridden = None
    if price_signals:
        unit = unit.copy()
        overridden = np.zeros(n, dtype=bool)
        for signal in sorted(price_signals, key=lambda s: s.received_at):
            end = int(signal.end.timestamp()) if signal.end is not None else int(start_s[-1]) + 1
            if end <= start_s[0] or int(signal.start.timestamp()) > start_s[-1]:
                continue  # prices nothing here (a long history holds many such)
            i0, i1 = np.searchsorted(start_s, [int(signal.start.timestamp()), end], side="left")
            unit[i0:i1] = signal.price_per_kwh
            overridden[i0:i1] = True

    # Billing cycles by local date; cumulative consumption within each cycle.
    cycles = tuple(plan.billing_cycle.cycles(dates[0], dates[-1]))
    cycle_of_day = np.empty(days, dtype=np.int64)
    for c, (c_start, c_end) in enumerate(cycles):
        lo, hi = max((c_start - dates[0]).days, 0), min((c_end - dates[0]).days, days)
        cycle_of_day[lo:hi] = c
    one_cycle = len(cycles) == 1  # a cycle priced alone (CyclePricer): scalars where arrays held one value
    cycle_index = np.zeros(n, dtype=np.int64) if one_cycle else cycle_of_day[day_index]
    # One running sum over the series, added in order (a cycle priced alone carries it in).
    running = np.cumsum(consumed) if not carried.running_kwh else np.cumsum(np.concatenate([[carried.running_kwh], consumed]))[1:]
    before_all = running - consumed
    first_of_cycle = np.searchsorted(cycle_index, np.arange(len(cycles)), side="left")
    cycle_base = before_all[np.minimum(first_of_cycle, n - 1)]
    cycle_before = before_all - (cycle_base[0] if one_cycle else cycle_base[cycle_index])
    cycle_after = cycle_before + consumed

    # Split each interval's energy over the tiers (in proportion where it crosses a bound).
    bounds = np.zeros((len(cycles), max(tiers - 1, 0)))
    for c, cycle in enumerate(cycles):
        if tiers > 1 and carried.billed is not None:
            bounds[c] = np.cumsum(plan.billed_allowances_kwh(cycle, carried.billed, tz, climate_zone))
        elif tiers > 1:
            bounds[c] = np.cumsum(plan.cycle_allowances_kwh(cycle, tz, climate_zone))
    tier_energy = np.empty((tiers, n))
    tier_cost = np.empty((tiers, n))
    tier_prices = np.asarray([[t.price_per_kwh for t in v.tiers] for v in versions]).reshape(len(versions), tiers)
    allocated = np.zeros(n)
    for k in range(tiers):
        if k == tiers - 1:
            energy = consumed - allocated  # may hold float residue (~1e-18 kWh); see ENTERED_KWH
        else:
            bound = bounds[0, k] if one_cycle else bounds[:, k][cycle_index]
            if k == 0:
                energy = np.minimum(cycle_after, bound) - np.minimum(cycle_before, bound)
            else:
                lower = bounds[0, k - 1] if one_cycle else bounds[:, k - 1][cycle_index]
                energy = np.clip(cycle_after, lower, bound) - np.clip(cycle_before, lower, bound)
            allocated = allocated + energy
        tier_energy[k] = energy
        # One value for every version: a scalar (no gather over every interval).
        same_price = bool(np.all(tier_prices[:, k] == tier_prices[0, k]))
        price = tier_prices[0, k] if same_price else tier_prices[:, k][version_index]
        if overridden is not None:
            price = np.where(overridden, 0.0, price)
        if np.isscalar(price) and price == 0:
            np.multiply(energy, unit, out=tier_cost[k])
        else:
            np.multiply(energy, unit + price, out=tier_cost[k])
    energy_cost = tier_cost[0] if tiers == 1 else np.add.reduce(tier_cost) if tiers else consumed * unit

    # Generation credit: a price per exported kWh, or the import price of the moment.
    same = np.asarray([v.generation_same_as_import for v in versions])
    credit_price = np.asarray([v.generation_credit_per_kwh for v in versions])
    if len(versions) == 1 or (bool(np.all(same == same[0])) and bool(np.all(credit_price == credit_price[0]))):
        gen_price: np.ndarray | float = unit if same[0] else float(credit_price[0])
    else:
        gen_price = np.where(same[version_index], unit, credit_price[version_index])
    generation_credit = readings.generated_kwh * gen_price

    rebate_readings = readings if carried.earlier is None else carried.earlier + readings
    rebates = _rebates(plan, rebate_readings, tz, holidays, *(carried.rebate_days or (dates[0], dates[-1])))
    priced = PricedIntervals(
        plan=plan,
        timezone=timezone,
        readings=readings,
        day_number=day_number,
        version_index=version_index,
        cycle_index=cycle_index,
        cycles=cycles,
        tier_bounds_kwh=bounds,
        cycle_after_kwh=cycle_after,
        period_index=period_index,
        period_labels=labels,
        unit_price_per_kwh=unit,
        tier_energy_kwh=tier_energy,
        tier_cost=tier_cost,
        energy_cost=np.asarray(energy_cost, dtype=np.float64),
        generation_credit=np.asarray(generation_credit, dtype=np.float64),
        rebates=rebates,
    )
    return priced, float(running[-1])


def _seasons_of(version: RateVersion, dates: list[date]) -> list[str]:
    if not version.seasons:
        return [ALL_YEAR] * len(dates)
    return [version.season_of(d) for d in dates]


def _event_minutes(events: Sequence[EventWindow], dates: list[date]) -> tuple[np.ndarray, np.ndarray] | None:
    """Per local day, the row of a minute mask of the day's events (-1: no event)."""
    by_day: dict[date, list[EventWindow]] = {}
    for event in events:
        if dates[0] <= event.day <= dates[-1]:
            by_day.setdefault(event.day, []).append(event)
    if not by_day:
        return None
    rows_of_day = np.full(len(dates), -1, dtype=np.int64)
    mask = np.zeros((len(by_day), MINUTES_PER_DAY), dtype=bool)
    for r, (day, day_events) in enumerate(sorted(by_day.items())):
        rows_of_day[(day - dates[0]).days] = r
        for event in day_events:
            mask[r, event.start_min : event.end_min] = True
    return rows_of_day, mask


def _window_s(event: EventWindow, day: date, tz: ZoneInfo) -> tuple[int, int]:
    return _epoch_s(day, tz, event.start_min), _epoch_s(day, tz, event.end_min)


def _used_in(readings: ReadingArrays, start_s: int, end_s: int) -> tuple[float, bool]:
    """kWh read in [start_s, end_s) (by interval start), and whether every second was read."""
    part = readings.between(start_s, end_s)
    covered = int(np.minimum(part.start_s + part.duration_s, end_s).sum() - part.start_s.sum()) if len(part) else 0
    return float(part.consumed_kwh.sum()), covered >= end_s - start_s


def _rebates(
    plan: RatePlan, readings: ReadingArrays, tz: ZoneInfo, holidays: frozenset[date], first_day: date, last_day: date
) -> tuple[RebateResult, ...]:
    """Peak time rebate per event on a day in [first_day, last_day]: credit for the kWh below the
    baseline, if fully read."""
    results = []
    event_days = {e.day for e in plan.peak_time_rebate_events}
    for event in plan.peak_time_rebate_events:
        if not first_day <= event.day <= last_day:
            continue
        start_s, end_s = _window_s(event, event.day, tz)
        version = plan.version_at(datetime.fromtimestamp(start_s, UTC), tz)
        if version.peak_time_rebate is None:
            continue
        used, complete = _used_in(readings, start_s, end_s)
        baseline = event.baseline_kwh
        if baseline is None:
            # The mean of the same hours on the last similar days (weekdays, no holiday or event).
            similar: list[float] = []
            day = event.day
            for _ in range(30):
                day -= timedelta(days=1)
                if len(similar) == version.peak_time_rebate.baseline_days:
                    break
                if day.weekday() >= 5 or day in holidays or day in event_days:
                    continue
                kwh, full = _used_in(readings, *_window_s(event, day, tz))
                if full:
                    similar.append(kwh)
            baseline = sum(similar) / len(similar) if similar else None
        credit = 0.0
        if complete and baseline is not None:
            credit = max(0.0, baseline - used) * version.peak_time_rebate.credit_per_kwh
        results.append(
            RebateResult(
                datetime.fromtimestamp(start_s, UTC), datetime.fromtimestamp(end_s, UTC), baseline, used, complete, credit
            )
        )
    return tuple(results)


# --- A long series, one billing cycle at a time ----------------------------------------------

# How far back a peak time rebate's baseline looks for similar days (``_rebates``), plus a day.
REBATE_LOOKBACK_DAYS = 31


class CyclePricer:
    """Prices a series of any length one billing cycle at a time, in memory bounded by a cycle.

    Years of 1-minute intervals priced at once took a gigabyte (ten years: 5.3 million readings
    and some twenty arrays of them). Fed the readings in time order, in chunks of any size (a
    month read from the store at a time), this returns each billing cycle as it completes, as its
    own ``PricedIntervals``, priced exactly as ``price_intervals`` prices it within the whole
    series, to the bit: the running sum the tiers are split from is carried over from the cycles
    before, holidays count from the series' first year, and a peak time rebate's baseline days are
    looked for in the readings of the month before. It holds the cycle being read and, for a plan
    with rebate events, that month. A cycle without a single reading is not returned (there is
    nothing in it to price; a rebate event in it could earn nothing). ``summarize`` over a cycle
    priced alone counts gaps against that cycle's usual interval length, not the whole series'
    (the same unless the meter changed its interval).
    """

    def __init__(
        self,
        plan: RatePlan,
        *,
        timezone: str,
        climate_zone: str | None = None,
        price_signals: Sequence[PriceSignal] = (),
        billed: tuple[date, date] | None = None,
    ) -> None:
        self.plan = plan
        self.timezone = timezone
        self.climate_zone = climate_zone
        self._billed = billed  # the local days billed (``price_intervals``)
        self._tz = ZoneInfo(timezone)
        self._signals = tuple(price_signals)
        self._table = _PeriodTable(plan)
        self._pending: list[ReadingArrays] = []
        self._cycle: tuple[date, date] | None = None
        self._running_kwh = 0.0
        self._first_day: date | None = None
        self._last_start_s: int | None = None  # of the readings fed (the order they must come in)
        self._earlier: ReadingArrays | None = None  # kept only for a plan with rebate events

    def feed(self, chunk: ReadingArrays) -> list[PricedIntervals]:
        """Take the next readings (starting no earlier than those fed before); return the cycles they complete."""
        if not len(chunk):
            return []
        # In the order of the readings as read (the shares of a daily or monthly one may reach past the
        # start of a reading that overlaps it).
        as_read = chunk.wholes()[0] if chunk.whole_start_s is not None else chunk.start_s[[0, -1]]
        if self._last_start_s is not None and int(as_read.min()) < self._last_start_s:
            raise ValueError("readings must be fed in time order")
        self._last_start_s = int(as_read.max())
        chunk = spread_coarse(chunk, timezone=self.timezone, plan=self.plan)
        day_number = (chunk.start_s + utc_offsets_s(chunk.start_s, self.timezone)) // 86400
        if self._first_day is None:
            self._first_day = EPOCH_DATE + timedelta(days=int(day_number[0]))
        done = []
        i, n = 0, len(chunk)
        while i < n:
            cycle = self.plan.billing_cycle.cycle_of(EPOCH_DATE + timedelta(days=int(day_number[i])))
            if self._cycle is not None and cycle != self._cycle:
                done.append(self._price_cycle(more_follow=True))
            self._cycle = cycle
            j = max(i + 1, int(np.searchsorted(day_number, (cycle[1] - EPOCH_DATE).days, side="left")))
            self._pending.append(chunk.rows(i, j))
            i = j
        return done

    def finish(self) -> list[PricedIntervals]:
        """The cycle still being read, priced as it stands (none if nothing was fed)."""
        return [self._price_cycle(more_follow=False)] if self._pending else []

    def _price_cycle(self, *, more_follow: bool) -> PricedIntervals:
        assert self._cycle is not None and self._first_day is not None
        pending, self._pending = self._pending, []
        readings = pending[0] if len(pending) == 1 else ReadingArrays.concatenate(pending)
        # Readings that overlap a daily or monthly one fed before (the importer keeps them apart; an
        # older store may hold both) start before its last shares: put in order.
        if np.any(np.diff(readings.start_s) < 0):
            readings = ReadingArrays.from_columns(readings.start_s, readings.duration_s, readings.consumed_kwh,
                                                  readings.generated_kwh, readings.whole_start_s,
                                                  readings.whole_duration_s)
        cycle_start, cycle_end = self._cycle
        last_day = cycle_end - timedelta(days=1) if more_follow else EPOCH_DATE + timedelta(
            days=int((readings.start_s[-1] + utc_offsets_s(readings.start_s[-1:], self.timezone)[0]) // 86400))
        carried = _Carried(self._running_kwh, self._first_day, (max(cycle_start, self._first_day), last_day),
                           self._earlier, self._billed)
        priced, self._running_kwh = _price(self.plan, readings, timezone=self.timezone, climate_zone=self.climate_zone,
                                           price_signals=self._signals, table=self._table, carried=carried)
        if self.plan.peak_time_rebate_events:
            recent = readings if self._earlier is None else self._earlier + readings
            self._earlier = recent.between(_epoch_s(cycle_end - timedelta(days=REBATE_LOOKBACK_DAYS), self._tz),
                                           int(recent.start_s[-1]) + 1)
        return priced


def price_cycles(
    plan: RatePlan,
    chunks: Iterable[ReadingArrays],
    *,
    timezone: str,
    climate_zone: str | None = None,
    price_signals: Sequence[PriceSignal] = (),
) -> Iterator[PricedIntervals]:
    """Each billing cycle of readings given in time order (chunks of any size), priced (``CyclePricer``)."""
    pricer = CyclePricer(plan, timezone=timezone, climate_zone=climate_zone, price_signals=price_signals)
    for chunk in chunks:
        yield from pricer.feed(chunk)
    yield from pricer.finish()


# --- Summaries -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch of time with no reading: shown as a gap, never estimated."""

    start: datetime
    end: datetime
    missing_intervals: int


@dataclass(frozen=True, slots=True)
class TierCost:
    """Energy and cost in one tier; ``allowance_kwh`` is the tier's upper bound in the cycle."""

    tier: int
    energy_kwh: float
    cost: float
    price_per_kwh: float  # the tier's own price (an adder on the period price)
    allowance_kwh: float | None


@dataclass(frozen=True, slots=True)
class PeriodCost:
    """Energy and cost in one time-of-use period of one season."""

    season: str
    period: str
    energy_kwh: float
    cost: float


@dataclass(frozen=True, slots=True)
class CostBreakdown:
    """What a window of time cost, from the readings as read."""

    start: datetime
    end: datetime
    currency: str
    energy_kwh: float
    generated_kwh: float
    energy_cost: float
    generation_credit: float
    peak_time_rebate: float
    fixed_charges: float
    total_cost: float  # energy - generation credit - rebate + fixed
    tiers: tuple[TierCost, ...]
    periods: tuple[PeriodCost, ...]
    rebates: tuple[RebateResult, ...]
    intervals_read: int
    missing_intervals: int
    gaps: tuple[Gap, ...]
    current_tier: int | None  # the tier of the last interval read (None: no tiers or no data)
    demand_charges: float = 0.0  # the cycle's demand charges so far (in total_cost), when asked for
    demand: tuple[DemandPeak, ...] = ()  # each demand charge's peak so far
    # kWh of daily or monthly readings, priced as flat shares over their span (``spread_coarse``)
    estimated_kwh: float = 0.0

    @property
    def estimated(self) -> bool:
        """Whether part of the cost is an estimate (flat shares of readings longer than ``COARSE_S``)."""
        return self.estimated_kwh > 0


def nominal_interval_s(readings: ReadingArrays) -> int:
    """The usual interval length of a series (the median of a sample)."""
    if len(readings) == 0:
        return DEFAULT_INTERVAL_S
    return max(1, int(np.median(readings.wholes()[1][-1000:])))


def find_gaps(readings: ReadingArrays, start_s: int, end_s: int, interval_s: int) -> tuple[Gap, ...]:
    """Stretches of [start_s, end_s) that no reading covers, at least one interval long at the end."""
    part = readings.between(start_s, end_s)
    if len(part) == 0:
        count = (end_s - start_s) // interval_s
        return (_gap(start_s, end_s, count),) if count else ()
    ends = part.start_s + part.duration_s
    covered_to = np.concatenate([[start_s], np.maximum.accumulate(ends)[:-1]])
    holes = np.nonzero(part.start_s > covered_to)[0]
    gaps = [
        _gap(int(covered_to[i]), int(part.start_s[i]), max(1, round((part.start_s[i] - covered_to[i]) / interval_s)))
        for i in holes
    ]
    last = int(ends.max())
    trailing = (end_s - last) // interval_s  # an interval still in progress is not missing
    if trailing > 0:
        gaps.append(_gap(last, end_s, trailing))
    return tuple(gaps)


def _gap(start_s: int, end_s: int, count: int) -> Gap:
    return Gap(datetime.fromtimestamp(start_s, UTC), datetime.fromtimestamp(end_s, UTC), int(count))


def fixed_days(plan: RatePlan, start: datetime, end: datetime, tz: ZoneInfo) -> list[date]:
    """The local dates whose midnight falls in [start, end): the days a daily charge is due."""
    day = local_date(start, tz)
    result = []
    while _epoch_s(day, tz) < end.timestamp():
        if _epoch_s(day, tz) >= start.timestamp():
            result.append(day)
        day += timedelta(days=1)
    return result


def summarize(
    priced: PricedIntervals,
    start: datetime,
    end: datetime,
    *,
    include_fixed: bool = True,
    gaps_until: datetime | None = None,
    include_demand: bool = False,
) -> CostBreakdown:
    """Add up the readings that start in [start, end); gaps are looked for up to ``gaps_until``.

    ``include_demand``: [start, end) is (part of) one billing cycle, and its demand charges so far
    count (``ems.demand``): the highest demand of the cycle's windows read in it.
    """
    plan = priced.plan
    tz = ZoneInfo(priced.timezone)
    start_s, end_s = int(start.timestamp()), int(end.timestamp())
    i0, i1 = (int(i) for i in np.searchsorted(priced.readings.start_s, [start_s, end_s], side="left"))
    part = slice(i0, i1)
    readings = priced.readings
    tiers = []
    for k in range(plan.number_of_tiers):
        version = plan.versions[int(priced.version_index[i1 - 1])] if i1 > i0 else plan.version_at(start, tz)
        bound = None
        if k < plan.number_of_tiers - 1 and i1 > i0:
            bound = float(priced.tier_bounds_kwh[int(priced.cycle_index[i1 - 1]), k])
        tiers.append(
            TierCost(
                k + 1,
                float(priced.tier_energy_kwh[k, part].sum()),
                float(priced.tier_cost[k, part].sum()),
                version.tiers[k].price_per_kwh,
                bound,
            )
        )
    periods = []
    if priced.period_labels:
        labels = priced.period_index[part]
        used = labels >= 0
        size = len(priced.period_labels)
        kwh = np.bincount(labels[used], weights=readings.consumed_kwh[part][used], minlength=size)
        cost = np.bincount(labels[used], weights=priced.energy_cost[part][used], minlength=size)
        for j, (season, name) in enumerate(priced.period_labels):
            if kwh[j] or cost[j]:
                periods.append(PeriodCost(season, name, float(kwh[j]), float(cost[j])))
    until = gaps_until or end
    rebates = tuple(r for r in priced.rebates if start <= r.start < end and r.end <= until)
    rebate = sum(r.credit for r in rebates)
    fixed = 0.0
    if include_fixed:
        for day in fixed_days(plan, start, end, tz):
            fixed += plan.version_at(datetime.combine(day, time(), tz), tz).basic_charge_per_day
    energy_cost = float(priced.energy_cost[part].sum())
    credit = float(priced.generation_credit[part].sum())
    gaps = find_gaps(readings, start_s, min(end_s, int(until.timestamp())), nominal_interval_s(readings))
    estimated = readings.estimated
    estimated_kwh = float(readings.consumed_kwh[part][estimated[part]].sum()) if estimated is not None else 0.0
    current_tier = None
    if i1 > i0 and plan.number_of_tiers:
        after = priced.cycle_after_kwh[i1 - 1]
        current_tier = 1 + int(np.sum(priced.tier_bounds_kwh[int(priced.cycle_index[i1 - 1])] < after))
    demand: tuple[DemandPeak, ...] = ()
    if include_demand:
        # Rows that are shares of a longer reading (where the engine spreads coarse readings) keep
        # that reading's length: a peak from one is marked estimated.
        whole = getattr(readings, "whole_duration_s", None)
        demand = cycle_demand(plan, readings.start_s[part], readings.duration_s[part], readings.consumed_kwh[part],
                              timezone=priced.timezone, cycle=plan.billing_cycle.cycle_of(local_date(start, tz)),
                              until_s=end_s, whole_duration_s=None if whole is None else whole[part])
    demand_cost = sum((d.charge for d in demand), 0.0)
    return CostBreakdown(
        start=start,
        end=end,
        currency=plan.currency,
        energy_kwh=float(readings.consumed_kwh[part].sum()),
        generated_kwh=float(readings.generated_kwh[part].sum()),
        energy_cost=energy_cost,
        generation_credit=credit,
        peak_time_rebate=rebate,
        fixed_charges=fixed,
        total_cost=energy_cost - credit - rebate + fixed + demand_cost,
        tiers=tuple(tiers),
        periods=tuple(periods),
        rebates=rebates,
        intervals_read=readings.readings_count(i0, i1),
        missing_intervals=sum(g.missing_intervals for g in gaps),
        gaps=gaps,
        current_tier=current_tier,
        demand_charges=demand_cost,
        demand=demand,
        estimated_kwh=estimated_kwh,
    )


def cycle_totals(priced: PricedIntervals) -> dict[str, np.ndarray]:
    """Per billing cycle: kWh, generated kWh, energy cost and generation credit (bincounts)."""
    size = len(priced.cycles)
    c = priced.cycle_index
    columns = {
        "energy_kwh": priced.readings.consumed_kwh,
        "generated_kwh": priced.readings.generated_kwh,
        "energy_cost": priced.energy_cost,
        "generation_credit": priced.generation_credit,
    }
    if len(c) and bool(np.all(c[1:] >= c[:-1])):
        # Readings run in time order, so each cycle is one contiguous run: sum the runs.
        cycles = np.arange(size)
        starts = np.searchsorted(c, cycles, side="left")
        present = np.searchsorted(c, cycles, side="right") > starts
        runs = starts[present]  # strictly increasing and inside the array: each run is exact
        totals = {}
        for name, w in columns.items():
            total = np.zeros(size)
            total[present] = np.add.reduceat(w, runs)
            totals[name] = total
        return totals
    return {name: np.bincount(c, weights=w, minlength=size) for name, w in columns.items()}


# --- Projection --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Projection:
    """The end-of-cycle bill: the cycle as read so far plus the customer's typical days."""

    cycle_start: date
    cycle_end: date  # exclusive
    basis: str  # "typical days" | "cycle mean"
    energy_kwh: float
    generated_kwh: float
    energy_cost: float
    generation_credit: float
    fixed_charges: float
    minimum_bill: float
    total_cost: float  # max(energy - credit - rebate + fixed + demand charges, minimum bill)
    next_tier: int | None
    next_tier_date: date | None  # local date the customer is expected to enter next_tier
    demand_charges: float = 0.0  # at the cycle's peak so far (in total_cost): a peak can only rise


def _typical_profile(
    readings: ReadingArrays, plan: RatePlan, tz_name: str, today: date, typical_days: int
) -> tuple[np.ndarray, np.ndarray, str] | None:
    """Mean kWh per local hour of day, consumed and generated, [weekday|weekend-or-holiday, 24].

    From the last ``typical_days`` complete days before today; falls back to the mean of
    the readings given (the cycle so far).
    """
    tz = ZoneInfo(tz_name)
    first = today - timedelta(days=typical_days)
    history = readings.between(_epoch_s(first, tz), _epoch_s(today, tz))
    holidays = plan.holidays.dates(range(first.year, today.year + 1))
    consumed = np.zeros((2, 24))
    generated = np.zeros((2, 24))
    complete = [0, 0]
    if len(history):
        local_s = history.start_s + utc_offsets_s(history.start_s, tz_name)
        day_number = local_s // 86400
        hour = (local_s - day_number * 86400) // 3600
        day_index = day_number - (first - EPOCH_DATE).days
        covered = np.bincount(day_index, weights=history.duration_s, minlength=typical_days)
        for i in range(typical_days):
            day = first + timedelta(days=i)
            if covered[i] < _epoch_s(day + timedelta(days=1), tz) - _epoch_s(day, tz):
                continue
            kind = 0 if _day_type(day, holidays) == 0 else 1
            mine = day_index == i
            consumed[kind] += np.bincount(hour[mine], weights=history.consumed_kwh[mine], minlength=24)[:24]
            generated[kind] += np.bincount(hour[mine], weights=history.generated_kwh[mine], minlength=24)[:24]
            complete[kind] += 1
    if complete[0] or complete[1]:
        for kind in (0, 1):
            if complete[kind]:
                consumed[kind] /= complete[kind]
                generated[kind] /= complete[kind]
        for kind in (0, 1):  # a day type never seen takes the other's profile
            if not complete[kind]:
                consumed[kind], generated[kind] = consumed[1 - kind], generated[1 - kind]
        return consumed, generated, "typical days"
    seconds = float(readings.duration_s.sum())
    if seconds <= 0:
        return None
    per_hour = 3600 / seconds
    consumed[:] = readings.consumed_kwh.sum() * per_hour
    generated[:] = readings.generated_kwh.sum() * per_hour
    return consumed, generated, "cycle mean"


def _future_readings(
    consumed: np.ndarray, generated: np.ndarray, plan: RatePlan, tz_name: str, from_s: int, to_s: int
) -> ReadingArrays:
    """Hourly readings from ``from_s`` to ``to_s`` following a typical-day profile."""
    if to_s <= from_s:
        return ReadingArrays.from_columns([], [], [], [])
    first_hour = -(-from_s // 3600) * 3600
    starts = np.concatenate([[from_s], np.arange(first_hour, to_s, 3600, dtype=np.int64)])
    starts = np.unique(starts)
    durations = np.diff(np.concatenate([starts, [to_s]]))
    local_s = starts + utc_offsets_s(starts, tz_name)
    day_number = local_s // 86400
    hour = (local_s - day_number * 86400) // 3600
    first_day = EPOCH_DATE + timedelta(days=int(day_number[0]))
    last_day = EPOCH_DATE + timedelta(days=int(day_number[-1]))
    holidays = plan.holidays.dates(range(first_day.year, last_day.year + 1))
    weekend = np.asarray(
        [_day_type(EPOCH_DATE + timedelta(days=int(d)), holidays) != 0 for d in range(int(day_number[0]), int(day_number[-1]) + 1)]
    )[day_number - day_number[0]].astype(np.int64)
    share = durations / 3600
    return ReadingArrays(starts, durations, consumed[weekend, hour] * share, generated[weekend, hour] * share)


def project_cycle(
    plan: RatePlan,
    readings: ReadingArrays,
    *,
    now: datetime,
    timezone: str,
    climate_zone: str | None = None,
    typical_days: int = TYPICAL_DAYS,
    price_signals: Sequence[PriceSignal] = (),
) -> Projection | None:
    """Project the current cycle's bill and the date of the next tier; None with no data."""
    tz = ZoneInfo(timezone)
    readings = spread_coarse(readings, timezone=timezone, plan=plan)  # typical days from shares, not first hours
    today = local_date(now, tz)
    cycle_start, cycle_end = plan.billing_cycle.cycle_of(today)
    start_s, end_s, now_s = _epoch_s(cycle_start, tz), _epoch_s(cycle_end, tz), int(now.timestamp())
    actual = readings.between(start_s, now_s)
    profile = _typical_profile(readings.between(0, now_s), plan, timezone, today, typical_days)
    if profile is None:
        return None
    consumed, generated, basis = profile
    if len(actual) and basis == "cycle mean":
        consumed, generated, basis = _typical_profile(actual, plan, timezone, today, 0) or profile
    future = _future_readings(consumed, generated, plan, timezone, now_s, end_s)
    priced = price_intervals(plan, actual + future, timezone=timezone, climate_zone=climate_zone, price_signals=price_signals)
    start, end = datetime.fromtimestamp(start_s, UTC), datetime.fromtimestamp(end_s, UTC)
    whole = summarize(priced, start, end, gaps_until=now)
    days = fixed_days(plan, start, end, tz)
    minimum = sum(plan.version_at(datetime.combine(d, time(), tz), tz).minimum_bill_per_day for d in days)
    next_tier, next_tier_date = None, None
    tiers = plan.number_of_tiers
    if tiers > 1:
        current = 1
        if len(actual):
            current = 1 + int(np.sum(priced.tier_bounds_kwh[int(priced.cycle_index[len(actual) - 1])] < priced.cycle_after_kwh[len(actual) - 1]))
        if current < tiers:
            next_tier = current + 1
            entered = np.nonzero(priced.tier_energy_kwh[current, len(actual) :] > ENTERED_KWH)[0]
            if len(entered):
                day = int(priced.day_number[len(actual) + int(entered[0])])
                next_tier_date = EPOCH_DATE + timedelta(days=day)
    demand = cycle_demand(plan, actual.start_s, actual.duration_s, actual.consumed_kwh, timezone=timezone,
                          cycle=(cycle_start, cycle_end), until_s=now_s)
    demand_cost = sum((d.charge for d in demand), 0.0)
    net = whole.total_cost + demand_cost
    return Projection(
        cycle_start=cycle_start,
        cycle_end=cycle_end,
        basis=basis,
        energy_kwh=whole.energy_kwh,
        generated_kwh=whole.generated_kwh,
        energy_cost=whole.energy_cost,
        generation_credit=whole.generation_credit,
        fixed_charges=whole.fixed_charges,
        minimum_bill=minimum,
        total_cost=max(net, minimum),
        next_tier=next_tier,
        next_tier_date=next_tier_date,
        demand_charges=demand_cost,
    )


# --- The customer's view: interval, today, cycle, projection -------------------------------------


@dataclass(frozen=True, slots=True)
class CycleReport:
    """Everything the display shows about cost at one moment."""

    plan: str
    label: str
    currency: str
    at: datetime
    cycle_start: date
    cycle_end: date  # exclusive
    cycle_end_at: datetime  # the cycle's end, aware UTC
    last_interval: CostBreakdown | None
    today: CostBreakdown
    cycle: CostBreakdown
    projection: Projection | None


def history_start(plan: RatePlan, now: datetime, timezone: str, typical_days: int = TYPICAL_DAYS) -> datetime:
    """How far back ``cost_report`` needs readings: the cycle start or the typical days."""
    tz = ZoneInfo(timezone)
    today = local_date(now, tz)
    first = min(plan.billing_cycle.cycle_of(today)[0], today - timedelta(days=max(typical_days, 31)))
    return datetime.fromtimestamp(_epoch_s(first, tz), UTC)


def cost_report(
    plan: RatePlan,
    readings: ReadingArrays,
    *,
    now: datetime,
    timezone: str,
    climate_zone: str | None = None,
    price_signals: Sequence[PriceSignal] = (),
    typical_days: int = TYPICAL_DAYS,
) -> CycleReport:
    """The last interval, today and the cycle to date as read, and the projected bill."""
    tz = ZoneInfo(timezone)
    today = local_date(now, tz)
    cycle_start, cycle_end = plan.billing_cycle.cycle_of(today)
    readings = spread_coarse(readings, timezone=timezone, plan=plan).between(0, int(now.timestamp()))
    priced = price_intervals(plan, readings, timezone=timezone, climate_zone=climate_zone, price_signals=price_signals)
    cycle_from = datetime.fromtimestamp(_epoch_s(cycle_start, tz), UTC)
    today_from = datetime.fromtimestamp(_epoch_s(today, tz), UTC)
    in_cycle = readings.between(int(cycle_from.timestamp()), int(now.timestamp()))
    last = None
    if len(in_cycle):
        whole_start, whole_duration = in_cycle.wholes()  # the last reading as read, not its last share
        last_start = datetime.fromtimestamp(int(whole_start[-1]), UTC)
        last_end = last_start + timedelta(seconds=int(whole_duration[-1]))
        last = summarize(priced, last_start, last_end, include_fixed=False)
    return CycleReport(
        plan=plan.name,
        label=plan.label,
        currency=plan.currency,
        at=now,
        cycle_start=cycle_start,
        cycle_end=cycle_end,
        cycle_end_at=datetime.fromtimestamp(_epoch_s(cycle_end, tz), UTC),
        last_interval=last,
        today=summarize(priced, today_from, now),
        cycle=summarize(priced, cycle_from, now, include_demand=True),
        projection=project_cycle(
            plan, readings, now=now, timezone=timezone, climate_zone=climate_zone,
            typical_days=typical_days, price_signals=price_signals,
        ),
    )


# --- Energy usage warnings (C6 3.2 step 5 b ii, made locally) -------------------------------------


def usage_warnings(
    previous: CycleReport | None,
    current: CycleReport,
    *,
    meter_id: str,
    threshold_cost: float | None,
    now: datetime,
) -> list[UtilityMessage]:
    """Local "energy usage warning" messages: a new tier entered, or the projection over the threshold.

    Ids are fixed per cycle and cause, so raising the same warning again replaces it. Each keeps
    its template and values (``ems.local_text``), so every reader gets it in their language.
    """
    same_cycle = previous is not None and previous.cycle_start == current.cycle_start
    tz_end = current.cycle_end_at
    cycle_key = (current.cycle_start.toordinal() % 0x10000) * 16
    messages = []
    tier = current.cycle.current_tier
    was = (previous.cycle.current_tier or 1) if same_cycle and previous is not None else 1
    if tier is not None and tier > was:
        messages.append(
            _warning(
                meter_id, LOCAL_MESSAGE_ID_BASE + cycle_key + min(tier, 14), now, tz_end,
                local_text.TIER_WARNING,
                {"tier": str(tier), "plan": current.label,
                 "used_kwh": f"{current.cycle.energy_kwh:.0f}", "since": current.cycle_start.isoformat()},
            )
        )
    projected = current.projection.total_cost if current.projection else None
    before = previous.projection.total_cost if same_cycle and previous and previous.projection else None
    if threshold_cost is not None and projected is not None and projected > threshold_cost:
        if previous is None or before is None or before <= threshold_cost:
            messages.append(
                _warning(
                    meter_id, LOCAL_MESSAGE_ID_BASE + cycle_key + 15, now, tz_end,
                    local_text.BILL_WARNING,
                    {"projected_cost": f"{projected:.2f}", "threshold_cost": f"{threshold_cost:.2f}",
                     "currency": current.currency},
                )
            )
    return messages


def _warning(meter_id: str, message_id: int, now: datetime, end: datetime, template: str,
             params: dict[str, str]) -> UtilityMessage:
    return local_text.local_message(
        meter_id, message_id, template, params,
        importance=MessageImportance.MEDIUM, start=now, end=end, received_at=now,
    )
