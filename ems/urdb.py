"""`ems rates import`: a rate from the public Utility Rate Database (OpenEI URDB) as a plan in rates.yaml.

URDB's JSON export of one rate holds its energy charges as periods of tiers
(``energyratestructure``: per period a list of ``{rate, adj, max, unit}``; ``max`` is the tier's
upper bound in kWh per month), which period applies in each month and hour
(``energyweekdayschedule``, ``energyweekendschedule``: 12 rows of 24 period indexes, from 0),
fixed charges (``fixedchargefirstmeter`` in ``fixedchargeunits``), time-of-use demand charges
(``demandratestructure`` with ``demandweekdayschedule``/``demandweekendschedule``), flat
(any-time) demand charges by month (``flatdemandstructure``, ``flatdemandmonths``), the demand
window in minutes (``demandwindow``), and ``startdate``, ``name``, ``utility``.

What a plan here can say is converted exactly: months with the same hours become a season, a
day's runs of hours of one period become time-of-use periods, tiers with the same bounds in every
period become the plan's tiers (adders on the period price). What it cannot say stops the import
with one line each (tiers counted per day or per kW, tier bounds that differ between periods,
demand tiers, ratchets, coincident demand, other units), so a plan is never silently wrong. A few
things are approximated and said so: a monthly fixed charge becomes a daily one (a year of days
costs the same), and holidays, which URDB does not list, are priced as its schedules' weekdays.

The plan is appended under ``plans:`` as text, so the file's comments stay; the result is loaded
with ``load_rates`` before anything is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ems.errors import ConfigError, EmsError

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
SAME = 1e-9


class UrdbError(EmsError):
    """The rate cannot be imported; ``problems`` says each thing it holds that a plan cannot express."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("the rate cannot be imported:\n  " + "\n  ".join(problems))


@dataclass
class Converted:
    """A plan's data as rates.yaml holds it, and what the conversion approximated."""

    name: str
    plan: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _hhmm(hour: int) -> str:
    return f"{hour:02d}:00"


def _runs(row: list[int]) -> list[tuple[int, int, int]]:
    """(value, start hour, end hour) for each run of equal values in a 24-hour row."""
    runs: list[tuple[int, int, int]] = []
    start = 0
    for h in range(1, 25):
        if h == 24 or row[h] != row[start]:
            runs.append((row[start], start, h))
            start = h
    return runs


def _matrix(rate: dict[str, Any], key: str, problems: list[str]) -> list[list[int]] | None:
    value = rate.get(key)
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 12
            or any(not isinstance(r, list) or len(r) != 24 or any(not isinstance(x, int) for x in r) for r in value)):
        problems.append(f"{key}: expected 12 months of 24 hourly period numbers")
        return None
    return value


def _price(tier: dict[str, Any]) -> float:
    return float(tier.get("rate") or 0.0) + float(tier.get("adj") or 0.0)


def _plan_name(rate: dict[str, Any]) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "-", str(rate.get("name") or "URDB-RATE")).strip("-")
    return words.upper()[:40] or "URDB-RATE"


def _start(rate: dict[str, Any], notes: list[str]) -> date:
    value = rate.get("startdate")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).date()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
    notes.append("the rate has no start date: the plan applies from 2000-01-01")
    return date(2000, 1, 1)


def _seasons(weekday: list[list[int]], weekend: list[list[int]]) -> list[tuple[str, int, list[int]]]:
    """Runs of months with the same weekday and weekend hours: (name, first month 1-12, months)."""
    keys = [(tuple(weekday[m]), tuple(weekend[m])) for m in range(12)]
    runs: list[list[int]] = []
    for m in range(12):
        if runs and keys[runs[-1][-1]] == keys[m]:
            runs[-1].append(m)
        else:
            runs.append([m])
    if len(runs) > 1 and keys[runs[0][0]] == keys[runs[-1][-1]]:  # December runs on into January
        runs[0] = runs.pop() + runs[0]
    return [(f"{MONTHS[r[0]]}-{MONTHS[r[-1]]}" if len(r) > 1 else MONTHS[r[0]], r[0] + 1, [m + 1 for m in r])
            for r in runs]


def _energy(rate: dict[str, Any], version: dict[str, Any], problems: list[str]) -> None:
    structure = rate.get("energyratestructure")
    if not structure:
        return
    if not isinstance(structure, list) or any(not isinstance(p, list) or not p for p in structure):
        problems.append("energyratestructure: expected a list of periods, each a list of tiers")
        return
    for p, tiers in enumerate(structure):
        units = {tier.get("unit", "kWh") for tier in tiers if len(tiers) > 1 or tier.get("max") is not None}
        if "kWh daily" in units:
            problems.append(f"energyratestructure period {p + 1}: tiers counted per day ('kWh daily');"
                            " a plan's tiers count over the billing cycle")
        for unit in sorted(units - {"kWh", "kWh daily"}):
            problems.append(f"energyratestructure period {p + 1}: tiers in {unit!r}; a plan's tiers are in kWh"
                            " per billing cycle")
    bounds = [[t.get("max") for t in tiers[:-1]] for tiers in structure]
    if any(len(tiers) != len(structure[0]) for tiers in structure) or any(b != bounds[0] for b in bounds):
        problems.append("energyratestructure: the periods have different tiers; a plan's tiers are the same in"
                        " every time-of-use period")
        return
    if any(t.get("max") is not None for t in (tiers[-1] for tiers in structure)):
        problems.append("energyratestructure: the last tier has a 'max'; a plan's last tier takes the rest")
    first = [_price(tiers[0]) for tiers in structure]
    adders = [[_price(t) - _price(tiers[0]) for t in tiers] for tiers in structure]
    for p in range(1, len(structure)):
        if any(abs(a - b) > SAME for a, b in zip(adders[p], adders[0], strict=True)):
            problems.append(f"energyratestructure period {p + 1}: its tiers step up by other amounts than period 1's;"
                            " a plan's tier prices are the same adders in every period")
            return
    if len(structure[0]) > 1:
        previous = 0.0
        tiers_out = []
        for k, adder in enumerate(adders[0]):
            tier: dict[str, Any] = {"price_per_kwh": round(adder, 6)}
            if k < len(structure[0]) - 1:
                bound = float(bounds[0][k])
                tier["allowance_kwh"] = round(bound - previous, 6)
                previous = bound
            tiers_out.append(tier)
        version["tiers"] = tiers_out
    weekday = _matrix(rate, "energyweekdayschedule", problems)
    weekend = _matrix(rate, "energyweekendschedule", problems) or weekday
    if weekday is None or weekend is None:
        if len(structure) > 1:
            problems.append("energyratestructure has several periods but no energyweekdayschedule")
        version["energy_price_per_kwh"] = round(first[0], 6)
        return
    used = {x for row in weekday + weekend for x in row}
    if any(x < 0 or x >= len(structure) for x in used):
        problems.append(f"energy schedules name a period the energyratestructure does not have (it has {len(structure)})")
        return
    if len(used) == 1:
        version["energy_price_per_kwh"] = round(first[used.pop()], 6)
        return
    seasons = _seasons(weekday, weekend)
    if len(seasons) > 1:
        version["seasons"] = {name: f"{month:02d}-01" for name, month, _ in seasons}
    tou: dict[str, Any] = {}
    for name, _, months in seasons:
        m = months[0] - 1
        days: dict[str, Any] = {}
        for day_type, matrix in (("weekday", weekday), ("weekend", weekend)):
            days[day_type] = [{"period": f"period-{p + 1}", "start": _hhmm(a), "end": _hhmm(b),
                               "price_per_kwh": round(first[p], 6)} for p, a, b in _runs(matrix[m])]
        tou[name if len(seasons) > 1 else "all-year"] = days
    version["time_of_use"] = tou


def _demand_price(structure: list[Any], p: int, key: str, problems: list[str]) -> float | None:
    tiers = structure[p]
    if not isinstance(tiers, list) or not tiers:
        problems.append(f"{key} period {p + 1}: expected a list of tiers")
        return None
    if len(tiers) > 1:
        problems.append(f"{key} period {p + 1}: demand tiers (a price by kW band); a plan's demand charge is one"
                        " price per kW")
        return None
    return _price(tiers[0])


def _hours_label(weekdays: tuple[tuple[int, int], ...], weekends: tuple[tuple[int, int], ...]) -> str:
    """'Demand, weekdays 12:00-18:00' (the hours a time-of-use demand charge covers, in words)."""
    def spans(hours: tuple[tuple[int, int], ...]) -> str:
        return ", ".join(f"{_hhmm(a)}-{_hhmm(b)}" for a, b in hours)

    if weekdays == weekends:
        return f"Demand, {spans(weekdays)}"
    parts = [f"weekdays {spans(weekdays)}" if weekdays else "", f"weekends {spans(weekends)}" if weekends else ""]
    return "Demand, " + "; ".join(p for p in parts if p)


def _demand(rate: dict[str, Any], version: dict[str, Any], notes: list[str], problems: list[str]) -> None:
    charges: list[dict[str, Any]] = []
    for unit_key in ("demandrateunit", "flatdemandunit", "demandunits"):
        unit = rate.get(unit_key)
        if unit is not None and unit != "kW":
            problems.append(f"{unit_key}: demand in {unit!r}; a plan's demand charges are per kW")
    structure = rate.get("demandratestructure")
    if structure:
        weekday = _matrix(rate, "demandweekdayschedule", problems)
        weekend = _matrix(rate, "demandweekendschedule", problems) or weekday
        if weekday is None or weekend is None:
            problems.append("demandratestructure has no demandweekdayschedule saying when each period applies")
        else:
            for p in range(len(structure)):
                price = _demand_price(structure, p, "demandratestructure", problems)
                if not price:
                    continue
                groups: dict[tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]], list[int]] = {}
                for m in range(12):
                    spans = tuple(tuple((a, b) for x, a, b in _runs(matrix[m]) if x == p)
                                  for matrix in (weekday, weekend))
                    if spans[0] or spans[1]:
                        groups.setdefault(spans, []).append(m + 1)  # type: ignore[arg-type]
                for (on_weekdays, on_weekends), months in groups.items():
                    charge: dict[str, Any] = {
                        "label": _hours_label(on_weekdays, on_weekends),
                        "price_per_kw": round(price, 6),
                        "hours": {"weekday": [{"start": _hhmm(a), "end": _hhmm(b)} for a, b in on_weekdays],
                                  "weekend": [{"start": _hhmm(a), "end": _hhmm(b)} for a, b in on_weekends]},
                    }
                    if len(months) < 12:
                        charge["months"] = months
                    charges.append(charge)
    flat = rate.get("flatdemandstructure")
    if flat:
        months_of = rate.get("flatdemandmonths")
        if not isinstance(months_of, list) or len(months_of) != 12:
            problems.append("flatdemandstructure has no flatdemandmonths (12 period numbers) saying which applies when")
        else:
            for p in range(len(flat)):
                price = _demand_price(flat, p, "flatdemandstructure", problems)
                months = [m + 1 for m in range(12) if months_of[m] == p]
                if price and months:
                    charge = {"label": "Demand, any time", "price_per_kw": round(price, 6)}
                    if len(months) < 12:
                        charge["months"] = months
                    charges.append(charge)
    ratchet = rate.get("demandratchetpercentage")
    if ratchet and any(float(x or 0) for x in ratchet):
        problems.append("demandratchetpercentage: a demand ratchet (a share of an earlier month's peak billed as a"
                        " floor); a plan's demand charges count each billing cycle alone")
    if rate.get("lookbackpercent") or rate.get("lookbackrange"):
        problems.append("lookbackpercent: a demand look-back (a share of the highest peak of earlier months billed"
                        " as a floor); a plan's demand charges count each billing cycle alone")
    if rate.get("demandreactivepowercharge"):
        problems.append("demandreactivepowercharge: a charge on reactive power (kVAR); the meter's readings here"
                        " are energy and demand only")
    fuel = rate.get("fuelAdjustmentsMonthly")
    if fuel and any(float(x or 0) for x in fuel):
        problems.append("fuelAdjustmentsMonthly: a price adder that changes month by month; add it to each"
                        " month's version by hand or leave it out")
    if rate.get("coincidentratestructure"):
        problems.append("coincidentratestructure: coincident demand (at the utility's system peak, not the"
                        " customer's); a plan cannot say when the system peaks")
    if not charges:
        return
    window = rate.get("demandwindow")
    if window is None:
        window = 15
        notes.append("the rate does not say its demand window: 15 minutes assumed")
    if window not in (5, 15, 30, 60):
        problems.append(f"demandwindow: {window} minutes; a plan's demand window is 5, 15, 30 or 60 minutes")
        return
    version["demand_charges"] = {"window_minutes": int(window), "charges": charges}


def _fixed(rate: dict[str, Any], version: dict[str, Any], notes: list[str], problems: list[str]) -> None:
    per_year = {"$/day": 365.0, "$/month": 12.0, "$/year": 1.0}
    for amount_key, unit_key, out, words in (
        ("fixedchargefirstmeter", "fixedchargeunits", "basic_charge_per_day", "fixed charge"),
        ("mincharge", "minchargeunits", "minimum_bill_per_day", "minimum charge"),
    ):
        amount = rate.get(amount_key)
        if not amount:
            continue
        unit = rate.get(unit_key, "$/month")
        if unit not in per_year:
            problems.append(f"{unit_key}: a {words} in {unit!r}; a plan's are per day (or converted from $/month"
                            " or $/year)")
            continue
        daily = float(amount) * per_year[unit] / 365.0
        version[out] = round(daily, 9)
        if unit != "$/day":
            notes.append(f"the {words} of {float(amount):.2f} {unit} is charged as {daily:.4f} a day"
                         " (a year of days costs the same; a month's bill may differ by a few cents)")
    if rate.get("fixedchargeeaaddl"):
        notes.append("fixedchargeeaaddl (a charge per additional meter) is not imported")


def convert(rate: dict[str, Any], name: str | None = None) -> Converted:
    """A URDB rate (one item of its JSON export) as a plan; UrdbError lists what cannot be expressed."""
    if isinstance(rate.get("items"), list):  # the API's answer: {"items": [rate, ...]}
        items = rate["items"]
        if len(items) != 1:
            raise UrdbError([f"the file holds {len(items)} rates; export one (its page's JSON)"])
        rate = items[0]
    notes: list[str] = []
    problems: list[str] = []
    version: dict[str, Any] = {"effective_from": _start(rate, notes)}
    _energy(rate, version, problems)
    _demand(rate, version, notes, problems)
    _fixed(rate, version, notes, problems)
    if "energyratestructure" not in rate and "demand_charges" not in version and not problems:
        problems.append("the rate has no energyratestructure and no demand charges: nothing to price")
    if problems:
        raise UrdbError(problems)
    notes.append("holidays: the rate database does not list them, so they are priced as weekdays;"
                 " add a holidays section if the sheet has them")
    if rate.get("enddate"):
        notes.append(f"the rate ended on {_start({'startdate': rate['enddate']}, [])}")
    plan: dict[str, Any] = {
        "label": str(rate.get("name") or name or "URDB rate"),
        "utility_id": int(rate.get("eiaid") or 0),
        "utility_name": str(rate.get("utility") or ""),
        "currency": "USD",
        "billing_cycle": {"start_day": 1},
        "versions": [version],
    }
    return Converted(name or _plan_name(rate), plan, notes)


def plan_text(converted: Converted, source: str) -> str:
    """The plan as rates.yaml text under ``plans:`` (two spaces in), with a comment naming its source."""
    import yaml

    body = yaml.safe_dump({converted.name: converted.plan}, sort_keys=False, default_flow_style=None, width=110,
                          allow_unicode=True)
    lines = [f"  # Imported from the Utility Rate Database ({source})."]
    lines += [f"  # Note: {n}" for n in converted.notes]
    lines += ["  " + line if line else line for line in body.splitlines()]
    return "\n".join(lines) + "\n"


def import_rate(source: Path, rates_path: Path, name: str | None = None) -> Converted:
    """Convert the rate in ``source`` and append it to ``rates_path``; the file is unchanged on any problem."""
    import yaml

    from ems.tariff import load_rates

    try:
        rate = json.loads(source.read_text(encoding="utf-8"))
    except OSError as err:
        raise UrdbError([f"{source}: cannot read the file: {err.strerror}"]) from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UrdbError([f"{source}: not a JSON file ({err})"]) from err
    if not isinstance(rate, dict):
        raise UrdbError([f"{source}: expected one rate (a JSON object)"])
    converted = convert(rate, name)
    existing = rates_path.read_text(encoding="utf-8") if rates_path.exists() else "plans:\n"
    top = yaml.safe_load(existing) or {}
    if not isinstance(top, dict) or (top and list(top)[-1] != "plans"):
        raise UrdbError([f"{rates_path}: 'plans:' must be the file's last section to append a plan to it"])
    if converted.name in (top.get("plans") or {}):
        raise UrdbError([f"{rates_path} already has a plan {converted.name!r}: give another with --name"])
    if not top:
        existing = existing.rstrip("\n") + "\nplans:\n"
    text = existing if existing.endswith("\n") else existing + "\n"
    text += "\n" + plan_text(converted, source.name)
    trial = rates_path.with_name(rates_path.name + ".new")
    trial.write_text(text, encoding="utf-8")
    try:
        load_rates(trial)
    except ConfigError:
        trial.unlink()
        raise
    trial.replace(rates_path)
    return converted


def add_rates_command(sub: Any, default_rates: Path) -> None:
    """`ems rates import FILE.json [--name NAME] [--rates PATH]` (no heavy import: `ems --help` stays fast)."""
    rates = sub.add_parser("rates", help="rate plans: import one from the public utility rate database")
    actions = rates.add_subparsers(dest="rates_command", required=True)
    imp = actions.add_parser("import", help="add a rate from the Utility Rate Database (its JSON export) to rates.yaml")
    imp.add_argument("file", type=Path, help="the rate's JSON, as OpenEI's Utility Rate Database exports it")
    imp.add_argument("--name", help="the plan's name in rates.yaml (default: from the rate's name)")
    imp.add_argument("--rates", type=Path, default=default_rates,
                     help=f"the rates file to add it to (default: {default_rates})")

