"""Domain values to table rows and back; the only place that knows both shapes.

Enums are stored by value, so a row stays readable if an enum gains a member.
"""

from __future__ import annotations

from typing import Any

from ems.model import (
    Criticality,
    DeviceClass,
    EventStatus,
    EventStatusReport,
    IntervalReading,
    LoadControlEvent,
    MessageImportance,
    MessageOrigin,
    MeterInfo,
    PriceSignal,
    UtilityMessage,
)
from ems.store.records import OutboxRecord, StoredEvent, StoredMessage

Row = dict[str, Any]


def meter_row(info: MeterInfo) -> Row:
    return {
        "meter_id": info.meter_id,
        "ieee": info.ieee,
        "endpoint": info.endpoint,
        "unit": info.unit,
        "multiplier": info.multiplier,
        "divisor": info.divisor,
        "summation_decimals": info.summation_decimals,
        "demand_decimals": info.demand_decimals,
        "device_type": info.device_type,
        "discovered_at": info.discovered_at,
        "last_seen": info.discovered_at,
    }


def meter_info(row: Any) -> MeterInfo:
    return MeterInfo(
        meter_id=row.meter_id,
        ieee=row.ieee,
        endpoint=row.endpoint,
        unit=row.unit,
        multiplier=row.multiplier,
        divisor=row.divisor,
        summation_decimals=row.summation_decimals,
        demand_decimals=row.demand_decimals,
        device_type=row.device_type,
        discovered_at=row.discovered_at,
    )


def interval_row(reading: IntervalReading) -> Row:
    return {
        "meter_id": reading.meter_id,
        "start": reading.start,
        "duration_s": reading.duration_s,
        "consumed_kwh": reading.consumed_kwh,
        "generated_kwh": reading.generated_kwh,
    }


def interval_reading(row: Any) -> IntervalReading:
    return IntervalReading(
        meter_id=row.meter_id,
        start=row.start,
        duration_s=row.duration_s,
        consumed_kwh=row.consumed_kwh,
        generated_kwh=row.generated_kwh,
    )


_PRICE_FIELDS = (
    "meter_id",
    "provider_id",
    "issuer_event_id",
    "rate_label",
    "currency",
    "price_per_kwh",
    "start",
    "end",
    "tier",
    "number_of_tiers",
    "register_tier",
    "generation_price_per_kwh",
    "price_ratio",
    "block_thresholds",
    "received_at",
)


def price_row(price: PriceSignal) -> Row:
    return {name: getattr(price, name) for name in _PRICE_FIELDS}


def price_signal(row: Any) -> PriceSignal:
    return PriceSignal(**{name: getattr(row, name) for name in _PRICE_FIELDS})


def message_row(message: UtilityMessage) -> Row:
    """A fresh message row: a message that reuses an id replaces the old one and its marks."""
    return {
        "meter_id": message.meter_id,
        "message_id": message.message_id,
        "text": message.text,
        "importance": int(message.importance),
        "start": message.start,
        "end": message.end,
        "confirmation_required": message.confirmation_required,
        "received_at": message.received_at,
        "origin": message.origin.value,
        "enhanced_confirmation": message.enhanced_confirmation,
        "template": message.template or None,
        "params": dict(message.params) if message.template else None,
        "cancelled_at": None,
        "confirmed_at": None,
        "confirmation_answer": None,
        "read": False,
    }


def stored_message(row: Any) -> StoredMessage:
    message = UtilityMessage(
        meter_id=row.meter_id,
        message_id=row.message_id,
        text=row.text,
        importance=MessageImportance(row.importance),
        start=row.start,
        end=row.end,
        confirmation_required=bool(row.confirmation_required),
        received_at=row.received_at,
        origin=MessageOrigin(row.origin),
        enhanced_confirmation=bool(row.enhanced_confirmation),
        template=row.template or "",
        params=tuple(sorted((str(k), str(v)) for k, v in (row.params or {}).items())),
    )
    return StoredMessage(
        message=message,
        cancelled_at=row.cancelled_at,
        confirmed_at=row.confirmed_at,
        confirmation_answer=row.confirmation_answer,
        read=bool(row.read),
    )


_EVENT_FIELDS = (
    "meter_id",
    "issuer_event_id",
    "enrollment_group",
    "start",
    "duration_min",
    "received_at",
    "cooling_offset_c",
    "heating_offset_c",
    "cooling_setpoint_c",
    "heating_setpoint_c",
    "average_load_adjustment_pct",
    "duty_cycle_pct",
    "randomize_start",
    "randomize_end",
)


def event_row(event: LoadControlEvent) -> Row:
    row = {name: getattr(event, name) for name in _EVENT_FIELDS}
    row.update(
        device_class=int(event.device_class),
        criticality=int(event.criticality),
        end_at=event.end,
        cancelled_at=None,
    )
    return row


def stored_event(row: Any) -> StoredEvent:
    fields = {name: getattr(row, name) for name in _EVENT_FIELDS}
    fields["randomize_start"] = bool(fields["randomize_start"])
    fields["randomize_end"] = bool(fields["randomize_end"])
    event = LoadControlEvent(
        device_class=DeviceClass(row.device_class),
        criticality=Criticality(row.criticality),
        **fields,
    )
    return StoredEvent(event=event, cancelled_at=row.cancelled_at)


_STATUS_FIELDS = (
    "meter_id",
    "issuer_event_id",
    "at",
    "criticality_applied",
    "cooling_setpoint_applied_c",
    "heating_setpoint_applied_c",
    "average_load_adjustment_applied_pct",
    "duty_cycle_applied_pct",
)


def status_row(report: EventStatusReport) -> Row:
    row = {name: getattr(report, name) for name in _STATUS_FIELDS}
    row["status"] = int(report.status)
    # The column (from migration 0001) keeps the two randomisation flags as bits 0 and 1.
    row["event_control"] = int(report.randomize_start) | int(report.randomize_end) << 1
    return row


def status_report(row: Any) -> EventStatusReport:
    fields = {name: getattr(row, name) for name in _STATUS_FIELDS}
    return EventStatusReport(status=EventStatus(row.status), **fields)


def outbox_record(row: Any) -> OutboxRecord:
    return OutboxRecord(
        id=row.id,
        kind=row.kind,
        payload=row.payload,
        created_at=row.created_at,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        meter_id=row.meter_id,
        wire_id=row.wire_id,
    )
