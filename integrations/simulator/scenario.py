"""A simulation scenario: the household, the rate, the home's devices, and what the utility sends when.

Scenarios are YAML files validated like the appliance's own configuration, so a mistake names
the file, line and key path. Offsets (``at``) are durations from the simulation start:
``90s``, ``5m``, ``2h``, or a number of seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import voluptuous as vol

from ems.config import describe_invalid, load_yaml
from ems.errors import ConfigError
from integrations.simulator.loads import WEEKDAYS
from integrations.zigbee.install_code import InstallCode
from integrations.zigbee.trust_center import (
    DEFAULT_DEVICE_TYPE,
    DEVELOPMENT_REGISTRATION,
    DEVICE_TYPES,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def duration(value: Any) -> timedelta:
    """Parse ``90s``, ``5m``, ``2h``, ``1d`` or a number of seconds."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a duration such as '90s', '5m' or '2h'")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise vol.Invalid("expected a duration such as '90s', '5m' or '2h'")
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    if seconds < 0:
        raise vol.Invalid("a duration cannot be negative")
    return timedelta(seconds=seconds)


def signed_duration(value: Any) -> timedelta:
    """A duration that may be negative: ``-5m`` is five minutes before (a start in the past)."""
    if isinstance(value, str) and value.strip().startswith("-"):
        return -duration(value.strip()[1:])
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return -duration(-value)
    return duration(value)


def _decimal(value: Any) -> Decimal:
    """A price exactly as written: ``"0.1234567"`` stays 0.1234567 (YAML floats by their repr)."""
    if isinstance(value, bool):
        raise vol.Invalid("expected a decimal number such as 0.1234")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise vol.Invalid("expected a decimal number such as 0.1234") from None
    if not number.is_finite() or number < 0:
        raise vol.Invalid("expected a decimal number of at least 0")
    return number


def _hex_bytes(value: Any) -> bytes:
    """``"09 01 00"`` or ``"090100"`` -> the bytes (a whole ZCL frame, header first)."""
    try:
        data = bytes.fromhex(str(value))
    except ValueError:
        raise vol.Invalid("expected hex bytes such as '19 05 00 01'") from None
    if not data:
        raise vol.Invalid("expected at least one byte")
    return data


CLUSTER_IDS = {"basic": 0x0000, "time": 0x000A, "price": 0x0700, "drlc": 0x0701, "metering": 0x0702,
               "messaging": 0x0703}


def _cluster(value: Any) -> int:
    """A cluster by id (0x0700) or by name (price, drlc, metering, messaging, time, basic)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF:
        return value
    if isinstance(value, str) and value.strip().lower() in CLUSTER_IDS:
        return CLUSTER_IDS[value.strip().lower()]
    raise vol.Invalid(f"expected a cluster id or one of {', '.join(CLUSTER_IDS)}")


def _literal(*words: str) -> Any:
    return vol.All(str, vol.Lower, vol.In(words, msg=f"expected {' or '.join(words)}"))


def exact_price(price: Decimal, digits: int | None = None) -> tuple[int, int]:
    """(raw Price, PriceTrailingDigit) that carry ``price`` exactly (§3.2, §3.3).

    Without ``digits``, as many as the number is written with: "0.1234567" -> (1234567, 7).
    ValueError if the digits cannot carry it exactly or the raw value leaves the uint32.
    """
    exponent = price.normalize().as_tuple().exponent if price == 0 else price.as_tuple().exponent
    assert isinstance(exponent, int)
    chosen = max(0, -exponent) if digits is None else digits
    if chosen > 15:
        raise ValueError(f"{price} needs {chosen} trailing digits; the nibble holds at most 15")
    raw = price.scaleb(chosen)
    if raw != raw.to_integral_value():
        raise ValueError(f"{price} cannot be written exactly with {chosen} trailing digits")
    if not 0 <= raw <= 0xFFFFFFFF:
        raise ValueError(f"{price} with {chosen} trailing digits is {raw}, beyond the uint32 Price field")
    return int(raw), chosen


def _hhmm(value: Any) -> int:
    """'07:30' -> minutes after midnight ('24:00' is the end of the day)."""
    if str(value) == "24:00":
        return 1440
    match = re.match(r"^([01]?\d|2[0-3]):([0-5]\d)$", str(value))
    if not match:
        raise vol.Invalid("expected a time of day as HH:MM")
    return int(match.group(1)) * 60 + int(match.group(2))


_PROFILE_PERIODS_MIN = (60, 30, 15, 10, 5, 1)


def _install_code(value: Any) -> str:
    try:
        return InstallCode.parse(str(value)).hex()
    except ValueError as err:
        raise vol.Invalid(str(err)) from err


_MINUTES = vol.All(int, vol.Range(min=0, max=60))
_CONFIGURATION = vol.Schema(
    {
        # Each value is written only when given: by default the meter configures nothing (the
        # appliance keeps its own settings, the DR section's) and its commissioning ends at the join.
        vol.Optional("send", default=True): bool,
        vol.Optional("enrollment_group"): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("start_randomization_min"): _MINUTES,
        vol.Optional("duration_randomization_min"): _MINUTES,
        vol.Optional("price_increase_randomize_min"): _MINUTES,
        vol.Optional("price_decrease_randomize_min"): _MINUTES,
        vol.Optional("test_message", default=None): vol.Any(None, vol.All(str, vol.Length(min=1, max=59))),
    }
)

_REGISTRATION = vol.Schema(
    {
        vol.Required("ieee"): vol.All(str, vol.Match(r"^([0-9a-fA-F]{2}:){7}[0-9a-fA-F]{2}$", msg="expected an EUI-64"), vol.Lower),
        vol.Required("install_code"): _install_code,
        vol.Optional("device_type", default=DEFAULT_DEVICE_TYPE): vol.In(DEVICE_TYPES),
    }
)

_METER = vol.Schema(
    {
        vol.Optional("ieee", default="00:0d:6f:00:0a:90:69:e7"): vol.Match(
            r"^([0-9a-fA-F]{2}:){7}[0-9a-fA-F]{2}$", msg="expected an EUI-64 such as 00:0d:6f:00:0a:90:69:e7"
        ),
        # The number printed on the meter (and on the customer's bill), served as the Metering
        # cluster's MeterSerialNumber (0x0308, an octet string of at most 24 bytes; SE 1.1).
        vol.Optional("number", default="55512345"): vol.All(vol.Coerce(str), vol.Match(
            r"^[\x20-\x7e]{1,24}$", msg="expected 1-24 printable ASCII characters such as 55512345")),
        # The meter is the coordinator and trust center of its network (NWK 0x0000): it admits the
        # devices the utility registered (SE 1.x §5.4), by default the development appliance's identity.
        vol.Optional("registered", default=lambda: [dict(DEVELOPMENT_REGISTRATION)]): [_REGISTRATION],
        # The simulator plays the utility, which has registered the appliance it runs with (`ems demo`,
        # the tests): False leaves that to `ems simulate-meter --register` or a test.
        vol.Optional("register_appliance", default=True): bool,
        # C6 3.1 steps 14-17: what the utility configures in the appliance once it joined (the DRLC
        # and Price client attributes, by Write Attributes) and the test message it asks confirmed.
        vol.Optional("configuration", default=dict): _CONFIGURATION,
        vol.Optional("approved_device_types", default=list(DEVICE_TYPES)): [vol.In(DEVICE_TYPES)],
        vol.Optional("network_key", default=None): vol.Any(None, vol.Match(r"^[0-9a-fA-F]{32}$", msg="expected 32 hex digits")),
        vol.Optional("pan_id", default=0x1A62): vol.All(int, vol.Range(min=1, max=0xFFFE)),
        vol.Optional("channel", default=15): vol.All(int, vol.Range(min=11, max=26)),
        vol.Optional("report_interval", default="5s"): vol.All(duration, vol.Range(min=timedelta(seconds=0.02), max=timedelta(minutes=10), msg="expected between 20 ms and 10 minutes")),
        vol.Optional("profile_interval_min", default=15): vol.In(_PROFILE_PERIODS_MIN, msg=f"expected one of {_PROFILE_PERIODS_MIN}"),
        vol.Optional("multiplier", default=1): vol.All(int, vol.Range(min=1, max=0xFFFFFF)),
        vol.Optional("divisor", default=1000): vol.All(int, vol.Range(min=1, max=0xFFFFFF)),
        vol.Optional("initial_delivered_kwh", default=12_000.0): vol.All(vol.Coerce(float), vol.Range(min=0)),
        vol.Optional("initial_received_kwh", default=1_500.0): vol.All(vol.Coerce(float), vol.Range(min=0)),
    }
)

_WINDOW = vol.Schema({vol.Required("start"): _hhmm, vol.Required("end"): _hhmm})
_DAYS = vol.All([vol.All(str, vol.Lower, vol.In(WEEKDAYS, msg=f"expected one of {', '.join(WEEKDAYS)}"))],
                vol.Length(min=1))
# A duty cycle: on for ``on_min`` of every ``every_min`` minutes while in a window.
_DUTY = vol.All({
    vol.Required("on_min"): vol.All(int, vol.Range(min=1, max=1440)),
    vol.Required("every_min"): vol.All(int, vol.Range(min=1, max=1440)),
}, lambda d: d if d["on_min"] <= d["every_min"] else _invalid("on_min cannot exceed every_min"))


def _invalid(text: str) -> Any:
    raise vol.Invalid(text)


_APPLIANCE = vol.Schema(
    {
        vol.Required("name"): vol.All(str, vol.Length(min=1, max=40)),
        vol.Required("kw"): vol.All(vol.Coerce(float), vol.Range(min=0, max=50)),
        vol.Optional("schedule"): [_WINDOW],
        vol.Optional("days"): _DAYS,
        vol.Optional("duty"): _DUTY,
    }
)

_HOUSEHOLD = vol.Schema(
    {
        vol.Optional("base_kw", default=0.4): vol.All(vol.Coerce(float), vol.Range(min=0, max=100)),
        vol.Optional("evening_peak_kw", default=1.2): vol.All(vol.Coerce(float), vol.Range(min=0, max=100)),
        vol.Optional("hvac", default={}): {
            vol.Optional("kw_per_degree", default=0.35): vol.All(vol.Coerce(float), vol.Range(min=0, max=10)),
            vol.Optional("cooling_above_c", default=24.0): vol.Coerce(float),
            vol.Optional("heating_below_c", default=15.0): vol.Coerce(float),
            vol.Optional("max_kw", default=4.5): vol.All(vol.Coerce(float), vol.Range(min=0)),
        },
        vol.Optional("outdoor", default={}): {
            vol.Optional("min_c", default=18.0): vol.Coerce(float),
            vol.Optional("max_c", default=34.0): vol.Coerce(float),
            vol.Optional("warmest_at", default="15:00"): _hhmm,
            # each day warmer or cooler by up to this much (seeded by the date)
            vol.Optional("day_to_day_c", default=0.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=20)),
        },
        vol.Optional("solar", default={}): {
            vol.Optional("peak_kw", default=5.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=1000)),
            vol.Optional("sunrise", default="06:30"): _hhmm,
            vol.Optional("sunset", default="19:30"): _hhmm,
            # the curve is sin**shape between sunrise and sunset: 1 an arch, 2 a panel's bell
            vol.Optional("shape", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0.5, max=4)),
        },
        vol.Optional("noise_kw", default=0.05): vol.All(vol.Coerce(float), vol.Range(min=0, max=10)),
        vol.Optional("seed", default=7): int,
        # The household's own appliances (not on the EMS's network): fridge, cooking, lights...
        vol.Optional("appliances", default=[]): [_APPLIANCE],
    }
)

_TOU_PERIOD = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Required("start"): _hhmm,
        vol.Required("end"): _hhmm,
        vol.Required("price"): vol.All(vol.Coerce(float), vol.Range(min=0)),
        vol.Optional("tier", default=1): vol.All(int, vol.Range(min=1, max=15)),
    }
)

_RATE = vol.Schema(
    {
        vol.Optional("provider_id", default=1): vol.All(int, vol.Range(min=0, max=0xFFFFFFFF)),
        vol.Optional("label", default="Tiered+TOU"): vol.All(str, vol.Length(max=11)),
        vol.Optional("currency", default=840): vol.All(int, vol.Range(min=0, max=999)),
        vol.Optional("trailing_digits", default=5): vol.All(int, vol.Range(min=0, max=9)),
        vol.Optional("block_thresholds_kwh", default=[300.0, 600.0]): [vol.All(vol.Coerce(float), vol.Range(min=0))],
        vol.Optional("block_prices", default=[0.12, 0.18, 0.28]): [vol.All(vol.Coerce(float), vol.Range(min=0))],
        vol.Optional("billing_period_days", default=30): vol.All(int, vol.Range(min=1, max=366)),
        vol.Optional("billing_period_start_days_ago", default=12): vol.All(int, vol.Range(min=0)),
        vol.Optional("generation_price", default=0.05): vol.Any(None, vol.All(vol.Coerce(float), vol.Range(min=0))),
        vol.Optional("tou", default=[]): [_TOU_PERIOD],
        vol.Optional("price_ack_required", default=False): bool,
    }
)

_IMPORTANCE = vol.In(["low", "medium", "high", "critical"], msg="expected low, medium, high or critical")

_MESSAGE = vol.Schema(
    {
        vol.Required("at"): duration,
        vol.Required("text"): vol.All(str, vol.Length(min=1, max=120)),
        vol.Optional("id"): vol.All(int, vol.Range(min=0, max=0xFFFFFFFF)),
        vol.Optional("kind", default="utility"): vol.In(
            ["utility", "public"], msg="expected 'utility' or 'public'"
        ),
        vol.Optional("importance", default="medium"): _IMPORTANCE,
        vol.Optional("duration_min", default=60): vol.All(int, vol.Range(min=1, max=0xFFFF)),
        vol.Optional("confirm", default=False): bool,
        # StartTime: the send time (default), 0 ("now", §1.4), or an offset from the send time.
        vol.Exclusive("start", "start"): _literal("now"),
        vol.Exclusive("starts_in", "start"): signed_duration,
        vol.Optional("disable_default_response", default=True): bool,
    }
)

_EVENT = vol.Schema(
    {
        vol.Required("at"): duration,
        vol.Required("id"): vol.All(int, vol.Range(min=0, max=0xFFFFFFFF)),
        # StartTime: send time + starts_in (negative or started_ago: in the past), 0 for
        # ``start: now`` (§1.4), 0xFFFFFFFF for ``start: invalid``.
        vol.Exclusive("starts_in", "start"): signed_duration,
        vol.Exclusive("started_ago", "start"): duration,
        vol.Exclusive("start", "start"): _literal("now", "invalid"),
        vol.Required("duration_min"): vol.All(int, vol.Range(min=0, max=0xFFFF)),
        vol.Optional("disable_default_response", default=True): bool,
        vol.Optional("device_class", default=0x0FFF): vol.All(int, vol.Range(min=0, max=0xFFFF)),
        vol.Optional("enrollment_group", default=0): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("criticality", default=3): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("cooling_offset_c"): vol.All(vol.Coerce(float), vol.Range(min=0, max=25.4)),
        vol.Optional("heating_offset_c"): vol.All(vol.Coerce(float), vol.Range(min=0, max=25.4)),
        vol.Optional("cooling_setpoint_c"): vol.All(vol.Coerce(float), vol.Range(min=-273, max=327)),
        vol.Optional("heating_setpoint_c"): vol.All(vol.Coerce(float), vol.Range(min=-273, max=327)),
        vol.Optional("average_load_adjustment_pct"): vol.All(int, vol.Range(min=-100, max=100)),
        vol.Optional("duty_cycle_pct"): vol.All(int, vol.Range(min=0, max=100)),
        vol.Optional("randomize_start", default=False): bool,
        vol.Optional("randomize_end", default=False): bool,
    }
)

_CANCEL = vol.Schema(
    {
        vol.Required("at"): duration,
        vol.Optional("id"): vol.All(int, vol.Range(min=0, max=0xFFFFFFFF)),  # absent = cancel all
        vol.Optional("device_class", default=0x0FFF): vol.All(int, vol.Range(min=0, max=0xFFFF)),
        vol.Optional("enrollment_group", default=0): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("randomize_end", default=False): bool,
        vol.Optional("cancel_control"): vol.All(int, vol.Range(min=0, max=0xFF)),  # raw, overrides randomize_end
        # EffectiveTime: 0 ("now", the default), send time + effective_in, or 0xFFFFFFFF.
        vol.Optional("effective_in", default=0): vol.Any(_literal("now", "invalid"), duration),
        vol.Optional("disable_default_response", default=True): bool,
    }
)

_PRICE_CHANGE = vol.Schema(
    {
        vol.Required("at"): duration,
        vol.Required("price"): _decimal,  # sent exactly: 0.1234567 -> 1234567 with 7 trailing digits
        vol.Optional("trailing_digits"): vol.All(int, vol.Range(min=0, max=15)),
        vol.Optional("tier", default=3): vol.All(int, vol.Range(min=0, max=15)),
        vol.Optional("label", default="CPP"): vol.All(str, vol.Length(max=11)),
        vol.Optional("duration_min", default=60): vol.All(int, vol.Range(min=1, max=0xFFFF)),
        vol.Optional("provider_id"): vol.All(int, vol.Range(min=0, max=0xFFFFFFFF)),
        vol.Optional("issuer_event_id"): vol.All(int, vol.Range(min=0, max=0xFFFFFFFF)),  # may repeat one
        vol.Exclusive("start", "start"): _literal("now"),  # StartTime 0, the default
        vol.Exclusive("starts_in", "start"): signed_duration,
        vol.Optional("price_ratio"): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("generation_price"): _decimal,  # in the price's trailing digits
        vol.Optional("generation_price_ratio"): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("alternate_cost_delivered"): vol.All(int, vol.Range(min=0, max=0xFFFFFFFF)),
        vol.Optional("alternate_cost_unit"): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("alternate_cost_trailing_digit"): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("number_of_block_thresholds"): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("price_control"): vol.All(int, vol.Range(min=0, max=0xFF)),  # raw; default from rate
        vol.Optional("disable_default_response", default=True): bool,
    }
)

_RAW_FRAME = vol.Schema(
    {
        vol.Required("at"): duration,
        vol.Required("cluster"): _cluster,
        vol.Required("hex"): _hex_bytes,  # the whole ZCL frame, header first, sent as written
        vol.Optional("disable_default_response"): bool,  # sets or clears frame-control bit 4
    }
)

_CONFORMANCE = vol.Schema(
    {
        # The EMS's DRLC client attributes (§2.2) the checker addresses events by; not stated:
        # every device class and group addresses it.
        vol.Optional("device_class_value"): vol.All(int, vol.Range(min=0, max=0xFFFF)),
        vol.Optional("utility_enrollment_group"): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("grace", default="5s"): duration,  # how long an answer may take (real seconds, a busy machine is slow)
    }
)

_EUI64 = vol.All(
    str,
    vol.Match(r"^([0-9a-fA-F]{2}:){7}[0-9a-fA-F]{2}$", msg="expected an EUI-64 such as 00:0d:6f:00:0a:90:69:e7"),
    vol.Lower,
)
_ALL_DAY = [{"start": "00:00", "end": "24:00"}]


def _windows(default: list[dict[str, str]]) -> Any:
    return vol.Optional("schedule", default=default)


_DEVICE_COMMON = {
    vol.Required("kind"): str,
    vol.Required("name"): vol.All(str, vol.Length(min=1, max=32)),
    vol.Optional("ieee"): _EUI64,
    vol.Optional("nwk"): vol.All(int, vol.Range(min=1, max=0xFFF7)),
}
_KW = vol.All(vol.Coerce(float), vol.Range(min=0, max=32))  # ElectricalMeasurement W fits int16

_HOME_DEVICES: dict[str, vol.Schema] = {
    "thermostat": vol.Schema({
        **_DEVICE_COMMON,
        vol.Optional("cooling_setpoint_c", default=24.0): vol.Coerce(float),
        vol.Optional("heating_setpoint_c", default=20.0): vol.Coerce(float),
        vol.Optional("system_mode", default="cool"): vol.In(
            ["off", "cool", "heat", "auto"], msg="expected off, cool, heat or auto"),
        vol.Optional("min_cool_c", default=16.0): vol.Coerce(float),
        vol.Optional("max_cool_c", default=32.0): vol.Coerce(float),
        vol.Optional("min_heat_c", default=7.0): vol.Coerce(float),
        vol.Optional("max_heat_c", default=30.0): vol.Coerce(float),
        vol.Optional("deadband_c", default=2.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=12.7)),
        vol.Optional("hvac_kw", default=3.5): _KW,
        vol.Optional("cop", default=3.0): vol.All(vol.Coerce(float), vol.Range(min=0.5, max=10)),
    }),
    "plug": vol.Schema({
        **_DEVICE_COMMON,
        vol.Required("nominal_kw"): _KW,
        vol.Optional("on", default=True): bool,
        _windows(_ALL_DAY): [_WINDOW],
        vol.Optional("days"): _DAYS,
        vol.Optional("duty"): _DUTY,
    }),
    "battery": vol.Schema({
        **_DEVICE_COMMON,
        vol.Optional("capacity_kwh", default=13.5): vol.All(vol.Coerce(float), vol.Range(min=0.1, max=1000)),
        vol.Optional("max_kw", default=5.0): _KW,
        vol.Optional("soc_pct", default=50.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=100)),
        vol.Optional("reserve_pct", default=10.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=100)),
        vol.Optional("charge", default=[]): [_WINDOW],
        vol.Optional("discharge", default=[]): [_WINDOW],
    }),
    "load_controller": vol.Schema({
        **_DEVICE_COMMON,
        vol.Required("nominal_kw"): _KW,
        vol.Optional("device_class", default=0x0010): vol.All(int, vol.Range(min=1, max=0x0FFF)),
        vol.Optional("enrollment_group", default=0): vol.All(int, vol.Range(min=0, max=0xFF)),
        vol.Optional("price_aware", default=False): bool,  # a Price client: takes the EMS's PublishPrice
        _windows(_ALL_DAY): [_WINDOW],
        vol.Optional("days"): _DAYS,
        vol.Optional("duty"): _DUTY,
    }),
    # A door sensor (IAS Zone): joins and is discovered, but takes part in no program (UC134).
    "door_sensor": vol.Schema({**_DEVICE_COMMON}),
}


def _home_device(value: Any) -> dict[str, Any]:
    """One entry of ``home.devices``, validated by the schema of its ``kind``."""
    if not isinstance(value, dict):
        raise vol.Invalid("expected a mapping with a kind and a name")
    kind = value.get("kind")
    schema = _HOME_DEVICES.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise vol.Invalid(f"expected one of {', '.join(_HOME_DEVICES)}", path=["kind"])
    return dict(schema(value))


_HOME = vol.Schema(
    {
        vol.Optional("time_scale", default=1.0): vol.All(vol.Coerce(float), vol.Range(min=0, max=10_000)),
        vol.Optional("house", default={}): {
            vol.Optional("indoor_c", default=24.0): vol.Coerce(float),
            vol.Optional("ua_kw_per_c", default=0.25): vol.All(vol.Coerce(float), vol.Range(min=0, max=10)),
            vol.Optional("capacity_kwh_per_c", default=3.0): vol.All(vol.Coerce(float), vol.Range(min=0.01, max=1000)),
            vol.Optional("internal_gain_kw", default=0.4): vol.All(vol.Coerce(float), vol.Range(min=0, max=50)),
        },
        vol.Optional("devices", default=[]): [_home_device],
        # Benchmarks: this many more plain plugs (e.g. 200), named "Plug 1", "Plug 2", ...
        vol.Optional("extra_plugs", default={}): {
            vol.Optional("count", default=0): vol.All(int, vol.Range(min=0, max=2000)),
            vol.Optional("nominal_kw", default=1.0): _KW,
        },
    }
)

_RATE_0_1 = vol.All(vol.Coerce(float), vol.Range(min=0, max=1, msg="expected a rate between 0 and 1"))
_SPELL = vol.Schema({vol.Required("at"): duration, vol.Required("for"): duration})

# Link faults on the meter's virtual HAN (issue 11): rates per application frame from a seeded RNG,
# and spells of freeze (connection open, nothing forwarded) and away (the meter gone altogether).
_FAULTS = vol.Schema(
    {
        vol.Optional("drop", default=0.0): _RATE_0_1,
        vol.Optional("duplicate", default=0.0): _RATE_0_1,
        vol.Optional("delay", default=0.0): _RATE_0_1,
        vol.Optional("delay_s", default=0.5): vol.All(vol.Coerce(float), vol.Range(min=0, max=60)),
        vol.Optional("reorder", default=0.0): _RATE_0_1,
        vol.Optional("seed", default=0): int,
        vol.Optional("freeze", default=[]): [_SPELL],
        vol.Optional("away", default=[]): [_SPELL],
    }
)

SCENARIO_SCHEMA = vol.Schema(
    {
        vol.Optional("name", default="scenario"): str,
        vol.Optional("timezone", default="America/Los_Angeles"): str,
        vol.Optional("meter", default={}): _METER,
        vol.Optional("household", default={}): _HOUSEHOLD,
        vol.Optional("rate", default={}): _RATE,
        vol.Optional("messages", default=[]): [_MESSAGE],
        vol.Optional("events", default=[]): [_EVENT],
        vol.Optional("cancellations", default=[]): [_CANCEL],
        vol.Optional("price_changes", default=[]): [_PRICE_CHANGE],
        vol.Optional("raw_frames", default=[]): [_RAW_FRAME],
        vol.Optional("conformance", default={}): _CONFORMANCE,
        vol.Optional("home", default={}): _HOME,
        vol.Optional("faults", default={}): _FAULTS,
    }
)


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario (plain data; the simulator reads it, never writes it)."""

    name: str
    timezone: str
    meter: dict[str, Any]
    household: dict[str, Any]
    rate: dict[str, Any]
    messages: list[dict[str, Any]]
    events: list[dict[str, Any]]
    cancellations: list[dict[str, Any]]
    price_changes: list[dict[str, Any]]
    home: dict[str, Any] = field(default_factory=lambda: _HOME({}))
    raw_frames: list[dict[str, Any]] = field(default_factory=list)
    conformance: dict[str, Any] = field(default_factory=lambda: _CONFORMANCE({}))
    faults: dict[str, Any] = field(default_factory=lambda: _FAULTS({}))
    source: Path | None = None


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file; ConfigError names every problem at once.

    ``base: other.yaml`` (relative to the file) starts from another scenario: each top-level
    section this file writes replaces the base's (the base is checked on its own first, so its
    problems name its own lines)."""
    loaded = load_yaml(Path(path))
    raw = loaded.data or {}
    if isinstance(raw, dict) and "base" in raw:
        base_path = Path(path).parent / str(raw["base"])
        load_scenario(base_path)  # its own problems, with its own lines
        base = load_yaml(base_path).data or {}
        raw = {**base, **{k: v for k, v in raw.items() if k != "base"}}
    try:
        data = SCENARIO_SCHEMA(raw)
    except vol.Invalid as err:
        raise ConfigError(describe_invalid(loaded, err)) from err
    problems = []
    rate = data["rate"]
    if len(rate["block_prices"]) != len(rate["block_thresholds_kwh"]) + 1:
        line = loaded.line_of(("rate", "block_prices"))
        problems.append(
            f"{path}:{line}: rate.block_prices: expected one price more than there are "
            f"block thresholds ({len(rate['block_thresholds_kwh'])} thresholds, "
            f"{len(rate['block_prices'])} prices)"
        )
    for key_path, text in home_problems(data["home"]) + price_problems(data):
        problems.append(f"{path}:{loaded.line_of(key_path)}: {'.'.join(map(str, key_path))}: {text}")
    if problems:
        raise ConfigError(problems)
    return Scenario(source=Path(path), **data)


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    """Build a scenario from a dict (tests); same validation, no file."""
    validated = SCENARIO_SCHEMA(data)
    problems = [f"{'.'.join(map(str, p))}: {text}"
                for p, text in home_problems(validated["home"]) + price_problems(validated)]
    if problems:
        raise ConfigError(problems)
    return Scenario(**validated)


def price_problems(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """Prices that the wire cannot carry exactly as written (the meter never rounds)."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    for index, change in enumerate(data["price_changes"]):
        try:
            _, digits = exact_price(change["price"], change.get("trailing_digits"))
        except ValueError as err:
            problems.append((("price_changes", index, "price"), str(err)))
            continue
        if change.get("generation_price") is not None:
            try:
                exact_price(change["generation_price"], digits)
            except ValueError as err:
                problems.append((("price_changes", index, "generation_price"), str(err)))
    return problems


def home_problems(home: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    """What the schema cannot see: unique names and addresses, setpoints within limits."""
    problems: list[tuple[tuple[Any, ...], str]] = []
    seen: dict[tuple[str, Any], int] = {}
    thermostats = 0
    for index, device in enumerate(home["devices"]):
        for key in ("name", "ieee", "nwk"):
            value = device.get(key)
            if value is None:
                continue
            if (key, value) in seen:
                problems.append((("home", "devices", index, key),
                                 f"{value!r} is already used by device {seen[(key, value)]}"))
            else:
                seen[(key, value)] = index
        if device["kind"] == "thermostat":
            thermostats += 1
            if thermostats > 1:
                problems.append((("home", "devices", index, "kind"),
                                 "the house has one thermal zone: only one thermostat is simulated"))
            from integrations.simulator.thermal import SetpointError, ThermostatLogic

            logic = ThermostatLogic(
                min_cool_c=device["min_cool_c"], max_cool_c=device["max_cool_c"],
                min_heat_c=device["min_heat_c"], max_heat_c=device["max_heat_c"],
                deadband_c=device["deadband_c"])
            try:
                logic.check(device["cooling_setpoint_c"], device["heating_setpoint_c"])
            except SetpointError as err:
                problems.append((("home", "devices", index, "cooling_setpoint_c"), str(err)))
    return problems
