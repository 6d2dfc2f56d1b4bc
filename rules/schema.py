"""The rules file: YAML validated with voluptuous into a ``RuleSet``, every problem at once.

Each problem reads ``file:line: key.path: problem (found …)`` so the Rules page can show it in
place. Rules are validated one by one (voluptuous stops a list at its first deep error), so
two broken rules give two problems.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import voluptuous as vol

from ems.config import LoadedYaml, describe_invalid, load_yaml, parse_yaml
from ems.errors import ConfigError
from ems.model import ComfortLimits, Criticality, DeviceClass, DeviceKind, DevicePreference
from rules.ruleset import (
    ALL_DAYS,
    DAY_NAMES,
    DEFAULT_SUMMER_MONTHS,
    MINUTES_PER_DAY,
    Action,
    DaysCondition,
    DemandCondition,
    DemandTrigger,
    DemandWindowCondition,
    DutyCycleAction,
    EventCondition,
    EventFilter,
    EventTrigger,
    FollowEventAction,
    NotifyAction,
    OffsetAction,
    Phase,
    PriceTrigger,
    ReduceLoadAction,
    Rule,
    RuleSet,
    ScheduleTrigger,
    SeasonCondition,
    SetpointAction,
    ShedToLimitAction,
    SwitchAction,
    Target,
    TargetBy,
    Temperature,
    TierTrigger,
    TimeCondition,
    TimeWindow,
    Where,
)

# Placeholders a notification's text may use (filled from the event that made the rule hold).
NOTIFY_FIELDS = ("event_id", "start", "end", "criticality", "duration_min", "rule")
# Actions that need targets to mean anything (the others default to every device or none).
_NEEDS_TARGETS = (SetpointAction, OffsetAction, SwitchAction, DutyCycleAction)

_CLASS_NAMES = {c.name.lower(): int(c) for c in DeviceClass if c.name}
_CRITICALITY_NAMES = {c.name.lower(): int(c) for c in Criticality}
_DAY_SETS = {
    "every_day": ALL_DAYS,
    "weekdays": frozenset(range(5)),
    "weekend": frozenset({5, 6}),
}


# --- Scalars ----------------------------------------------------------------------------


def _time_of_day(value: Any) -> int:
    """'16:30' -> 990 minutes. YAML 1.1 reads an unquoted 16:30 as 990 (base 60): the same."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a time such as '16:30'")
    if isinstance(value, int):
        minute = value
    elif isinstance(value, str) and value.count(":") == 1:
        hours, _, minutes = value.partition(":")
        if not (hours.strip().isdigit() and minutes.strip().isdigit() and len(minutes.strip()) == 2):
            raise vol.Invalid("expected a time such as '16:30'")
        if int(minutes) >= 60:
            raise vol.Invalid("expected a time such as '16:30' (minutes 00 to 59)")
        minute = int(hours) * 60 + int(minutes)
    else:
        raise vol.Invalid("expected a time such as '16:30'")
    if not 0 <= minute <= MINUTES_PER_DAY:
        raise vol.Invalid("expected a time from '00:00' to '24:00'")
    return minute


def _days(value: Any) -> frozenset[int]:
    if isinstance(value, str):
        if value in _DAY_SETS:
            return _DAY_SETS[value]
        value = [value]
    if not isinstance(value, list) or not value:
        raise vol.Invalid("expected weekdays, weekend, every_day or a list of days such as [mon, tue]")
    days = set()
    for i, item in enumerate(value):
        name = str(item).lower()[:3]
        if not isinstance(item, str) or name not in DAY_NAMES:
            raise vol.Invalid(f"unknown day (expected {', '.join(DAY_NAMES)})", path=[i])
        days.add(DAY_NAMES.index(name))
    return frozenset(days)


def _criticality(value: Any) -> int:
    if isinstance(value, str) and value.lower() in _CRITICALITY_NAMES:
        return _CRITICALITY_NAMES[value.lower()]
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 15:
        return value
    raise vol.Invalid(f"expected a criticality from 1 to 15 or a name ({', '.join(list(_CRITICALITY_NAMES)[:7])}, ...)")


def _device_class(value: Any) -> int:
    if value == "any":
        return 0
    names = value if isinstance(value, list) else [value]
    bits = 0
    for i, name in enumerate(names):
        bit = _CLASS_NAMES.get(str(name).lower()) if isinstance(name, str) else None
        if bit is None:
            raise vol.Invalid(
                f"unknown device class (known: {', '.join(_CLASS_NAMES)})", path=[i] if isinstance(value, list) else []
            )
        bits |= bit
    return bits


def _number(**bounds: float) -> vol.All:
    return vol.All(vol.Coerce(float, msg="expected a number"), vol.Range(**bounds))  # type: ignore[arg-type]


def _listed(validator: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    """One item or a list of them, validated item by item (errors name the item's index)."""

    def validate(value: Any) -> tuple[Any, ...]:
        if not isinstance(value, list):
            return (validator(value),)
        out = []
        for i, item in enumerate(value):
            try:
                out.append(validator(item))
            except vol.Invalid as err:
                err.prepend([i])
                raise
        return tuple(out)

    return validate


def _one_key(kinds: dict[str, Callable[[Any], Any]], what: str, shorthand: dict[Any, Any] | None = None) -> Callable[[Any], Any]:
    """A mapping with exactly one of ``kinds`` as key (``shorthand`` maps bare words)."""
    known = ", ".join(kinds)

    def validate(value: Any) -> Any:
        if shorthand is not None and isinstance(value, bool | str) and value in shorthand:
            return shorthand[value]
        if not isinstance(value, dict) or len(value) != 1:
            words = f" or one of {', '.join(str(k) for k in shorthand if isinstance(k, str))}" if shorthand else ""
            raise vol.Invalid(f"expected one {what} as 'kind: settings' (kinds: {known}){words}")
        ((key, inner),) = value.items()
        if key not in kinds:
            raise vol.Invalid(f"unknown {what} (known: {known})", path=[key])
        try:
            return kinds[key](inner)
        except vol.Invalid as err:
            err.prepend([key])
            raise

    return validate


# --- Triggers and conditions ------------------------------------------------------------

_FILTER_KEYS: dict[Any, Any] = {
    vol.Optional("min_criticality", default=1): _criticality,
    vol.Optional("max_criticality", default=15): _criticality,
    vol.Optional("device_class", default="any"): _device_class,
    vol.Optional("enrollment_group", default=None): vol.Any(
        None, vol.All(int, vol.Range(min=0, max=255)), msg="expected an enrollment group from 0 to 255"
    ),
}


def _filter(raw: dict[str, Any]) -> EventFilter:
    if raw["min_criticality"] > raw["max_criticality"]:
        raise vol.Invalid("min_criticality is above max_criticality", path=["min_criticality"])
    return EventFilter(raw["min_criticality"], raw["max_criticality"], raw["device_class"], raw["enrollment_group"])


_EVENT_TRIGGER = vol.Schema(
    {
        vol.Required("phase"): vol.In([p.value for p in Phase], msg="expected announced, active or ended"),
        vol.Optional("within_min", default=None): vol.Any(None, _number(min=0)),
        **_FILTER_KEYS,
    }
)


def _event_trigger(value: Any) -> EventTrigger:
    raw = _EVENT_TRIGGER({"phase": value} if isinstance(value, str) else value)
    if raw["within_min"] is not None and raw["phase"] != Phase.ANNOUNCED:
        raise vol.Invalid("within_min applies only to phase 'announced'", path=["within_min"])
    return EventTrigger(Phase(raw["phase"]), _filter(raw), raw["within_min"])


def _temperature(where: Where, *, device: bool) -> Callable[[Any], Temperature]:
    keys: dict[Any, Any] = {
        vol.Optional("above_c", default=None): vol.Any(None, _number(min=-50, max=80)),
        vol.Optional("below_c", default=None): vol.Any(None, _number(min=-50, max=80)),
    }
    if device:
        keys[vol.Optional("device", default=None)] = vol.Any(None, str)
    schema = vol.Schema(keys)

    def validate(value: Any) -> Temperature:
        raw = schema(value)
        if raw["above_c"] is None and raw["below_c"] is None:
            raise vol.Invalid("give above_c, below_c or both")
        return Temperature(where, raw["above_c"], raw["below_c"], raw.get("device"))

    return validate


_PRICE = vol.Schema({vol.Required("at_least_per_kwh"): _number(min=-10, max=100)})
_TIER = vol.Schema({vol.Required("at_least"): vol.All(int, vol.Range(min=1, max=48))})
_DEMAND_TRIGGER = vol.Schema({vol.Required("above_kw"): _number(min=0), vol.Optional("for_min", default=0.0): _number(min=0, max=60)})
_WINDOW = {vol.Required("from"): _time_of_day, vol.Required("to"): _time_of_day}
_SCHEDULE = vol.Schema({vol.Optional("from"): _time_of_day, vol.Optional("to"): _time_of_day,
                        vol.Optional("days", default="every_day"): _days})


def _schedule(value: Any) -> ScheduleTrigger:
    raw = _SCHEDULE(value)
    if ("from" in raw) != ("to" in raw):
        raise vol.Invalid("give both from and to (or neither, for whole days)")
    window = TimeWindow(raw["from"], raw["to"]) if "from" in raw else None
    return ScheduleTrigger(window, raw["days"])


TRIGGER = _one_key(
    {
        "event": _event_trigger,
        "price": lambda v: PriceTrigger(_PRICE(v)["at_least_per_kwh"]),
        "price_tier": lambda v: TierTrigger(_TIER(v)["at_least"]),
        "demand": lambda v: DemandTrigger(**_DEMAND_TRIGGER(v)),
        "indoor_temperature": _temperature(Where.INDOOR, device=True),
        "outdoor_temperature": _temperature(Where.OUTDOOR, device=False),
        "schedule": _schedule,
    },
    "trigger",
)

_DEMAND_CONDITION = vol.Schema({vol.Optional("above_kw", default=None): vol.Any(None, _number(min=0)),
                                vol.Optional("below_kw", default=None): vol.Any(None, _number(min=0))})
_EVENT_CONDITION = vol.Schema({vol.Required("active"): bool, **_FILTER_KEYS})


def _demand_condition(value: Any) -> DemandCondition:
    raw = _DEMAND_CONDITION(value)
    if raw["above_kw"] is None and raw["below_kw"] is None:
        raise vol.Invalid("give above_kw, below_kw or both")
    return DemandCondition(raw["above_kw"], raw["below_kw"])


_DEMAND_WINDOW = vol.Schema({vol.Optional("above_kw", default=None): vol.Any(None, _number(min=0)),
                             vol.Optional("above_peak", default=False): bool})


def _demand_window(value: Any) -> DemandWindowCondition:
    raw = _DEMAND_WINDOW(value)
    if raw["above_kw"] is None and not raw["above_peak"]:
        raise vol.Invalid("give above_kw (a cap), above_peak: true (the cycle's peak so far), or both")
    return DemandWindowCondition(raw["above_kw"], raw["above_peak"])


_WINDOW_SCHEMA = vol.Schema(_WINDOW)


def _time_condition(value: Any) -> TimeCondition:
    raw = _WINDOW_SCHEMA(value)
    return TimeCondition(TimeWindow(raw["from"], raw["to"]))


def _event_condition(value: Any) -> EventCondition:
    raw = _EVENT_CONDITION({"active": value} if isinstance(value, bool) else value)
    return EventCondition(raw["active"], _filter(raw))


def _season(value: Any) -> SeasonCondition:
    if value not in ("summer", "winter"):
        raise vol.Invalid("expected summer or winter")
    return SeasonCondition(value == "summer")


CONDITION = _one_key(
    {
        "time": _time_condition,
        "days": lambda v: DaysCondition(_days(v)),
        "season": _season,
        "indoor_temperature": _temperature(Where.INDOOR, device=True),
        "outdoor_temperature": _temperature(Where.OUTDOOR, device=False),
        "demand": _demand_condition,
        "demand_window": _demand_window,
        "event": _event_condition,
    },
    "condition",
)




# --- Targets ----------------------------------------------------------------------------


def _target(value: Any) -> Target:
    if isinstance(value, str):
        if value == "all":
            return Target(TargetBy.ALL)
        if not value.strip():
            raise vol.Invalid("expected a device name")
        return Target(TargetBy.NAME, value.strip())
    if isinstance(value, dict) and len(value) == 1:
        ((key, inner),) = value.items()
        if key == "kind":
            kinds = [k.value for k in DeviceKind]
            if inner not in kinds:
                raise vol.Invalid(f"unknown device kind (known: {', '.join(kinds)})", path=["kind"])
            return Target(TargetBy.KIND, inner)
        if key == "device_class":
            try:
                return Target(TargetBy.DEVICE_CLASS, _device_class(inner))
            except vol.Invalid as err:
                err.prepend(["device_class"])
                raise
    raise vol.Invalid("expected a device name, all, {kind: thermostat} or {device_class: pool_pump}")


def _targets(value: Any) -> tuple[Target, ...]:
    if value == "all":
        return (Target(TargetBy.ALL),)
    return _listed(_target)(value)


# --- Actions ----------------------------------------------------------------------------

_SETPOINT = vol.Schema({vol.Optional("cooling_c"): _number(min=5, max=40), vol.Optional("heating_c"): _number(min=5, max=40)})


def _setpoint(value: Any) -> SetpointAction:
    raw = _SETPOINT(value)
    if not raw:
        raise vol.Invalid("give cooling_c, heating_c or both")
    if "cooling_c" in raw and "heating_c" in raw and raw["heating_c"] > raw["cooling_c"]:
        raise vol.Invalid("the heating setpoint must not be above the cooling setpoint", path=["heating_c"])
    return SetpointAction(raw.get("cooling_c"), raw.get("heating_c"))


def _notify(value: Any) -> NotifyAction:
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid("expected the message text")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as err:
        raise vol.Invalid(f"the text has an unbalanced brace ({err}); write {{{{ for a brace") from err
    for name in fields:
        if name not in NOTIFY_FIELDS:
            raise vol.Invalid(f"unknown placeholder {{{name}}} (known: {', '.join('{' + f + '}' for f in NOTIFY_FIELDS)})")
    return NotifyAction(value.strip())


_OFFSET_C = _number(min=-10, max=10)
_PCT = _number(min=0, max=100)
_KW = _number(min=0)

ACTION = _one_key(
    {
        "setpoint": _setpoint,
        "offset_c": lambda v: OffsetAction(_OFFSET_C(v)),
        "duty_cycle_pct": lambda v: DutyCycleAction(_PCT(v)),
        "shed_to_limit_kw": lambda v: ShedToLimitAction(_KW(v)),
        "reduce_load_pct": lambda v: ReduceLoadAction(_PCT(v)),
        "notify": _notify,
    },
    "action",
    # YAML 1.1 reads a bare on/off as true/false: both spellings mean the switch.
    shorthand={"turn_on": SwitchAction(True), "turn_off": SwitchAction(False), True: SwitchAction(True),
               False: SwitchAction(False), "follow_event": FollowEventAction()},
)

RULE_SCHEMA = vol.Schema(
    {
        vol.Required("name"): vol.All(
            vol.Any(str, msg="expected a name (quote it if YAML reads it as yes/no/on/off or a number)"),
            vol.Length(min=1, max=80)),
        vol.Optional("enabled", default=True): bool,
        vol.Optional("priority", default=50): vol.All(int, vol.Range(min=0, max=1000)),
        vol.Optional("triggers", default=[]): _listed(TRIGGER),
        vol.Optional("conditions", default=[]): _listed(CONDITION),
        vol.Optional("targets", default=None): vol.Any(None, _targets),
        vol.Required("action"): _listed(ACTION),
    }
)

DEVICE_SCHEMA = vol.Schema(
    {
        vol.Optional("shed_priority", default=50): vol.All(int, vol.Range(min=0, max=100)),
        vol.Optional("takes_part", default=True): bool,
        vol.Optional("max_offset_c", default=4.0): _number(min=0, max=10),
        vol.Optional("max_off_min", default=120.0): _number(min=1, max=24 * 60),
        vol.Optional("min_on_min", default=10.0): _number(min=0, max=24 * 60),
        vol.Optional("min_setpoint_c", default=None): vol.Any(None, _number(min=5, max=40)),
        vol.Optional("max_setpoint_c", default=None): vol.Any(None, _number(min=5, max=40)),
    }
)

SEASONS_SCHEMA = vol.Schema(
    {vol.Optional("summer_months", default=sorted(DEFAULT_SUMMER_MONTHS)): vol.All(
        [vol.All(int, vol.Range(min=1, max=12, msg="expected a month from 1 to 12"))], vol.Length(min=0, max=12))}
)

_TOP_KEYS = ("seasons", "devices", "rules")


# --- Loading ----------------------------------------------------------------------------


def load_rules(path: Path | str, known_devices: Sequence[str] | None = None) -> RuleSet:
    """Read and validate a rules file; ConfigError lists every problem with file and line."""
    return _build(load_yaml(Path(path)), known_devices)


def parse_rules(text: str, source: str = "rules.yaml", known_devices: Sequence[str] | None = None) -> RuleSet:
    """Validate rules given as text (the Rules page, the API); the same errors as ``load_rules``."""
    return _build(parse_yaml(text, Path(source)), known_devices)


class _Problems:
    """Collects problems in the house format: file:line: key.path: problem (found …)."""

    def __init__(self, loaded: LoadedYaml) -> None:
        self.loaded = loaded
        self.items: list[str] = []

    def invalid(self, err: vol.Invalid, prefix: tuple[Any, ...]) -> None:
        hint = "see config/ems.yaml for the known keys"
        self.items.extend(p.replace(hint, "see config/rules.yaml for the known keys")
                          for p in describe_invalid(self.loaded, err, prefix))

    def add(self, key_path: tuple[Any, ...], message: str) -> None:
        line = self.loaded.line_of(key_path)
        where = f"{self.loaded.path}:{line}" if line else str(self.loaded.path)
        dotted = ".".join(str(k) for k in key_path) or "(top level)"
        self.items.append(f"{where}: {dotted}: {message}")


def _build(loaded: LoadedYaml, known_devices: Sequence[str] | None) -> RuleSet:
    problems = _Problems(loaded)
    data = loaded.data if loaded.data is not None else {}
    if not isinstance(data, dict):
        problems.add((), "expected a mapping with seasons, devices and rules")
        raise ConfigError(problems.items)
    for key in data:
        if key not in _TOP_KEYS:
            problems.add((key,), f"unknown section (known sections: {', '.join(_TOP_KEYS)})")
    known = {name.casefold() for name in known_devices} if known_devices is not None else None

    summer = DEFAULT_SUMMER_MONTHS
    try:
        summer = frozenset(SEASONS_SCHEMA(data.get("seasons") or {})["summer_months"])
    except vol.Invalid as err:
        problems.invalid(err, ("seasons",))

    preferences = _preferences(data.get("devices"), known, problems)
    rules = _rules(data.get("rules"), known, problems)
    if problems.items:
        raise ConfigError(problems.items)
    return RuleSet(tuple(rules), tuple(preferences), str(loaded.path), summer)


def _preferences(raw: Any, known: set[str] | None, problems: _Problems) -> list[DevicePreference]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        problems.add(("devices",), "expected a mapping of device name to its settings")
        return []
    out = []
    for name, settings in raw.items():
        key = ("devices", name)
        if known is not None and str(name).casefold() not in known:
            problems.add(key, f"no device named {name!r} in this home")
        try:
            s = DEVICE_SCHEMA(settings or {})
        except vol.Invalid as err:
            problems.invalid(err, key)
            continue
        if s["min_setpoint_c"] is not None and s["max_setpoint_c"] is not None and s["min_setpoint_c"] > s["max_setpoint_c"]:
            problems.add((*key, "min_setpoint_c"), "min_setpoint_c is above max_setpoint_c")
        comfort = ComfortLimits(s["max_offset_c"], s["max_off_min"], s["min_on_min"], s["min_setpoint_c"], s["max_setpoint_c"])
        out.append(DevicePreference(str(name), s["shed_priority"], comfort, s["takes_part"]))
    return out


def _rules(raw: Any, known: set[str] | None, problems: _Problems) -> list[Rule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(("rules",), "expected a list of rules (each starting with '- name: ...')")
        return []
    out: list[Rule] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        key = ("rules", i)
        try:
            r = RULE_SCHEMA(item)
        except vol.Invalid as err:
            problems.invalid(err, key)
            continue
        name = r["name"].strip()
        if name.casefold() in seen:
            problems.add((*key, "name"), f"another rule (rules.{seen[name.casefold()]}) has this name; names must differ")
        seen.setdefault(name.casefold(), i)
        actions: tuple[Action, ...] = r["action"]
        targets: tuple[Target, ...] | None = r["targets"]
        if targets is None and any(isinstance(a, _NEEDS_TARGETS) for a in actions):
            problems.add(key, "this action needs targets (device names, {kind: ...}, {device_class: ...} or all)")
        if targets is not None:
            targets = tuple(_with_line(t, j, key, problems.loaded) for j, t in enumerate(targets))
            for j, t in enumerate(targets):
                if known is not None and t.by is TargetBy.NAME and str(t.value).casefold() not in known:
                    problems.add((*key, "targets", j), f"no device named {t.value!r} in this home (found {t.value!r})")
        out.append(Rule(
            name=name,
            actions=actions,
            triggers=r["triggers"],
            conditions=r["conditions"],
            targets=targets,
            priority=r["priority"],
            enabled=r["enabled"],
            line=problems.loaded.line_of(key),
        ))
    return out


def _with_line(target: Target, index: int, key: tuple[Any, ...], loaded: LoadedYaml) -> Target:
    return replace(target, line=loaded.line_of((*key, "targets", index)))
