"""Benchmark: years of 1-minute intervals (525,600 a year) on a tiered + time-of-use + generation rate.

For each length of history asked for (``--years 1,3,10``), a fresh child process costs it with the
numpy engine: cost of every interval, per tier, per period and per-cycle totals. By default the
history is streamed as the appliance streams it from the store, 30 days at a time, and priced one
billing cycle at a time (``ems.costs.CyclePricer``); ``--whole`` prices every interval at once as
``price_intervals`` over the whole series (how it was done before; its arrays grow with the
history). Each child reports the engine's median time over its runs (the readings are made
outside the timed part) and its peak resident memory above its baseline (after the imports, the
rate plan and one warm-up day). For one year the plain reference loop (interval by interval, as in
tests/ems/test_costs.py) is also run on a measured subset and scaled up to the year.

    python bench/costs.py [--years 1,3,10] [--whole]
Last line: ms_1y=.. ms_10y=.. peak_extra_mb_10y=..   (the first and the last length asked for)
Targets: a year in <= 50 ms; peak extra memory <= 64 MB whatever the length.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ems.config import default_config_dir  # noqa: E402
from ems.costs import CyclePricer, PricedIntervals, ReadingArrays, cycle_totals, price_intervals  # noqa: E402
from ems.tariff import RatePlan, load_rates  # noqa: E402

TZ = "America/Los_Angeles"
YEAR = 525_600
CHUNK = 30 * 1440  # what one read from the store brings: 30 days of minutes
REFERENCE_SAMPLE = 20_000
START = int(datetime(2024, 1, 1, 8, tzinfo=UTC).timestamp())  # 2024-01-01 00:00 in Los Angeles


def chunk(first: int, count: int) -> ReadingArrays:
    """Minutes ``first`` to ``first + count - 1`` of the history (the same values however it is cut)."""
    minutes = np.arange(first, first + count)
    rng = np.random.default_rng([2024, first])
    solar = np.clip(np.sin((minutes % 1440 - 380) / 800 * np.pi), 0, None) * 0.08
    return ReadingArrays.from_columns(START + 60 * minutes, np.full(count, 60), rng.gamma(2.0, 0.006, count),
                                      solar * rng.random(count))


def history(n: int) -> Iterator[ReadingArrays]:
    for first in range(0, n, CHUNK):
        yield chunk(first, min(CHUNK, n - first))


class Totals:
    """What the engine adds up: cost, per tier, per period, per cycle (kWh, cost, credit)."""

    def __init__(self) -> None:
        self.cost = 0.0
        self.per_tier: np.ndarray | None = None
        self.per_period: np.ndarray | None = None
        self.cycles: list[dict[str, np.ndarray]] = []

    def add(self, priced: PricedIntervals) -> None:
        size = len(priced.period_labels)
        per_period = np.bincount(np.maximum(priced.period_index, 0), weights=priced.energy_cost, minlength=size)
        per_tier = priced.tier_cost.sum(axis=1)
        self.per_period = per_period if self.per_period is None else self.per_period + per_period
        self.per_tier = per_tier if self.per_tier is None else self.per_tier + per_tier
        self.cost += float(priced.cost.sum())
        self.cycles.append(cycle_totals(priced))

    def kwh(self, name: str) -> float:
        return float(sum(c[name].sum() for c in self.cycles))


def streamed(plan: RatePlan, n: int) -> tuple[float, float, Totals]:
    """Seconds in the engine (wall, CPU), and its totals, over ``n`` minutes fed 30 days at a time."""
    pricer = CyclePricer(plan, timezone=TZ, climate_zone="10")
    totals = Totals()
    wall = cpu = 0.0
    for part in itertools.chain(history(n), [None]):  # one chunk made at a time, then the end
        t0, c0 = time.perf_counter(), time.process_time()
        for priced in pricer.finish() if part is None else pricer.feed(part):
            totals.add(priced)
        wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
    return wall, cpu, totals


def whole(plan: RatePlan, n: int) -> tuple[float, float, Totals]:
    """Seconds in the engine (wall, CPU), and its totals, over ``n`` minutes priced at once."""
    parts = list(history(n))
    readings = ReadingArrays(*(np.concatenate(c) for c in zip(*((p.start_s, p.duration_s, p.consumed_kwh, p.generated_kwh)
                                                                 for p in parts), strict=True)))
    del parts
    totals = Totals()
    t0, c0 = time.perf_counter(), time.process_time()
    totals.add(price_intervals(plan, readings, timezone=TZ, climate_zone="10"))
    return time.perf_counter() - t0, time.process_time() - c0, totals


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def child(years: int, at_once: bool, runs: int) -> None:
    plan = load_rates(default_config_dir() / "rates.yaml").plans["TOU-D-T"]
    engine = whole if at_once else streamed
    engine(plan, 1440)  # warm-up: the holiday and time-zone caches, numpy's first calls
    baseline = rss_mb()
    n = YEAR * years
    times, cpu, totals = [], [], None
    for _ in range(runs):
        seconds, cpu_s, totals = engine(plan, n)
        times.append(seconds * 1000)
        cpu.append(cpu_s * 1000)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert totals is not None
    print(json.dumps({"ms": statistics.median(times), "runs_ms": [round(t, 1) for t in times],
                      "cpu_ms": statistics.median(cpu),
                      "peak_extra_mb": peak - baseline, "baseline_mb": baseline, "cycles": sum(len(c["energy_kwh"]) for c in totals.cycles),
                      "kwh": totals.kwh("energy_kwh"), "generated_kwh": totals.kwh("generated_kwh"),
                      "cost": totals.cost, "per_tier": np.round(totals.per_tier, 2).tolist(),
                      "per_period": np.round(totals.per_period, 2).tolist()}))


def reference(plan: RatePlan, readings: ReadingArrays, count: int) -> float:
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", default="1,3,10", help="lengths of history, comma-separated (default 1,3,10)")
    parser.add_argument("--whole", action="store_true", help="price every interval at once (the engine before streaming)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.whole, args.runs)
        return
    plan = load_rates(default_config_dir() / "rates.yaml").plans["TOU-D-T"]
    years = [int(y) for y in args.years.split(",")]
    how = "priced at once" if args.whole else "streamed 30 days at a time, priced cycle by cycle"
    print(f"Plan {plan.name} ({', '.join(plan.kinds)}, generation credit), 1-minute intervals, {how}.")
    results = {}
    for y in years:
        command = [sys.executable, __file__, "--child", str(y), "--runs", str(args.runs)] + (["--whole"] if args.whole else [])
        out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = results[y] = json.loads(out.strip().splitlines()[-1])
        print(f"{y:>2} y: {y * YEAR:>9,} intervals, {r['cycles']} cycles: engine median {r['ms']:.1f} ms {r['runs_ms']} "
              f"(CPU {r['cpu_ms']:.1f} ms); "
              f"peak memory {r['peak_extra_mb']:.1f} MB above the baseline of {r['baseline_mb']:.1f} MB; "
              f"{r['kwh']:,.1f} kWh used, {r['generated_kwh']:,.1f} generated, cost {r['cost']:,.2f} {plan.currency}")
        print(f"      tiers {r['per_tier']}; periods {r['per_period']}")
    sample = chunk(0, REFERENCE_SAMPLE)
    t0 = time.perf_counter()
    ref_total = reference(plan, sample, REFERENCE_SAMPLE)
    ref_s = (time.perf_counter() - t0) * YEAR / REFERENCE_SAMPLE
    engine_total = float(price_intervals(plan, sample, timezone=TZ, climate_zone="10").cost.sum())
    print(f"Reference loop: measured on the first {REFERENCE_SAMPLE:,} intervals and scaled to a year: {ref_s:.1f} s "
          f"(its total {ref_total:.6f} vs engine {engine_total:.6f} on the same subset).")
    first, last = years[0], years[-1]
    print(f"ms_{first}y={results[first]['ms']:.1f} ms_{last}y={results[last]['ms']:.1f} "
          f"peak_extra_mb_{last}y={results[last]['peak_extra_mb']:.1f}")


if __name__ == "__main__":
    main()
