"""Rate plans: the shipped rates file loads; bad files name the file, line and key path."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ems.config import default_config_dir, load_config
from ems.errors import ConfigError
from ems.tariff import BillingCycleSchedule, load_rates

LA = ZoneInfo("America/Los_Angeles")


def test_shipped_rates_file_loads_and_config_names_the_plan():
    from ems.cli import read_config

    config = read_config(default_config_dir())
    assert config.tariff is not None and config.tariff.plan == "TOU-D-T"
    plans = config.tariff.rates.plans
    assert {"D-BASELINE", "TOU-D-4-9PM", "TOU-D-T", "TOU-D-CPP", "D-PTR"} <= set(plans)
    assert plans["TOU-D-T"].kinds == ("tiered", "time-of-use")
    assert "critical-peak" in plans["TOU-D-CPP"].kinds and "peak-time-rebate" in plans["D-PTR"].kinds


def test_versions_keep_history():
    plan = load_rates(default_config_dir() / "rates.yaml").plans["TOU-D-T"]
    old = plan.version_at(datetime(2024, 2, 29, 12, tzinfo=UTC), LA)
    new = plan.version_at(datetime(2024, 3, 1, 8, tzinfo=UTC), LA)  # midnight in Los Angeles
    assert old.time_of_use["all-year"].weekday[1].price_per_kwh == 0.48
    assert new.time_of_use["all-year"].weekday[1].price_per_kwh == 0.51


def test_baseline_depends_on_season_and_climate_zone():
    plan = load_rates(default_config_dir() / "rates.yaml").plans["D-BASELINE"]
    # May: 31 winter days x 10.7; June: 30 summer days x 17.4 (zone 10).
    assert plan.cycle_allowances_kwh((date(2024, 5, 1), date(2024, 6, 1)), LA, "10") == [pytest.approx(331.7)]
    assert plan.cycle_allowances_kwh((date(2024, 6, 1), date(2024, 7, 1)), LA, "10") == [pytest.approx(522.0)]


def test_billing_cycles_by_day_and_by_dates():
    assert BillingCycleSchedule(31, ()).cycle_of(date(2024, 2, 15)) == (date(2024, 1, 31), date(2024, 2, 29))
    listed = BillingCycleSchedule(None, (date(2024, 1, 5), date(2024, 2, 6), date(2024, 3, 5)))
    assert listed.cycle_of(date(2024, 2, 6)) == (date(2024, 2, 6), date(2024, 3, 5))
    assert listed.cycle_of(date(2024, 3, 20)) == (date(2024, 3, 5), date(2024, 4, 5))


BAD = """\
plans:
  X:
    currency: usd
    billing_cycle: {start_day: 1}
    versions:
      - effective_from: 2024-01-01
        seasons: {summer: "06-01", winter: "10-01"}
        time_of_use:
          summer:
            weekday:
              - {period: a, start: "00:00", end: 16:00, price_per_kwh: 0.3}
          winter:
            weekday:
              - {period: a, start: "00:00", end: "16:00", price_per_kwh: 0.3}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rates.yaml"
    path.write_text(text)
    return path


def test_schema_errors_name_file_line_and_key_path(tmp_path):
    path = write(tmp_path, BAD)
    with pytest.raises(ConfigError) as err:
        load_rates(path)
    text = "\n".join(err.value.problems)
    assert f"{path}:3: plans.X.currency: expected an ISO 4217 currency code" in text
    assert f"{path}:11: plans.X.versions.0.time_of_use.summer.weekday.0.end: expected a quoted time" in text


def test_uncovered_hours_name_the_day_type(tmp_path):
    path = write(tmp_path, BAD.replace("currency: usd", "currency: USD").replace("end: 16:00", 'end: "24:00"'))
    with pytest.raises(ConfigError) as err:
        load_rates(path)
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}:13: plans.X.versions.0.time_of_use.winter.weekday: no period covers 16:00-24:00")


def test_config_checks_plan_and_climate_zone(tmp_path):
    (tmp_path / "rates.yaml").write_text((default_config_dir() / "rates.yaml").read_text())
    (tmp_path / "ems.yaml").write_text("tariff:\n  plan: NOPE\n")
    with pytest.raises(ConfigError, match=r"ems.yaml:2: tariff.plan: no plan 'NOPE'"):
        load_config(tmp_path)
    (tmp_path / "ems.yaml").write_text("tariff:\n  plan: D-BASELINE\n  climate_zone: 99\n")
    with pytest.raises(ConfigError, match=r"rates.yaml:\d+: plans.D-BASELINE.versions.0.tiers.0: no allowance for climate zone '99'"):
        load_config(tmp_path)


HOLIDAYS_PROBE = """
import json, sys
from ems.tariff import HolidayCalendar
us = HolidayCalendar("US", "CA", (), "nearest_weekday", ()).dates(range(2026, 2027))
loaded = sorted(m for m in sys.modules if m.startswith("holidays.countries."))
from holidays.countries import Canada  # the package still answers a class name, through the registry
import holidays
print(json.dumps({"us": sorted(d.isoformat() for d in us), "loaded": loaded,
                  "canada": sorted(d.isoformat() for d in Canada(years=2026)),
                  "de": sorted(d.isoformat() for d in holidays.country_holidays("DE", years=2026))}))
"""


def test_a_holiday_calendar_loads_its_own_country_not_every_country():
    """`holidays` imports all 302 countries' modules (~8 MB) through its ``holidays.countries``
    package; the plan's calendar needs one. Another country still loads when asked for."""
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    result = subprocess.run([sys.executable, "-c", HOLIDAYS_PROBE], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    found = json.loads(result.stdout)
    assert found["loaded"] == ["holidays.countries.united_states"]
    assert {"2026-01-01", "2026-07-03", "2026-11-26", "2026-03-31"} <= set(found["us"])  # 07-03: observed; 03-31: CA
    assert "2026-07-01" in found["canada"] and "2026-10-03" in found["de"]  # Canada Day, German Unity Day


# --- Holidays: the rate sheet's own list and observance rule ------------------------------------

# SCE's TOU schedules (PG&E's and SDG&E's say the same): eight holidays; a Sunday one makes the
# Monday after a holiday, a Saturday one moves nowhere. 2026: Independence Day is a Saturday (no
# Friday 3 July), nothing falls on a Sunday. Not Martin Luther King Jr. Day (19 Jan), Cesar Chavez
# Day (31 Mar), Juneteenth (19 Jun) or the day after Thanksgiving (27 Nov).
SCE_2026 = {date(2026, 1, 1), date(2026, 2, 16), date(2026, 5, 25), date(2026, 7, 4),
            date(2026, 9, 7), date(2026, 11, 11), date(2026, 11, 26), date(2026, 12, 25)}
# 2027: Independence Day is a Sunday (Monday 5 July too); Christmas a Saturday (no Friday 24 Dec);
# New Year's Day 2028 a Saturday (no Friday 31 Dec 2027).
SCE_2027 = {date(2027, 1, 1), date(2027, 2, 15), date(2027, 5, 31), date(2027, 7, 4), date(2027, 7, 5),
            date(2027, 9, 6), date(2027, 11, 11), date(2027, 11, 25), date(2027, 12, 25)}


@pytest.mark.parametrize("plan", ["TOU-D-4-9PM", "TOU-D-T", "TOU-D-CPP", "D-PTR"])
def test_shipped_plans_keep_the_utilitys_holidays(plan):
    calendar = load_rates(default_config_dir() / "rates.yaml").plans[plan].holidays
    assert calendar.dates(range(2026, 2027)) == SCE_2026
    assert calendar.dates(range(2027, 2028)) == SCE_2027


def test_independence_day_2026_on_a_saturday_leaves_friday_on_peak():
    """Friday 3 July 2026, 17:00 on the 4-9 PM plan: a weekday's on-peak price, not the weekend's."""
    from ems.costs import ReadingArrays, price_intervals

    plan = load_rates(default_config_dir() / "rates.yaml").plans["TOU-D-4-9PM"]
    starts = [int(datetime(2026, 7, d, 17, tzinfo=LA).timestamp()) for d in (3, 4)]
    priced = price_intervals(plan, ReadingArrays.from_columns(starts, [3600, 3600], [1.0, 1.0], [0.0, 0.0]),
                             timezone="America/Los_Angeles")
    assert priced.unit_price_per_kwh.tolist() == [0.55, 0.41]  # Friday on-peak; the holiday (weekend) mid-peak


def _calendar(**holidays):
    from ems.tariff import parse_plan

    return parse_plan("H", {"currency": "USD", "holidays": holidays, "billing_cycle": {"start_day": 1},
                            "versions": [{"effective_from": date(2024, 1, 1), "energy_price_per_kwh": 0.3}]}).holidays


def test_observance_rules():
    days = {"names": ["Independence Day", "Christmas Day"], "country": "US"}
    # 2027: 4 July a Sunday, 25 December a Saturday.
    assert _calendar(**days, observed="none").dates(range(2027, 2028)) == {date(2027, 7, 4), date(2027, 12, 25)}
    assert _calendar(**days, observed="sunday_to_monday").dates(range(2027, 2028)) == {
        date(2027, 7, 4), date(2027, 7, 5), date(2027, 12, 25)}
    assert _calendar(**days, observed="nearest_weekday").dates(range(2027, 2028)) == {
        date(2027, 7, 4), date(2027, 7, 5), date(2027, 12, 24), date(2027, 12, 25)}
    # A holiday of the next year kept in this one: 1 January 2028 (a Saturday) on Friday 31 December.
    new_year = _calendar(country="US", names=["New Year's Day"], observed="nearest_weekday")
    assert date(2027, 12, 31) in new_year.dates(range(2027, 2028))
    assert date(2027, 12, 31) not in new_year.dates(range(2028, 2029))


@pytest.mark.parametrize(("holidays", "message"), [
    ({"country": "US", "names": ["Labor Day"]}, "must say how the rate sheet keeps a holiday that falls on a weekend"),
    ({"country": "US", "observed": "none"}, "must say which holidays the rate sheet lists"),
    ({"country": "US", "names": ["Labor Day"], "observed": True}, "expected one of none, nearest_weekday, sunday_to_monday"),
    ({"country": "US", "names": ["Thanksgiving"], "observed": "none"}, "no holiday 'Thanksgiving' in this calendar"),
])
def test_a_holiday_calendar_says_which_days_and_how(holidays, message):
    import voluptuous as vol

    with pytest.raises(vol.Invalid, match=message):
        _calendar(**holidays)
