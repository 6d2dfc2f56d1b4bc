"""What-if: the bill the customer's own last 12 months would have cost under each plan.

Pure functions over readings (run them in an executor). Each plan is billed cycle by cycle on
its own billing schedule, with its fixed charges and minimum bill, from the readings as read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from ems.costs import (
    ReadingArrays,
    _epoch_s,
    find_gaps,
    fixed_days,
    local_date,
    nominal_interval_s,
    price_intervals,
    summarize,
)
from ems.tariff import RatePlan, RatesFile


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
    total_cost: float


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
    tz = ZoneInfo(timezone)
    readings = readings.between(int(start.timestamp()), int(end.timestamp()))
    priced = price_intervals(plan, readings, timezone=timezone, climate_zone=climate_zone)
    totals = np.zeros(6)
    topup = 0.0
    cycles = plan.billing_cycle.cycles(start.astimezone(tz).date(), end.astimezone(tz).date())
    counted = 0
    for cycle_start, cycle_end in cycles:
        lo = max(start, datetime.fromtimestamp(_epoch_s(cycle_start, tz), UTC))
        hi = min(end, datetime.fromtimestamp(_epoch_s(cycle_end, tz), UTC))
        if hi <= lo:
            continue
        counted += 1
        part = summarize(priced, lo, hi)
        minimum = sum(
            plan.version_at(datetime.combine(d, time(), tz), tz).minimum_bill_per_day
            for d in fixed_days(plan, lo, hi, tz)
        )
        topup += max(0.0, minimum - part.total_cost)
        totals += [
            part.energy_kwh, part.generated_kwh, part.energy_cost,
            part.generation_credit, part.peak_time_rebate, part.fixed_charges,
        ]
    energy_kwh, generated_kwh, energy_cost, credit, rebate, fixed = (float(x) for x in totals)
    return PlanBill(
        plan=plan.name,
        label=plan.label,
        currency=plan.currency,
        cycles=counted,
        energy_kwh=energy_kwh,
        generated_kwh=generated_kwh,
        energy_cost=energy_cost,
        generation_credit=credit,
        peak_time_rebate=rebate,
        fixed_charges=fixed,
        minimum_bill_topup=topup,
        total_cost=energy_cost - credit - rebate + fixed + topup,
    )


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
    bills: list[PlanBill] = []
    unpriced: list[UnpricedPlan] = []
    for plan in rates.plans.values():
        try:
            bills.append(plan_bill(plan, readings, start=start, end=end, timezone=timezone, climate_zone=climate_zone))
        except LookupError as err:
            unpriced.append(UnpricedPlan(plan.name, str(err)))
    currencies = {b.currency for b in bills}
    if len(currencies) > 1:
        # Bills in different currencies cannot be ranked; keep those of the active plan's.
        keep = next((b.currency for b in bills if b.plan == active_plan), bills[0].currency)
        unpriced += [UnpricedPlan(b.plan, f"billed in {b.currency}, not {keep}") for b in bills if b.currency != keep]
        bills = [b for b in bills if b.currency == keep]
    bills.sort(key=lambda b: b.total_cost)
    by_name = {b.plan: b for b in bills}
    cheapest = bills[0] if bills else None
    window = readings.between(int(start.timestamp()), int(end.timestamp()))
    gaps = find_gaps(window, int(start.timestamp()), int(end.timestamp()), nominal_interval_s(window))
    return PlanComparison(
        start=start,
        end=end,
        bills=tuple(bills),
        unpriced=tuple(unpriced),
        active_plan=active_plan,
        cheapest=cheapest.plan if cheapest else None,
        savings_vs_active=(by_name[active_plan].total_cost - cheapest.total_cost)
        if cheapest and active_plan in by_name
        else None,
        savings_vs_next=(bills[1].total_cost - bills[0].total_cost) if len(bills) > 1 else None,
        intervals_read=len(window),
        missing_intervals=sum(g.missing_intervals for g in gaps),
    )
