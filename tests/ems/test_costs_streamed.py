"""A long series priced one billing cycle at a time (ems.costs.CyclePricer) is priced exactly as
the whole series at once: the same arrays to the bit, the same rebates, the same bills per cycle,
whatever the chunks it is fed in."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ems.costs import (
    CyclePricer,
    PricedIntervals,
    ReadingArrays,
    _epoch_s,
    cycle_totals,
    price_cycles,
    price_intervals,
    summarize,
)
from ems.model import PriceSignal
from ems.tariff import RatePlan, parse_plan
from tests.ems.test_costs import cases

LA = "America/Los_Angeles"
ARRAYS = ("day_number", "version_index", "cycle_after_kwh", "period_index", "unit_price_per_kwh",
          "tier_energy_kwh", "tier_cost", "energy_cost", "generation_credit")

WEEKDAY = [{"period": "off", "start": "00:00", "end": "16:00", "price_per_kwh": 0.21},
           {"period": "peak", "start": "16:00", "end": "21:00", "price_per_kwh": 0.48},
           {"period": "off", "start": "21:00", "end": "24:00", "price_per_kwh": 0.21}]
WEEKEND = [{"period": "flat", "start": "00:00", "end": "24:00", "price_per_kwh": 0.19}]


def version(effective_from: date, adder: float) -> dict:
    return {
        "effective_from": effective_from,
        "energy_price_per_kwh": 0.2 + adder,
        "seasons": {"summer": "06-01", "winter": "10-01"},
        "time_of_use": {s: {"weekday": WEEKDAY, "weekend": WEEKEND, "holiday": WEEKEND} for s in ("summer", "winter")},
        "tiers": [{"allowance_kwh_per_day": 9.5, "price_per_kwh": 0.0},
                  {"allowance_kwh_per_day": 6.0, "price_per_kwh": 0.06 + adder},
                  {"price_per_kwh": 0.13}],
        "critical_peak_adder_per_kwh": 0.8,
        "generation_credit_per_kwh": "same_as_import" if adder else 0.05,
        "peak_time_rebate": {"credit_per_kwh": 1.25, "baseline_days": 5},
        "hourly_prices": {date(2024, 7, 9): [0.1 + h / 100 for h in range(24)]},
        "basic_charge_per_day": 0.03,
        "minimum_bill_per_day": 0.2,
    }


# Tiers, seasons, TOU with weekends and holidays (July 4, Labor Day, Thanksgiving), a rate change,
# critical peaks, peak time rebates (one on a cycle's first weekday: its baseline days lie in the
# cycle before), hourly prices, generation credit at a fixed and at the import price, both DST days.
PLAN = parse_plan("STREAMED", {
    "currency": "USD",
    "holidays": {"country": "US", "names": [], "observed": "nearest_weekday", "extra_dates": [date(2024, 8, 20)]},
    "billing_cycle": {"start_day": 14},
    "critical_peak_events": [{"date": date(2024, 7, 18), "start": "14:00", "end": "19:00"},
                             {"date": date(2024, 11, 4), "start": "17:00", "end": "20:00"}],
    "peak_time_rebate_events": [{"date": date(2024, 8, 14), "start": "16:00", "end": "21:00"},
                                {"date": date(2024, 9, 16), "start": "16:00", "end": "20:00", "baseline_kwh": 3.0},
                                {"date": date(2024, 10, 2), "start": "15:00", "end": "19:00"}],
    "versions": [version(date(2023, 1, 1), 0.0), version(date(2024, 9, 1), 0.02)],
})


def history() -> ReadingArrays:
    """15-minute intervals from 2 March to 20 November 2024 in Los Angeles, with gaps (a whole
    cycle among them) and the use of a household with solar."""
    tz = ZoneInfo(LA)
    first = int(datetime(2024, 3, 2, tzinfo=tz).timestamp())
    last = int(datetime(2024, 11, 20, 9, 15, tzinfo=tz).timestamp())
    start = np.arange(first, last, 900, dtype=np.int64)
    gaps = [(date(2024, 4, 3), date(2024, 4, 5)), (date(2024, 5, 14), date(2024, 6, 14)), (date(2024, 10, 1), date(2024, 10, 2))]
    keep = np.ones(len(start), dtype=bool)
    for a, b in gaps:
        keep &= ~((start >= _epoch_s(a, tz)) & (start < _epoch_s(b, tz)))
    start = start[keep]
    rng = np.random.default_rng(12)
    hour = (start % 86400) / 3600
    solar = np.clip(np.sin((hour - 14) / 12 * np.pi), 0, None) * 0.6 * rng.random(len(start))
    return ReadingArrays.from_columns(start, np.full(len(start), 900), rng.gamma(2.0, 0.2, len(start)), solar)


SIGNALS = (
    PriceSignal("m1", 1, 1, "METER", "USD", 0.5, datetime(2024, 8, 1, 3, tzinfo=UTC), datetime(2024, 8, 2, 3, tzinfo=UTC),
                received_at=datetime(2024, 7, 31, tzinfo=UTC)),
    PriceSignal("m1", 1, 2, "METER", "USD", 0.7, datetime(2024, 11, 18, tzinfo=UTC), None,
                received_at=datetime(2024, 11, 17, tzinfo=UTC)),
)


def chunked(readings: ReadingArrays, sizes: list[int]) -> list[ReadingArrays]:
    out, i = [], 0
    for size in sizes * (len(readings) // max(sum(sizes), 1) + 1):
        if i >= len(readings):
            break
        out.append(readings.rows(i, i + size))
        i += size
    return out


def assert_cycles_equal_the_whole(plan: RatePlan, readings: ReadingArrays, cycles: list[PricedIntervals],
                                  whole: PricedIntervals, tz: str) -> None:
    assert sum(len(c) for c in cycles) == len(whole)
    i = 0
    for part in cycles:
        rows = slice(i, i + len(part))
        assert len({int(c) for c in whole.cycle_index[rows]}) == 1  # one whole cycle each
        (cycle,) = part.cycles
        assert cycle == whole.cycles[int(whole.cycle_index[i])]
        for name in ARRAYS:
            assert np.array_equal(getattr(part, name), getattr(whole, name)[..., rows]), name
        assert np.array_equal(part.tier_bounds_kwh[0], whole.tier_bounds_kwh[int(whole.cycle_index[i])])
        zone = ZoneInfo(tz)
        start = datetime.fromtimestamp(_epoch_s(cycle[0], zone), UTC)
        end = datetime.fromtimestamp(_epoch_s(cycle[1], zone), UTC)
        assert summarize(part, start, end) == summarize(whole, start, end)
        i += len(part)


def test_a_long_history_priced_cycle_by_cycle_equals_the_whole_priced_at_once():
    readings = history()
    whole = price_intervals(PLAN, readings, timezone=LA, climate_zone=None, price_signals=SIGNALS)
    assert len(whole.cycles) >= 8 and len(whole.rebates) == 3 and any(r.credit > 0 for r in whole.rebates)
    for sizes in ([len(readings)], [1, 7, 96 * 31], [5000], [96]):
        cycles = list(price_cycles(PLAN, chunked(readings, sizes), timezone=LA, price_signals=SIGNALS))
        assert_cycles_equal_the_whole(PLAN, readings, cycles, whole, LA)
        assert tuple(r for c in cycles for r in c.rebates) == whole.rebates
        # The cycle without a reading (14 May - 14 June) is not among them.
        assert len(cycles) == len(whole.cycles) - 1
        streamed = np.array([[c[name].sum() for name in ("energy_kwh", "energy_cost", "generation_credit")]
                             for c in map(cycle_totals, cycles)])
        totals = cycle_totals(whole)
        present = np.nonzero(np.bincount(whole.cycle_index, minlength=len(whole.cycles)))[0]
        for column, name in enumerate(("energy_kwh", "energy_cost", "generation_credit")):
            assert streamed[:, column].tolist() == totals[name][present].tolist()


def test_readings_fed_out_of_order_are_refused():
    readings = history().rows(0, 100)
    pricer = CyclePricer(PLAN, timezone=LA)
    pricer.feed(readings.rows(50, 100))
    with pytest.raises(ValueError, match="time order"):
        pricer.feed(readings.rows(0, 50))
    assert CyclePricer(PLAN, timezone=LA).finish() == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases(), st.lists(st.integers(1, 400), min_size=1, max_size=4))
def test_any_plan_in_any_chunks_prices_as_the_whole(case, sizes):
    tz, raw, rows = case
    plan = parse_plan("RANDOM", raw)
    readings = ReadingArrays.from_readings(rows)
    whole = price_intervals(plan, readings, timezone=tz)
    cycles = list(price_cycles(plan, chunked(readings, sizes), timezone=tz))
    assert_cycles_equal_the_whole(plan, readings, cycles, whole, tz)
