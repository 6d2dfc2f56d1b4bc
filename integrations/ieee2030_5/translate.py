"""2030.5 resources -> domain events: where the protocol's encodings end.

Pure functions over ``resources`` values. ReadingTypes are classified as aio2030dot5 does (paths
change between firmware versions, so nothing is keyed on a path): by unit, accumulation, flow
direction and qualifier. Values become kW and kWh (``value`` x 10^powerOfTenMultiplier in W or Wh),
prices the tariff currency per kWh (exact ``Decimal`` kept), times aware UTC. An event's mRID
becomes a stable 32-bit id (CRC-32 of the mRID): the domain's events and messages are keyed by
integers, and the link keeps the mRID to answer the meter with.
"""

from __future__ import annotations

import enum
import math
import zlib
from datetime import datetime, timedelta
from decimal import Decimal

from ems.model import (
    Criticality,
    DeviceClass,
    EventCancellation,
    EventStatus,
    LoadControlEvent,
    MessageCancelled,
    MessageImportance,
    MessageOrigin,
    PriceSignal,
    UtilityMessage,
)
from integrations.ieee2030_5.resources import (
    ConsumptionTariffInterval,
    EndDeviceControl,
    ReadingType,
    TariffProfile,
    TextMessage,
    TimeTariffInterval,
)

UOM_W, UOM_WH = 38, 72
FORWARD, REVERSE = 1, 19
CUMULATIVE, DELTA, INDICATING, SUMMATION, INSTANTANEOUS = 3, 4, 6, 9, 12
MAXIMUM, MINIMUM = 8, 9
CANCELLED, CANCELLED_RANDOM, SUPERSEDED = 2, 3, 4
USER_RESPONSE = 0x04  # responseRequired bit 2: the customer must answer
MAX_EVENT_MINUTES = 1440

CURRENCIES = {840: "USD", 124: "CAD", 978: "EUR", 826: "GBP", 36: "AUD", 554: "NZD", 484: "MXN", 756: "CHF"}


class Role(enum.StrEnum):
    """What a MeterReading carries, from its ReadingType."""

    DEMAND = "demand"
    DELIVERED = "summation_delivered"
    RECEIVED = "summation_received"
    INTERVALS_DELIVERED = "intervals_delivered"
    INTERVALS_RECEIVED = "intervals_received"


def classify(kind: ReadingType) -> Role | None:
    """The role of a MeterReading of this ReadingType, or None (VAh, power factor, maximum demand, ...)."""
    if kind.data_qualifier in (MAXIMUM, MINIMUM):
        return None
    if kind.uom == UOM_W and kind.accumulation in (INDICATING, INSTANTANEOUS, None) and not kind.interval_length_s:
        return Role.DEMAND
    if kind.uom == UOM_WH and kind.accumulation in (SUMMATION, CUMULATIVE) and not kind.number_of_tou_tiers:
        return Role.RECEIVED if kind.flow_direction == REVERSE else Role.DELIVERED
    if kind.uom == UOM_WH and kind.accumulation == DELTA:
        return Role.INTERVALS_RECEIVED if kind.flow_direction == REVERSE else Role.INTERVALS_DELIVERED
    return None


def scaled_k(value: int, kind: ReadingType) -> float:
    """A W or Wh value in kW or kWh."""
    return value * 10.0 ** (kind.power_of_ten - 3)


def demand_kw(value: int, kind: ReadingType) -> float:
    """Instantaneous demand, signed: positive importing, negative exporting. Itron's is signed as it
    is (negative while exporting though its ReadingType says forward); a meter that reports export
    as a positive reverse-flow value is turned to negative here."""
    kw = scaled_k(value, kind)
    return -kw if kind.flow_direction == REVERSE and kw > 0 else kw


def event_id(mrid: str) -> int:
    """A stable 32-bit id for an mRID (the domain keys events and messages by integers)."""
    return zlib.crc32(mrid.upper().encode("ascii"))


def currency(numeric: int | None) -> str:
    if numeric is None:
        return "USD"
    return CURRENCIES.get(numeric, f"ISO{numeric:03d}")


def price_per_kwh(price: int, profile: TariffProfile, unit: ReadingType | None) -> Decimal:
    """``price`` x 10^pricePowerOfTenMultiplier per unit of the rate's ReadingType (Wh x 10^its
    multiplier; kWh when the rate gives none), as money per kWh, exact."""
    unit_power = unit.power_of_ten if unit is not None and unit.uom == UOM_WH else 3
    return Decimal(price).scaleb(profile.price_power_of_ten + 3 - unit_power)


def price_signal(meter_id: str, profile: TariffProfile, unit: ReadingType | None, interval: TimeTariffInterval,
                 blocks: list[ConsumptionTariffInterval], now: datetime) -> PriceSignal | None:
    """The price of ``interval`` (its first block's), or None when it has no usable price."""
    priced = sorted((b for b in blocks if b.price is not None), key=lambda b: (b.consumption_block or 0))
    if not priced or interval.event.start is None:
        return None
    assert priced[0].price is not None
    exact = price_per_kwh(priced[0].price, profile, unit)
    start = interval.event.start
    duration = interval.event.duration_s
    end = None if duration is None or duration >= 0xFFFFFFFF else start + timedelta(seconds=duration)
    return PriceSignal(
        meter_id=meter_id, provider_id=0, issuer_event_id=event_id(interval.event.mrid),
        rate_label=(profile.rate_code or "")[:40], currency=currency(profile.currency),
        price_per_kwh=float(exact), start=start, end=end, tier=interval.tou_tier or 0,
        register_tier=interval.tou_tier or 0, block_thresholds=max(0, len(priced) - 1) or None,
        received_at=now, price_per_kwh_exact=exact,
    )


def block_thresholds_kwh(blocks: list[ConsumptionTariffInterval], unit: ReadingType | None) -> tuple[float, ...]:
    """The thresholds between blocks (``startValue`` above 0), in kWh."""
    power = unit.power_of_ten if unit is not None and unit.uom == UOM_WH else 3
    return tuple(sorted(b.start_value * 10.0 ** (power - 3) for b in blocks if b.start_value))


def utility_message(meter_id: str, message: TextMessage, now: datetime) -> UtilityMessage | None:
    """A TextMessage as a domain message (None: no text)."""
    if not message.text:
        return None
    start = message.event.start or message.event.creation_time or now
    duration = message.event.duration_s
    end = None if duration is None or duration >= 0xFFFFFFFF or duration == 0 else start + timedelta(seconds=duration)
    importance = MessageImportance(message.priority) if message.priority is not None else MessageImportance.MEDIUM
    return UtilityMessage(
        meter_id=meter_id, message_id=event_id(message.event.mrid), text=message.text, importance=importance,
        start=start, end=end, confirmation_required=bool(message.event.response_required & USER_RESPONSE),
        received_at=now, origin=MessageOrigin.UTILITY,
    )


def message_cancelled(meter_id: str, message: TextMessage, now: datetime) -> MessageCancelled:
    return MessageCancelled(meter_id, event_id(message.event.mrid), now)


# 2030.5 (2018 schema) deviceCategory bit -> the SE device classes the domain speaks
_CATEGORY_CLASSES = {
    0: DeviceClass.HVAC, 1: DeviceClass.STRIP_HEATER, 2: DeviceClass.STRIP_HEATER, 3: DeviceClass.WATER_HEATER,
    4: DeviceClass.POOL_PUMP, 5: DeviceClass.SMART_APPLIANCE, 6: DeviceClass.SMART_APPLIANCE,
    7: DeviceClass.SMART_APPLIANCE, 8: DeviceClass.IRRIGATION_PUMP, 9: DeviceClass.COMMERCIAL_LOAD,
    10: DeviceClass.SIMPLE_LOAD, 11: DeviceClass.EXTERIOR_LIGHTING, 12: DeviceClass.INTERIOR_LIGHTING,
    13: DeviceClass.SIMPLE_LOAD, 15: DeviceClass.SMART_APPLIANCE, 16: DeviceClass.ELECTRIC_VEHICLE,
    17: DeviceClass.ELECTRIC_VEHICLE,
}
_EMS_BIT = 14  # "Energy Management System" (2018): the event is for the EMS itself, so for every load it runs
_ALL_CLASSES = DeviceClass(0x0FFF)


def device_class(category: int | None) -> DeviceClass:
    if category is None or category & (1 << _EMS_BIT):
        return _ALL_CLASSES
    classes = DeviceClass(0)
    for bit, cls in _CATEGORY_CLASSES.items():
        if category & (1 << bit):
            classes |= cls
    if category >> 18:  # DER and generation (bits 18-25)
        classes |= DeviceClass.GENERATION
    return classes


def load_control_event(meter_id: str, control: EndDeviceControl, now: datetime) -> LoadControlEvent | None:
    """An EndDeviceControl as the domain's load-control event (None: no interval to run in).

    2030.5 has no criticality: a mandatory event is taken as level 3, a voluntary one as level 1.
    Offsets are 0.1 °C, setpoints 0.01 °C, the load adjustment 0.01 %."""
    event = control.event
    if event.start is None or event.duration_s is None:
        return None
    minutes = max(1, math.ceil(event.duration_s / 60))
    return LoadControlEvent(
        meter_id=meter_id, issuer_event_id=event_id(event.mrid), device_class=device_class(control.device_category),
        enrollment_group=0, start=event.start, duration_min=minutes,
        criticality=Criticality.LEVEL_3 if control.mandatory else Criticality.LEVEL_1, received_at=now,
        cooling_offset_c=None if control.cooling_offset is None else control.cooling_offset / 10,
        heating_offset_c=None if control.heating_offset is None else control.heating_offset / 10,
        cooling_setpoint_c=None if control.cooling_setpoint is None else control.cooling_setpoint / 100,
        heating_setpoint_c=None if control.heating_setpoint is None else control.heating_setpoint / 100,
        average_load_adjustment_pct=(None if control.load_adjustment_pct is None
                                     else round(control.load_adjustment_pct / 100)),
        duty_cycle_pct=control.duty_cycle_pct,
        randomize_start=bool(control.randomize_start_s), randomize_end=bool(control.randomize_duration_s),
    )


def event_cancellation(meter_id: str, control: EndDeviceControl, now: datetime) -> EventCancellation:
    return EventCancellation(meter_id, event_id(control.event.mrid), device_class(control.device_category), 0,
                             now, control.event.status == CANCELLED_RANDOM, now)


def is_withdrawn(status: int | None) -> bool:
    return status in (CANCELLED, CANCELLED_RANDOM, SUPERSEDED)


# The domain's event statuses -> 2030.5 Response.status (1-10 are the same numbers)
_REJECTIONS = {EventStatus.REJECTED_EXPIRED: 254, EventStatus.REJECTED_UNDEFINED_EVENT: 252}


def response_status(status: EventStatus) -> int:
    if status <= EventStatus.COMPLETED_NO_PARTICIPATION:
        return int(status)
    return _REJECTIONS.get(status, 253)
