"""Sample domain events for the store tests (one place, so every test speaks the same data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ems.model import (
    Criticality,
    DeviceClass,
    EventStatus,
    EventStatusReport,
    IntervalReading,
    LoadControlEvent,
    MessageImportance,
    MeterInfo,
    PriceSignal,
    UtilityMessage,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def meter_info(meter_id: str = "m1", at: datetime = NOW) -> MeterInfo:
    return MeterInfo(meter_id, "00:0d:6f:00:00:00:00:01", 1, "kWh", 1, 1000, 3, 3, "electric", at)


def interval(start: datetime, meter_id: str = "m1", consumed_kwh: float = 0.25) -> IntervalReading:
    return IntervalReading(meter_id, start, 900, consumed_kwh, 0.0)


def price(issuer_event_id: int = 1, price_per_kwh: float = 0.12, **kw: object) -> PriceSignal:
    fields: dict[str, object] = {
        "meter_id": "m1",
        "provider_id": 1,
        "issuer_event_id": issuer_event_id,
        "rate_label": "TOU",
        "currency": "USD",
        "price_per_kwh": price_per_kwh,
        "start": NOW - timedelta(hours=1),
        "end": NOW + timedelta(hours=5),
        "tier": 1,
        "number_of_tiers": 3,
        "received_at": NOW - timedelta(hours=1),
    }
    fields.update(kw)
    return PriceSignal(**fields)  # type: ignore[arg-type]


def message(message_id: int = 7, received_at: datetime = NOW, **kw: object) -> UtilityMessage:
    fields: dict[str, object] = {
        "meter_id": "m1",
        "message_id": message_id,
        "text": "Peak event tomorrow 4-7 pm",
        "importance": MessageImportance.HIGH,
        "start": received_at,
        "end": None,
        "confirmation_required": True,
        "received_at": received_at,
    }
    fields.update(kw)
    return UtilityMessage(**fields)  # type: ignore[arg-type]


def dr_event(issuer_event_id: int = 100, start: datetime = NOW, **kw: object) -> LoadControlEvent:
    fields: dict[str, object] = {
        "meter_id": "m1",
        "issuer_event_id": issuer_event_id,
        "device_class": DeviceClass.HVAC | DeviceClass.WATER_HEATER,
        "enrollment_group": 0,
        "start": start,
        "duration_min": 120,
        "criticality": Criticality.LEVEL_2,
        "received_at": start - timedelta(hours=2),
        "cooling_offset_c": 2.0,
        "duty_cycle_pct": 50,
    }
    fields.update(kw)
    return LoadControlEvent(**fields)  # type: ignore[arg-type]


def status_report(
    issuer_event_id: int = 100, status: EventStatus = EventStatus.RECEIVED, at: datetime = NOW
) -> EventStatusReport:
    return EventStatusReport("m1", issuer_event_id, status, at, criticality_applied=3)
