"""Domain types: what the appliance knows about meters, prices, messages and DR events.

Every value here is protocol-free: times are aware UTC datetimes, energy is kWh, power is kW
and money is in the tariff's currency (ISO 4217 alpha code). Integrations translate their wire
encodings into these at their boundary; everything inside the appliance speaks only these.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache


def utcnow() -> datetime:
    """The current time, aware UTC (the only clock the core reads)."""
    return datetime.now(UTC)


def require_utc(value: datetime, name: str) -> datetime:
    """Reject naive datetimes early: every time inside the appliance is aware UTC."""
    if value.tzinfo is None:
        raise ValueError(f"{name} must be an aware UTC datetime, got a naive one: {value!r}")
    return value.astimezone(UTC)


# --- Human texts ----------------------------------------------------------------------------


TextParams = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Text:
    """A human text the core or the rules made: a catalog msgid and its values, made once.

    The demand-response reasons, notes and whys are made only as this; each reader gets them in
    their own language at the edge (``web.control_api.dr_text``), and :meth:`english` (also
    ``str()``) renders them for the log, the store and anything with no reader. Values are machine
    strings, formatted by the name of their placeholder:

    - ``*_phrase``: a msgid itself, filled from the same values (a phrase may hold another);
    - ``*_signed_c``: degrees with a sign (``+3.0``); ``*_c`` degrees and ``*_kw`` kW, one decimal;
    - ``*_pct``, ``*_min``, ``*_num``: plain numbers (``50``, ``1.5``);
    - ``*_time``: a time of day, an aware ISO 8601 time written in the site's zone (English reads
      its wall clock, ``17:20``; a reader's locale shows it in the site's zone);
    - anything else (a rule's or device's name, an event id, an ISO time ``*_at`` or date
      ``*_date``): as it is in English; ``ems.local_text`` formats the dates and times for a reader.
    """

    msgid: str
    params: TextParams = ()

    @classmethod
    def of(cls, msgid: str, /, **values: object) -> Text:
        """The text of ``msgid`` with ``values`` as machine strings (floats exact, datetimes ISO 8601)."""
        return cls(msgid, tuple([(key, value if type(value) is str else machine_string(value))
                                 for key, value in values.items()]))

    def english(self) -> str:
        return _english(self)

    def __str__(self) -> str:
        return _english(self)


def english(texts: Iterable[Text], separator: str = "; ") -> str:
    """Texts made of parts (a decision's or a load change's notes) in English, joined."""
    return separator.join(_english(t) for t in texts)


def machine_string(value: object) -> str:
    """A value as a Text keeps it: a string as it is, a float exactly (``repr``), a time in ISO 8601."""
    if type(value) is str:
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


class _Filled(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"  # a placeholder without a value stays visible, never an error


_PHRASE_DEPTH = 3  # a phrase in a phrase in the text, at most


@lru_cache(maxsize=1024)  # the same reasons are shown again on every page and push
def _english(text: Text) -> str:
    shown = _Filled()
    phrases = []
    for key, value in text.params:
        if key.endswith("_phrase"):
            phrases.append((key, value))
        else:
            shown[key] = _english_value(key, value)
    for _depth in range(_PHRASE_DEPTH if phrases else 0):  # inner phrases settle first
        shown.update({key: _fill(value, shown) for key, value in phrases})
    return _fill(text.msgid, shown)


def _fill(template: str, shown: _Filled) -> str:
    try:
        return template.format_map(shown)
    except (ValueError, IndexError, AttributeError, KeyError):  # not a template after all
        return template


def _english_value(key: str, value: str) -> str:
    try:
        if key.endswith("_signed_c"):
            return f"{float(value):+.1f}"
        if key.endswith(("_c", "_kw")):
            return f"{float(value):.1f}"
        if key.endswith(("_pct", "_min", "_num")):
            return f"{float(value):g}"
        if key.endswith("_time"):
            return datetime.fromisoformat(value).strftime("%H:%M")
    except ValueError:
        return value  # not what its name promises: shown as it came
    return value


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
class StorageChanged:
    """The database stopped or started taking writes (published by the store on a real change):
    ``problem`` is why it cannot ("disk_full", "unwritable"), None once it can again."""

    problem: str | None
    at: datetime
    since: datetime | None = None  # when the outage began (None once it is over)


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
class CycleDemand:
    """A meter's demand level above which the bill's demand charge rises now (ems.bill_watch, from the costs).

    ``peak_kw``: the lowest of the cycle's peaks so far among the demand charges that cover this
    moment (a charge whose hours these are and whose peak is already read); ``window_minutes``:
    the rate sheet's demand window.
    """

    meter_id: str
    peak_kw: float | None  # None: no demand charge covers this moment, or none has a peak read yet
    window_minutes: int
    at: datetime  # when this was worked out


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
    # The prices exactly as the utility sent them (SE: a uint32 and 0-15 decimal places), where the
    # source gave them; the floats above are these rounded. Not stored (a restored price has None).
    price_per_kwh_exact: Decimal | None = None
    generation_price_per_kwh_exact: Decimal | None = None

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
    UTILITY = "utility"  # arrived from the meter: the utility's message to this customer
    PUBLIC = "public"  # arrived from the meter as a public broadcast (also sent by Inter-PAN): a grid or weather alert
    LOCAL = "local"  # made by the appliance itself (tier warnings, ...)


# What makes a message the same one when heard again (``ems.state.is_repeat``; the store's upsert
# compares these columns; a local message's params, which is_repeat compares too, show in its text).
MESSAGE_IDENTITY = ("text", "importance", "confirmation_required", "enhanced_confirmation", "origin", "template")


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
    # A message the EMS made itself: the catalog msgid ("text" is it rendered in English) and
    # its values, so each person reads it in their own language.
    template: str = ""
    params: tuple[tuple[str, str], ...] = ()


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


@dataclass(frozen=True, slots=True)
class MessageRead:
    """The customer marked a message read (every open page drops its unread mark)."""

    meter_id: str
    message_id: int
    at: datetime


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


@dataclass(frozen=True, slots=True)
class ScheduleListed:
    """The meter answered GetScheduledEvents (SE §2.11: it sends every event it still schedules)
    and the answer has settled: ``issuer_event_ids`` are the events it listed. An event the DR
    core holds as live, heard before ``listening_since`` (an earlier session, or before a restart),
    and not listed was withdrawn (cancelled or superseded) while the appliance was not listening."""

    meter_id: str
    issuer_event_ids: frozenset[int]
    listening_since: datetime


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
    randomize_start: bool = False  # the event asked for a randomised start (and the EMS applies it)
    randomize_end: bool = False
    reason: str = ""  # why it was rejected (REJECTED_*), for the log and the pages


@dataclass(frozen=True, slots=True)
class EventRejected:
    """An event or a cancel from the utility that cannot be carried out, as its adapter found it.

    The adapter says what is wrong (a 0- or over-long duration, an event already over, an invalid
    cancel time); the DR core reports it upstream, as it reports every other status.
    """

    meter_id: str
    issuer_event_id: int
    status: EventStatus  # one of the REJECTED_* statuses
    reason: str
    at: datetime
    # What the refused event itself said, for the report to echo (SE: a rejection carries the
    # event's criticality and event control); None / False where the frame did not say.
    criticality: Criticality | None = None
    randomize_start: bool = False
    randomize_end: bool = False
    # Whom the refused frame addressed (its DeviceClass and UtilityEnrollmentGroup), so the DR core
    # ignores a refusal of a frame not for this client (§2.12 item 1) as it ignores the frame; None:
    # the frame did not say (the refusal is reported).
    device_class: DeviceClass | None = None
    enrollment_group: int | None = None


# --- The home's devices ------------------------------------------------------------------


class DeviceKind(enum.StrEnum):
    """What a home device is, which decides what the EMS can ask of it."""

    THERMOSTAT = "thermostat"  # Thermostat cluster 0x0201
    SWITCH = "switch"  # On/Off plug or relay, power from Electrical Measurement or Metering
    LOAD_CONTROLLER = "load_controller"  # has an SE DRLC client: the EMS relays events to it
    BATTERY = "battery"  # home battery: state of charge, charge/discharge power


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device on the home's own Zigbee network, as found when it joined (or restored).

    ``device_id`` is its IEEE address ("00:0d:6f:00:0a:90:69:e7"), stable across rejoins.
    ``device_class`` says which DRLC device classes an event must name to address it.
    """

    device_id: str
    name: str
    kind: DeviceKind
    device_class: DeviceClass
    enrollment_group: int = 0
    nominal_kw: float | None = None  # typical draw when on (plugs, load controllers)
    min_setpoint_c: float | None = None  # the thermostat's own limits (Min/MaxCool/HeatSetpointLimit)
    max_setpoint_c: float | None = None
    capacity_kwh: float | None = None  # batteries
    model: str = ""
    discovered_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """What one device reported; a field is None when this report did not carry it.

    ``power_kw`` is positive when the device draws power; a battery discharging is negative.
    """

    device_id: str
    at: datetime
    power_kw: float | None = None
    on: bool | None = None
    indoor_c: float | None = None
    outdoor_c: float | None = None
    cooling_setpoint_c: float | None = None
    heating_setpoint_c: float | None = None
    system_mode: str | None = None  # "off" | "cool" | "heat" | "auto"
    soc_pct: float | None = None


@dataclass(frozen=True, slots=True)
class DeviceAvailability:
    """A device answered again, or stopped answering (published only on a change)."""

    device_id: str
    available: bool
    at: datetime
    detail: str = ""


class CommandAction(enum.StrEnum):
    """What the dispatcher can ask of a device through a port."""

    ON = "on"
    OFF = "off"
    SETPOINTS = "setpoints"
    RELAY_EVENT = "relay_event"  # pass a LoadControlEvent to the device's own DRLC client
    CANCEL_EVENT = "cancel_event"


@dataclass(frozen=True, slots=True)
class DeviceCommand:
    """One command for one device, as the dispatcher sends it."""

    device_id: str
    action: CommandAction
    cooling_setpoint_c: float | None = None
    heating_setpoint_c: float | None = None
    event: LoadControlEvent | None = None


@dataclass(frozen=True, slots=True)
class DeviceCommanded:
    """The outcome of a command: what was sent, for whom (source), why, and whether it took."""

    command: DeviceCommand
    source: str  # "event:123", "rule:precool", "restore", "override"
    reason: Text  # the winner's reason, or why the device was put back
    at: datetime
    ok: bool
    detail: str = ""


# --- Control: what the rules see and what they propose ------------------------------------


class TriggerKind(enum.StrEnum):
    """Why the control cycle runs now."""

    EVENT_ANNOUNCED = "event_announced"
    EVENT_STARTED = "event_started"
    EVENT_ENDED = "event_ended"
    PRICE = "price"
    DEMAND = "demand"
    TEMPERATURE = "temperature"
    DEVICE = "device"
    OVERRIDE = "override"
    TICK = "tick"


@dataclass(frozen=True, slots=True)
class Trigger:
    kind: TriggerKind
    meter_id: str | None = None
    issuer_event_id: int | None = None
    device_id: str | None = None


class EventPhase(enum.StrEnum):
    SCHEDULED = "scheduled"  # announced, not yet started (after start randomisation)
    ACTIVE = "active"
    ENDED = "ended"  # completed, cancelled or superseded


@dataclass(frozen=True, slots=True)
class EventView:
    """A DR event as the DR core keeps it (``ems.dr.events``): the one view the cycle, the rules,
    the pages and the API read: when it really runs, who takes part, how it ended."""

    event: LoadControlEvent
    phase: EventPhase
    effective_start: datetime  # start after randomisation
    effective_end: datetime  # end after randomisation or cancellation
    opted_out: bool = False  # the whole event
    excluded_devices: frozenset[str] = frozenset()  # devices taken out of it by the customer
    outcome: EventStatus | None = None  # the final status once ended
    addressed: bool = True  # an event for no device class or group here is not kept at all (SE §2.12 item 1)
    cancelled_at: datetime | None = None  # when a (valid) cancel takes effect
    took_part: bool = False  # the home took part at some moment while it ran
    # The EMS set at least one device for it while it ran: False when every device was taken out
    # (or none could act), though the event was not opted out; "thank you" only when True.
    acted: bool = False
    shed_kw: float = 0.0  # the load the EMS sheds for it (expected, from the winning proposals)
    achieved_pct: int | None = None  # that as a share of the home's load (negative: a reduction)

    @property
    def key(self) -> tuple[str, int]:
        return (self.event.meter_id, self.event.issuer_event_id)


@dataclass(frozen=True, slots=True)
class DeviceView:
    """One device in a snapshot: what it is, what it last said, whether it answers."""

    info: DeviceInfo
    reading: DeviceReading | None
    available: bool = True
    # The state the EMS found before it first changed the device (None: not controlled).
    controlled_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class ComfortLimits:
    """The most any action may take from a device's user (the customer's own limits)."""

    max_offset_c: float = 4.0  # largest setpoint change away from comfort
    max_off_min: float = 120.0  # longest a load may be kept off in one go
    min_on_min: float = 10.0  # shortest a load stays on once back on
    min_setpoint_c: float | None = None  # cooling setpoint never above / heating never below
    max_setpoint_c: float | None = None


@dataclass(frozen=True, slots=True)
class DevicePreference:
    """The customer's settings for one device: shed order (lower sheds first) and comfort."""

    device_id: str
    shed_priority: int = 50
    comfort: ComfortLimits = field(default_factory=ComfortLimits)
    takes_part: bool = True  # False: never controlled for DR


class ProposalAction(enum.StrEnum):
    SETPOINTS = "setpoints"  # absolute cooling/heating setpoints
    OFFSET = "offset"  # degrees away from comfort: cooling setpoint up, heating setpoint down
    OFF = "off"
    ON = "on"
    DUTY_CYCLE = "duty_cycle"  # on for value % of each cycle
    RELAY_EVENT = "relay_event"  # hand the event to the device's own DRLC client
    NOTIFY = "notify"  # tell the customer (a local message); no device
    HOLD = "hold"  # leave the device as the customer set it: no command, nothing to put back


@dataclass(frozen=True, slots=True)
class LoadHistory:
    """What the dispatcher did to a device lately (comfort limits on time off and on)."""

    off_since: datetime | None = None  # kept off by the EMS since
    on_since: datetime | None = None  # back on since (after the EMS had it off)


@dataclass(frozen=True, slots=True)
class ControlledDevice:
    """The dispatcher's record of a device it holds: how it was before, and what it last sent it."""

    device_id: str
    original: Mapping[str, object]  # its state before the EMS first changed it (what restoring puts back)
    since: datetime
    source: str  # who first took it ("event:main:7", "rule:precool")
    sent_on: bool | None = None  # what it was last told (None: nothing of that kind)
    sent_cooling_c: float | None = None
    sent_heating_c: float | None = None
    sent_at: datetime | None = None
    sent_source: str = ""  # the source of the proposal it carries out now
    sent_event: tuple[str, int] | None = None  # (meter id, issuer event id) of that proposal


@dataclass(frozen=True, slots=True)
class DeviceOverride:
    """The customer's own say over one device, held above the utility's event and the rules.

    Made from a change by hand seen in the device's reports (``by="device"``), or from a command
    the customer gave (the web, later MQTT or OpenADR). It lasts while what it overrode still asks
    something of the device (``overrides``, a proposal source), or until ``until``.
    """

    device_id: str
    at: datetime
    by: str  # "device" (a hand change), or who asked: a user name, "api", ...
    overrides: str = ""  # the proposal source it overrode ("event:main:7", "rule:precool"); "" none
    action: ProposalAction = ProposalAction.HOLD
    on: bool | None = None  # for ON / OFF commands
    cooling_setpoint_c: float | None = None  # for SETPOINTS commands
    heating_setpoint_c: float | None = None
    until: datetime | None = None
    meter_id: str | None = None  # the event it overrode, if any
    issuer_event_id: int | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a rule may look at, frozen at one instant (rules are pure over it)."""

    at: datetime  # aware UTC
    local: datetime  # the same instant in the site's time zone (time windows, days, season)
    trigger: Trigger
    demand_kw: float | None = None
    demand_history: tuple[tuple[datetime, float], ...] = ()  # the last hour, oldest first
    price_per_kwh: float | None = None
    price_tier: int | None = None
    outdoor_c: float | None = None
    devices: tuple[DeviceView, ...] = ()
    events: tuple[EventView, ...] = ()
    preferences: tuple[DevicePreference, ...] = ()
    # The dispatcher's record, frozen with the rest (OpenEMS' process image): the devices it holds
    # and how each was, what it did to their loads lately, and the customer's overrides in force.
    controlled: Mapping[str, ControlledDevice] = field(default_factory=dict)
    load_history: Mapping[str, LoadHistory] = field(default_factory=dict)
    overrides: tuple[DeviceOverride, ...] = ()
    demand_by_meter: Mapping[str, float] = field(default_factory=dict)  # each meter's latest demand (kW)
    # The rate's demand window and the level above which its demand charge rises now (None: no demand charge).
    demand_window_min: int | None = None
    demand_peak_kw: float | None = None

    def device(self, device_id: str) -> DeviceView | None:
        return next((d for d in self.devices if d.info.device_id == device_id), None)


class ProposalSource(enum.IntEnum):
    """Who asks; a higher value wins (the arbiter's fixed order, after comfort limits)."""

    DEFAULT = 0
    RULE = 1
    EVENT = 2
    OVERRIDE = 3


@dataclass(frozen=True, slots=True)
class Proposal:
    """What one rule (or the event, or the customer) wants one device to do, and why."""

    device_id: str | None
    action: ProposalAction
    source: ProposalSource
    reason: Text  # shown to the customer: "Rule 'precool': 1.5 °C cooler than usual until 17:00"
    rule: str = ""  # the rule's name, when a rule made it
    priority: int = 0  # within one source: the higher wins
    value: float | None = None  # offset in degC, duty cycle %
    cooling_setpoint_c: float | None = None
    heating_setpoint_c: float | None = None
    meter_id: str | None = None
    issuer_event_id: int | None = None
    text: str = ""  # NOTIFY: the message for the customer
    expected_kw_reduction: float = 0.0  # what shedding this device should save


@dataclass(frozen=True, slots=True)
class TelemetryReport:
    """Device readings summarised for an upstream channel that carries telemetry (C6 3.3 step 7)."""

    device_id: str
    kind: DeviceKind
    at: datetime
    power_kw: float | None = None
    soc_pct: float | None = None
    indoor_c: float | None = None
    system_mode: str | None = None


@dataclass(frozen=True, slots=True)
class EventParticipationChanged:
    """The customer opted out of an event (or back in), whole (device_id None) or for one device."""

    meter_id: str
    issuer_event_id: int
    device_id: str | None
    opted_out: bool
    at: datetime
    by: str  # who: a user name, "device" (touched by hand), "api"


# --- Commissioning ------------------------------------------------------------------------


class CommissioningStep(enum.StrEnum):
    """Where the appliance stands in joining one meter's network (C6 3.1 steps 5-17), in order."""

    WAITING = "waiting"  # for the utility to register this appliance's install code with the meter
    JOINING = "joining"
    JOINED = "joined"
    AUTHENTICATED = "authenticated"
    KEYS_ESTABLISHED = "keys_established"
    METER_CHECKED = "meter_checked"  # the meter's number (MeterSerialNumber) is the one the customer named
    CONFIGURED = "configured"  # the utility's configuration arrived, applied and confirmed
    REFUSED = "refused"  # the meter said no (``detail`` says why); retried at the configured interval
    WRONG_METER = "wrong_meter"  # not the customer's meter (C6 1.4): left, no data taken; retried


@dataclass(frozen=True, slots=True)
class CommissioningStage:
    """A bus event: the appliance reached ``stage`` with meter ``meter_id`` at ``at``.

    Published by the meter link (integrations/zigbee_se) as each stage happens; the state keeps the
    latest per meter and the Commissioning page shows it. ``detail`` is plain words the customer
    can act on ("The meter does not know this appliance's install code yet"); no key, ever.
    """

    meter_id: str
    stage: CommissioningStep
    at: datetime
    detail: str = ""


@dataclass(frozen=True, slots=True)
class UtilityConfiguration:
    """The utility's configuration for this appliance, as the meter wrote it (C6 3.1 step 15): the
    DRLC client's utility enrollment group and start / duration randomisation, the Price client's
    randomisation of price changes; None for what this message did not set."""

    meter_id: str
    at: datetime
    enrollment_group: int | None = None
    start_randomization_min: int | None = None
    duration_randomization_min: int | None = None
    price_increase_randomize_min: int | None = None
    price_decrease_randomize_min: int | None = None


class CheckOutcome(enum.StrEnum):
    PASSED = "passed"
    WARNING = "warning"  # works, but someone should look (low disk, clock not yet checked)
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SelfTestCheck:
    """One check of the self-test (I1FR6): ``name`` is "store", "radio", "meter_link", "clock" or
    "disk"; ``summary`` is a plain sentence; ``critical`` means the appliance cannot do its job."""

    name: str
    outcome: CheckOutcome
    summary: Text
    critical: bool = False
    duration_s: float = 0.0


@dataclass(frozen=True, slots=True)
class SelfTestReport:
    """A bus event: a whole self-test run (at start or on request), every check in order."""

    at: datetime
    checks: tuple[SelfTestCheck, ...]

    @property
    def failed_critically(self) -> bool:
        return any(c.critical and c.outcome is CheckOutcome.FAILED for c in self.checks)


# --- Counters -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FrameRejected:
    """A frame from the HAN that was malformed, unknown or out of range (counted, logged)."""

    meter_id: str
    reason: str
    kind: str  # "malformed" | "unknown" (unknown or manufacturer-specific command) | "rejected"
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
    | MessageRead
    | LoadControlEvent
    | EventCancellation
    | EventStatusReport
    | EventParticipationChanged
    | FrameRejected
    | DeviceInfo
    | DeviceReading
    | DeviceAvailability
    | DeviceCommanded
    | CommissioningStage
    | SelfTestReport
)
