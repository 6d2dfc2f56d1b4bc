"""Rate plans: a utility's published rate sheet (YAML) as frozen dataclasses.

A plan combines any of: tiered/block rates (baseline allowances per billing cycle, which may
depend on season and climate zone), time-of-use periods by season and day type (weekday,
weekend, holiday), critical peak pricing (a price adder during event hours), peak time
rebate (a credit per kWh reduced below a baseline during an event), hourly prices, a
generation credit (net metering), fixed charges and a billing cycle schedule. A customer can
be tiered and time-of-use at once (C6 3.2 step 2, note): the energy price of an interval is
the time-of-use (or hourly, or flat) price plus the tier's price plus any critical-peak adder.

Plans are versioned: each version applies from its ``effective_from`` (local wall-clock time)
until the next one, so history keeps the old prices. Times in the file are the site's local
time; the cost engine (``ems.costs``) works in aware UTC and converts.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import voluptuous as vol

from ems.config import describe_invalid, load_yaml
from ems.errors import ConfigError

MINUTES_PER_DAY = 24 * 60
DAY_TYPES = ("weekday", "weekend", "holiday")
ALL_YEAR = "all-year"
SAME_AS_IMPORT = "same_as_import"


# --- Frozen rate structures -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allowance:
    """Energy allocated to one tier: per billing cycle or per day (times the cycle's days).

    ``kwh`` is one number, or keyed by climate zone, or keyed by season (each a number or
    keyed by climate zone). Keys are strings.
    """

    kwh: float | Mapping[str, Any]
    per_day: bool
    by_season: bool = False  # the mapping's keys are season names

    def kwh_for(self, season: str, climate_zone: str | None) -> float:
        """The allowance for a season and climate zone; LookupError says what is missing."""
        value: Any = self.kwh
        if self.by_season:
            if season not in value:
                raise LookupError(f"no allowance for season {season!r}")
            value = value[season]
        if isinstance(value, Mapping):
            if climate_zone is None:
                raise LookupError("the allowance depends on the climate zone: set tariff.climate_zone")
            if climate_zone not in value:
                zones = ", ".join(sorted(value))
                raise LookupError(f"no allowance for climate zone {climate_zone!r} (zones: {zones})")
            value = value[climate_zone]
        return float(value)


def _keyed_by_season(value: Any, seasons: Any) -> bool:
    return isinstance(value, Mapping) and bool(value) and all(k in seasons for k in value)


@dataclass(frozen=True, slots=True)
class Tier:
    """One block of a tiered rate: its price (an adder on the period price) and allowance.

    The last tier has no allowance: it takes everything above the others.
    """

    number: int  # 1-based
    price_per_kwh: float
    allowance: Allowance | None


@dataclass(frozen=True, slots=True)
class Period:
    """A time-of-use period of one season and day type: [start, end) in local minutes.

    ``end_min`` <= ``start_min`` means the period wraps past midnight.
    """

    name: str
    start_min: int
    end_min: int
    price_per_kwh: float

    def covers(self, minute: int) -> bool:
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min


@dataclass(frozen=True, slots=True)
class TouSeason:
    """The periods of one season for each day type (weekday, weekend, holiday)."""

    name: str
    weekday: tuple[Period, ...]
    weekend: tuple[Period, ...]
    holiday: tuple[Period, ...]

    def periods(self, day_type: str) -> tuple[Period, ...]:
        return {"weekday": self.weekday, "weekend": self.weekend, "holiday": self.holiday}[day_type]


@dataclass(frozen=True, slots=True)
class EventWindow:
    """A critical peak or peak time rebate event: local date, [start, end) local minutes."""

    day: date
    start_min: int
    end_min: int
    baseline_kwh: float | None = None  # peak time rebate only; None: from typical days


@dataclass(frozen=True, slots=True)
class PeakTimeRebate:
    """A credit per kWh reduced below the baseline during an event."""

    credit_per_kwh: float
    baseline_days: int  # similar days averaged when an event has no explicit baseline


@dataclass(frozen=True, slots=True)
class DemandCharge:
    """A price per kW on the highest average demand over one demand window in a billing cycle.

    Only the windows that start in the charge's hours count: its months, seasons and time-of-use
    periods (each empty: any) and its local hours by day type (None: any time of day). A charge
    with none of these is the facility (any-time) demand charge.
    """

    label: str
    price_per_kw: float
    months: frozenset[int] = frozenset()
    seasons: frozenset[str] = frozenset()
    periods: frozenset[str] = frozenset()
    hours: Mapping[str, tuple[tuple[int, int], ...]] | None = None  # day type -> [start, end) local minutes


@dataclass(frozen=True, slots=True)
class DemandCharges:
    """A version's demand charges and the window its demand is averaged over (the sheet's 15 or 30 minutes)."""

    window_minutes: int
    charges: tuple[DemandCharge, ...]


@dataclass(frozen=True, slots=True)
class RateVersion:
    """The prices of a plan from ``effective_from`` (local wall clock) until the next version."""

    effective_from: datetime  # naive: local wall-clock time of the site
    seasons: tuple[tuple[str, int, int], ...]  # (name, start month, start day), in start order
    energy_price_per_kwh: float
    tiers: tuple[Tier, ...]
    time_of_use: Mapping[str, TouSeason]
    hourly_prices: Mapping[date, tuple[float, ...]]
    critical_peak_adder_per_kwh: float
    peak_time_rebate: PeakTimeRebate | None
    generation_credit_per_kwh: float
    generation_same_as_import: bool
    basic_charge_per_day: float
    minimum_bill_per_day: float
    demand: DemandCharges | None = None

    def season_of(self, day: date) -> str:
        """The season a local date falls in (each runs from its start until the next one's)."""
        if not self.seasons:
            return ALL_YEAR
        key = (day.month, day.day)
        current = self.seasons[-1][0]  # before the first start: the last season of the year
        for name, month, dom in self.seasons:
            if (month, dom) <= key:
                current = name
        return current

    def season_names(self) -> tuple[str, ...]:
        return tuple(s[0] for s in self.seasons) or (ALL_YEAR,)


# How a rate sheet moves a holiday that falls on a weekend (the holidays package's own ``observed``
# rules differ by country and are not a utility's: SCE, PG&E and SDG&E keep a Saturday holiday on the
# Saturday and add the Monday after a Sunday one).
OBSERVANCE_RULES = ("none", "nearest_weekday", "sunday_to_monday")


@dataclass(frozen=True, slots=True)
class HolidayCalendar:
    """The utility's holidays: the named ones of a country (and subdivision) from `holidays`,
    moved off a weekend by the rate sheet's own rule, plus extra dates.

    ``observed``: "none" (the day itself only), "sunday_to_monday" (a Sunday holiday also makes the
    Monday after one) or "nearest_weekday" (Saturday also makes the Friday before, Sunday the Monday
    after). The day itself stays a holiday either way.
    """

    country: str | None
    subdivision: str | None
    names: tuple[str, ...]  # keep only the holidays of these names (as `holidays` spells them); () all
    observed: str  # one of OBSERVANCE_RULES
    extra_dates: tuple[date, ...]

    def dates(self, years: range) -> frozenset[date]:
        return _holiday_dates(self, tuple(years))


def observed_day(day: date, rule: str) -> date | None:
    """The weekday a holiday on ``day`` is also kept on under an observance rule (None: no other day)."""
    weekday = day.weekday()
    if weekday == 6 and rule in ("sunday_to_monday", "nearest_weekday"):
        return day + timedelta(days=1)
    if weekday == 5 and rule == "nearest_weekday":
        return day - timedelta(days=1)
    return None


@lru_cache(maxsize=64)
def _holiday_dates(calendar: HolidayCalendar, years: tuple[int, ...]) -> frozenset[date]:
    found: set[date] = {d for d in calendar.extra_dates if d.year in years}
    if calendar.country and years:
        # The days themselves (the package's own observance left out), a year either side: a holiday
        # on 1 January of the next year can be kept on 31 December.
        around = range(min(years) - 1, max(years) + 2)
        table = country_holidays(calendar.country, subdiv=calendar.subdivision, years=around, observed=False)
        wanted = {n.lower() for n in calendar.names}
        for day, names in table.items():
            # one day may carry several names ("A; B")
            given = {n.strip().lower() for n in names.split(";")}
            if wanted and not given & wanted:
                continue
            for kept in (day, observed_day(day, calendar.observed)):
                if kept is not None and kept.year in years:
                    found.add(kept)
    return frozenset(found)


_COUNTRIES_LOCK = threading.Lock()


def country_holidays(country: str, *, subdiv: str | None, years: int | Iterable[int], observed: bool = True) -> Any:
    """``holidays.country_holidays``, loading only that country's calendar.

    The library is imported on first use (a plan without holidays never loads it), and its
    ``holidays.countries`` package is replaced by one that loads a country's module when asked
    for (``_lazy_countries_package``). Raises NotImplementedError for an unknown country or
    subdivision, as the library does.
    """
    import holidays

    _lazy_countries_package()
    return holidays.country_holidays(country, subdiv=subdiv, years=years, observed=observed)


def _lazy_countries_package() -> None:
    """Stand in for ``holidays.countries`` with the same package, less its ``__init__``.

    That ``__init__`` imports every country's module: 302 modules and ~8 MB for the one calendar
    a site uses, although the library's registry (``holidays.registry.EntityLoader``, behind
    ``country_holidays``) already imports a country's own module by name. The stand-in has the
    package's spec and path, so ``holidays.countries.<module>`` imports as before, and a
    module-level ``__getattr__`` resolves a class name (``from holidays.countries import
    UnitedStates``) through the registry. Left alone if the real package is already imported.
    """
    with _COUNTRIES_LOCK:
        if "holidays.countries" in sys.modules:
            return
        import holidays
        from holidays.registry import COUNTRIES

        spec = importlib.util.find_spec("holidays.countries")
        if spec is None or spec.submodule_search_locations is None:  # not the layout we know: load it whole
            return
        package = importlib.util.module_from_spec(spec)
        by_name = {name: module for module, names in COUNTRIES.items() for name in names}

        def resolve(name: str) -> Any:
            if name not in by_name:
                raise AttributeError(f"module 'holidays.countries' has no attribute {name!r}")
            return getattr(importlib.import_module(f"holidays.countries.{by_name[name]}"), name)

        package.__getattr__ = resolve  # type: ignore[method-assign]  # PEP 562
        sys.modules["holidays.countries"] = package
        holidays.countries = package  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class BillingCycleSchedule:
    """When billing cycles start: on a day of every month, or on listed dates.

    Cycles start at local midnight and end where the next begins. Past the listed dates the
    schedule continues monthly on the day of month of the nearest listed date.
    """

    start_day: int | None
    start_dates: tuple[date, ...]

    def cycle_of(self, day: date) -> tuple[date, date]:
        """The cycle holding a local date, as [start, end) dates."""
        if self.start_dates:
            dates = self.start_dates
            if dates[0] <= day < dates[-1]:
                start = max(d for d in dates if d <= day)
                return start, min(d for d in dates if d > day)
            anchor = dates[-1] if day >= dates[-1] else dates[0]
            start, end = _monthly_cycle(day, anchor.day)
            if day >= dates[-1]:
                start = max(start, dates[-1])
            else:
                end = min(end, dates[0])
            return start, end
        assert self.start_day is not None
        return _monthly_cycle(day, self.start_day)

    def cycles(self, first: date, last: date) -> list[tuple[date, date]]:
        """Every cycle that holds a date in [first, last]."""
        result = [self.cycle_of(first)]
        while result[-1][1] <= last:
            result.append(self.cycle_of(result[-1][1]))
        return result


def _month_day(year: int, month: int, dom: int) -> date:
    while month > 12:
        year, month = year + 1, month - 12
    while month < 1:
        year, month = year - 1, month + 12
    for d in range(dom, 27, -1):
        try:
            return date(year, month, d)
        except ValueError:
            continue
    return date(year, month, dom)


def _monthly_cycle(day: date, start_day: int) -> tuple[date, date]:
    this = _month_day(day.year, day.month, start_day)
    if day >= this:
        return this, _month_day(day.year, day.month + 1, start_day)
    return _month_day(day.year, day.month - 1, start_day), this


@dataclass(frozen=True, slots=True)
class RatePlan:
    """One rate plan of a utility, with every version of its prices."""

    name: str
    label: str
    utility_id: int
    utility_name: str
    currency: str
    holidays: HolidayCalendar
    billing_cycle: BillingCycleSchedule
    critical_peak_events: tuple[EventWindow, ...]
    peak_time_rebate_events: tuple[EventWindow, ...]
    versions: tuple[RateVersion, ...]

    def version_starts_utc(self, tz: ZoneInfo) -> list[datetime]:
        """When each version starts, aware UTC (the first one reaches back indefinitely)."""
        return [v.effective_from.replace(tzinfo=tz).astimezone(UTC) for v in self.versions]

    def version_at(self, at: datetime, tz: ZoneInfo) -> RateVersion:
        """The version in effect at an aware time (before the first: the first)."""
        current = self.versions[0]
        for version, start in zip(self.versions, self.version_starts_utc(tz), strict=True):
            if start <= at:
                current = version
        return current

    @property
    def kinds(self) -> tuple[str, ...]:
        """The types of rate this plan combines, in C6's words."""
        kinds = []
        if any(v.tiers for v in self.versions):
            kinds.append("tiered")
        if any(v.time_of_use for v in self.versions):
            kinds.append("time-of-use")
        if any(v.critical_peak_adder_per_kwh for v in self.versions):
            kinds.append("critical-peak")
        if any(v.peak_time_rebate for v in self.versions):
            kinds.append("peak-time-rebate")
        if any(v.hourly_prices for v in self.versions):
            kinds.append("hourly")
        if any(v.demand for v in self.versions):
            kinds.append("demand")
        if not kinds:
            kinds.append("flat")
        return tuple(kinds)

    @property
    def number_of_tiers(self) -> int:
        return max(len(v.tiers) for v in self.versions)

    def cycle_allowances_kwh(
        self, cycle: tuple[date, date], tz: ZoneInfo, climate_zone: str | None
    ) -> list[float]:
        """Energy allocated to each tier but the last for one cycle, kWh.

        Per-day allowances are added up day by day (the version and season of each day); a
        per-cycle allowance is the one in effect on the cycle's first day.
        """
        count = self.number_of_tiers - 1
        totals = [0.0] * count
        if count <= 0:
            return totals
        starts = self.version_starts_utc(tz)
        first, end = cycle
        day = first
        while day < end:
            midnight = datetime.combine(day, time(), tz)
            version = self.versions[0]
            for candidate, start in zip(self.versions, starts, strict=True):
                if start <= midnight:
                    version = candidate
            season = version.season_of(day)
            for k, tier in enumerate(version.tiers[:count]):
                allowance = tier.allowance
                assert allowance is not None
                if allowance.per_day:
                    totals[k] += allowance.kwh_for(season, climate_zone)
                elif day == first:
                    totals[k] += allowance.kwh_for(season, climate_zone)
            day += timedelta(days=1)
        return totals

    def billed_allowances_kwh(
        self, cycle: tuple[date, date], billed: tuple[date, date], tz: ZoneInfo, climate_zone: str | None
    ) -> list[float]:
        """``cycle_allowances_kwh`` for the days of a cycle that are billed, [billed[0], billed[1]).

        A cycle cut by the window billed (the what-if's 12 months begin and end inside one) gets
        its allowance prorated by days billed: a per-day allowance adds up only the days billed, a
        per-cycle one is its whole times days billed over the cycle's days.
        """
        first, end = max(cycle[0], billed[0]), min(cycle[1], billed[1])
        if (first, end) == cycle:
            return self.cycle_allowances_kwh(cycle, tz, climate_zone)
        count = self.number_of_tiers - 1
        if count <= 0:
            return []
        if end <= first:
            return [0.0] * count
        whole = self.cycle_allowances_kwh(cycle, tz, climate_zone)
        per_day = self.cycle_allowances_kwh((first, end), tz, climate_zone)  # per-cycle ones whole here
        share = (end - first).days / (cycle[1] - cycle[0]).days
        version = self.version_at(datetime.combine(cycle[0], time(), tz), tz)
        result = []
        for k in range(count):
            allowance = version.tiers[k].allowance
            if allowance is not None and not allowance.per_day:
                result.append(whole[k] * share)
            else:
                result.append(per_day[k])
        return result


@dataclass(frozen=True, slots=True)
class RatesFile:
    """Every plan of a rates file, by name."""

    path: Path
    plans: Mapping[str, RatePlan]


# --- Schema -------------------------------------------------------------------------------

_HHMM = re.compile(r"^(?:([01]\d|2[0-3]):([0-5]\d)|24:00)$")
_MMDD = re.compile(r"^(\d\d)-(\d\d)$")


def _minutes(value: Any) -> int:
    """'HH:MM' (00:00 to 24:00) as minutes after local midnight."""
    if not isinstance(value, str):
        raise vol.Invalid("expected a quoted time 'HH:MM' (unquoted 16:00 is a number in YAML)")
    match = _HHMM.match(value)
    if not match:
        raise vol.Invalid("expected a time 'HH:MM' from 00:00 to 24:00")
    if value == "24:00":
        return MINUTES_PER_DAY
    return int(match.group(1)) * 60 + int(match.group(2))


def _month_day_value(value: Any) -> tuple[int, int]:
    match = _MMDD.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise vol.Invalid("expected a quoted month and day 'MM-DD', such as '06-01'")
    month, dom = int(match.group(1)), int(match.group(2))
    try:
        date(2024, month, dom)
    except ValueError as err:
        raise vol.Invalid(f"not a day of the year: {err}") from err
    return month, dom


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        raise vol.Invalid("expected a date YYYY-MM-DD, not a date and time")
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as err:
        raise vol.Invalid("expected a date YYYY-MM-DD") from err


def _local_datetime(value: Any) -> datetime:
    """A date (local midnight) or a local date and time, as a naive wall-clock datetime."""
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        return datetime.combine(value, time())
    else:
        try:
            result = datetime.fromisoformat(str(value))
        except ValueError as err:
            raise vol.Invalid("expected a date YYYY-MM-DD or a local time 'YYYY-MM-DD HH:MM'") from err
    if result.tzinfo is not None:
        raise vol.Invalid("expected a local time without a UTC offset (the site's time zone applies)")
    return result


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z]{3}", value):
        raise vol.Invalid("expected an ISO 4217 currency code such as 'USD'")
    return value


_PRICE = vol.All(vol.Coerce(float), msg="expected a price (a number)")
_NON_NEGATIVE = vol.All(vol.Coerce(float), vol.Range(min=0, msg="expected a number >= 0"))
_KWH = vol.All(vol.Coerce(float), vol.Range(min=0, msg="expected kWh >= 0"))


def _allowance_value(value: Any) -> float | dict[str, Any]:
    """A number, or a mapping (climate zone or season) of numbers or of mappings of numbers."""
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            try:
                if isinstance(item, dict):
                    result[str(key)] = {str(k): _KWH(v) for k, v in item.items()}
                else:
                    result[str(key)] = _KWH(item)
            except vol.Invalid as err:
                raise vol.Invalid(err.msg, path=[key]) from err
        return result
    return float(_KWH(value))


_PERIOD = vol.Schema(
    {
        vol.Required("period"): vol.All(str, vol.Length(min=1)),
        vol.Required("start"): _minutes,
        vol.Required("end"): _minutes,
        vol.Required("price_per_kwh"): _PRICE,
    }
)
_TOU_SEASON = vol.Schema(
    {
        vol.Required("weekday"): [_PERIOD],
        vol.Optional("weekend"): [_PERIOD],
        vol.Optional("holiday"): [_PERIOD],
    }
)
_TIER = vol.Schema(
    {
        vol.Required("price_per_kwh"): _PRICE,
        vol.Exclusive("allowance_kwh", "allowance"): _allowance_value,
        vol.Exclusive("allowance_kwh_per_day", "allowance"): _allowance_value,
    }
)
_EVENT = vol.Schema(
    {
        vol.Required("date"): _date,
        vol.Required("start"): _minutes,
        vol.Required("end"): _minutes,
    }
)
_HOURS = vol.Schema({vol.Required("start"): _minutes, vol.Required("end"): _minutes})
_DEMAND_CHARGE = vol.Schema(
    {
        vol.Optional("label"): vol.All(str, vol.Length(min=1)),
        vol.Required("price_per_kw"): _NON_NEGATIVE,
        vol.Optional("months", default=[]): [vol.All(int, vol.Range(min=1, max=12, msg="expected a month 1-12"))],
        vol.Optional("seasons", default=[]): [str],
        vol.Optional("periods", default=[]): [str],
        vol.Optional("hours"): {
            vol.Required("weekday"): [_HOURS],
            vol.Optional("weekend"): [_HOURS],
            vol.Optional("holiday"): [_HOURS],
        },
    }
)
DEMAND_WINDOWS_MIN = (5, 15, 30, 60)
_DEMAND = vol.Schema(
    {
        vol.Required("window_minutes"): vol.All(
            int, vol.In(DEMAND_WINDOWS_MIN, msg="expected a demand window of 5, 15, 30 or 60 minutes")
        ),
        vol.Required("charges"): vol.All([_DEMAND_CHARGE], vol.Length(min=1, msg="give at least one charge")),
    }
)
_PTR_EVENT = _EVENT.extend({vol.Optional("baseline_kwh"): _KWH})
_VERSION = vol.Schema(
    {
        vol.Required("effective_from"): _local_datetime,
        vol.Optional("seasons"): {str: _month_day_value},
        vol.Optional("energy_price_per_kwh", default=0.0): _PRICE,
        vol.Optional("tiers", default=[]): [_TIER],
        vol.Optional("time_of_use", default={}): {str: _TOU_SEASON},
        vol.Optional("hourly_prices", default={}): {
            _date: vol.All([_PRICE], vol.Length(min=24, max=24, msg="expected 24 hourly prices"))
        },
        vol.Optional("critical_peak_adder_per_kwh", default=0.0): _PRICE,
        vol.Optional("peak_time_rebate"): {
            vol.Required("credit_per_kwh"): _NON_NEGATIVE,
            vol.Optional("baseline_days", default=5): vol.All(int, vol.Range(min=1, max=30)),
        },
        vol.Optional("generation_credit_per_kwh", default=0.0): vol.Any(
            SAME_AS_IMPORT, _PRICE, msg=f"expected a price or '{SAME_AS_IMPORT}'"
        ),
        vol.Optional("basic_charge_per_day", default=0.0): _NON_NEGATIVE,
        vol.Optional("minimum_bill_per_day", default=0.0): _NON_NEGATIVE,
        vol.Optional("demand_charges"): _DEMAND,
    }
)


def _holiday_calendar(value: Any) -> dict[str, Any]:
    data = vol.Schema(
        {
            vol.Optional("country"): str,
            vol.Optional("subdivision"): str,
            vol.Optional("names"): [str],
            vol.Optional("observed"): vol.In(
                OBSERVANCE_RULES, msg=f"expected one of {', '.join(OBSERVANCE_RULES)} (how the rate sheet keeps "
                "a holiday that falls on a weekend)"),
            vol.Optional("extra_dates", default=[]): [_date],
        }
    )(value)
    if "subdivision" in data and "country" not in data:
        raise vol.Invalid("a subdivision needs a country", path=["subdivision"])
    if "country" in data:
        # The rate sheet says which holidays it keeps and how: a country's whole calendar brings in
        # days a utility works (Juneteenth, the day after Thanksgiving, César Chávez Day in California).
        for key, what in (("names", "which holidays the rate sheet lists (names: [...], as the holidays package "
                                    "spells them)"),
                          ("observed", f"how the rate sheet keeps a holiday that falls on a weekend (observed: "
                                       f"{', '.join(OBSERVANCE_RULES)})")):
            if key not in data:
                raise vol.Invalid(f"a holiday calendar with a country must say {what}", path=[key])
        try:
            table = country_holidays(data["country"], subdiv=data.get("subdivision"), years=range(2024, 2031),
                                     observed=False)
        except NotImplementedError as err:
            key = "subdivision" if "subdivision" in data else "country"
            raise vol.Invalid(f"unknown to the holidays package: {err}", path=[key]) from err
        known = {n.strip() for names in table.values() for n in names.split(";")}
        lowered = {n.lower() for n in known}
        for i, name in enumerate(data["names"]):
            if name.lower() not in lowered:
                raise vol.Invalid(f"no holiday {name!r} in this calendar (it has: {', '.join(sorted(known))})",
                                  path=["names", i])
    data.setdefault("names", [])
    data.setdefault("observed", "none")
    return cast(dict[str, Any], data)


_PLAN = vol.Schema(
    {
        vol.Optional("label"): str,
        vol.Optional("utility_id", default=0): int,
        vol.Optional("utility_name", default=""): str,
        vol.Required("currency"): _currency,
        vol.Optional("holidays", default={}): _holiday_calendar,
        vol.Required("billing_cycle"): vol.Any(
            {vol.Required("start_day"): vol.All(int, vol.Range(min=1, max=31))},
            {vol.Required("start_dates"): vol.All([_date], vol.Length(min=1))},
            msg="expected either start_day (1-31) or start_dates (a list of dates)",
        ),
        vol.Optional("critical_peak_events", default=[]): [_EVENT],
        vol.Optional("peak_time_rebate_events", default=[]): [_PTR_EVENT],
        vol.Required("versions"): vol.All([_VERSION], vol.Length(min=1, msg="a plan needs at least one version")),
    }
)
RATES_SCHEMA = vol.Schema({vol.Required("plans"): vol.All({str: _PLAN}, vol.Length(min=1))})


# --- Checks the schema cannot express ------------------------------------------------------


def _fmt(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _check_day(periods: list[dict[str, Any]], path: list[Any]) -> list[vol.Invalid]:
    owner: list[int | None] = [None] * MINUTES_PER_DAY
    for i, p in enumerate(periods):
        start, end = p["start"] % MINUTES_PER_DAY, p["end"] % MINUTES_PER_DAY
        if start == end and len(periods) > 1:
            return [vol.Invalid("a period that lasts all day must be the only one", path=[*path, i])]
        minutes = range(start, end) if start < end else [*range(start, MINUTES_PER_DAY), *range(end)]
        for m in minutes:
            if owner[m] is not None:
                return [vol.Invalid(f"periods {owner[m]} and {i} overlap at {_fmt(m)}", path=[*path, i])]
            owner[m] = i
    if None in owner:
        first = owner.index(None)
        last = first
        while last < MINUTES_PER_DAY and owner[last] is None:
            last += 1
        return [vol.Invalid(f"no period covers {_fmt(first)}-{_fmt(last)}", path=path)]
    return []


def _check_version(v: dict[str, Any], path: list[Any], tiers_expected: int | None) -> list[vol.Invalid]:
    problems: list[vol.Invalid] = []
    seasons = v.get("seasons") or {}
    tou = v["time_of_use"]
    if tou:
        if not seasons and len(tou) > 1:
            problems.append(vol.Invalid("several time-of-use seasons need a 'seasons' list", path=[*path, "time_of_use"]))
        for name, season in tou.items():
            if seasons and name not in seasons:
                known = ", ".join(seasons)
                problems.append(vol.Invalid(f"unknown season (seasons: {known})", path=[*path, "time_of_use", name]))
            for day_type, periods in season.items():
                problems.extend(_check_day(periods, [*path, "time_of_use", name, day_type]))
        for name in seasons:
            if name not in tou:
                problems.append(vol.Invalid(f"season {name!r} has no time-of-use periods", path=[*path, "time_of_use"]))
    tiers = v["tiers"]
    for i, tier in enumerate(tiers):
        has = "allowance_kwh" in tier or "allowance_kwh_per_day" in tier
        if i < len(tiers) - 1 and not has:
            problems.append(vol.Invalid("every tier but the last needs allowance_kwh or allowance_kwh_per_day", path=[*path, "tiers", i]))
        if i == len(tiers) - 1 and has:
            problems.append(vol.Invalid("the last tier takes the rest: it has no allowance", path=[*path, "tiers", i]))
        allowance = tier.get("allowance_kwh", tier.get("allowance_kwh_per_day"))
        nested = isinstance(allowance, dict) and any(isinstance(x, dict) for x in allowance.values())
        if nested and not _keyed_by_season(allowance, seasons):
            problems.append(vol.Invalid("an allowance keyed twice must be by season, then by climate zone (unknown season)", path=[*path, "tiers", i]))
    problems.extend(_check_demand(v, path))
    if tiers_expected is not None and len(tiers) != tiers_expected:
        problems.append(vol.Invalid(f"every version of a plan needs the same number of tiers ({tiers_expected})", path=[*path, "tiers"]))
    return problems


def _check_demand(v: dict[str, Any], path: list[Any]) -> list[vol.Invalid]:
    """Demand charges name seasons and periods the version has, and hours that end after they start."""
    demand = v.get("demand_charges")
    if not demand:
        return []
    problems: list[vol.Invalid] = []
    seasons = v.get("seasons") or {}
    periods = {p["period"] for season in v["time_of_use"].values() for day in season.values() for p in day}
    for i, charge in enumerate(demand["charges"]):
        here = [*path, "demand_charges", "charges", i]
        for name in charge["seasons"]:
            if name not in seasons:
                known = ", ".join(seasons) or "none"
                problems.append(vol.Invalid(f"unknown season {name!r} (seasons: {known})", path=[*here, "seasons"]))
        for name in charge["periods"]:
            if name not in periods:
                known = ", ".join(sorted(periods)) or "none: the version has no time-of-use periods"
                problems.append(vol.Invalid(f"unknown time-of-use period {name!r} (periods: {known})",
                                            path=[*here, "periods"]))
        for day_type, spans in (charge.get("hours") or {}).items():
            for j, span in enumerate(spans):
                if span["end"] <= span["start"]:
                    problems.append(vol.Invalid("hours must end after they start (same day; split a span past midnight)",
                                                path=[*here, "hours", day_type, j, "end"]))
    return problems


def _check_plan(plan: dict[str, Any], path: list[Any]) -> list[vol.Invalid]:
    problems: list[vol.Invalid] = []
    versions = plan["versions"]
    for i in range(1, len(versions)):
        if versions[i]["effective_from"] <= versions[i - 1]["effective_from"]:
            problems.append(vol.Invalid("versions must be in order of effective_from", path=[*path, "versions", i, "effective_from"]))
    for i, version in enumerate(versions):
        expected = len(versions[0]["tiers"]) if i else None
        problems.extend(_check_version(version, [*path, "versions", i], expected))
    starts = plan["billing_cycle"].get("start_dates", [])
    if any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
        problems.append(vol.Invalid("cycle start dates must be in increasing order", path=[*path, "billing_cycle", "start_dates"]))
    for key in ("critical_peak_events", "peak_time_rebate_events"):
        for i, event in enumerate(plan[key]):
            if event["end"] <= event["start"]:
                problems.append(vol.Invalid("an event must end after it starts (same day)", path=[*path, key, i, "end"]))
    return problems


# --- Building the dataclasses ---------------------------------------------------------------


def _period(p: dict[str, Any]) -> Period:
    return Period(p["period"], p["start"] % MINUTES_PER_DAY, p["end"] % MINUTES_PER_DAY, p["price_per_kwh"])


def _version(v: dict[str, Any]) -> RateVersion:
    seasons = sorted(((name, md[0], md[1]) for name, md in (v.get("seasons") or {}).items()), key=lambda s: (s[1], s[2]))
    tou: dict[str, TouSeason] = {}
    for name, season in v["time_of_use"].items():
        key = name if seasons else ALL_YEAR
        weekday = tuple(_period(p) for p in season["weekday"])
        weekend = tuple(_period(p) for p in season["weekend"]) if "weekend" in season else weekday
        holiday = tuple(_period(p) for p in season["holiday"]) if "holiday" in season else weekend
        tou[key] = TouSeason(key, weekday, weekend, holiday)
    tiers = []
    season_names = {s[0] for s in seasons}
    for i, t in enumerate(v["tiers"]):
        allowance = None
        for key, per_day in (("allowance_kwh", False), ("allowance_kwh_per_day", True)):
            if key in t:
                by_season = _keyed_by_season(t[key], season_names)
                allowance = Allowance(t[key], per_day=per_day, by_season=by_season)
        tiers.append(Tier(i + 1, t["price_per_kwh"], allowance))
    ptr = v.get("peak_time_rebate")
    generation = v["generation_credit_per_kwh"]
    return RateVersion(
        effective_from=v["effective_from"],
        seasons=tuple(seasons),
        energy_price_per_kwh=v["energy_price_per_kwh"],
        tiers=tuple(tiers),
        time_of_use=tou,
        hourly_prices={d: tuple(p) for d, p in v["hourly_prices"].items()},
        critical_peak_adder_per_kwh=v["critical_peak_adder_per_kwh"],
        peak_time_rebate=PeakTimeRebate(ptr["credit_per_kwh"], ptr["baseline_days"]) if ptr else None,
        generation_credit_per_kwh=0.0 if generation == SAME_AS_IMPORT else float(generation),
        generation_same_as_import=generation == SAME_AS_IMPORT,
        basic_charge_per_day=v["basic_charge_per_day"],
        minimum_bill_per_day=v["minimum_bill_per_day"],
        demand=_demand(v.get("demand_charges")),
    )


def _demand(d: dict[str, Any] | None) -> DemandCharges | None:
    if not d:
        return None
    charges = []
    for c in d["charges"]:
        hours = None
        if "hours" in c:
            spans = {k: tuple((s["start"], s["end"]) for s in c["hours"][k]) for k in c["hours"]}
            weekday = spans["weekday"]
            weekend = spans.get("weekend", weekday)
            hours = {"weekday": weekday, "weekend": weekend, "holiday": spans.get("holiday", weekend)}
        label = c.get("label") or ("Demand" if not (c["periods"] or hours) else "Demand, " + ", ".join(c["periods"]))
        charges.append(DemandCharge(label, c["price_per_kw"], frozenset(c["months"]), frozenset(c["seasons"]),
                                    frozenset(c["periods"]), hours))
    return DemandCharges(d["window_minutes"], tuple(charges))


def _event(e: dict[str, Any]) -> EventWindow:
    return EventWindow(e["date"], e["start"], e["end"], e.get("baseline_kwh"))


def build_plan(name: str, data: dict[str, Any]) -> RatePlan:
    """A RatePlan from validated data (the output of the plan schema)."""
    cycle = data["billing_cycle"]
    cal = data["holidays"]
    return RatePlan(
        name=name,
        label=data.get("label") or name,
        utility_id=data["utility_id"],
        utility_name=data["utility_name"],
        currency=data["currency"],
        holidays=HolidayCalendar(
            cal.get("country"), cal.get("subdivision"), tuple(cal["names"]), cal["observed"], tuple(cal["extra_dates"])
        ),
        billing_cycle=BillingCycleSchedule(cycle.get("start_day"), tuple(cycle.get("start_dates", ()))),
        critical_peak_events=tuple(_event(e) for e in data["critical_peak_events"]),
        peak_time_rebate_events=tuple(_event(e) for e in data["peak_time_rebate_events"]),
        versions=tuple(_version(v) for v in data["versions"]),
    )


def parse_plan(name: str, raw: Any) -> RatePlan:
    """Validate one plan given as plain data (tests, what-if); vol.Invalid on a problem."""
    data = _PLAN(raw)
    problems = _check_plan(data, [])
    if problems:
        raise vol.MultipleInvalid(problems)
    return build_plan(name, data)


def load_rates(path: Path, climate_zone: str | None = None, check_plans: tuple[str, ...] = ()) -> RatesFile:
    """Load and check a rates file; ConfigError lists every problem with file, line and key path.

    Plans named in ``check_plans`` must also have every allowance for ``climate_zone``.
    """
    loaded = load_yaml(Path(path))
    try:
        data = RATES_SCHEMA(loaded.data)
    except vol.Invalid as err:
        raise ConfigError(describe_invalid(loaded, err)) from err
    problems: list[vol.Invalid] = []
    for name, plan in data["plans"].items():
        problems.extend(_check_plan(plan, ["plans", name]))
    if problems:
        raise ConfigError(describe_invalid(loaded, vol.MultipleInvalid(problems)))
    plans = {name: build_plan(name, plan) for name, plan in data["plans"].items()}
    zone_problems: list[vol.Invalid] = []
    for name in check_plans:
        if name in plans:
            zone_problems.extend(_check_allowances(plans[name], climate_zone))
    if zone_problems:
        raise ConfigError(describe_invalid(loaded, vol.MultipleInvalid(zone_problems)))
    return RatesFile(Path(path), plans)


def _check_allowances(plan: RatePlan, climate_zone: str | None) -> list[vol.Invalid]:
    problems = []
    for i, version in enumerate(plan.versions):
        for tier in version.tiers:
            if tier.allowance is None:
                continue
            for season in version.season_names():
                try:
                    tier.allowance.kwh_for(season, climate_zone)
                except LookupError as err:
                    path = ["plans", plan.name, "versions", i, "tiers", tier.number - 1]
                    problems.append(vol.Invalid(str(err), path=path))
                    break
    return problems
