"""Demand charges: a price per kW on the highest average demand over a window in a billing cycle.

A rate sheet's demand is the energy used over one demand window (15 or 30 minutes, as the sheet
says) divided by the window's hours; the bill charges the highest such demand of the cycle, for
each charge in the windows it covers (any time, or on-peak hours, or one season). Windows are
aligned to the clock (on the quarter or half hour, local time). Intervals finer than the window
are summed into it; an interval that spans window boundaries (hourly readings, a 15-minute
window) is spread over the windows it spans in proportion to their overlap, and the peak is then
marked as estimated: the meter's own peak inside that hour may have been higher.

A cycle's demand charges are those of the version in effect on the cycle's first day, as a
per-cycle allowance is. Pure functions over numpy columns, like ``ems.costs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from ems.tariff import MINUTES_PER_DAY, DemandCharge, RatePlan, RateVersion


@dataclass(frozen=True, slots=True)
class DemandPeak:
    """One demand charge over a window of a cycle: the highest demand, when, and what it adds."""

    label: str
    price_per_kw: float
    window_minutes: int
    peak_kw: float  # 0.0 when no window it covers was read
    at: datetime | None  # the start of the peak window, aware UTC (None: none read)
    charge: float  # peak_kw x price_per_kw
    estimated: bool  # the peak window holds a reading longer than the window (spread over it)


@dataclass(frozen=True, slots=True)
class WindowDemand:
    """Every demand window read: its start (epoch s), average kW, and whether it was spread from a longer reading."""

    start_s: np.ndarray  # int64, sorted
    demand_kw: np.ndarray  # float64
    spread: np.ndarray  # bool


def window_demand(start_s: np.ndarray, duration_s: np.ndarray, consumed_kwh: np.ndarray, window_s: int,
                  align_s: int = 0, whole_duration_s: np.ndarray | None = None) -> WindowDemand:
    """The average demand of every window that readings fall in.

    Windows start at ``align_s`` modulo ``window_s`` (the site's UTC offset: local clock windows).
    ``whole_duration_s``: when rows are shares of longer readings (a day's reading spread in
    quarter hours), the length of the reading each comes from; a window holding a share of one
    longer than the window is marked spread.
    """
    start = np.asarray(start_s, dtype=np.int64) + align_s
    duration = np.maximum(np.asarray(duration_s, dtype=np.int64), 0)
    energy = np.asarray(consumed_kwh, dtype=np.float64)
    if len(start) == 0:
        return WindowDemand(np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0, dtype=bool))
    first = start // window_s
    last = np.maximum(start + duration - 1, start) // window_s
    inside = first == last
    ids = [first[inside]]
    kwh = [energy[inside]]
    spread_ids = [np.zeros(0, dtype=np.int64)]
    if whole_duration_s is not None:
        spread_ids.append(first[inside & (np.asarray(whole_duration_s, dtype=np.int64) > window_s)])
    crossing = np.nonzero(~inside)[0]
    if len(crossing):
        counts = (last - first + 1)[crossing]
        owner = np.repeat(crossing, counts)
        offset = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
        wid = first[owner] + offset
        lo = np.maximum(start[owner], wid * window_s)
        hi = np.minimum(start[owner] + duration[owner], (wid + 1) * window_s)
        ids.append(wid)
        kwh.append(energy[owner] * (hi - lo) / duration[owner])
        longest = duration if whole_duration_s is None else np.maximum(duration, whole_duration_s)
        spread_ids.append(wid[longest[owner] > window_s])
    all_ids = np.concatenate(ids)
    unique, where = np.unique(all_ids, return_inverse=True)
    total = np.bincount(where, weights=np.concatenate(kwh), minlength=len(unique))
    spread = np.isin(unique, np.concatenate(spread_ids))
    return WindowDemand(unique * window_s - align_s, total / (window_s / 3600), spread)


def _covered_minutes(charge: DemandCharge, version: RateVersion, day: date, day_type: str) -> np.ndarray | None:
    """The local minutes of a day whose windows the charge covers (None: none of them)."""
    if charge.months and day.month not in charge.months:
        return None
    season = version.season_of(day)
    if charge.seasons and season not in charge.seasons:
        return None
    mask = np.ones(MINUTES_PER_DAY, dtype=bool)
    if charge.hours is not None:
        mask[:] = False
        for start, end in charge.hours[day_type]:
            mask[start:end] = True
    if charge.periods:
        in_periods = np.zeros(MINUTES_PER_DAY, dtype=bool)
        tou = version.time_of_use.get(season)
        for p in tou.periods(day_type) if tou is not None else ():
            if p.name in charge.periods:
                if p.start_min < p.end_min:
                    in_periods[p.start_min:p.end_min] = True
                else:
                    in_periods[p.start_min:] = True
                    in_periods[: p.end_min] = True
        mask &= in_periods
    return mask if mask.any() else None


def cycle_demand(
    plan: RatePlan,
    start_s: np.ndarray,
    duration_s: np.ndarray,
    consumed_kwh: np.ndarray,
    *,
    timezone: str,
    cycle: tuple[date, date],
    until_s: int | None = None,
    whole_duration_s: np.ndarray | None = None,
) -> tuple[DemandPeak, ...]:
    """The demand charges of one billing cycle from its readings (those starting in the cycle).

    ``until_s``: only windows starting before it count (the cycle so far). ``whole_duration_s``:
    as for ``window_demand``. Empty when the cycle's version has no demand charges.
    """
    from ems.costs import utc_offsets_s  # numpy engine; no import cycle at load

    tz = ZoneInfo(timezone)
    cycle_from = datetime.combine(cycle[0], time(), tz)
    version = plan.version_at(cycle_from.astimezone(UTC), tz)
    if version.demand is None:
        return ()
    window_s = version.demand.window_minutes * 60
    lo_s = int(cycle_from.timestamp())
    hi_s = int(datetime.combine(cycle[1], time(), tz).timestamp())
    if until_s is not None:
        hi_s = min(hi_s, until_s)
    start = np.asarray(start_s, dtype=np.int64)
    keep = (start >= lo_s) & (start < hi_s)
    start = start[keep]
    align = 0
    if len(start):
        align = int(utc_offsets_s(start[:1], timezone)[0]) % window_s
    whole = None if whole_duration_s is None else np.asarray(whole_duration_s)[keep]
    windows = window_demand(start, np.asarray(duration_s)[keep], np.asarray(consumed_kwh)[keep], window_s, align,
                            whole)
    inside = (windows.start_s >= lo_s) & (windows.start_s < hi_s)  # a last reading spilling past the cycle
    w_start, w_kw, w_spread = windows.start_s[inside], windows.demand_kw[inside], windows.spread[inside]
    local = w_start + utc_offsets_s(w_start, timezone) if len(w_start) else w_start
    day_number = local // 86400
    minute = (local - day_number * 86400) // 60
    holidays = plan.holidays.dates(range(cycle[0].year, cycle[1].year + 1))
    result = []
    for charge in version.demand.charges:
        covered = np.zeros(len(w_start), dtype=bool)
        for d in np.unique(day_number):
            day = date(1970, 1, 1) + timedelta(days=int(d))
            day_type = "holiday" if day in holidays else "weekend" if day.weekday() >= 5 else "weekday"
            mask = _covered_minutes(charge, version, day, day_type)
            if mask is not None:
                mine = day_number == d
                covered[mine] = mask[minute[mine]]
        peak_kw, at, estimated = 0.0, None, False
        if covered.any():
            candidates = np.nonzero(covered)[0]
            best = int(candidates[np.argmax(w_kw[candidates])])  # the first window of the highest demand
            peak_kw = float(w_kw[best])
            at = datetime.fromtimestamp(int(w_start[best]), UTC)
            estimated = bool(w_spread[best])
        result.append(DemandPeak(charge.label, charge.price_per_kw, version.demand.window_minutes, peak_kw, at,
                                 peak_kw * charge.price_per_kw, estimated))
    return tuple(result)


def level_now(plan: RatePlan, peaks: tuple[DemandPeak, ...], now: datetime, timezone: str) -> float | None:
    """The demand above which the bill's demand charges rise now: the lowest peak read so far among
    the charges that cover this moment (None: no charge covers it, or none has a peak yet)."""
    tz = ZoneInfo(timezone)
    version = plan.version_at(now, tz)
    if version.demand is None or len(peaks) != len(version.demand.charges):
        return None
    wall = now.astimezone(tz)
    day = wall.date()
    holidays = plan.holidays.dates(range(day.year, day.year + 1))
    day_type = "holiday" if day in holidays else "weekend" if day.weekday() >= 5 else "weekday"
    levels = []
    for charge, peak in zip(version.demand.charges, peaks, strict=True):
        mask = _covered_minutes(charge, version, day, day_type)
        if mask is not None and mask[wall.hour * 60 + wall.minute] and peak.at is not None:
            levels.append(peak.peak_kw)
    return min(levels) if levels else None


def demand_window_minutes(plan: RatePlan, at: datetime, timezone: str) -> int | None:
    """The demand window of the version in effect at ``at`` (None: it has no demand charges)."""
    version = plan.version_at(at, ZoneInfo(timezone))
    return version.demand.window_minutes if version.demand is not None else None
