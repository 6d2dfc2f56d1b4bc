"""`ems rates import`: URDB-format rates become plans that load and price a known year as the rate says."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ems.cli import main
from ems.costs import ReadingArrays, price_intervals, summarize
from ems.tariff import load_rates
from ems.urdb import UrdbError, import_rate
from tests.conftest import REPO

DATA = Path(__file__).parent / "data" / "urdb"
LA = "America/Los_Angeles"
TZ = ZoneInfo(LA)


@pytest.fixture
def rates(tmp_path: Path) -> Path:
    path = tmp_path / "rates.yaml"
    shutil.copy(REPO / "config" / "rates.yaml", path)
    return path


def _months(year: int = 2024) -> list[tuple[datetime, datetime]]:
    return [(datetime(year, m, 1, tzinfo=TZ), datetime(year + m // 12, m % 12 + 1, 1, tzinfo=TZ)) for m in range(1, 13)]


def _readings(step_min: int, kwh) -> tuple[list[tuple[datetime, float]], ReadingArrays]:
    t, end, rows = datetime(2024, 1, 1, tzinfo=TZ).astimezone(UTC), datetime(2025, 1, 1, tzinfo=TZ).astimezone(UTC), []
    i = 0
    while t < end:
        rows.append((t, kwh(i, t.astimezone(TZ))))
        t += timedelta(minutes=step_min)
        i += 1
    arrays = ReadingArrays.from_columns([int(t.timestamp()) for t, _ in rows], [step_min * 60] * len(rows),
                                        [k for _, k in rows], [0.0] * len(rows))
    return rows, arrays


def _days(start: datetime, end: datetime) -> int:
    return (end.date() - start.date()).days


def test_a_tiered_rate_bills_a_known_year(rates: Path):
    before = rates.read_text()
    converted = import_rate(DATA / "tiered.json", rates, name="URDB-TIERED")
    text = rates.read_text()
    assert text.startswith(before)  # appended: every comment of the file kept
    assert any("10.00 $/month" in n for n in converted.notes)
    plan = load_rates(rates).plans["URDB-TIERED"]
    assert plan.kinds == ("tiered",) and plan.utility_name == "Example Municipal Utility"
    # A day's use of 4 kWh an hour in the evening and 0.5 otherwise: 4 x 4 + 20 x 0.5 = 26 kWh.
    _, readings = _readings(60, lambda i, wall: 4.0 if 18 <= wall.hour < 22 else 0.5)
    priced = price_intervals(plan, readings, timezone=LA)
    for start, end in _months():
        days = _days(start, end)
        kwh = 26.0 * days + {3: -0.5, 11: 0.5}.get(start.month, 0.0)  # the hour DST skips or repeats (02:00, 0.5 kWh)
        t1, t2, t3 = min(kwh, 500), min(max(kwh - 500, 0), 500), max(kwh - 1000, 0)
        expected = t1 * 0.11 + t2 * 0.14 + t3 * 0.17 + days * 10.0 * 12 / 365
        bill = summarize(priced, start.astimezone(UTC), end.astimezone(UTC), include_demand=True)
        assert round(bill.energy_kwh, 3) == round(kwh, 3), start
        assert round(bill.total_cost, 2) == round(expected, 2), start


def test_a_time_of_use_rate_bills_a_known_year(rates: Path):
    import_rate(DATA / "tou.json", rates)
    plan = load_rates(rates).plans["RESIDENTIAL-TIME-OF-USE-TEST"]
    assert plan.kinds == ("time-of-use",)
    rows, readings = _readings(60, lambda i, wall: 1.0 + (i % 7) * 0.131)
    priced = price_intervals(plan, readings, timezone=LA)
    by_month: dict[int, float] = {}
    for t, kwh in rows:
        wall = t.astimezone(TZ)
        price = 0.20
        if wall.weekday() < 5 and 6 <= wall.month <= 9 and 16 <= wall.hour < 21:
            price = 0.40
        elif wall.weekday() < 5 and not 6 <= wall.month <= 9 and 17 <= wall.hour < 20:
            price = 0.30
        by_month[wall.month] = by_month.get(wall.month, 0.0) + kwh * price
    for start, end in _months():
        expected = by_month[start.month] + _days(start, end) * 0.40
        bill = summarize(priced, start.astimezone(UTC), end.astimezone(UTC))
        assert round(bill.total_cost, 2) == round(expected, 2), start


def test_a_demand_charge_rate_bills_a_known_year(rates: Path):
    import_rate(DATA / "demand.json", rates, name="URDB-DEMAND")
    plan = load_rates(rates).plans["URDB-DEMAND"]
    assert "demand" in plan.kinds
    charges = plan.versions[0].demand
    assert charges is not None and charges.window_minutes == 15
    assert [c.label for c in charges.charges] == ["Demand, weekdays 12:00-18:00", "Demand, any time", "Demand, any time"]

    def load(i: int, wall: datetime) -> float:
        kwh = 0.3 + 0.2 * ((i * 37) % 11) / 11
        if i % 997 == 0:
            kwh += 0.9
        return round(kwh, 4)

    rows, readings = _readings(15, load)
    priced = price_intervals(plan, readings, timezone=LA)
    for start, end in _months():
        mine = [(t.astimezone(TZ), kwh) for t, kwh in rows if start <= t < end]
        energy = sum(kwh for _, kwh in mine)
        peak = max(kwh / 0.25 for _, kwh in mine)
        summer = 6 <= start.month <= 9
        noon_peak = max((kwh / 0.25 for w, kwh in mine if w.weekday() < 5 and 12 <= w.hour < 18), default=0.0)
        demand = (noon_peak * 8.5 + peak * 6.25) if summer else peak * 4.0
        expected = energy * 0.09 + demand + _days(start, end) * 300.0 / 365
        bill = summarize(priced, start.astimezone(UTC), end.astimezone(UTC), include_demand=True)
        assert round(bill.demand_charges, 2) == round(demand, 2), start
        assert round(bill.total_cost, 2) == round(expected, 2), start


def test_what_a_plan_cannot_express_is_refused_thing_by_thing(rates: Path):
    before = rates.read_text()
    with pytest.raises(UrdbError) as err:
        import_rate(DATA / "inexpressible.json", rates)
    problems = err.value.problems
    assert any("'kWh daily'" in p for p in problems)
    assert any("demand tiers" in p for p in problems)
    assert any("demandratchetpercentage" in p and "ratchet" in p for p in problems)
    assert any("coincident demand" in p for p in problems)
    assert len(problems) == 4
    assert rates.read_text() == before


def test_the_command_adds_the_plan_and_says_what_it_approximated(rates: Path, capsys):
    assert main(["rates", "import", str(DATA / "tiered.json"), "--name", "MY-RATE", "--rates", str(rates)]) == 0
    out = capsys.readouterr().out
    assert "Added the plan MY-RATE" in out and "Note: the fixed charge" in out and "set tariff.plan to MY-RATE" in out
    assert "MY-RATE" in load_rates(rates).plans
    # The same name again is refused, and says what to do.
    assert main(["rates", "import", str(DATA / "tiered.json"), "--name", "MY-RATE", "--rates", str(rates)]) == 1
    assert "already has a plan 'MY-RATE': give another with --name" in capsys.readouterr().err
    assert main(["rates", "import", str(DATA / "inexpressible.json"), "--rates", str(rates)]) == 1
    assert "coincident demand" in capsys.readouterr().err


def test_a_missing_or_broken_file_is_named(rates: Path, tmp_path: Path):
    broken = tmp_path / "rate.json"
    broken.write_text("{not json")
    with pytest.raises(UrdbError, match="not a JSON file"):
        import_rate(broken, rates)
    with pytest.raises(UrdbError, match="cannot read the file"):
        import_rate(tmp_path / "absent.json", rates)
    assert date(2024, 1, 1) == load_rates(rates).plans["D-BASELINE"].versions[0].effective_from.date()


def test_tiers_on_time_of_use_become_adders_on_the_period_price():
    from ems.tariff import parse_plan
    from ems.urdb import convert

    evening = [[0] * 17 + [1] * 4 + [0] * 3 for _ in range(12)]
    converted = convert({
        "name": "TOU with tiers", "startdate": 1704067200,
        "energyratestructure": [
            [{"max": 300, "rate": 0.20}, {"rate": 0.26}],
            [{"max": 300, "rate": 0.35}, {"rate": 0.41}],
        ],
        "energyweekdayschedule": evening, "energyweekendschedule": evening,
    })
    version = converted.plan["versions"][0]
    assert version["tiers"] == [{"price_per_kwh": 0.0, "allowance_kwh": 300.0}, {"price_per_kwh": 0.06}]
    plan = parse_plan(converted.name, converted.plan)
    # 250 kWh at 17:00 then 100 at 10:00: 250 x 0.35, then 50 x 0.20 + 50 x (0.20 + 0.06).
    starts = [datetime(2024, 5, 6, 17, tzinfo=TZ), datetime(2024, 5, 7, 10, tzinfo=TZ)]
    readings = ReadingArrays.from_columns([int(t.timestamp()) for t in starts], [3600, 3600], [250.0, 100.0], [0, 0])
    bill = summarize(price_intervals(plan, readings, timezone=LA), starts[0], starts[1] + timedelta(hours=1))
    assert round(bill.energy_cost, 2) == round(250 * 0.35 + 50 * 0.20 + 50 * 0.26, 2)


def test_tiers_that_differ_between_periods_and_other_charges_are_refused():
    from ems.urdb import convert

    with pytest.raises(UrdbError) as err:
        convert({
            "energyratestructure": [[{"max": 300, "rate": 0.2}, {"rate": 0.3}], [{"max": 500, "rate": 0.3}, {"rate": 0.4}]],
            "energyweekdayschedule": [[0] * 12 + [1] * 12] * 12,
            "fixedchargefirstmeter": 5, "fixedchargeunits": "$/kW",
            "lookbackpercent": 0.5, "demandreactivepowercharge": 0.4,
            "fuelAdjustmentsMonthly": [0.01] * 12,
        })
    text = "\n".join(err.value.problems)
    for words in ("the periods have different tiers", "'$/kW'", "look-back", "reactive power", "month by month"):
        assert words in text, text
