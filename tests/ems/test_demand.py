"""Demand charges: a hand-computed year to the cent, windows from finer and coarser readings, the rate sheet's checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import voluptuous as vol

from ems.costs import ReadingArrays, cost_report, price_intervals, summarize
from ems.demand import window_demand
from ems.errors import ConfigError
from ems.tariff import load_rates, parse_plan
from ems.whatif import plan_bill

LA = "America/Los_Angeles"
TZ = ZoneInfo(LA)

DEMAND_PLAN = {
    "currency": "USD",
    "billing_cycle": {"start_day": 1},
    "versions": [
        {
            "effective_from": date(2024, 1, 1),
            "seasons": {"summer": "06-01", "winter": "10-01"},
            "time_of_use": {
                "summer": {
                    "weekday": [
                        {"period": "off-peak", "start": "21:00", "end": "16:00", "price_per_kwh": 0.12},
                        {"period": "on-peak", "start": "16:00", "end": "21:00", "price_per_kwh": 0.30},
                    ],
                    "weekend": [{"period": "off-peak", "start": "00:00", "end": "24:00", "price_per_kwh": 0.12}],
                },
                "winter": {
                    "weekday": [
                        {"period": "off-peak", "start": "21:00", "end": "16:00", "price_per_kwh": 0.11},
                        {"period": "on-peak", "start": "16:00", "end": "21:00", "price_per_kwh": 0.20},
                    ],
                    "weekend": [{"period": "off-peak", "start": "00:00", "end": "24:00", "price_per_kwh": 0.11}],
                },
            },
            "basic_charge_per_day": 0.50,
            "demand_charges": {
                "window_minutes": 15,
                "charges": [
                    {"label": "Facility demand", "price_per_kw": 9.75},
                    {"label": "Summer on-peak demand", "price_per_kw": 14.10, "seasons": ["summer"],
                     "periods": ["on-peak"]},
                ],
            },
        }
    ],
}


def _use_kwh(i: int, t: datetime) -> float:
    """A 5-minute load: a base, a daily swing, and a spike now and then (some on summer evenings)."""
    kwh = 0.08 + 0.05 * ((i * 7919) % 17) / 17
    if i % 4001 == 0:
        kwh += 1.3  # a 5-minute spike: alone it lifts its 15-minute window by 1.3 / 0.25 = 5.2 kW
    if t.astimezone(TZ).hour in (17, 18) and t.day in (3, 17):
        kwh += 0.4
    return round(kwh, 4)


def _year_of_readings() -> list[tuple[datetime, int, float]]:
    start = datetime(2024, 1, 1, tzinfo=TZ).astimezone(UTC)
    end = datetime(2025, 1, 1, tzinfo=TZ).astimezone(UTC)
    rows, t, i = [], start, 0
    while t < end:
        rows.append((t, 300, _use_kwh(i, t)))
        t += timedelta(minutes=5)
        i += 1
    return rows


def _hand_bills(rows: list[tuple[datetime, int, float]]) -> dict[tuple[int, int], dict[str, float]]:
    """Each calendar month's bill, worked out one reading at a time from the sheet's words."""
    windows: dict[int, float] = {}  # 15-minute window (UTC quarter hours: LA's are the same) -> kWh
    energy: dict[tuple[int, int], float] = {}
    for t, _, kwh in rows:
        wall = t.astimezone(TZ)
        month = (wall.year, wall.month)
        summer = 6 <= wall.month <= 9
        weekday = wall.weekday() < 5
        on_peak = weekday and 16 <= wall.hour < 21
        price = (0.30 if on_peak else 0.12) if summer else (0.20 if on_peak else 0.11)
        energy[month] = energy.get(month, 0.0) + kwh * price
        key = int(t.timestamp()) // 900
        windows[key] = windows.get(key, 0.0) + kwh
    bills: dict[tuple[int, int], dict[str, float]] = {}
    for key, kwh in windows.items():
        wall = datetime.fromtimestamp(key * 900, TZ)
        month = (wall.year, wall.month)
        kw = kwh / 0.25
        bill = bills.setdefault(month, {"facility_kw": 0.0, "on_peak_kw": 0.0})
        bill["facility_kw"] = max(bill["facility_kw"], kw)
        if 6 <= wall.month <= 9 and wall.weekday() < 5 and 16 <= wall.hour < 21:
            bill["on_peak_kw"] = max(bill["on_peak_kw"], kw)
    for month, bill in bills.items():
        first = date(month[0], month[1], 1)
        days = ((first.replace(day=28) + timedelta(days=4)).replace(day=1) - first).days
        bill["demand"] = bill["facility_kw"] * 9.75 + bill["on_peak_kw"] * 14.10
        bill["total"] = energy[month] + days * 0.50 + bill["demand"]
        # The bill as printed: each line to the cent, the total their sum.
        bill["printed_total"] = round(round(energy[month], 2) + round(days * 0.50, 2) + round(bill["demand"], 2), 2)
    return bills


def test_hand_bill_demand_charges_month_by_month():
    plan = parse_plan("DEMAND", DEMAND_PLAN)
    rows = _year_of_readings()
    expected = _hand_bills(rows)
    readings = ReadingArrays.from_columns([int(t.timestamp()) for t, _, _ in rows], [d for _, d, _ in rows],
                                          [k for _, _, k in rows], [0.0] * len(rows))
    priced = price_intervals(plan, readings, timezone=LA)
    assert len(expected) == 12
    for (year, month), bill in sorted(expected.items()):
        start = datetime(year, month, 1, tzinfo=TZ).astimezone(UTC)
        end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=TZ).astimezone(UTC)
        got = summarize(priced, start, end, include_demand=True)
        facility, on_peak = got.demand
        assert round(facility.peak_kw, 3) == round(bill["facility_kw"], 3), (year, month)
        assert round(on_peak.peak_kw, 3) == round(bill["on_peak_kw"], 3), (year, month)
        assert round(got.demand_charges, 2) == round(bill["demand"], 2), (year, month)
        assert round(got.total_cost, 2) == round(bill["total"], 2), (year, month)
        assert not facility.estimated
        if not 6 <= month <= 9:
            assert on_peak.peak_kw == 0.0 and on_peak.at is None
    # The year's bill (what-if) adds the same twelve demand charges, each bill's to the cent (as
    # twelve bills add up, not the year's unrounded sum).
    year = plan_bill(plan, readings, start=datetime(2024, 1, 1, tzinfo=TZ).astimezone(UTC),
                     end=datetime(2025, 1, 1, tzinfo=TZ).astimezone(UTC), timezone=LA)
    assert [c.demand_charges for c in year.cycle_bills] == [round(b["demand"], 2) for b in expected.values()]
    assert year.demand_charges == round(sum(round(b["demand"], 2) for b in expected.values()), 2)
    assert [c.total_cost for c in year.cycle_bills] == [b["printed_total"] for b in expected.values()]


def test_a_spike_sets_the_peak_and_its_window_start():
    plan = parse_plan("DEMAND", DEMAND_PLAN)
    start = datetime(2024, 7, 2, 12, 0, tzinfo=TZ)
    # 5-minute readings of 0.1 kWh (1.2 kW), one of 0.6 kWh at 17:05: its window 17:00-17:15 holds
    # 0.1 + 0.6 + 0.1 = 0.8 kWh over a quarter hour = 3.2 kW, on-peak on a summer weekday.
    rows = [(start + timedelta(minutes=5 * i), 0.6 if i == 61 else 0.1) for i in range(120)]
    readings = ReadingArrays.from_columns([int(t.timestamp()) for t, _ in rows], [300] * 120,
                                          [k for _, k in rows], [0.0] * 120)
    priced = price_intervals(plan, readings, timezone=LA)
    got = summarize(priced, datetime(2024, 7, 1, tzinfo=TZ), datetime(2024, 8, 1, tzinfo=TZ), include_demand=True)
    facility, on_peak = got.demand
    assert round(facility.peak_kw, 6) == 3.2 and round(on_peak.peak_kw, 6) == 3.2
    assert facility.at == datetime(2024, 7, 2, 17, 0, tzinfo=TZ)
    assert round(got.demand_charges, 2) == round(3.2 * 9.75 + 3.2 * 14.10, 2)
    # Today's or an interval's cost never carries the cycle's demand charge unless asked.
    assert summarize(priced, start, start + timedelta(hours=10)).demand_charges == 0.0


def test_a_30_minute_window_and_readings_coarser_than_it():
    # 15-minute readings into 30-minute windows: summed in pairs on the half hour.
    t0 = int(datetime(2024, 3, 4, 10, 0, tzinfo=TZ).timestamp())
    w = window_demand(np.array([t0, t0 + 900, t0 + 1800]), np.array([900, 900, 900]), np.array([1.0, 2.0, 0.5]), 1800)
    assert w.start_s.tolist() == [t0, t0 + 1800]
    assert np.allclose(w.demand_kw, [6.0, 1.0]) and not w.spread.any()
    # An hourly reading of 4 kWh over 15-minute windows: 1 kWh each, 4 kW, marked as spread.
    w = window_demand(np.array([t0]), np.array([3600]), np.array([4.0]), 900)
    assert w.start_s.tolist() == [t0, t0 + 900, t0 + 1800, t0 + 2700]
    assert np.allclose(w.demand_kw, 4.0) and w.spread.all()
    # A reading not on the window's clock (10:10-10:25) is split 5 and 10 minutes.
    w = window_demand(np.array([t0 + 600]), np.array([900]), np.array([0.3]), 900)
    assert np.allclose(w.demand_kw, [0.1 / 0.25, 0.2 / 0.25])


def test_cost_report_shows_the_cycle_peak_so_far_and_projects_it():
    plan = parse_plan("DEMAND", DEMAND_PLAN)
    start = datetime(2024, 7, 1, tzinfo=TZ).astimezone(UTC)
    rows = [(start + timedelta(minutes=15 * i), 0.5 if i == 70 else 0.25) for i in range(96 * 3)]
    readings = ReadingArrays.from_columns([int(t.timestamp()) for t, _ in rows], [900] * len(rows),
                                          [k for _, k in rows], [0.0] * len(rows))
    now = start + timedelta(days=3)
    report = cost_report(plan, readings, now=now, timezone=LA)
    facility = report.cycle.demand[0]
    assert facility.peak_kw == 2.0 and facility.at == start + timedelta(minutes=15 * 70)
    assert round(report.cycle.demand_charges, 2) == round(2.0 * 9.75 + 2.0 * 14.10, 2)  # 17:30 on a Monday: on-peak
    assert report.today.demand_charges == 0.0
    assert report.projection is not None
    assert report.projection.demand_charges == report.cycle.demand_charges
    assert report.projection.total_cost >= report.cycle.total_cost


def _with(**changes):
    plan = {**DEMAND_PLAN, "versions": [{**DEMAND_PLAN["versions"][0], "demand_charges": changes}]}
    return plan


@pytest.mark.parametrize(
    ("demand", "words"),
    [
        ({"window_minutes": 20, "charges": [{"price_per_kw": 1}]}, "5, 15, 30 or 60 minutes"),
        ({"window_minutes": 15, "charges": []}, "at least one charge"),
        ({"window_minutes": 15, "charges": [{"price_per_kw": 1, "periods": ["peak"]}]}, "unknown time-of-use period 'peak'"),
        ({"window_minutes": 15, "charges": [{"price_per_kw": 1, "seasons": ["spring"]}]}, "unknown season 'spring'"),
        ({"window_minutes": 15, "charges": [{"price_per_kw": 1, "months": [13]}]}, "a month 1-12"),
        ({"window_minutes": 15, "charges": [{"price_per_kw": 1, "hours": {"weekday": [{"start": "21:00", "end": "16:00"}]}}]},
         "end after they start"),
        ({"window_minutes": 15, "charges": [{"price_per_kw": -2}]}, "expected a number >= 0"),
    ],
)
def test_demand_charges_are_checked(demand, words):
    with pytest.raises(vol.Invalid) as err:
        parse_plan("BAD", _with(**demand))
    assert words in str(err.value)


def test_a_bad_demand_charge_in_a_rates_file_names_file_line_and_key(tmp_path: Path):
    path = tmp_path / "rates.yaml"
    path.write_text(
        "plans:\n"
        "  B:\n"
        "    currency: USD\n"
        "    billing_cycle: {start_day: 1}\n"
        "    versions:\n"
        "      - effective_from: 2024-01-01\n"
        "        energy_price_per_kwh: 0.2\n"
        "        demand_charges:\n"
        "          window_minutes: 15\n"
        "          charges:\n"
        "            - {price_per_kw: 12, periods: [on-peak]}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_rates(path)
    text = str(err.value)
    assert "rates.yaml:11: plans.B.versions.0.demand_charges.charges.0.periods" in text
    assert "no time-of-use periods" in text


def test_shares_of_a_longer_reading_mark_their_windows_spread():
    t0 = int(datetime(2024, 3, 4, 10, 0, tzinfo=TZ).timestamp())
    # Four quarter-hour shares of an hour's reading, then a 15-minute reading as read.
    w = window_demand(np.array([t0, t0 + 900, t0 + 1800, t0 + 2700, t0 + 3600]), np.array([900] * 5),
                      np.array([1.0, 1.0, 1.0, 1.0, 0.5]), 900,
                      whole_duration_s=np.array([3600, 3600, 3600, 3600, 900]))
    assert w.spread.tolist() == [True, True, True, True, False]


def test_the_level_a_charge_rises_above_is_that_of_the_charges_covering_now():
    from ems.demand import DemandPeak, level_now

    plan = parse_plan("DEMAND", DEMAND_PLAN)
    at = datetime(2024, 7, 2, 17, 0, tzinfo=TZ).astimezone(UTC)
    facility = DemandPeak("Facility demand", 9.75, 15, 6.0, at, 58.5, False)
    on_peak = DemandPeak("Summer on-peak demand", 14.10, 15, 4.0, at, 56.4, False)
    tuesday_evening = datetime(2024, 7, 9, 17, 30, tzinfo=TZ)
    assert level_now(plan, (facility, on_peak), tuesday_evening, LA) == 4.0  # on-peak: the lower peak
    assert level_now(plan, (facility, on_peak), tuesday_evening.replace(hour=10), LA) == 6.0  # off-peak: facility
    assert level_now(plan, (facility, on_peak), datetime(2024, 12, 3, 17, 30, tzinfo=TZ), LA) == 6.0  # winter
    unread = DemandPeak("Summer on-peak demand", 14.10, 15, 0.0, None, 0.0, False)
    assert level_now(plan, (facility, unread), tuesday_evening, LA) == 6.0  # a charge with no peak yet: not a level
    none_read = DemandPeak("Facility demand", 9.75, 15, 0.0, None, 0.0, False)
    assert level_now(plan, (none_read, unread), tuesday_evening, LA) is None
