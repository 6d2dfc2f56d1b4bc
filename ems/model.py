"""Domain types: what the appliance knows about meters, prices, messages and DR events.

Every value here is protocol-free: times are aware UTC datetimes, energy is kWh, power is kW
and money is in the tariff's currency (ISO 4217 alpha code). Integrations translate their wire
encodings into these at their boundary; everything inside the appliance speaks only these.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    """The current time, aware UTC (the only clock the core reads)."""
    return datetime.now(UTC)


def require_utc(value: datetime, name: str) -> datetime:
    """Reject naive datetimes early: every time inside the appliance is aware UTC."""
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an aware UTC datetime, got a naive one: {value!r}")
    return value.astimezone(UTC)


# --- Meter data -------------------------------------------------------------------------


class LinkState(enum.StrEnum):
    """How the appliance's link to a meter stands, as shown to the customer."""

    CONNECTING = "connecting"
    ONLINE = "online"
    STALE = "stale"  # connected, but no report for longer than expected
    OFFLINE = "offline"  # link dropped; retrying with backoff


@dataclass(frozen=True, slots=True)
class MeterLinkChanged:
    """The link to a meter changed state (published only on a real change)."""

    meter_id: str
    state: LinkState
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class MeterInfo:
    """What the meter said about itself when the link came up."""

    meter_id: str
    ieee: str
    endpoint: int
    unit: str  # "kWh", "m3", ... from UnitOfMeasure
    multiplier: int
    divisor: int
    summation_decimals: int
    demand_decimals: int
    device_type: str
    discovered_at: datetime


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One report from a meter: whichever of its values the report carried.

    A field is None when this report did not carry it. ``read_at`` is when the appliance
    received it (meter clocks drift; the meter's own time is in ``meter_time`` if known).
    """

    meter_id: str
    read_at: datetime
    demand_kw: float | None = None
    summation_delivered_kwh: float | None = None
    summation_received_kwh: float | None = None
    current_day_delivered_kwh: float | None = None
    current_day_received_kwh: float | None = None
    meter_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class IntervalReading:
    """Energy consumed and generated in one completed metering interval, as read."""

    meter_id: str
    start: datetime
    duration_s: int
    consumed_kwh: float
    generated_kwh: float = 0.0

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.duration_s)


# --- Prices -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceSignal:
    """A price the utility published: what one unit costs from ``start`` until ``end``.

    ``end`` is None for "until changed". ``tier`` is 0 when the price has no tier.
    """

    meter_id: str
    provider_id: int
    issuer_event_id: int
    rate_label: str
    currency: str
    price_per_kwh: float
    start: datetime
    end: datetime | None
    tier: int = 0
    number_of_tiers: int = 0
    register_tier: int = 0
    generation_price_per_kwh: float | None = None
    price_ratio: float | None = None
    block_thresholds: int | None = None
    received_at: datetime = field(default_factory=utcnow)

    def is_active(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or at < self.end)


@dataclass(frozen=True, slots=True)
class MeterRate:
    """What the meter's Price cluster says about the rate: tiers, blocks, billing period.

    Fields are None (or empty) where the meter did not publish them. Block thresholds are
    cumulative kWh within the block period, as the meter compares them.
    """

    meter_id: str
    received_at: datetime
    tier_labels: tuple[tuple[int, str], ...] = ()
    block_thresholds_kwh: tuple[float, ...] = ()
    block_period_start: datetime | None = None
    block_period_end: datetime | None = None
    billing_period_start: datetime | None = None
    billing_period_end: datetime | None = None


@dataclass(frozen=True, slots=True)
class CriticalPeakEvent:
    """A critical peak pricing event the meter announced (SE 1.2 PublishCPPEvent)."""

    meter_id: str
    issuer_event_id: int
    start: datetime
    duration_min: int
    cpp_tier: int  # 1 or 2: which CPP price applies
    authorization: str  # "pending" | "accepted" | "rejected" | "forced"
    received_at: datetime

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_min)


# --- Messages -----------------------------------------------------------------------------


class MessageImportance(enum.IntEnum):
    LOW = 0
    MEDIUM = 1
    HIGH = 2
    CRITICAL = 3


class MessageOrigin(enum.StrEnum):
    UTILITY = "utility"  # arrived from the meter
    LOCAL = "local"  # made by the appliance itself (tier warnings, ...)


@dataclass(frozen=True, slots=True)
class UtilityMessage:
    """A text message for the customer (utility, public alert, or made locally)."""

    meter_id: str
    message_id: int
    text: str
    importance: MessageImportance
    start: datetime
    end: datetime | None
    confirmation_required: bool
    received_at: datetime
    origin: MessageOrigin = MessageOrigin.UTILITY
    enhanced_confirmation: bool = False


@dataclass(frozen=True, slots=True)
class MessageCancelled:
    """The utility withdrew a message."""

    meter_id: str
    message_id: int
    at: datetime


@dataclass(frozen=True, slots=True)
class MessageConfirmed:
    """The customer confirmed a message; travels upstream through the outbox."""

    meter_id: str
    message_id: int
    confirmed_at: datetime
    answer: str | None = None  # "yes" / "no" for an enhanced confirmation


# --- Demand response ----------------------------------------------------------------------


class Criticality(enum.IntEnum):
    """SE CriticalityLevel (DRLC §2.5), kept numeric because rules compare levels."""

    GREEN = 1
    LEVEL_1 = 2
    LEVEL_2 = 3
    LEVEL_3 = 4
    LEVEL_4 = 5
    LEVEL_5 = 6
    EMERGENCY = 7
    PLANNED_OUTAGE = 8
    SERVICE_DISCONNECT = 9
    UTILITY_1 = 10
    UTILITY_2 = 11
    UTILITY_3 = 12
    UTILITY_4 = 13
    UTILITY_5 = 14
    UTILITY_6 = 15


class DeviceClass(enum.IntFlag):
    """Which kinds of load an event addresses (DRLC DeviceClass, §2.4)."""

    HVAC = 0x0001
    STRIP_HEATER = 0x0002
    WATER_HEATER = 0x0004
    POOL_PUMP = 0x0008
    SMART_APPLIANCE = 0x0010
    IRRIGATION_PUMP = 0x0020
    COMMERCIAL_LOAD = 0x0040
    SIMPLE_LOAD = 0x0080
    EXTERIOR_LIGHTING = 0x0100
    INTERIOR_LIGHTING = 0x0200
    ELECTRIC_VEHICLE = 0x0400
    GENERATION = 0x0800


@dataclass(frozen=True, slots=True)
class LoadControlEvent:
    """A demand-response event the utility announced (the fields of C6 3.3 step 2)."""

    meter_id: str
    issuer_event_id: int
    device_class: DeviceClass
    enrollment_group: int
    start: datetime
    duration_min: int
    criticality: Criticality
    received_at: datetime
    cooling_offset_c: float | None = None
    heating_offset_c: float | None = None
    cooling_setpoint_c: float | None = None
    heating_setpoint_c: float | None = None
    average_load_adjustment_pct: int | None = None
    duty_cycle_pct: int | None = None
    randomize_start: bool = False
    randomize_end: bool = False

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_min)


@dataclass(frozen=True, slots=True)
class EventCancellation:
    """The utility cancelled one event (``issuer_event_id``) or all of them (None)."""

    meter_id: str
    issuer_event_id: int | None
    device_class: DeviceClass
    enrollment_group: int
    effective_at: datetime
    randomize_end: bool
    received_at: datetime


class EventStatus(enum.IntEnum):
    """What the appliance reports upstream about an event (DRLC EventStatus, §2.9)."""

    RECEIVED = 0x01
    STARTED = 0x02
    COMPLETED = 0x03
    OPTED_OUT = 0x04
    OPTED_IN = 0x05
    CANCELLED = 0x06
    SUPERSEDED = 0x07
    PARTIALLY_COMPLETED_OPT_OUT = 0x08
    PARTIALLY_COMPLETED_OPT_IN = 0x09
    COMPLETED_NO_PARTICIPATION = 0x0A
    REJECTED_INVALID_CANCEL = 0xF8
    REJECTED_INVALID_CANCEL_TIME = 0xF9
    REJECTED_EXPIRED = 0xFB
    REJECTED_UNDEFINED_EVENT = 0xFD
    REJECTED = 0xFE


@dataclass(frozen=True, slots=True)
class EventStatusReport:
    """A status change of one DR event, queued for the utility (ReportEventStatus)."""

    meter_id: str
    issuer_event_id: int
    status: EventStatus
    at: datetime
    criticality_applied: int = 0
    cooling_setpoint_applied_c: float | None = None
    heating_setpoint_applied_c: float | None = None
    average_load_adjustment_applied_pct: int | None = None
    duty_cycle_applied_pct: int | None = None
    event_control: int = 0


# --- Counters -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A frame from the HAN that was malformed, unknown or out of range (counted, logged)."""

    meter_id: str
    reason: str
    kind: str  # "malformed" | "rejected"
    at: datetime


DomainEvent = (
    MeterLinkChanged
    | MeterInfo
    | MeterReading
    | IntervalReading
    | PriceSignal
    | MeterRate
    | CriticalPeakEvent
    | UtilityMessage
    | MessageCancelled
    | MessageConfirmed
    | LoadControlEvent
    | EventCancellation
    | EventStatusReport
    | FrameRejected
)
