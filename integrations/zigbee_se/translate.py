"""Decoded SE commands -> domain events, with the SE client's validation rules.

Pure functions: given a command's typed payload (the zigpy schema struct decoded once, see
``integrations.zigbee.se.commands``) and the appliance's time now (the meter's time where it is
known), return a domain event or raise ``OutOfRange`` naming what is wrong, with the SE status
to answer. Protocol encodings (UTCTime since 2000, nibble packing, trailing digits, 0.01 °C
units, "not used" sentinels) end here.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ems.model import (
    Criticality,
    CriticalPeakEvent,
    DeviceClass,
    EventCancellation,
    EventStatus,
    LoadControlEvent,
    MessageCancelled,
    MessageImportance,
    MessageOrigin,
    MeterRate,
    PriceSignal,
    UtilityMessage,
)
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import PublishBlockPeriodSE11
from integrations.zigbee.se.commands import (
    CancelAllLoadControlEvents,
    CancelLoadControlEvent,
    CancelMessage,
    DisplayMessage,
    PublishBillingPeriod,
    PublishBlockPeriod,
    PublishCppEvent,
    PublishPrice,
    PublishTierLabels,
)
from integrations.zigbee.se.commands import LoadControlEvent as LoadControlEventCommand

MAX_EVENT_MINUTES = 1440  # DRLC §2.3
# PriceTrailingDigit is a nibble (§3.3): 0-15 decimal places are all valid, and the price stays
# an exact Decimal (1 with 15 digits is 1E-15, not a float's nearest neighbour).


class OutOfRange(ValueError):
    """A well-formed frame whose values SE says to refuse; ``status`` is what to answer."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class Ignored(Exception):
    """A frame SE says to drop silently (reserved criticality, not addressed to us)."""


@dataclass(frozen=True, slots=True)
class Formatting:
    """How the meter scales its raw values (read from its Metering attributes)."""

    multiplier: int = 1
    divisor: int = 1

    def energy(self, raw: int) -> float:
        return codec.scale_metering(raw, self.multiplier, self.divisor)


def _start(raw: int, now: datetime) -> datetime:
    """StartTime: 0 means now (§1.4)."""
    if int(raw) == 0:
        return now
    when = codec.utc_time_to_datetime(int(raw))
    if when is None:
        raise OutOfRange("start time is 0xFFFFFFFF (invalid)", EventStatus.REJECTED)
    return when


# -- Price -------------------------------------------------------------------------------


def price_amounts(fields: PublishPrice) -> tuple[Decimal, Decimal | None]:
    """The price and the generation price (None: not used), exact, in currency units per unit."""
    trailing, _tier = codec.unpack_price_trailing_digit_and_tier(int(fields.price_trailing_digit_and_price_tier))
    generation = fields.generation_price
    return codec.price_to_decimal(int(fields.price), trailing), (
        None if generation is None or codec.generation_price(int(generation)) is None
        else codec.price_to_decimal(int(generation), trailing))


def price_signal(fields: PublishPrice, meter_id: str, now: datetime) -> PriceSignal:
    _trailing, tier = codec.unpack_price_trailing_digit_and_tier(int(fields.price_trailing_digit_and_price_tier))
    tiers, register_tier = codec.unpack_price_tiers_and_register_tier(
        int(fields.number_of_price_tiers_and_register_tier)
    )
    price, generation = price_amounts(fields)
    start = _start(fields.start_time, now)
    duration = codec.duration_minutes(int(fields.duration_in_minutes))
    end = None if duration is None else start + timedelta(minutes=duration)
    if end is not None and end <= now:
        raise OutOfRange(f"price {int(fields.issuer_event_id)} ended at {end.isoformat()}, before now")
    ratio = fields.price_ratio
    thresholds = fields.number_of_block_thresholds
    return PriceSignal(
        meter_id=meter_id,
        provider_id=int(fields.provider_id),
        issuer_event_id=int(fields.issuer_event_id),
        rate_label=bytes(fields.rate_label).decode("utf-8", "replace").strip("\x00 "),
        currency=codec.currency_alpha(int(fields.currency)) or f"ISO{int(fields.currency):03d}",
        price_per_kwh=float(price),
        start=start,
        end=end,
        tier=tier,
        number_of_tiers=tiers,
        register_tier=register_tier,
        generation_price_per_kwh=None if generation is None else float(generation),
        price_ratio=None if ratio is None or codec.uint8_or_none(int(ratio)) is None else int(ratio) / 10,
        block_thresholds=None if thresholds is None else codec.uint8_or_none(int(thresholds)),
        received_at=now,
        price_per_kwh_exact=price,
        generation_price_per_kwh_exact=generation,
    )


def price_ack_required(fields: PublishPrice) -> bool:
    control = fields.price_control
    return control is not None and bool(int(control) & 0x01)


def period_end(start: datetime, duration: int, duration_type: int | None) -> datetime:
    """End of a block or billing period: the duration counts in the timebase of the
    DurationType's low nibble (0 minutes, 1 days, 2 weeks, 3 months; §3.5). A period that
    would end past the calendar (year 9999; a 24-bit count of weeks or months can) is refused."""
    timebase = 0 if duration_type is None else int(duration_type) & 0x0F
    try:
        if timebase == 1:
            return start + timedelta(days=duration)
        if timebase == 2:
            return start + timedelta(weeks=duration)
        if timebase == 3:
            month = start.month - 1 + duration
            year, month = start.year + month // 12, month % 12 + 1
            day = min(start.day, [31, 29 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 28,
                                  31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1])
            return start.replace(year=year, month=month, day=day)
        return start + timedelta(minutes=duration)
    except (OverflowError, ValueError) as err:
        unit = {1: "days", 2: "weeks", 3: "months"}.get(timebase, "minutes")
        raise OutOfRange(f"a period of {duration} {unit} from {start.isoformat()} ends past the calendar") from err


def billing_period(fields: PublishBillingPeriod, rate: MeterRate, now: datetime) -> MeterRate:
    start = _start(fields.billing_period_start_time, now)
    end = period_end(start, int(fields.billing_period_duration), fields.billing_period_duration_type)
    return dataclasses.replace(rate, billing_period_start=start, billing_period_end=end, received_at=now)


def block_period(fields: PublishBlockPeriod | PublishBlockPeriodSE11, rate: MeterRate, now: datetime) -> MeterRate:
    """Either layout (§3.5): SE 1.1 counts the duration in minutes, SE 1.2 in its DurationType."""
    start = _start(fields.block_period_start_time, now)
    if isinstance(fields, PublishBlockPeriodSE11):
        end = period_end(start, int(fields.block_period_duration_in_minutes), None)
    else:
        end = period_end(start, int(fields.block_period_duration), fields.block_period_duration_type)
    return dataclasses.replace(rate, block_period_start=start, block_period_end=end, received_at=now)


def tier_labels(fields: PublishTierLabels, rate: MeterRate, now: datetime) -> MeterRate:
    labels = dict(rate.tier_labels)
    for entry in fields.tier_labels:
        labels[int(entry.tier_id)] = bytes(entry.tier_label).decode("utf-8", "replace").strip("\x00 ")
    return dataclasses.replace(rate, tier_labels=tuple(sorted(labels.items())), received_at=now)


CPP_AUTH = {0: "pending", 1: "accepted", 2: "rejected", 3: "forced"}


def critical_peak(fields: PublishCppEvent, meter_id: str, now: datetime) -> CriticalPeakEvent:
    duration = int(fields.duration_in_minutes)
    start = _start(fields.start_time, now)
    if duration == 0 or now > start + timedelta(minutes=duration):
        raise OutOfRange(f"CPP event {int(fields.issuer_event_id)} is over or lasts 0 minutes")
    return CriticalPeakEvent(
        meter_id=meter_id,
        issuer_event_id=int(fields.issuer_event_id),
        start=start,
        duration_min=duration,
        cpp_tier=int(fields.cpp_price_tier) + 1,
        authorization=CPP_AUTH.get(int(fields.cpp_auth), "pending"),
        received_at=now,
    )


# -- Messaging ---------------------------------------------------------------------------


def utility_message(fields: DisplayMessage, meter_id: str, now: datetime) -> UtilityMessage:
    control = int(fields.message_control)
    start = _start(fields.start_time, now)
    duration = codec.duration_minutes(int(fields.duration_in_minutes))
    end = None if duration is None else start + timedelta(minutes=duration)
    if end is not None and end <= now:
        raise OutOfRange(f"message {int(fields.message_id)} expired at {end.isoformat()}")
    return UtilityMessage(
        meter_id=meter_id,
        message_id=int(fields.message_id),
        text=str(fields.message),
        importance=MessageImportance((control >> 2) & 0x03),
        start=start,
        end=end,
        confirmation_required=bool(control & 0x80),
        enhanced_confirmation=bool(control & 0x20),
        received_at=now,
        # Transmission 1 or 2 (D.5.2.3.1.1.1): also (or only) by anonymous Inter-PAN, to every
        # display nearby: a public broadcast (energy shortage, grid reliability, weather alerts).
        origin=MessageOrigin.PUBLIC if (control & 0x03) in (1, 2) else MessageOrigin.UTILITY,
    )


def message_cancelled(fields: CancelMessage, meter_id: str, now: datetime) -> MessageCancelled:
    return MessageCancelled(meter_id, int(fields.message_id), now)


# -- DRLC --------------------------------------------------------------------------------


def load_control_event(fields: LoadControlEventCommand, meter_id: str, now: datetime) -> LoadControlEvent:
    """Validate per DRLC client rules (§2.12 items 2-3) and convert."""
    event_id = int(fields.issuer_event_id)
    criticality = int(fields.criticality_level)
    if criticality == 0 or criticality > 0x0F:
        raise Ignored(f"event {event_id} has reserved criticality {criticality:#04x}")
    duration = int(fields.duration_in_minutes)
    if duration == 0:
        raise OutOfRange(f"event {event_id} lasts 0 minutes", EventStatus.REJECTED)
    if duration > MAX_EVENT_MINUTES:
        raise OutOfRange(f"event {event_id} lasts {duration} minutes (at most 1440)", EventStatus.REJECTED)
    start = _start(fields.start_time, now)
    if now > start + timedelta(minutes=duration):
        raise OutOfRange(
            f"event {event_id} started {start.isoformat()} and was already over", EventStatus.REJECTED_EXPIRED
        )
    avg = codec.average_load_adjustment_percent(int(fields.average_load_adjustment_percentage))
    if avg is not None and not -100 <= avg <= 100:
        raise OutOfRange(f"event {event_id} asks a {avg} % load adjustment (range -100..100)", EventStatus.REJECTED)
    duty = codec.duty_cycle_percent(int(fields.duty_cycle))
    if duty is not None and duty > 100:
        raise OutOfRange(f"event {event_id} asks a {duty} % duty cycle (range 0..100)", EventStatus.REJECTED)
    control = int(fields.event_control)
    return LoadControlEvent(
        meter_id=meter_id,
        issuer_event_id=event_id,
        device_class=DeviceClass(int(fields.device_class) & 0x0FFF),
        enrollment_group=int(fields.utility_enrollment_group),
        start=start,
        duration_min=duration,
        criticality=Criticality(criticality),
        received_at=now,
        cooling_offset_c=codec.temperature_offset_c(int(fields.cooling_temperature_offset)),
        heating_offset_c=codec.temperature_offset_c(int(fields.heating_temperature_offset)),
        cooling_setpoint_c=codec.temperature_set_point_c(int(fields.cooling_temperature_set_point)),
        heating_setpoint_c=codec.temperature_set_point_c(int(fields.heating_temperature_set_point)),
        average_load_adjustment_pct=avg,
        duty_cycle_pct=duty,
        randomize_start=bool(control & 0x01),
        randomize_end=bool(control & 0x02),
    )


def event_cancellation(fields: CancelLoadControlEvent, meter_id: str, now: datetime) -> EventCancellation:
    """CancelLoadControlEvent (§2.12 item 11). An unknown event, or a time after its end, the DR
    core refuses (it knows the events); an effective time that is no time at all is refused here."""
    event_id = int(fields.issuer_event_id)
    raw = int(fields.effective_time)
    if raw == 0xFFFFFFFF:
        raise OutOfRange(f"cancel of event {event_id} has an invalid effective time", EventStatus.REJECTED_INVALID_CANCEL_TIME)
    effective = now if raw == 0 else codec.utc_time_to_datetime(raw)
    assert effective is not None
    return EventCancellation(
        meter_id=meter_id,
        issuer_event_id=event_id,
        device_class=DeviceClass(int(fields.device_class) & 0x0FFF),
        enrollment_group=int(fields.utility_enrollment_group),
        effective_at=effective,
        randomize_end=bool(int(fields.cancel_control) & 0x01),
        received_at=now,
    )


def cancel_all(fields: CancelAllLoadControlEvents, meter_id: str, now: datetime) -> EventCancellation:
    return EventCancellation(
        meter_id=meter_id,
        issuer_event_id=None,
        device_class=DeviceClass(0x0FFF),
        enrollment_group=0,
        effective_at=now,
        randomize_end=bool(int(fields.cancel_control) & 0x01),
        received_at=now,
    )
