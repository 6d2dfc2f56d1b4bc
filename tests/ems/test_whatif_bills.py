"""Bills of a year computed by hand match the what-if's bills to the cent, month by month: (a) a
time-of-use rate with a baseline credit and a daily basic charge, (b) a tiered rate with a minimum
bill; and the cycles the 12 months cut get their allowance prorated by the days billed.

Each year is hourly readings of a fixed profile, built here. The expected bills are a table written
out by hand (the arithmetic in the comments), checked against a plain loop over the hours that
follows the rate sheet's words, not the engine.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from ems.costs import ReadingArrays
from ems.tariff import parse_plan
from ems.whatif import plan_bill

TZ = "America/Los_Angeles"
LA = ZoneInfo(TZ)


def midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), LA).astimezone(UTC)


def local_hours(first: date, end: date):
    """Every hour from local midnight of ``first`` to that of ``end``, as local times (23 and 25 hour days too)."""
    t, stop = midnight(first), midnight(end)
    while t < stop:
        yield t.astimezone(LA)
        t += timedelta(hours=1)


def year_of(profile, first: date, end: date) -> ReadingArrays:
    hours = list(local_hours(first, end))
    return ReadingArrays.from_columns([int(h.timestamp()) for h in hours], np.full(len(hours), 3600),
                                      [profile(h) for h in hours], np.zeros(len(hours)))


def months(year: int) -> list[tuple[date, date]]:
    return [(date(year, m, 1), date(year + (m == 12), m % 12 + 1, 1)) for m in range(1, 13)]


def bills(plan, readings, first: date, end: date, zone: str | None = None):
    bill = plan_bill(plan, readings, start=midnight(first), end=midnight(end), timezone=TZ, climate_zone=zone)
    return bill, [(c.start, c.end, c.total_cost) for c in bill.cycle_bills]


# --- (a) time of use, a baseline credit, a daily basic charge -----------------------------------

TOU_CREDIT = {
    "currency": "USD",
    "billing_cycle": {"start_day": 1},
    "versions": [{
        "effective_from": date(2025, 1, 1),
        "time_of_use": {"all-year": {
            "weekday": [{"period": "off-peak", "start": "21:00", "end": "16:00", "price_per_kwh": 0.30},
                        {"period": "on-peak", "start": "16:00", "end": "21:00", "price_per_kwh": 0.50}],
            "weekend": [{"period": "off-peak", "start": "21:00", "end": "16:00", "price_per_kwh": 0.30},
                        {"period": "mid-peak", "start": "16:00", "end": "21:00", "price_per_kwh": 0.40}],
        }},
        # The baseline credit: 0.08 off every kWh up to 10 kWh a day of the cycle.
        "tiers": [{"allowance_kwh_per_day": 10, "price_per_kwh": -0.08}, {"price_per_kwh": 0.0}],
        "basic_charge_per_day": 0.031,
    }],
}


def evening(hour: datetime) -> float:
    """1 kWh an hour from 16:00 to 21:00, 0.5 kWh the other hours: 14.5 kWh a day."""
    return 1.0 if 16 <= hour.hour < 21 else 0.5


# 2026, days D, weekdays W, weekend days E (no holidays on this plan):
#   energy = off-peak 9.5 kWh x D x 0.30 + 5 kWh x (W x 0.50 + E x 0.40) - credit 10 kWh x D x 0.08
#   basic  = 0.031 x D (to the cent); bill = energy + basic
# March has the spring change (a 23-hour day: 0.5 kWh less off-peak, -0.15), November the autumn
# one (a 25-hour day: +0.15).
TOU_CREDIT_2026 = [
    # (D, W, E): energy           + basic = bill
    137.51,  # Jan (31, 22, 9): 88.35 + 55.0 + 18.0 - 24.8 = 136.55 + 0.96
    124.27,  # Feb (28, 20, 8): 79.80 + 50.0 + 16.0 - 22.4 = 123.40 + 0.87
    137.36,  # Mar (31, 22, 9): 88.35 - 0.15 + 55.0 + 18.0 - 24.8 = 136.40 + 0.96
    133.43,  # Apr (30, 22, 8): 85.50 + 55.0 + 16.0 - 24.0 = 132.50 + 0.93
    137.01,  # May (31, 21, 10): 88.35 + 52.5 + 20.0 - 24.8 = 136.05 + 0.96
    133.43,  # Jun (30, 22, 8): 132.50 + 0.93
    138.01,  # Jul (31, 23, 8): 88.35 + 57.5 + 16.0 - 24.8 = 137.05 + 0.96
    137.01,  # Aug (31, 21, 10): 136.05 + 0.96
    133.43,  # Sep (30, 22, 8): 132.50 + 0.93
    137.51,  # Oct (31, 22, 9): 136.55 + 0.96
    133.08,  # Nov (30, 21, 9): 85.50 + 0.15 + 52.5 + 18.0 - 24.0 = 132.15 + 0.93
    138.01,  # Dec (31, 23, 8): 137.05 + 0.96
]


def hand_tou_credit(first: date, end: date) -> list[tuple[date, date, float]]:
    """The rate sheet's words, hour by hour: price by period and day type, credit on the kWh up to
    the cycle's baseline (10 kWh a day billed), basic charge a day; each line to the cent."""
    result = []
    for c_first, c_end in months(first.year) + months(first.year + 1):
        lo, hi = max(c_first, first), min(c_end, end)
        if lo >= hi:
            continue
        energy = used = 0.0
        for hour in local_hours(lo, hi):
            kwh = evening(hour)
            weekend = hour.weekday() >= 5
            price = (0.40 if weekend else 0.50) if 16 <= hour.hour < 21 else 0.30
            energy += kwh * price
            used += kwh
        days = (hi - lo).days
        credit = 0.08 * min(used, 10 * days)
        result.append((lo, hi, round(round(energy - credit, 2) + round(0.031 * days, 2), 2)))
    return result


def test_a_year_on_time_of_use_with_a_baseline_credit_and_a_basic_charge():
    plan = parse_plan("TOU-CREDIT", TOU_CREDIT)
    first, end = date(2026, 1, 1), date(2027, 1, 1)
    bill, by_cycle = bills(plan, year_of(evening, first, end), first, end)
    assert [total for _, _, total in hand_tou_credit(first, end)] == TOU_CREDIT_2026  # the table is right
    assert by_cycle == [(lo, hi, total) for (lo, hi), total in zip(months(2026), TOU_CREDIT_2026, strict=True)]
    assert bill.total_cost == round(sum(TOU_CREDIT_2026), 2) == 1620.06
    assert not bill.estimated_kwh


# --- (b) a tiered rate with a minimum bill ------------------------------------------------------

TIERED = {
    "currency": "USD",
    "billing_cycle": {"start_day": 1},
    "versions": [{
        "effective_from": date(2025, 1, 1),
        "seasons": {"summer": "06-01", "winter": "10-01"},
        "tiers": [{"allowance_kwh_per_day": {"summer": 17.4, "winter": 10.7}, "price_per_kwh": 0.28},
                  {"price_per_kwh": 0.36}],
        "basic_charge_per_day": 0.031,
        "minimum_bill_per_day": 0.346,
    }],
}


def steady_but_august(hour: datetime) -> float:
    """0.5 kWh every hour (12 kWh a day), nothing in August (away)."""
    return 0.0 if hour.month == 8 else 0.5


# Baseline B = 10.7 kWh a day (winter, October-May) or 17.4 (summer, June-September) x D.
#   energy = 0.28 x min(use, B) + 0.36 x (use - B above it); basic = 0.031 x D;
#   minimum = 0.346 x D: the bill is never less (a top-up makes up the difference).
TIERED_2026 = [
    108.34,  # Jan 372 kWh, B 331.7: 92.876 + 14.508 = 107.38 + 0.96
    97.86,   # Feb 336 kWh, B 299.6: 83.888 + 13.104 = 96.99 + 0.87
    108.16,  # Mar 371.5 kWh (23-hour day), B 331.7: 92.876 + 14.328 = 107.20 + 0.96
    104.85,  # Apr 360 kWh, B 321.0: 89.88 + 14.04 = 103.92 + 0.93
    108.34,  # May as January
    101.73,  # Jun 360 kWh, B 522.0: all tier 1, 360 x 0.28 = 100.80 + 0.93
    105.12,  # Jul 372 kWh, B 539.4: 104.16 + 0.96
    10.73,   # Aug 0 kWh: basic 0.96, minimum 31 x 0.346 = 10.73, top-up 9.77
    101.73,  # Sep as June
    108.34,  # Oct as January
    105.03,  # Nov 360.5 kWh (25-hour day), B 321.0: 89.88 + 14.22 = 104.10 + 0.93
    108.34,  # Dec as January
]


def test_a_year_on_a_tiered_rate_with_a_minimum_bill():
    plan = parse_plan("TIERED", TIERED)
    first, end = date(2026, 1, 1), date(2027, 1, 1)
    bill, by_cycle = bills(plan, year_of(steady_but_august, first, end), first, end)
    assert by_cycle == [(lo, hi, total) for (lo, hi), total in zip(months(2026), TIERED_2026, strict=True)]
    august = bill.cycle_bills[7]
    assert (august.energy_cost, august.fixed_charges, august.minimum_bill_topup) == (0.0, 0.96, 9.77)
    assert bill.total_cost == round(sum(TIERED_2026), 2)


# --- The 12 months cut a cycle at each end: the allowance prorated by days billed ------------------

PER_CYCLE_CREDIT = {**TOU_CREDIT, "versions": [{
    **TOU_CREDIT["versions"][0],
    "tiers": [{"allowance_kwh": 300, "price_per_kwh": -0.08}, {"price_per_kwh": 0.0}],  # 300 kWh a cycle
}]}


@pytest.mark.parametrize(("words", "credit"), [
    # 10 kWh a day: 17 days of January 2026 billed, 170 kWh credited: 13.60; 14 days of January 2027: 11.20.
    (TOU_CREDIT, (13.60, 11.20)),
    # 300 kWh a cycle: 300 x 17/31 = 164.516 kWh credited: 13.16; 300 x 14/31 = 135.484: 10.84.
    # (A whole cycle's 300 kWh credited 24.00 at each end: 21.00 too much over the year.)
    (PER_CYCLE_CREDIT, (13.16, 10.84)),
])
def test_cut_cycles_get_their_allowance_prorated_by_days_billed(words, credit):
    plan = parse_plan("CUT", words)
    first, end = date(2026, 1, 15), date(2027, 1, 15)
    bill, by_cycle = bills(plan, year_of(evening, date(2026, 1, 1), date(2027, 2, 1)), first, end)
    head, tail = bill.cycle_bills[0], bill.cycle_bills[-1]
    assert (head.start, head.end, head.days) == (date(2026, 1, 15), date(2026, 2, 1), 17)
    assert (tail.start, tail.end, tail.days) == (date(2027, 1, 1), date(2027, 1, 15), 14)
    # Energy before the credit: 17 days from Thu 15 Jan 2026 (12 weekdays, 5 weekend days):
    # 9.5 x 17 x 0.30 + 5 x (12 x 0.50 + 5 x 0.40) = 48.45 + 40.00 = 88.45; 14 days from Fri 1 Jan
    # 2027 (10 weekdays, 4 weekend days): 9.5 x 14 x 0.30 + 5 x (10 x 0.50 + 4 x 0.40) = 39.90 + 33.00 = 72.90.
    assert (head.energy_cost, tail.energy_cost) == (round(88.45 - credit[0], 2), round(72.90 - credit[1], 2))
    if words is TOU_CREDIT:
        assert by_cycle == hand_tou_credit(first, end)


def test_a_monthly_reading_and_days_overlapping_it_are_billed_without_failing():
    """A store holding June read as one reading and June's days too (the importer keeps them apart;
    an older store may hold both), read 30 days at a time: billed (the overlap counts twice)."""
    from ems.whatif import PlanBiller

    plan = parse_plan("TOU-CREDIT", TOU_CREDIT)
    month = ReadingArrays.from_columns([int(midnight(date(2026, 6, 1)).timestamp())], [30 * 86400], [300.0], [0.0])
    days = ReadingArrays.from_columns([int(midnight(date(2026, 6, d)).timestamp()) for d in range(1, 31)],
                                      [86400] * 30, [10.0] * 30, [0.0] * 30)
    both = month + days
    biller = PlanBiller(plan, start=midnight(date(2026, 6, 1)), end=midnight(date(2026, 7, 1)), timezone=TZ)
    cut = int(midnight(date(2026, 6, 30)).timestamp())
    biller.feed(both.between(0, cut))
    biller.feed(both.between(cut, 2**40))
    bill = biller.bill()
    assert bill.energy_kwh == pytest.approx(600.0) and bill.estimated_kwh == pytest.approx(600.0)
