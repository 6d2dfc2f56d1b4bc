"""OpenADR 2.0b event signals as plain load-control asks (protocol only: no ``ems`` import).

An ``oadrEvent`` (as openleadr parses it: a dict) carries one or more signals, each a list of
intervals. Every interval whose signal asks for something becomes one ``Ask``: a span of time,
a criticality on the SE scale (1 green ... 7 emergency, so the customer's rules that filter on
criticality treat a program's event as they treat the meter's), and at most the fields the DR core
already acts on. The mapping (OpenADR 2.0b profile spec §8.1 signal names and types; the SE fields
are DRLC §2.5):

- ``SIMPLE`` ``level``: 0 normal (nothing asked), 1 moderate -> criticality 2 (level 1), 2 high ->
  4 (level 3), 3 special -> 7 (emergency). The DR core sheds by its rules, as for an SE event
  that names only a criticality.
- ``LOAD_CONTROL``: ``x-loadControlCapacity`` c (0..1 of the device's capacity) -> duty cycle
  ``round(100 c)`` %; ``x-loadControlPercentOffset`` p -> average load adjustment ``-p`` %;
  ``x-loadControlLevelOffset`` n -> criticality ``1 + n`` (capped at 7); ``x-loadControlSetpoint``
  t -> a cooling and heating set point of t °C.
- ``LOAD_DISPATCH``: ``delta`` d kW (a reduction asked) -> average load adjustment of ``-d`` kW as
  a share of the demand when the event arrives (the DR core's baseline then plans the shed);
  ``setpoint`` s kW -> the share of the demand above s. With no demand known, 50 %.
- ``ELECTRICITY_PRICE`` / ``ENERGY_PRICE``: ``price`` p -> an event when p is at or above the
  program's threshold, criticality ``1 + floor(p / threshold)`` (capped at 7);
  ``priceMultiplier`` m -> the same with ``m`` in place of ``p / threshold``; ``priceRelative``
  r (a change from the normal price) -> with ``r / threshold``.

A payload that asks for nothing (level 0, a price under the threshold, an offset of 0) is no ask:
the DR core is not told of it. Unknown signal names are skipped (openleadr answers the VTN with
"signal not supported" for names outside the 2.0b list).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SIMPLE_CRITICALITY = {1: 2, 2: 4, 3: 7}
MAX_CRITICALITY = 7  # SE's emergency: an OpenADR program does not reach SE's utility-defined levels
LOAD_SIGNALS = ("SIMPLE", "simple", "LOAD_CONTROL", "LOAD_DISPATCH", "ELECTRICITY_PRICE", "ENERGY_PRICE")

# OpenADR end device asset mRIDs (2.0b spec §8.3.1, EndDeviceAssetType) -> SE device class bits.
END_DEVICE_CLASSES = {
    "thermostat": 0x0001, "baseboard_heater": 0x0002, "strip_heater": 0x0002, "water_heater": 0x0004,
    "pool_pump": 0x0008, "sauna": 0x0010, "hot_tub": 0x0010, "smart_appliance": 0x0010,
    "irrigation_pump": 0x0020, "managed_commercial_industrial_loads": 0x0040, "simple_misc_loads": 0x0080,
    "exterior_lighting": 0x0100, "interior_lighting": 0x0200, "electrical_vehicle": 0x0400,
    "electric_vehicle": 0x0400, "evse": 0x0400, "generation_systems": 0x0800, "smart_inverter": 0x0800,
    "resu": 0x0800, "load_control_switch": 0x0080,
}
ALL_CLASSES = 0x0FFF


@dataclass(frozen=True, slots=True)
class Ask:
    """One interval of one signal of an OpenADR event, as a load-control ask."""

    event_id: str
    modification_number: int
    signal_name: str
    uid: int
    start: datetime
    duration: timedelta
    criticality: int
    device_class: int = ALL_CLASSES
    average_load_adjustment_pct: int | None = None
    duty_cycle_pct: int | None = None
    setpoint_c: float | None = None

    @property
    def issuer_event_id(self) -> int:
        """A stable 31-bit id for this interval of this version of the event (the DR core's key).

        The same event heard again (a poll after a restart) maps to the same ids, so the DR core
        drops the repeat; a modified event (a new modification number) maps to new ids."""
        key = f"{self.event_id}/{self.modification_number}/{self.signal_name}/{self.uid}"
        return zlib.crc32(key.encode()) & 0x7FFFFFFF


class Malformed(ValueError):
    """An event that is not what OpenADR 2.0b (as openleadr parses it) says: the VEN answers optOut."""


MAX_DURATION = timedelta(days=7)  # an interval longer than this is no DR ask (the DR core's events are minutes)


def _descriptor(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict) or not isinstance(event.get("event_descriptor"), dict):
        raise Malformed("the event has no event_descriptor")
    return event["event_descriptor"]


def event_id(event: dict[str, Any]) -> str:
    value = _descriptor(event).get("event_id")
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value):
        raise Malformed("the event has no event_id")
    return str(value)


def modification_number(event: dict[str, Any]) -> int:
    value = _descriptor(event).get("modification_number") or 0
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise Malformed("the modification number is not a number")
    try:
        number = int(value)
    except ValueError:
        raise Malformed("the modification number is not a number") from None
    if not 0 <= number <= 0x7FFFFFFF:
        raise Malformed("the modification number is out of range")
    return number


def is_cancelled(event: dict[str, Any]) -> bool:
    return str(_descriptor(event).get("event_status", "")).lower() == "cancelled"


def device_class(event: dict[str, Any]) -> int:
    """The SE device classes an event's targets name (its end device assets); every class if none."""
    bits = 0
    targets = event.get("targets") or []
    targets = list(targets) if isinstance(targets, list) else []
    by_type = event.get("targets_by_type") or {}
    assets = by_type.get("end_device_asset", []) if isinstance(by_type, dict) else []
    for asset in assets if isinstance(assets, list) else []:
        targets.append({"end_device_asset": asset})
    for target in targets:
        asset = target.get("end_device_asset") if isinstance(target, dict) else None
        mrid = asset.get("mrid") if isinstance(asset, dict) else asset
        if isinstance(mrid, str):
            bits |= END_DEVICE_CLASSES.get(mrid.lower(), 0)
    return bits or ALL_CLASSES


def _time(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) and value.tzinfo is not None else None


def _payload(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _uid(value: Any, index: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0x7FFFFFFF:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 9:
        return int(value)
    return index


def asks(event: dict[str, Any], *, price_threshold_per_kwh: float, demand_kw: float | None) -> list[Ask]:
    """Every interval of ``event`` that asks something of the home, in time order.

    An interval without an aware start, with a duration that is not 0 < d <= ``MAX_DURATION``, or
    with a payload that is not a number asks nothing (it is skipped, as an unknown signal is);
    an event that is not an event at all raises ``Malformed``."""
    eid, mod = event_id(event), modification_number(event)
    signals = event.get("event_signals") or []
    if isinstance(signals, dict):
        signals = signals.get("event_signals") or []
    if not isinstance(signals, list):
        raise Malformed("event_signals is not a list")
    active = event.get("active_period") or {}
    classes = device_class(event)
    out: list[Ask] = []
    for signal in signals:
        if not isinstance(signal, dict):
            continue
        name = str(signal.get("signal_name", ""))
        if name not in LOAD_SIGNALS:
            continue
        kind = str(signal.get("signal_type", ""))
        start = _time(active.get("dtstart")) if isinstance(active, dict) else None
        intervals = signal.get("intervals") or []
        for index, interval in enumerate(intervals if isinstance(intervals, list) else []):
            if not isinstance(interval, dict):
                continue
            duration = interval.get("duration") or timedelta(0)
            at = _time(interval.get("dtstart")) or start
            if at is None or not isinstance(duration, timedelta) or not timedelta(0) < duration <= MAX_DURATION:
                continue
            try:
                start = at + duration
            except OverflowError:
                break  # at the end of time: nothing after it either
            value = _payload(interval.get("signal_payload", 0.0))
            if value is None:
                continue
            fields = _fields(name, kind, value, price_threshold_per_kwh, demand_kw)
            if fields is None:
                continue
            out.append(Ask(eid, mod, name, _uid(interval.get("uid"), index), at, duration,
                           device_class=classes, **fields))
    out.sort(key=lambda a: (a.start, a.signal_name, a.uid))
    return out


def _fields(name: str, kind: str, value: float, threshold: float, demand_kw: float | None) -> dict[str, Any] | None:
    if not math.isfinite(value):
        return None
    if name in ("SIMPLE", "simple"):
        level = int(round(value))
        return {"criticality": SIMPLE_CRITICALITY[level]} if level in SIMPLE_CRITICALITY else None
    if name == "LOAD_CONTROL":
        if kind == "x-loadControlCapacity":
            if not 0 <= value < 1:
                return None  # 1: full capacity, nothing asked
            return {"criticality": 2, "duty_cycle_pct": round(100 * value)}
        if kind == "x-loadControlPercentOffset":
            pct = min(100, round(abs(value)))
            return {"criticality": 2, "average_load_adjustment_pct": -pct} if pct else None
        if kind == "x-loadControlLevelOffset":
            level = round(value)
            return {"criticality": min(MAX_CRITICALITY, 1 + level)} if level > 0 else None
        if kind == "x-loadControlSetpoint":
            return {"criticality": 2, "setpoint_c": value} if -20 <= value <= 50 else None
        return None
    if name == "LOAD_DISPATCH":
        if kind == "delta":
            shed_kw = abs(value)
        elif kind == "setpoint":
            shed_kw = (demand_kw - value) if demand_kw is not None else 0.0
        else:
            return None
        if shed_kw <= 0:
            return None
        pct = round(100 * shed_kw / demand_kw) if demand_kw and demand_kw > 0 else 50
        return {"criticality": 2, "average_load_adjustment_pct": -max(1, min(100, pct))}
    # ELECTRICITY_PRICE, ENERGY_PRICE
    if kind == "price":
        ratio = value / threshold
    elif kind == "priceMultiplier":
        ratio = value
    elif kind == "priceRelative":
        ratio = value / threshold
    else:
        return None
    if ratio < 1:
        return None
    return {"criticality": min(MAX_CRITICALITY, 1 + math.floor(ratio))}
