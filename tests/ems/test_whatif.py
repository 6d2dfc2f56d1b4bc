"""What-if: the same year of readings billed under every plan; the cheapest named."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from ems.config import default_config_dir
from ems.costs import ReadingArrays
from ems.tariff import RatesFile, load_rates, parse_plan
from ems.whatif import compare_plans, last_year

LA = "America/Los_Angeles"


def flat(price: float, basic: float = 0.0, minimum: float = 0.0) -> dict:
    return {
        "currency": "USD",
        "billing_cycle": {"start_day": 1},
        "versions": [{"effective_from": date(2024, 1, 1), "energy_price_per_kwh": price,
                      "basic_charge_per_day": basic, "minimum_bill_per_day": minimum}],
    }


def hourly_year(kwh: float) -> ReadingArrays:
    start = int(datetime(2024, 1, 1, 8, tzinfo=UTC).timestamp())  # midnight in Los Angeles
    n = 366 * 24
    return ReadingArrays.from_columns(start + 3600 * np.arange(n), np.full(n, 3600), np.full(n, kwh), np.zeros(n))


def test_cheapest_plan_and_savings_by_hand(tmp_path):
    rates = RatesFile(tmp_path / "r.yaml", {
        "A": parse_plan("A", flat(0.30)),
        "B": parse_plan("B", flat(0.25, basic=0.10)),
        "C": parse_plan("C", flat(0.01, minimum=1.00)),
    })
    readings = hourly_year(0.5)  # 12 kWh a day, 366 days = 4392 kWh
    start = datetime(2024, 1, 1, 8, tzinfo=UTC)
    end = datetime(2025, 1, 1, 8, tzinfo=UTC)
    result = compare_plans(rates, readings, start=start, end=end, timezone=LA, active_plan="A")
    totals = {b.plan: round(b.total_cost, 2) for b in result.bills}
    # A: 4392 x 0.30 = 1317.60.  B: 4392 x 0.25 + 366 x 0.10 = 1098.00 + 36.60 = 1134.60.
    # C: 4392 x 0.01 = 43.92, below the minimum 366 x 1.00 = 366.00, so 366.00.
    assert totals == {"A": 1317.60, "B": 1134.60, "C": 366.00}
    assert result.cheapest == "C" and [b.plan for b in result.bills] == ["C", "B", "A"]
    assert round(result.savings_vs_active, 2) == 951.60
    assert round(result.savings_vs_next, 2) == 768.60
    assert result.bills[0].cycles == 12 and result.missing_intervals == 0


def test_every_shipped_plan_is_priced():
    rates = load_rates(default_config_dir() / "rates.yaml")
    start = datetime(2024, 1, 1, 8, tzinfo=UTC)
    result = compare_plans(rates, hourly_year(0.5), start=start, end=datetime(2025, 1, 1, 8, tzinfo=UTC),
                           timezone=LA, climate_zone="10", active_plan="TOU-D-T")
    assert len(result.bills) == len(rates.plans) and not result.unpriced
    no_zone = compare_plans(rates, hourly_year(0.5), start=start, end=datetime(2025, 1, 1, 8, tzinfo=UTC), timezone=LA)
    assert [u.plan for u in no_zone.unpriced] == ["D-BASELINE"]


def test_the_year_is_the_twelve_local_months_before_today():
    # 12:00 on 12 May in Los Angeles: from 12 May 2025 to 12 May 2026, local midnights.
    assert last_year(datetime(2026, 5, 12, 19, tzinfo=UTC), LA) == (
        datetime(2025, 5, 12, 7, tzinfo=UTC), datetime(2026, 5, 12, 7, tzinfo=UTC))
    # 29 February: 365 days back (there is no 29 February a year before).
    start, end = last_year(datetime(2028, 2, 29, 20, tzinfo=UTC), LA)
    assert (start, end) == (datetime(2027, 3, 1, 8, tzinfo=UTC), datetime(2028, 2, 29, 8, tzinfo=UTC))


def whole_window_bill(plan, readings, start, end, tz_name, zone):
    """The bill as the what-if made it before streaming: every interval of the window priced at
    once (the cut cycles' allowances prorated to the days billed), then each cycle's lines rounded
    to the cent and summed (the reference the streamed bill must equal to the bit)."""
    from datetime import time
    from zoneinfo import ZoneInfo

    from ems.costs import _epoch_s, fixed_days, price_intervals, summarize

    tz = ZoneInfo(tz_name)
    readings = readings.between(int(start.timestamp()), int(end.timestamp()))
    priced = price_intervals(plan, readings, timezone=tz_name, climate_zone=zone,
                             billed=(start.astimezone(tz).date(), end.astimezone(tz).date()))
    totals, topup, counted = [0.0] * 6, 0.0, 0
    for c_start, c_end in plan.billing_cycle.cycles(start.astimezone(tz).date(), end.astimezone(tz).date()):
        lo = max(start, datetime.fromtimestamp(_epoch_s(c_start, tz), UTC))
        hi = min(end, datetime.fromtimestamp(_epoch_s(c_end, tz), UTC))
        if hi <= lo:
            continue
        counted += 1
        part = summarize(priced, lo, hi)
        minimum = sum(plan.version_at(datetime.combine(d, time(), tz), tz).minimum_bill_per_day
                      for d in fixed_days(plan, lo, hi, tz))
        lines = [round(x, 2) for x in (part.energy_cost, part.generation_credit, part.peak_time_rebate,
                                       part.fixed_charges)]
        topup += round(max(0.0, round(minimum, 2) - (lines[0] - lines[1] - lines[2] + lines[3])), 2)
        totals = [t + x for t, x in zip(totals, [part.energy_kwh, part.generated_kwh, *lines], strict=True)]
    return counted, [*totals[:2], *(round(t, 2) for t in totals[2:])], round(topup, 2)


def test_a_year_streamed_a_month_at_a_time_bills_as_the_whole_year_at_once():
    from ems.costs import find_gaps, nominal_interval_s
    from ems.whatif import PlanComparer

    rates = load_rates(default_config_dir() / "rates.yaml")
    start, end = datetime(2024, 2, 10, 8, tzinfo=UTC), datetime(2025, 2, 10, 8, tzinfo=UTC)
    first = int(datetime(2024, 1, 20, 8, tzinfo=UTC).timestamp())  # some readings before the window
    starts = first + 900 * np.arange(400 * 96)
    keep = ((starts // 86400) % 47 != 3) & ((starts // 3600) % 97 != 5)  # a missing day, missing hours
    starts = starts[keep]
    rng = np.random.default_rng(7)
    readings = ReadingArrays.from_columns(starts, np.full(len(starts), 900), rng.gamma(2.0, 0.15, len(starts)),
                                          rng.random(len(starts)) * 0.2)
    comparer = PlanComparer(rates, start=start, end=end, timezone=LA, climate_zone="10", active_plan="TOU-D-T")
    for i in range(0, len(readings), 2880):  # 30 days of 15-minute readings at a time
        comparer.feed(readings.rows(i, i + 2880))
    streamed = comparer.comparison()
    assert streamed == compare_plans(rates, readings, start=start, end=end, timezone=LA, climate_zone="10",
                                     active_plan="TOU-D-T")
    assert len(streamed.bills) == len(rates.plans) and not streamed.unpriced
    for bill in streamed.bills:
        counted, totals, topup = whole_window_bill(rates.plans[bill.plan], readings, start, end, LA, "10")
        assert (bill.cycles, bill.minimum_bill_topup) == (counted, topup)
        assert [bill.energy_kwh, bill.generated_kwh, bill.energy_cost, bill.generation_credit,
                bill.peak_time_rebate, bill.fixed_charges] == totals
    window = readings.between(int(start.timestamp()), int(end.timestamp()))
    gaps = find_gaps(window, int(start.timestamp()), int(end.timestamp()), nominal_interval_s(window))
    assert streamed.intervals_read == len(window)
    assert streamed.missing_intervals == sum(g.missing_intervals for g in gaps) > 0
