"""The simulator's home as the rules see it: its devices, events and snapshots, built to order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ems.model import (
    Criticality,
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    DevicePreference,
    DeviceReading,
    DeviceView,
    EventPhase,
    EventView,
    LoadControlEvent,
    Snapshot,
    Trigger,
    TriggerKind,
)

TZ = ZoneInfo("America/Los_Angeles")
# Wednesday 10 July 2024, 16:30 in Los Angeles: a summer weekday, on peak.
NOW = datetime(2024, 7, 10, 23, 30, tzinfo=UTC)
METER = "meter-1"

LIVING_ROOM = "00:0d:6f:00:00:00:00:01"
POOL_PUMP = "00:0d:6f:00:00:00:00:02"
WATER_HEATER = "00:0d:6f:00:00:00:00:03"
EV_CHARGER = "00:0d:6f:00:00:00:00:04"
BATTERY = "00:0d:6f:00:00:00:00:05"
SPA_HEATER = "00:0d:6f:00:00:00:00:06"
TICK = Trigger(TriggerKind.TICK)
NAMES = ["Living room", "Pool pump", "Water heater", "EV charger", "Home battery", "Spa heater"]


def device(
    device_id: str,
    name: str,
    kind: DeviceKind,
    device_class: DeviceClass,
    nominal_kw: float | None = None,
    *,
    group: int = 0,
    at: datetime = NOW,
    **reading: object,
) -> DeviceView:
    info = DeviceInfo(device_id, name, kind, device_class, enrollment_group=group, nominal_kw=nominal_kw,
                      discovered_at=at)
    return DeviceView(info, DeviceReading(device_id, at, **reading) if reading else None)  # type: ignore[arg-type]


def home(at: datetime = NOW) -> tuple[DeviceView, ...]:
    """The six devices of the simulator's home, all on and drawing what they are rated for."""
    return (
        device(LIVING_ROOM, "Living room", DeviceKind.THERMOSTAT, DeviceClass.HVAC, at=at, indoor_c=25.0,
               cooling_setpoint_c=24.0, heating_setpoint_c=20.0, system_mode="cool"),
        device(POOL_PUMP, "Pool pump", DeviceKind.SWITCH, DeviceClass.POOL_PUMP, 1.5, at=at, power_kw=1.5, on=True),
        device(WATER_HEATER, "Water heater", DeviceKind.SWITCH, DeviceClass.WATER_HEATER, 4.5, at=at, power_kw=4.5,
               on=True),
        device(EV_CHARGER, "EV charger", DeviceKind.SWITCH, DeviceClass.ELECTRIC_VEHICLE, 7.2, at=at, power_kw=7.2,
               on=True),
        device(BATTERY, "Home battery", DeviceKind.BATTERY, DeviceClass.GENERATION, at=at, soc_pct=80.0),
        device(SPA_HEATER, "Spa heater", DeviceKind.LOAD_CONTROLLER, DeviceClass.SMART_APPLIANCE, 2.0, at=at,
               power_kw=2.0, on=True),
    )


def event(
    issuer_event_id: int = 1234,
    *,
    device_class: DeviceClass = DeviceClass.HVAC | DeviceClass.POOL_PUMP | DeviceClass.WATER_HEATER,
    group: int = 0,
    criticality: Criticality = Criticality.LEVEL_3,
    start: datetime = NOW - timedelta(minutes=10),
    duration_min: int = 120,
    phase: EventPhase = EventPhase.ACTIVE,
    opted_out: bool = False,
    excluded: frozenset[str] = frozenset(),
    **fields: object,
) -> EventView:
    ev = LoadControlEvent(METER, issuer_event_id, device_class, group, start, duration_min, criticality,
                          received_at=start - timedelta(hours=1), **fields)  # type: ignore[arg-type]
    return EventView(ev, phase, ev.start, ev.end, opted_out, excluded)


def snapshot(
    *,
    at: datetime = NOW,
    devices: tuple[DeviceView, ...] | None = None,
    events: tuple[EventView, ...] = (),
    trigger: Trigger = TICK,
    preferences: tuple[DevicePreference, ...] = (),
    **fields: object,
) -> Snapshot:
    return Snapshot(at=at, local=at.astimezone(TZ), trigger=trigger,
                    devices=home(at) if devices is None else devices, events=events,
                    preferences=preferences, **fields)  # type: ignore[arg-type]


def with_reading(view: DeviceView, **changes: object) -> DeviceView:
    assert view.reading is not None
    return replace(view, reading=replace(view.reading, **changes))  # type: ignore[arg-type]
