"""The one cost pipeline: what a meter's energy cost, read from the store and priced once.

Every caller of cost comes here: ``GET /api/v1/cost`` and ``/api/v1/usage`` (the web), the
projected-bill warning (``ems.bill_watch``) and the what-if (``GET /api/v1/cost/whatif``). Each
step is written once: which intervals (from the cycle's start, or far enough back for the typical
days the projection needs), which prices (the rate sheet's, and the meter's own when
``tariff.use_meter_prices`` is set), then the numpy engine (``ems.costs``, ``ems.whatif``) in an
executor, so the event loop never blocks. Intervals are read as numpy columns, in small steps
(``Store.interval_columns``); the cost so far keeps its ~45 days between calls (``IntervalWindow``)
and reads only what the store gained; the usage chart and the what-if read their window 30 days
at a time and price it one billing cycle at a time, so a year of 1-minute intervals is never in
memory at once. Two callers asking at the same instant get the same
figures: the warning cannot project another bill than the dashboard shows.

Results are the engine's frozen dataclasses (``CycleReport``, ``CostBreakdown``, ``Projection``,
``PlanComparison``) with the meter and the instant they are for; the web turns them into JSON.
``ems.costs`` and ``ems.whatif`` (numpy) are imported on first use, not when this module is:
an appliance without a rate plan never loads them.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import math
import sys
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, ClassVar, TypeVar
from zoneinfo import ZoneInfo

from ems.errors import NotFound, RejectedCommand
from ems.model import IntervalReading, PriceSignal

if TYPE_CHECKING:
    import numpy as np

    from ems.config import TariffConfig
    from ems.costs import CostBreakdown, CycleReport, PricedIntervals, Projection, ReadingArrays
    from ems.hub import Hub
    from ems.store import Store
    from ems.tariff import RatePlan
    from ems.whatif import PlanComparison

T = TypeVar("T")

PERIODS = ("interval", "today", "cycle")
NO_PLAN = "no rate plan configured: set tariff.plan in ems.yaml"
NO_RATES = "no rates file: see tariff.rates_file in ems.yaml"


# --- What is asked about: the plan and the meter ------------------------------------------------


def active_plan(hub: Hub) -> tuple[RatePlan, TariffConfig]:
    """The active rate plan and the tariff section; NotFound when no plan is configured."""
    tariff = hub.config.tariff
    plan = tariff.active_plan if tariff is not None else None
    if tariff is None or plan is None:
        raise NotFound(NO_PLAN)
    return plan, tariff


async def meter_ids(hub: Hub) -> list[str]:
    """Every meter there is cost to tell of: reporting now, or with readings stored."""
    return sorted(set(hub.state.meters) | set(await hub.store.meter_ids()))


async def choose_meter(hub: Hub, wanted: str | None) -> str:
    """The meter asked for, or the first one known; NotFound when there is none such."""
    known = await meter_ids(hub)
    if wanted:
        if wanted not in known:
            raise NotFound(f"no meter {wanted!r}")
        return wanted
    if not known:
        raise NotFound("no meter has reported yet")
    return known[0]


async def latest_interval(hub: Hub, meter_id: str, now: datetime) -> IntervalReading | None:
    """The meter's latest interval: the live one, else the latest stored in the day before ``now``."""
    meter = hub.state.meters.get(meter_id)
    if meter is not None and meter.last_interval is not None:
        return meter.last_interval
    return await hub.store.latest_interval(meter_id, now - timedelta(days=1), now)


# --- The shared steps: read, then price in an executor -------------------------------------------


async def _meter_prices(hub: Hub, tariff: TariffConfig, meter_id: str, since: datetime) -> list[PriceSignal]:
    """The prices the meter published since ``since``, when the configuration says to use them."""
    return await hub.store.prices(meter_id, since) if tariff.use_meter_prices else []


async def _in_executor(work: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, work)


async def _load_engine() -> None:
    """Import the numpy engine (numpy, ``ems.costs``, ``ems.whatif``) in an executor, once.

    Imported on the event loop, they held it for 200-400 ms at the first bill check after a start.
    """
    if "ems.whatif" not in sys.modules:
        await _in_executor(functools.partial(importlib.import_module, "ems.whatif"))


# --- The cost so far and the projected bill -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeterCost:
    """What one meter's energy cost at one instant: the last interval, today, the cycle, the projection."""

    meter_id: str
    at: datetime
    report: CycleReport
    warning_threshold_cost: float | None
    meter_prices_used: int  # how many prices the meter published went into the figures

    def breakdown(self, period: str) -> CostBreakdown | None:
        """The cost of one of ``PERIODS`` (None: no interval read yet for "interval")."""
        if period not in PERIODS:
            raise RejectedCommand(f"period must be one of {', '.join(PERIODS)}, not {period!r}")
        report = self.report
        return {"interval": report.last_interval, "today": report.today, "cycle": report.cycle}[period]

    @property
    def projection(self) -> Projection | None:
        return self.report.projection


async def meter_cost(hub: Hub, meter_id: str, *, now: datetime | None = None) -> MeterCost:
    """Cost the meter's intervals as read up to ``now`` (default: the hub's clock), and project the bill.

    The intervals come from the store's ``IntervalWindow`` (what the last costing read, and what
    the store gained since), so the bill check on every new interval and the dashboard's requests
    read a few rows, not 45 days of them. NotFound when no rate plan is configured.
    """
    await _load_engine()
    from ems.costs import cost_report, history_start  # numpy: on first use

    plan, tariff = active_plan(hub)
    at = hub.clock() if now is None else now
    if now is None and (meter := hub.state.meters.get(meter_id)) is not None and meter.last_interval is not None:
        # The meter's time went back past intervals it had already reported (the hub's clock follows
        # it): what was read is still costed, as of the end of the latest one, not dropped for a while.
        read_to = meter.last_interval.start + timedelta(seconds=meter.last_interval.duration_s)
        at = max(at, read_to)
    timezone = hub.config.site.timezone
    since = history_start(plan, at, timezone)
    readings = await IntervalWindow.of(hub.store).read(meter_id, since, at)
    signals = await _meter_prices(hub, tariff, meter_id, since)

    def work() -> CycleReport:
        return cost_report(plan, readings, now=at, timezone=timezone,
                           climate_zone=tariff.climate_zone, price_signals=signals)

    report = await _in_executor(work)
    return MeterCost(meter_id, at, report, tariff.warning_threshold_cost, len(signals))


class IntervalWindow:
    """A meter's recent intervals as columns, kept between costings and read again only where needed.

    The bill check costs the same ~45 days every time a new interval arrives: reading them all
    again (45,600 rows a minute with a 1-minute profile) cost half a second of CPU and stalled the
    loop for as long. One window per store (``of``) serves every caller of ``meter_cost``. The store only ever inserts intervals (a stored one is never rewritten) or deletes old
    ones, so the database's count of rows in the part already held says whether that part is
    still exact; then only the intervals after it are read. A count that differs (a late page of
    history, a purge) reads the whole window again. The figures are those of a full read, always.
    """

    _of_store: ClassVar[weakref.WeakKeyDictionary[Store, IntervalWindow]] = weakref.WeakKeyDictionary()

    def __init__(self, store: Store) -> None:
        self._store = store
        self._held: dict[str, tuple[datetime, datetime, ReadingArrays]] = {}
        self.full_reads = 0  # how many reads had to take the whole window (for the tests)

    async def read(self, meter_id: str, start: datetime, end: datetime) -> ReadingArrays:
        """The meter's intervals that start in [start, end), as ``Store.interval_columns`` returns them.

        What is held is exact up to just after the latest interval held (not up to ``end``: the
        next interval the meter sends starts before the instant of this costing).
        """
        held = self._held.get(meter_id)
        arrays = None
        if held is not None and held[0] <= start <= held[1]:
            held_start, held_to, held_arrays = held
            checked_to = min(end, held_to)
            kept = held_arrays.between(_ceil_s(start), _ceil_s(checked_to))
            if await self._store.interval_count(meter_id, start, checked_to) == len(kept):
                arrays = kept
                if end > held_to:
                    arrays = kept + await self._store.interval_columns(meter_id, held_to, end)
        if arrays is None:
            self.full_reads += 1
            arrays = await self._store.interval_columns(meter_id, start, end)
        held_to = datetime.fromtimestamp(int(arrays.start_s[-1]) + 1, UTC) if len(arrays) else start
        self._held[meter_id] = (start, min(held_to, end), arrays)
        return arrays

    @classmethod
    def of(cls, store: Store) -> IntervalWindow:
        """The window kept for a store (made on first use, gone with the store)."""
        window = cls._of_store.get(store)
        if window is None:
            window = cls._of_store[store] = cls(store)
        return window


def _ceil_s(at: datetime) -> int:
    """Epoch seconds rounded up: an interval starting at whole second s starts before ``at`` iff s < this."""
    return math.ceil(at.timestamp())


# --- Interval prices for the usage chart -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PricedUsage:
    """The meter's intervals in a window, each with what its energy cost per kWh."""

    readings: ReadingArrays  # intervals starting in [start, end); a daily or monthly one as shares over its span
    price_per_kwh: np.ndarray | None  # one per interval; None without a rate plan
    plan: RatePlan | None


# The usage chart's window (up to a year) is read this much at a time and priced cycle by cycle:
# memory holds what is shown, not every array of the engine over the whole window.
USAGE_READ = timedelta(days=30)


async def priced_usage(hub: Hub, meter_id: str, start: datetime, end: datetime) -> PricedUsage:
    """Intervals starting in [start, end) and the price each was charged at (with the meter's prices
    when they are in use). Tiers count from the billing cycle's start, so pricing reads from there."""
    await _load_engine()
    from ems.costs import CyclePricer  # numpy: on first use

    tariff = hub.config.tariff
    plan = tariff.active_plan if tariff is not None else None
    since = start
    pricer = None
    if tariff is not None and plan is not None:
        tz = ZoneInfo(hub.config.site.timezone)
        cycle_start, _ = plan.billing_cycle.cycle_of(start.astimezone(tz).date())
        since = min(start, datetime.combine(cycle_start, datetime.min.time(), tz).astimezone(UTC))
        signals = await _meter_prices(hub, tariff, meter_id, since)
        pricer = CyclePricer(plan, timezone=hub.config.site.timezone, climate_zone=tariff.climate_zone,
                             price_signals=signals)
    shown_s = (int(start.timestamp()), int(end.timestamp()))
    pieces: list[tuple[ReadingArrays, np.ndarray | None]] = []
    read = 0
    read_from = since
    while read_from < end:
        read_to = min(end, read_from + USAGE_READ)
        chunk = await hub.store.interval_columns(meter_id, read_from, read_to)
        read += len(chunk)
        if pricer is None:
            pieces.append((await _in_executor(functools.partial(_shown_shares, chunk, hub.config.site.timezone,
                                                                 shown_s)), None))
        elif len(chunk):
            pieces += await _in_executor(functools.partial(_usage_prices, pricer.feed, chunk, shown_s))
        read_from = read_to
    if pricer is not None and read:
        pieces += await _in_executor(functools.partial(_usage_prices, pricer.finish, None, shown_s))
    return await _in_executor(functools.partial(_join_usage, pieces, pricer is not None and read > 0, plan))


def _shown_shares(chunk: ReadingArrays, timezone: str, shown_s: tuple[int, int]) -> ReadingArrays:
    """Without a plan: the shown part of the readings, a daily or monthly one as shares over its span."""
    from ems.costs import spread_coarse

    return spread_coarse(chunk, timezone=timezone).between(*shown_s)


def _usage_prices(
    price: Callable[..., list[PricedIntervals]], chunk: ReadingArrays | None, shown_s: tuple[int, int]
) -> list[tuple[ReadingArrays, np.ndarray]]:
    """The shown part of each cycle that ``price(chunk)`` (or ``price()``) completes, with what its
    energy cost per kWh."""
    import numpy as np

    pieces = []
    for priced in price() if chunk is None else price(chunk):
        i0, i1 = (int(i) for i in np.searchsorted(priced.readings.start_s, shown_s))
        if i1 > i0:
            consumed = priced.readings.consumed_kwh[i0:i1]
            with np.errstate(divide="ignore", invalid="ignore"):
                # What the energy cost per kWh (tiers included); the unit price where nothing was used.
                per_kwh = np.where(consumed > 1e-9, priced.energy_cost[i0:i1] / consumed,
                                   priced.unit_price_per_kwh[i0:i1])
            pieces.append((priced.readings.rows(i0, i1), per_kwh))
    return pieces


def _join_usage(
    pieces: list[tuple[ReadingArrays, np.ndarray | None]], priced: bool, plan: RatePlan | None
) -> PricedUsage:
    """The pieces as one PricedUsage (prices only when there was a plan and something to price)."""
    import numpy as np

    from ems.costs import ReadingArrays

    shown = ReadingArrays.concatenate([r for r, _ in pieces]) if pieces else ReadingArrays.from_columns([], [], [], [])
    prices = [p for _, p in pieces if p is not None]
    return PricedUsage(shown, (np.concatenate(prices) if prices else np.zeros(0)) if priced else None, plan)


# --- What-if: the last 12 months under every plan -------------------------------------------------


# A year is read from the store this much at a time and priced as it comes (each plan keeps only
# the billing cycle it is reading): a year of 1-minute intervals never sits in memory at once.
COMPARISON_READ = timedelta(days=30)


async def plan_comparison(hub: Hub, meter_id: str, *, now: datetime | None = None) -> PlanComparison:
    """The meter's last 12 local months (to today's midnight) billed under every plan of the rates file.

    NotFound when there is no rates file. Every plan is billed at its own rate sheet's prices.
    """
    await _load_engine()
    from ems.whatif import PlanComparer, last_year  # numpy: on first use

    tariff = hub.config.tariff
    if tariff is None or tariff.rates is None:
        raise NotFound(NO_RATES)
    timezone = hub.config.site.timezone
    start, end = last_year(hub.clock() if now is None else now, timezone)
    comparer = PlanComparer(tariff.rates, start=start, end=end, timezone=timezone,
                            climate_zone=tariff.climate_zone, active_plan=tariff.plan)
    read_from = start
    while read_from < end:
        read_to = min(end, read_from + COMPARISON_READ)
        chunk = await hub.store.interval_columns(meter_id, read_from, read_to)
        await _in_executor(functools.partial(comparer.feed, chunk))
        read_from = read_to
    return await _in_executor(comparer.comparison)
