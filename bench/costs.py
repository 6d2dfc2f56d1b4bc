"""Benchmark: a year of 1-minute intervals (525,600) on a tiered + time-of-use + generation rate.

Times the numpy engine (cost of every interval, per tier, per period, per-cycle totals) and
the plain reference loop (interval by interval, as in tests/ems/test_costs.py) on a measured
subset, scaled up to the year. Run: .venv/bin/python bench/costs.py
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ems.config import default_config_dir  # noqa: E402
from ems.costs import ReadingArrays, cycle_totals, price_intervals  # noqa: E402
from ems.tariff import load_rates  # noqa: E402

TZ = "America/Los_Angeles"
N = 525_600
REFERENCE_SAMPLE = 20_000


def engine(plan, readings):
    priced = price_intervals(plan, readings, timezone=TZ, climate_zone="10")
    totals = cycle_totals(priced)  # per cycle: kWh, cost, credit
    size = len(priced.period_labels)
    per_period = np.bincount(np.maximum(priced.period_index, 0), weights=priced.energy_cost, minlength=size)
    per_tier = priced.tier_cost.sum(axis=1)
    return priced.cost, per_tier, per_period, totals


def reference(plan, readings, count):
    """The obviously correct loop: local time, version, period, cycle, tier split, credit."""
    tz = ZoneInfo(TZ)
    used: dict = {}
    bounds_of: dict = {}
    total = 0.0
    for i in range(count):
        start = datetime.fromtimestamp(int(readings.start_s[i]), UTC)
        wall = start.astimezone(tz)
        day, minute = wall.date(), wall.hour * 60 + wall.minute
        version = plan.versions[0]
        for v in plan.versions:
            if v.effective_from.replace(tzinfo=tz) <= start:
                version = v
        holidays = plan.holidays.dates(range(day.year, day.year + 1))
        day_type = "holiday" if day in holidays else "weekend" if day.weekday() >= 5 else "weekday"
        price = version.energy_price_per_kwh
        for p in version.time_of_use[version.season_of(day)].periods(day_type):
            if p.covers(minute):
                price = p.price_per_kwh
        cycle = plan.billing_cycle.cycle_of(day)
        if cycle not in bounds_of:
            bounds_of[cycle] = plan.cycle_allowances_kwh(cycle, tz, "10")
        bounds = bounds_of[cycle]
        consumed = float(readings.consumed_kwh[i])
        before = used.get(cycle, 0.0)
        after = before + consumed
        used[cycle] = after
        cost = 0.0
        for k, tier in enumerate(version.tiers):
            lower = sum(bounds[:k])
            upper = sum(bounds[: k + 1]) if k < len(bounds) else math.inf
            cost += max(0.0, min(after, upper) - max(before, lower)) * (price + tier.price_per_kwh)
        total += cost - float(readings.generated_kwh[i]) * version.generation_credit_per_kwh
    return total


def main() -> None:
    plan = load_rates(default_config_dir() / "rates.yaml").plans["TOU-D-T"]
    rng = np.random.default_rng(2024)
    start = int(datetime(2024, 1, 1, 8, tzinfo=UTC).timestamp())  # 2024-01-01 00:00 in Los Angeles
    minutes = np.arange(N)
    solar = np.clip(np.sin((minutes % 1440 - 380) / 800 * np.pi), 0, None) * 0.08
    readings = ReadingArrays.from_columns(
        start + 60 * minutes, np.full(N, 60), rng.gamma(2.0, 0.006, N), solar * rng.random(N)
    )
    first = time.perf_counter()
    engine(plan, readings)
    cold_ms = (time.perf_counter() - first) * 1000
    runs = []
    for _ in range(7):
        t0 = time.perf_counter()
        cost, per_tier, per_period, totals = engine(plan, readings)
        runs.append((time.perf_counter() - t0) * 1000)
    ms = statistics.median(runs)
    t0 = time.perf_counter()
    ref_total = reference(plan, readings, REFERENCE_SAMPLE)
    ref_s = (time.perf_counter() - t0) * N / REFERENCE_SAMPLE
    engine_total = float(price_intervals(plan, readings.between(0, int(readings.start_s[REFERENCE_SAMPLE])),
                                         timezone=TZ, climate_zone="10").cost.sum())
    ratio = ref_s * 1000 / ms
    print(f"Plan {plan.name} ({', '.join(plan.kinds)}, generation credit), {N:,} one-minute intervals, {len(totals['energy_cost'])} cycles.")
    print(f"Engine (cost per interval, per tier, per period, cycle totals): median {ms:.1f} ms of 7 runs; "
          f"first run {cold_ms:.1f} ms (fills the holiday and time-zone caches).")
    print(f"Year: {totals['energy_kwh'].sum():,.1f} kWh used, {totals['generated_kwh'].sum():,.1f} kWh generated, "
          f"cost {cost.sum():,.2f} {plan.currency}; tiers {np.round(per_tier, 2).tolist()}; periods {np.round(per_period, 2).tolist()}.")
    print(f"Reference loop: measured on the first {REFERENCE_SAMPLE:,} intervals and scaled to the year: {ref_s:.1f} s "
          f"(its total {ref_total:.6f} vs engine {engine_total:.6f} on the same subset).")
    print(f"ms={ms:.1f} ratio_to_reference={ratio:.0f}")


if __name__ == "__main__":
    main()
