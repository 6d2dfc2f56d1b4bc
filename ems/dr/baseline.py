"""The customer's baseline: what a DR event's hours would have used without the event (C6 3.3 step 6).

Estimated from the customer's own history, in the manner of the "10 in 10" baselines utilities
settle demand response with:

- **Load** is the *net* load the meter sees, consumed - generated (kWh, negative while the home
  exports). A shed load, a battery discharging or solar all change what the meter reads, and the
  meter is what the event is measured at. (The peak time rebate of ``ems.costs`` is the utility's
  own rule and looks at consumption only.)
- **Similar days** are the ``days`` (10) most recent local dates before the event day of the same
  kind (a weekday; or a weekend day or holiday) that had no DR event and whose readings cover every
  second of the hours needed (the adjustment hours, the slots asked for), looked for up to
  ``lookback_days`` (45) back. With fewer than ``min_days`` (3) there is no baseline: ``kwh`` is
  None and ``reason`` says why. A number is never invented.
- **Same hours**: each slot of the event day is matched by its local wall-clock start on each
  similar day and keeps its own length in seconds, so DST change days need no special case: in the
  autumn the repeated hour takes the same wall-clock hour twice; on a spring day the skipped hour
  does not exist on the event day, and on a similar day it falls an hour later (zoneinfo's fold=0).
- **Gaps**: power is taken as even within each reading; a slot or similar day that a reading does
  not fully cover counts as not read (no interpolation over gaps).
- **Same-day adjustment** (multiplicative): the ratio of the event day's actual net energy to the
  unadjusted baseline over the 3 hours ending 1 hour before the event start, capped to
  [0.8, 1.2] (+-20 %). Not applied (factor 1) when those hours are not fully read on the event day
  or their baseline is not positive (a ratio of an exporting home's load means nothing).

Everything here is pure (numpy, no I/O) so callers can run it in a thread.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from ems.costs import ReadingArrays
from ems.local_text import N_
from ems.model import IntervalReading, Text

WEEKDAY = "weekday"
WEEKEND_OR_HOLIDAY = "weekend or holiday"
DEFAULT_DAYS = 10
DEFAULT_MIN_DAYS = 3
DEFAULT_LOOKBACK_DAYS = 45
COVERED_SLACK_S = 0.5  # float residue when comparing covered seconds with a span's length


@dataclass(frozen=True, slots=True)
class SameDayAdjustment:
    """How the baseline is scaled to the event day's own load before the event."""

    hours: float = 3.0  # length of the adjustment window
    gap_hours: float = 1.0  # the window ends this long before the event (pre-cooling is not counted)
    cap: float = 0.2  # the factor stays within [1 - cap, 1 + cap]

    def window_s(self, event_start_s: int) -> tuple[int, int]:
        end = event_start_s - round(self.gap_hours * 3600)
        return end - round(self.hours * 3600), end


DEFAULT_ADJUSTMENT = SameDayAdjustment()

# Why there is no baseline, as catalog msgids (a value named *_phrase is itself a msgid).
TOO_LITTLE_NONE = N_(
    "too little history: no similar {kind_phrase} days without a DR event and with complete readings "
    "in the {lookback_num} days before {event_date} (at least {needed_num} needed)"
)
TOO_LITTLE_ONE = N_(
    "too little history: only 1 similar {kind_phrase} day without a DR event and with complete readings "
    "in the {lookback_num} days before {event_date} (at least {needed_num} needed)"
)
TOO_LITTLE_SOME = N_(
    "too little history: only {found_num} similar {kind_phrase} days without a DR event and with complete "
    "readings in the {lookback_num} days before {event_date} (at least {needed_num} needed)"
)
DAY_KINDS = {WEEKDAY: N_("weekday"), WEEKEND_OR_HOLIDAY: N_("weekend or holiday")}


@dataclass(frozen=True, slots=True)
class Baseline:
    """The baseline net load of each slot (epoch seconds [start_s, end_s)), or why there is none."""

    start_s: np.ndarray  # int64
    end_s: np.ndarray  # int64
    kwh: np.ndarray | None  # adjusted net kWh per slot; None: too little history
    unadjusted_kwh: np.ndarray | None
    days: tuple[date, ...]  # the similar days used, most recent first
    day_kind: str  # WEEKDAY | WEEKEND_OR_HOLIDAY
    factor: float  # the same-day adjustment applied (1.0: none)
    adjustment: str  # what the adjustment did, in words
    reason: Text | None = None  # why there is no baseline (None when there is one)

    @property
    def sufficient(self) -> bool:
        return self.kwh is not None


# --- Net energy over any span ------------------------------------------------------------------


def as_arrays(history: ReadingArrays | Iterable[IntervalReading]) -> ReadingArrays:
    return history if isinstance(history, ReadingArrays) else ReadingArrays.from_readings(history)


def _without_overlaps(readings: ReadingArrays) -> ReadingArrays:
    """Drop a reading that starts before an earlier one ends (two durations stored for one time)."""
    if len(readings) < 2:
        return readings
    end = readings.start_s + readings.duration_s
    if not np.any(readings.start_s[1:] < np.maximum.accumulate(end)[:-1]):
        return readings
    keep = np.zeros(len(readings), dtype=bool)
    covered_to = np.iinfo(np.int64).min
    for i, (s, e) in enumerate(zip(readings.start_s.tolist(), end.tolist(), strict=True)):
        if s >= covered_to:
            keep[i] = True
            covered_to = e
    return ReadingArrays(
        readings.start_s[keep], readings.duration_s[keep], readings.consumed_kwh[keep], readings.generated_kwh[keep]
    )


@dataclass(frozen=True, slots=True)
class NetEnergy:
    """Cumulative net energy and covered seconds as curves over time (even power within a reading)."""

    t_s: np.ndarray  # breakpoints: each reading's start and end
    net_kwh: np.ndarray
    covered_s: np.ndarray

    @classmethod
    def of(cls, history: ReadingArrays | Iterable[IntervalReading]) -> NetEnergy:
        readings = _without_overlaps(as_arrays(history))
        if len(readings) == 0:
            zero = np.zeros(1)
            return cls(zero, zero, zero)
        start = readings.start_s.astype(np.float64)
        duration = readings.duration_s.astype(np.float64)
        net = readings.consumed_kwh - readings.generated_kwh
        after = np.cumsum(net)
        covered_after = np.cumsum(duration)
        t = np.column_stack([start, start + duration]).ravel()
        net_kwh = np.column_stack([after - net, after]).ravel()
        covered = np.column_stack([covered_after - duration, covered_after]).ravel()
        return cls(t, net_kwh, covered)

    def energy_kwh(self, a_s: np.ndarray, b_s: np.ndarray) -> np.ndarray:
        """Net kWh read in each span [a, b)."""
        kwh: np.ndarray = np.interp(b_s, self.t_s, self.net_kwh) - np.interp(a_s, self.t_s, self.net_kwh)
        return kwh

    def covered(self, a_s: np.ndarray, b_s: np.ndarray) -> np.ndarray:
        """Seconds of each span [a, b) that a reading covers."""
        seconds: np.ndarray = np.interp(b_s, self.t_s, self.covered_s) - np.interp(a_s, self.t_s, self.covered_s)
        return seconds

    def measured_kwh(self, a_s: np.ndarray, b_s: np.ndarray) -> np.ndarray:
        """Net kWh of each span, NaN where readings do not cover all of it."""
        a = np.asarray(a_s, dtype=np.float64)
        b = np.asarray(b_s, dtype=np.float64)
        full = self.covered(a, b) >= (b - a) - COVERED_SLACK_S
        return np.where(full, self.energy_kwh(a, b), np.nan)


# --- Slots and days -----------------------------------------------------------------------------


def slot_bounds(start_s: int, end_s: int, interval_s: int, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """[start, end) cut on a grid of ``interval_s`` aligned to the local wall clock at ``start``."""
    if end_s <= start_s:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    offset = datetime.fromtimestamp(start_s, ZoneInfo(timezone)).utcoffset()
    offset_s = int(offset.total_seconds()) if offset is not None else 0
    first = (start_s + offset_s) // interval_s * interval_s - offset_s
    grid = np.arange(first, end_s, interval_s, dtype=np.int64)
    a = np.maximum(grid, start_s)
    b = np.minimum(grid + interval_s, end_s)
    keep = b > a
    return a[keep], b[keep]


def day_kind(day: date, holidays: Collection[date]) -> str:
    return WEEKDAY if day.weekday() < 5 and day not in holidays else WEEKEND_OR_HOLIDAY


class _WallClock:
    """Slot starts as (days after the event day, local wall-clock time), to be placed on another day."""

    def __init__(self, starts_s: np.ndarray, event_day: date, tz: ZoneInfo) -> None:
        self.tz = tz
        self.places: list[tuple[int, datetime]] = []
        for t in starts_s.tolist():
            local = datetime.fromtimestamp(t, tz)
            self.places.append(((local.date() - event_day).days, local.replace(tzinfo=None, fold=0)))

    def on(self, day_shift: int) -> np.ndarray:
        """The epoch seconds of the same wall-clock starts ``day_shift`` days later (fold=0)."""
        delta = timedelta(days=day_shift)
        return np.asarray(
            [int((wall + delta).replace(tzinfo=self.tz).timestamp()) for _, wall in self.places], dtype=np.int64
        )


def estimate_baseline(
    history: ReadingArrays | Iterable[IntervalReading] | NetEnergy,
    start_s: np.ndarray,
    end_s: np.ndarray,
    *,
    event_start: datetime,
    timezone: str,
    event_days: Collection[date],
    holidays: Collection[date] = frozenset(),
    days: int = DEFAULT_DAYS,
    min_days: int = DEFAULT_MIN_DAYS,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    adjustment: SameDayAdjustment | None = DEFAULT_ADJUSTMENT,
) -> Baseline:
    """The baseline net kWh of each slot [start_s, end_s) of the event day (and the hours after it).

    ``event_start`` (aware) fixes the event day and the adjustment window; ``event_days`` are the
    local dates that had a DR event (never similar days); ``holidays`` count as weekend days.
    ``adjustment`` None: no same-day adjustment.
    """
    tz = ZoneInfo(timezone)
    curve = history if isinstance(history, NetEnergy) else NetEnergy.of(history)
    a = np.asarray(start_s, dtype=np.int64)
    b = np.asarray(end_s, dtype=np.int64)
    length = (b - a).astype(np.float64)
    event_start_s = int(event_start.timestamp())
    event_day = datetime.fromtimestamp(event_start_s, tz).date()
    kind = day_kind(event_day, holidays)
    adjust = adjustment.window_s(event_start_s) if adjustment is not None else None
    starts = np.concatenate([a, [adjust[0]]]) if adjust else a
    lengths = np.concatenate([length, [adjust[1] - adjust[0]]]) if adjust else length
    wall = _WallClock(starts, event_day, tz)

    chosen: list[date] = []
    energies: list[np.ndarray] = []
    for back in range(1, lookback_days + 1):
        if len(chosen) == days:
            break
        day = event_day - timedelta(days=back)
        if day in event_days or day_kind(day, holidays) != kind:
            continue
        on_day = wall.on(-back).astype(np.float64)
        if np.any(curve.covered(on_day, on_day + lengths) < lengths - COVERED_SLACK_S):
            continue  # not every second of the hours needed was read that day
        chosen.append(day)
        energies.append(curve.energy_kwh(on_day, on_day + lengths))

    if len(chosen) < min_days:
        template = TOO_LITTLE_NONE if not chosen else TOO_LITTLE_ONE if len(chosen) == 1 else TOO_LITTLE_SOME
        reason = Text.of(template, event_date=event_day, found_num=len(chosen), kind_phrase=DAY_KINDS.get(kind, kind),
                         lookback_num=lookback_days, needed_num=min_days)
        return Baseline(a, b, None, None, tuple(chosen), kind, 1.0, "not applied: no baseline", reason)

    mean = np.mean(np.vstack(energies), axis=0)
    unadjusted = mean[: len(a)]
    factor, said = 1.0, "not applied (none asked)"
    if adjustment is not None and adjust is not None:
        factor, said = _adjustment(curve, adjust, float(mean[-1]), adjustment)
    return Baseline(a, b, unadjusted * factor, unadjusted, tuple(chosen), kind, factor, said)


def _adjustment(
    curve: NetEnergy, window: tuple[int, int], baseline_kwh: float, adjustment: SameDayAdjustment
) -> tuple[float, str]:
    """The capped factor, and what happened in words."""
    actual = curve.measured_kwh(np.asarray([window[0]]), np.asarray([window[1]]))[0]
    when = f"{adjustment.hours:g} h ending {adjustment.gap_hours:g} h before the start"
    if np.isnan(actual):
        return 1.0, f"not applied: the {when} are not fully read"
    if baseline_kwh <= 0:
        return 1.0, f"not applied: the baseline of the {when} is not positive"
    ratio = float(actual) / baseline_kwh
    low, high = 1.0 - adjustment.cap, 1.0 + adjustment.cap
    if ratio < low or ratio > high:
        capped = min(max(ratio, low), high)
        return capped, f"capped at {capped - 1:+.0%} (actual/baseline over the {when} was {ratio:.2f})"
    return ratio, f"applied: actual/baseline over the {when} = {ratio:.3f}"


def utc(t_s: int | float | np.integer | np.floating) -> datetime:
    """Epoch seconds as an aware UTC datetime."""
    return datetime.fromtimestamp(int(t_s), UTC)
