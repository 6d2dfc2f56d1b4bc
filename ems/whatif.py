"""What-if: the bill the customer's own last 12 months would have cost under each plan.

Pure functions over readings (run them in an executor). Each plan is billed cycle by cycle on
its own billing schedule, with its fixed charges and minimum bill, from the readings as read. A
cycle cut by the window (the 12 months begin and end inside one) gets its allowances prorated by
the days billed. Each cycle's bill is rounded to the cent line by line, as a utility's bill is,
and the year is the sum of those bills.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from ems.costs import (
    DEFAULT_INTERVAL_S,
    CostBreakdown,
    CyclePricer,
    PricedIntervals,
    ReadingArrays,
    _epoch_s,
    fixed_days,
    local_date,
    price_intervals,
    spread_coarse,
    summarize,
)
from ems.tariff import RatePlan, RatesFile


def cents(value: float) -> float:
    """Money rounded to the cent, never -0.0 (a credit of nothing is 0.00)."""
    return round(value, 2) + 0.0


@dataclass(frozen=True, slots=True)
class CycleBill:
    """One billing cycle's bill (or the part of it the window holds), each line to the cent."""

    start: date  # local, the first day billed
    end: date  # local, exclusive
    days: int  # days billed
    energy_kwh: float
    generated_kwh: float
    energy_cost: float
    generation_credit: float
    peak_time_rebate: float
    fixed_charges: float
    minimum_bill_topup: float
    total_cost: float  # energy - generation credit - rebate + fixed + demand charges + minimum top-up
    estimated_kwh: float  # of daily or monthly readings, priced as flat shares over their span
    demand_charges: float = 0.0  # on the cycle's highest demand (in total_cost)


@dataclass(frozen=True, slots=True)
class PlanBill:
    """What the readings cost under one plan, summed over its billing cycles."""

    plan: str
    label: str
    currency: str
    cycles: int
    energy_kwh: float
    generated_kwh: float
    energy_cost: float
    generation_credit: float
    peak_time_rebate: float
    fixed_charges: float
    minimum_bill_topup: float  # added where a cycle came to less than its minimum bill
    total_cost: float  # the sum of the cycles' bills, each rounded to the cent
    demand_charges: float = 0.0  # each cycle's demand charges (in total_cost)
    cycle_bills: tuple[CycleBill, ...] = ()  # in time order
    estimated_kwh: float = 0.0  # of daily or monthly readings, priced as flat shares over their span


@dataclass(frozen=True, slots=True)
class UnpricedPlan:
    """A plan that could not be priced, and why (for example a missing climate zone)."""

    plan: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlanComparison:
    """Every plan's bill over the same readings, cheapest first."""

    start: datetime
    end: datetime
    bills: tuple[PlanBill, ...]
    unpriced: tuple[UnpricedPlan, ...]
    active_plan: str | None
    cheapest: str | None
    savings_vs_active: float | None  # what moving from the active plan to the cheapest saves
    savings_vs_next: float | None  # how much cheaper the cheapest is than the runner-up
    intervals_read: int
    missing_intervals: int


def last_year(now: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The what-if's window, aware UTC: the 12 local months up to today's midnight."""
    tz = ZoneInfo(timezone)
    today = local_date(now, tz)
    first = today - timedelta(days=365) if (today.month, today.day) == (2, 29) else today.replace(year=today.year - 1)
    return (datetime.combine(first, time(), tz).astimezone(UTC), datetime.combine(today, time(), tz).astimezone(UTC))


class PlanBiller:
    """One plan's bill for [start, end), from readings fed in time order (chunks of any size).

    Each billing cycle is priced as its readings complete it (``ems.costs.CyclePricer``), so a
    year of 1-minute intervals never sits in memory at once; the bill is the same, to the bit, as
    pricing the whole window at once. A cycle without readings still counts (its fixed charges
    and minimum bill). The cycles cut by [start, end) are billed on the days it holds of them, their
    allowances prorated to those days.
    """

    def __init__(self, plan: RatePlan, *, start: datetime, end: datetime, timezone: str,
                 climate_zone: str | None = None) -> None:
        self.plan = plan
        self._tz = ZoneInfo(timezone)
        end_local = end.astimezone(self._tz)
        self._billed = (start.astimezone(self._tz).date(),
                        end_local.date() + timedelta(days=0 if end_local.time() == time() else 1))
        self._start_s, self._end_s = int(start.timestamp()), int(end.timestamp())
        self._windows: dict[tuple[date, date], tuple[datetime, datetime]] = {}
        for cycle in plan.billing_cycle.cycles(start.astimezone(self._tz).date(), end.astimezone(self._tz).date()):
            lo = max(start, datetime.fromtimestamp(_epoch_s(cycle[0], self._tz), UTC))
            hi = min(end, datetime.fromtimestamp(_epoch_s(cycle[1], self._tz), UTC))
            if hi > lo:
                self._windows[cycle] = (lo, hi)
        self._pricer = CyclePricer(plan, timezone=timezone, climate_zone=climate_zone, billed=self._billed)
        self._parts: dict[tuple[date, date], CostBreakdown] = {}

    def feed(self, readings: ReadingArrays) -> None:
        """The next readings (those outside [start, end) are left out). LookupError: the plan cannot
        price them (for example, it needs a climate zone). A daily or monthly reading counts for its
        share of the window."""
        shares = spread_coarse(readings, timezone=self._pricer.timezone, plan=self.plan)
        self._take(self._pricer.feed(shares.between(self._start_s, self._end_s)))

    def bill(self) -> PlanBill:
        self._take(self._pricer.finish())
        plan, tz = self.plan, self._tz
        bills = []
        empty = None
        for cycle, (lo, hi) in self._windows.items():
            part = self._parts.get(cycle)
            if part is None:
                if empty is None:
                    empty = price_intervals(plan, ReadingArrays.from_columns([], [], [], []), timezone=self._pricer.timezone)
                part = summarize(empty, lo, hi, include_demand=True)
            days = fixed_days(plan, lo, hi, tz)
            minimum = sum(plan.version_at(datetime.combine(d, time(), tz), tz).minimum_bill_per_day for d in days)
            # Each line to the cent, the bill their sum (as the utility's bill adds them up).
            energy, credit = cents(part.energy_cost), cents(part.generation_credit)
            rebate, fixed = cents(part.peak_time_rebate), cents(part.fixed_charges)
            demand = cents(part.demand_charges)
            before_minimum = energy - credit - rebate + fixed + demand
            topup = cents(max(0.0, cents(minimum) - before_minimum))
            first, end = max(cycle[0], self._billed[0]), min(cycle[1], self._billed[1])
            bills.append(CycleBill(
                start=first, end=end, days=(end - first).days,
                energy_kwh=part.energy_kwh, generated_kwh=part.generated_kwh,
                energy_cost=energy, generation_credit=credit, peak_time_rebate=rebate, fixed_charges=fixed,
                demand_charges=demand, minimum_bill_topup=topup, total_cost=cents(before_minimum + topup),
                estimated_kwh=part.estimated_kwh,
            ))
        return PlanBill(
            plan=plan.name,
            label=plan.label,
            currency=plan.currency,
            cycles=len(bills),
            energy_kwh=float(sum(b.energy_kwh for b in bills)),
            generated_kwh=float(sum(b.generated_kwh for b in bills)),
            energy_cost=cents(sum(b.energy_cost for b in bills)),
            generation_credit=cents(sum(b.generation_credit for b in bills)),
            peak_time_rebate=cents(sum(b.peak_time_rebate for b in bills)),
            fixed_charges=cents(sum(b.fixed_charges for b in bills)),
            minimum_bill_topup=cents(sum(b.minimum_bill_topup for b in bills)),
            total_cost=cents(sum(b.total_cost for b in bills)),
            demand_charges=cents(sum(b.demand_charges for b in bills)),
            cycle_bills=tuple(bills),
            estimated_kwh=float(sum(b.estimated_kwh for b in bills)),
        )

    def _take(self, priced_cycles: list[PricedIntervals]) -> None:
        for priced in priced_cycles:
            (cycle,) = priced.cycles
            lo, hi = self._windows[cycle]
            self._parts[cycle] = summarize(priced, lo, hi, include_demand=True)


def plan_bill(
    plan: RatePlan,
    readings: ReadingArrays,
    *,
    start: datetime,
    end: datetime,
    timezone: str,
    climate_zone: str | None = None,
) -> PlanBill:
    """The bill for readings starting in [start, end), cycle by cycle."""
    biller = PlanBiller(plan, start=start, end=end, timezone=timezone, climate_zone=climate_zone)
    biller.feed(readings)
    return biller.bill()


class PlanComparer:
    """Every plan of a rates file billed over the same readings, fed in time order (chunks of any size).

    What ``compare_plans`` does over one array, for a year streamed from the store a month at a
    time: each plan keeps only its cycle being read, and the gaps are counted as the readings pass.
    """

    def __init__(self, rates: RatesFile, *, start: datetime, end: datetime, timezone: str,
                 climate_zone: str | None = None, active_plan: str | None = None) -> None:
        self._start, self._end, self._active = start, end, active_plan
        self._start_s, self._end_s = int(start.timestamp()), int(end.timestamp())
        self._order = list(rates.plans)
        self._billers: dict[str, PlanBiller] = {}
        self._unpriced: list[UnpricedPlan] = []
        for plan in rates.plans.values():
            self._billers[plan.name] = PlanBiller(plan, start=start, end=end, timezone=timezone,
                                                  climate_zone=climate_zone)
        self._read = 0
        self._covered_to = self._start_s  # the end of the readings so far (gaps are what lies before a start)
        self._holes: list[tuple[int, int]] = []
        self._durations = np.zeros(0, dtype=np.int64)  # the last 1000 (the usual interval length)

    def feed(self, readings: ReadingArrays) -> None:
        window = readings.between(self._start_s, self._end_s)
        if not len(window):
            return
        for name, biller in list(self._billers.items()):
            try:
                biller.feed(window)
            except LookupError as err:
                del self._billers[name]
                self._unpriced.append(UnpricedPlan(name, str(err)))
        self._read += len(window)
        ends = window.start_s + window.duration_s
        covered = np.maximum.accumulate(np.concatenate([[self._covered_to], ends]))
        holes = np.nonzero(window.start_s > covered[:-1])[0]
        self._holes += [(int(covered[i]), int(window.start_s[i])) for i in holes]
        self._covered_to = int(covered[-1])
        self._durations = np.concatenate([self._durations, window.duration_s])[-1000:]

    def comparison(self) -> PlanComparison:
        bills: list[PlanBill] = []
        unpriced = list(self._unpriced)
        for name, biller in self._billers.items():
            try:
                bills.append(biller.bill())
            except LookupError as err:
                unpriced.append(UnpricedPlan(name, str(err)))
        unpriced.sort(key=lambda u: self._order.index(u.plan))  # in the rates file's order, as before
        currencies = {b.currency for b in bills}
        if len(currencies) > 1:
            # Bills in different currencies cannot be ranked; keep those of the active plan's.
            keep = next((b.currency for b in bills if b.plan == self._active), bills[0].currency)
            unpriced += [UnpricedPlan(b.plan, f"billed in {b.currency}, not {keep}") for b in bills if b.currency != keep]
            bills = [b for b in bills if b.currency == keep]
        bills.sort(key=lambda b: b.total_cost)
        by_name = {b.plan: b for b in bills}
        cheapest = bills[0] if bills else None
        return PlanComparison(
            start=self._start,
            end=self._end,
            bills=tuple(bills),
            unpriced=tuple(unpriced),
            active_plan=self._active,
            cheapest=cheapest.plan if cheapest else None,
            savings_vs_active=cents(by_name[self._active].total_cost - cheapest.total_cost)
            if cheapest and self._active in by_name
            else None,
            savings_vs_next=cents(bills[1].total_cost - bills[0].total_cost) if len(bills) > 1 else None,
            intervals_read=self._read,
            missing_intervals=self._missing(),
        )

    def _missing(self) -> int:
        """Missing intervals over the window, as ``find_gaps`` counts them over the whole of it."""
        if not self._read:
            return (self._end_s - self._start_s) // DEFAULT_INTERVAL_S
        interval_s = max(1, int(np.median(self._durations)))
        missing = sum(max(1, round((start - covered) / interval_s)) for covered, start in self._holes)
        return missing + max(0, (self._end_s - self._covered_to) // interval_s)


def compare_plans(
    rates: RatesFile,
    readings: ReadingArrays,
    *,
    start: datetime,
    end: datetime,
    timezone: str,
    climate_zone: str | None = None,
    active_plan: str | None = None,
) -> PlanComparison:
    """Bill the readings under every plan of the rates file; say which is cheapest and by how much."""
    comparer = PlanComparer(rates, start=start, end=end, timezone=timezone, climate_zone=climate_zone,
                            active_plan=active_plan)
    comparer.feed(readings)
    return comparer.comparison()
