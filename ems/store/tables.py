"""The store's schema as SQLAlchemy 2 declarative models (the migrations must produce the same).

Times are stored as UTC: ``UtcDateTime`` refuses naive datetimes, writes UTC (naive on SQLite,
which has no time zone type, ``timestamptz`` on PostgreSQL) and always returns aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every backend (SQLite stores it naive, as UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store a naive datetime ({value!r}); times are aware UTC")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored = cast(datetime, value)
        if stored.tzinfo is None:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime()}


class Meter(Base):
    __tablename__ = "meters"

    meter_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ieee: Mapped[str] = mapped_column(String(32))
    endpoint: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(16))
    multiplier: Mapped[int] = mapped_column(Integer)
    divisor: Mapped[int] = mapped_column(Integer)
    summation_decimals: Mapped[int] = mapped_column(Integer)
    demand_decimals: Mapped[int] = mapped_column(Integer)
    device_type: Mapped[str] = mapped_column(String(64))
    discovered_at: Mapped[datetime]
    last_seen: Mapped[datetime]


class IntervalRow(Base):
    """One metering interval; the primary key is the dedupe key (meter, start, duration)."""

    __tablename__ = "interval_readings"

    meter_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    start: Mapped[datetime] = mapped_column(primary_key=True)
    duration_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    consumed_kwh: Mapped[float] = mapped_column(Float)
    generated_kwh: Mapped[float] = mapped_column(Float)


class DemandSample(Base):
    __tablename__ = "demand_samples"
    __table_args__ = (Index("ix_demand_samples_meter_at", "meter_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    demand_kw: Mapped[float] = mapped_column(Float)


class RegisterReading(Base):
    __tablename__ = "register_readings"
    __table_args__ = (Index("ix_register_readings_meter_at", "meter_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    summation_delivered_kwh: Mapped[float | None] = mapped_column(Float)
    summation_received_kwh: Mapped[float | None] = mapped_column(Float)


class PriceRow(Base):
    __tablename__ = "price_signals"
    __table_args__ = (UniqueConstraint("meter_id", "issuer_event_id", name="uq_price_signals_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_id: Mapped[str] = mapped_column(String(64))
    provider_id: Mapped[int] = mapped_column(BigInteger)  # uint32 on the wire
    issuer_event_id: Mapped[int] = mapped_column(BigInteger)  # uint32 on the wire
    rate_label: Mapped[str] = mapped_column(String(64))
    currency: Mapped[str] = mapped_column(String(8))
    price_per_kwh: Mapped[float] = mapped_column(Float)
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    tier: Mapped[int] = mapped_column(Integer)
    number_of_tiers: Mapped[int] = mapped_column(Integer)
    register_tier: Mapped[int] = mapped_column(Integer)
    generation_price_per_kwh: Mapped[float | None] = mapped_column(Float)
    price_ratio: Mapped[float | None] = mapped_column(Float)
    block_thresholds: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime]


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("meter_id", "message_id", name="uq_messages_message"),
        Index("ix_messages_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[int] = mapped_column(BigInteger)  # uint32 on the wire
    text: Mapped[str] = mapped_column(Text)
    importance: Mapped[int] = mapped_column(Integer)
    start: Mapped[datetime]
    end: Mapped[datetime | None]
    confirmation_required: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime]
    origin: Mapped[str] = mapped_column(String(16))
    enhanced_confirmation: Mapped[bool] = mapped_column(Boolean)
    cancelled_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    # Added by revision 0002:
    confirmation_answer: Mapped[str | None] = mapped_column(String(16))
    read: Mapped[bool] = mapped_column(Boolean, server_default=false())
    # Added by revision 0004: a message the EMS made, kept as a catalog msgid and its values
    # so each person reads it in their own language.
    template: Mapped[str | None] = mapped_column(String(255))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DrEventRow(Base):
    __tablename__ = "dr_events"
    __table_args__ = (
        UniqueConstraint("meter_id", "issuer_event_id", name="uq_dr_events_event"),
        Index("ix_dr_events_end_at", "end_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_id: Mapped[str] = mapped_column(String(64))
    issuer_event_id: Mapped[int] = mapped_column(BigInteger)  # uint32 on the wire
    device_class: Mapped[int] = mapped_column(Integer)
    enrollment_group: Mapped[int] = mapped_column(Integer)
    start: Mapped[datetime]
    duration_min: Mapped[int] = mapped_column(Integer)
    end_at: Mapped[datetime]  # start + duration, kept so queries need no date arithmetic
    criticality: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime]
    cooling_offset_c: Mapped[float | None] = mapped_column(Float)
    heating_offset_c: Mapped[float | None] = mapped_column(Float)
    cooling_setpoint_c: Mapped[float | None] = mapped_column(Float)
    heating_setpoint_c: Mapped[float | None] = mapped_column(Float)
    average_load_adjustment_pct: Mapped[int | None] = mapped_column(Integer)
    duty_cycle_pct: Mapped[int | None] = mapped_column(Integer)
    randomize_start: Mapped[bool] = mapped_column(Boolean)
    randomize_end: Mapped[bool] = mapped_column(Boolean)
    cancelled_at: Mapped[datetime | None]


class EventStatusRow(Base):
    __tablename__ = "event_status_reports"
    __table_args__ = (Index("ix_event_status_reports_event", "issuer_event_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    meter_id: Mapped[str] = mapped_column(String(64))
    issuer_event_id: Mapped[int] = mapped_column(BigInteger)  # uint32 on the wire
    status: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime]
    criticality_applied: Mapped[int] = mapped_column(Integer)
    cooling_setpoint_applied_c: Mapped[float | None] = mapped_column(Float)
    heating_setpoint_applied_c: Mapped[float | None] = mapped_column(Float)
    average_load_adjustment_applied_pct: Mapped[int | None] = mapped_column(Integer)
    duty_cycle_applied_pct: Mapped[int | None] = mapped_column(Integer)
    event_control: Mapped[int] = mapped_column(Integer)


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_delivered_at", "delivered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    # Added by revision 0002 (retry bookkeeping):
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    # Added by revision 0005 (routes per meter): the meter whose upstream channel carries the
    # row; None for a premise-wide item (device telemetry).
    meter_id: Mapped[str | None] = mapped_column(String(64))
    # Added by revision 0008: the id the upstream channel gave the first attempt (a ZCL TSN),
    # durable before that attempt left, so every retry (also after a power loss) reuses it.
    wire_id: Mapped[int | None] = mapped_column(Integer)


# -- accounts and access (revision 0003) ---------------------------------------------------


class UserRow(Base):
    """A person who may sign in; ``password_hash`` is an argon2id hash, never the password."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    # Added by revision 0004: None follows the site's language.
    language: Mapped[str | None] = mapped_column(String(8))
    # Added by revision 0009: "C" or "F"; None follows the site's unit.
    temperature_unit: Mapped[str | None] = mapped_column(String(1))


class SessionRow(Base):
    """A signed-in browser; the key is the SHA-256 of the cookie's random id, not the id."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_user_id", "user_id"), Index("ix_sessions_expires_at", "expires_at"))

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class LoginFailureRow(Base):
    """Failed sign-ins per user name (existing or not), and the lock they led to."""

    __tablename__ = "login_failures"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start: Mapped[datetime]
    locked_until: Mapped[datetime | None]


class KnownDeviceRow(Base):
    """A browser a user signed in from: the SHA-256 of its cookie's random id, not the id.

    A sign-in from it is not held by the user name's lock (ems.accounts), so a stranger's
    failures cannot keep the owner out of their own appliance.
    """

    __tablename__ = "known_devices"
    __table_args__ = (Index("ix_known_devices_user_id", "user_id"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]


class ConsentRow(Base):
    """The owner's explicit, revocable permission for a third party (C6 3.1 step 1 note)."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    party: Mapped[str] = mapped_column(String(128))
    scopes: Mapped[str] = mapped_column(String(255))  # space-separated, as in OAuth
    granted_by: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("users.id", ondelete="SET NULL")
    )
    granted_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ApiTokenRow(Base):
    """A bearer token; only its SHA-256 is kept (the token is shown once, at creation)."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_consent_id", "consent_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(Integer, ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(255))  # space-separated
    consent_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("consents.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class TokenUseRow(Base):
    """One request made with a token: what was asked and what was answered."""

    __tablename__ = "token_uses"
    __table_args__ = (
        Index("ix_token_uses_token_at", "token_id", "at"),
        Index("ix_token_uses_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_id: Mapped[int] = mapped_column(Integer, ForeignKey("api_tokens.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    status: Mapped[int] = mapped_column(Integer)


# -- the home's devices and demand response (revision 0004) --------------------------------


class DeviceRow(Base):
    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(32))
    device_class: Mapped[int] = mapped_column(Integer)
    enrollment_group: Mapped[int] = mapped_column(Integer)
    nominal_kw: Mapped[float | None] = mapped_column(Float)
    min_setpoint_c: Mapped[float | None] = mapped_column(Float)
    max_setpoint_c: Mapped[float | None] = mapped_column(Float)
    capacity_kwh: Mapped[float | None] = mapped_column(Float)
    model: Mapped[str] = mapped_column(String(128))
    discovered_at: Mapped[datetime]
    last_seen: Mapped[datetime | None]


class DeviceReadingRow(Base):
    __tablename__ = "device_readings"
    __table_args__ = (
        Index("ix_device_readings_device_at", "device_id", "at"),
        Index("ix_device_readings_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    power_kw: Mapped[float | None] = mapped_column(Float)
    on: Mapped[bool | None] = mapped_column(Boolean)
    indoor_c: Mapped[float | None] = mapped_column(Float)
    outdoor_c: Mapped[float | None] = mapped_column(Float)
    cooling_setpoint_c: Mapped[float | None] = mapped_column(Float)
    heating_setpoint_c: Mapped[float | None] = mapped_column(Float)
    system_mode: Mapped[str | None] = mapped_column(String(16))
    soc_pct: Mapped[float | None] = mapped_column(Float)


class DeviceCommandRow(Base):
    """Every command sent to a device: what, for whom, why, and whether it took."""

    __tablename__ = "device_commands"
    __table_args__ = (Index("ix_device_commands_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]
    ok: Mapped[bool] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)


class ControlledDeviceRow(Base):
    """A device the EMS has changed, with how it was before (restored after a restart too)."""

    __tablename__ = "controlled_devices"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    original: Mapped[dict[str, Any]] = mapped_column(JSON)
    since: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(128))


class RelayedEventRow(Base):
    """An event the EMS relayed to a load controller's own DRLC client, kept so that a cancel or an
    opt-out after a restart still reaches the device (written before the relay is sent)."""

    __tablename__ = "relayed_events"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    meter_id: Mapped[str] = mapped_column(String(64))
    issuer_event_id: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)  # the LoadControlEvent as relayed (ems.outbox.encode)
    relayed_at: Mapped[datetime]


class DrParticipationRow(Base):
    """The customer's opt-out (or opt back in) of an event, whole (device_id "") or per device."""

    __tablename__ = "dr_participation"

    meter_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issuer_event_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    opted_out: Mapped[bool] = mapped_column(Boolean)
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(64))



class IdentityRow(Base):
    """The appliance's own identity on the meter's network, made once at the first start (one row).

    ``install_code`` is the code followed by its CRC (hex, upper case), what the utility registers;
    the link key derived from it is never stored (it is computed where the join needs it).
    """

    __tablename__ = "appliance_identity"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    ieee: Mapped[str] = mapped_column(String(23))  # EUI-64 as 02:1a:...
    device_type: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[int] = mapped_column(Integer)  # the SE device ID it joins as
    install_code: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime]


class ProgramPreferencesRow(Base):
    """What the customer wants shown and delivered of the utility's program, per site (C6 3.1 step 4)."""

    __tablename__ = "program_preferences"

    site: Mapped[str] = mapped_column(String(80), primary_key=True)
    current_price: Mapped[bool] = mapped_column(Boolean)
    usage_and_demand: Mapped[bool] = mapped_column(Boolean)
    scheduled_prices: Mapped[bool] = mapped_column(Boolean)
    dr_events: Mapped[bool] = mapped_column(Boolean)
    current_tier: Mapped[bool] = mapped_column(Boolean)
    language: Mapped[str | None] = mapped_column(String(8), nullable=True)  # None: the site's
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(64))


class ProvisioningLogRow(Base):
    """One step of installing or provisioning a home device (UC134 I1FR47): who, what, result."""

    __tablename__ = "provisioning_log"
    __table_args__ = (Index("ix_provisioning_log_device_at", "device_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    device_id: Mapped[str] = mapped_column(String(32))  # "" for the network as a whole
    stage: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(String(64))
    result: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)


class ProvisionedDeviceRow(Base):
    """What the customer chose for a home device and what the device acknowledged (I1FR41, I1FR44)."""

    __tablename__ = "provisioned_devices"

    device_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    location: Mapped[str] = mapped_column(String(128))
    program: Mapped[str | None] = mapped_column(String(64))  # None: takes part in no program
    enrollment_group: Mapped[int | None] = mapped_column(Integer)
    device_class: Mapped[int | None] = mapped_column(Integer)
    acknowledged_at: Mapped[datetime | None]
    readiness: Mapped[str] = mapped_column(String(32))
    changed_at: Mapped[datetime]


class MeterPinRow(Base):
    """Which meter a meter id reads (ems.meter_source.MeterPins), and a different one awaiting the owner."""

    __tablename__ = "meter_pins"

    meter_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    hardware_id: Mapped[str] = mapped_column(String(64))
    pinned_at: Mapped[datetime]
    pending_hardware_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pending_at: Mapped[datetime | None]


class MeterSourceRow(Base):
    """A meter source set up on the Commissioning page (ems.meter_source.MeterSources), per meter id."""

    __tablename__ = "meter_sources"

    meter_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    saved_at: Mapped[datetime]
    saved_by: Mapped[str] = mapped_column(String(64))


class IntegrationSettingRow(Base):
    """An integration set up on the Commissioning page (ems.program_setup): its section, which wins over ems.yaml's."""

    __tablename__ = "integration_settings"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)  # the ems.yaml section: "openadr", "mqtt"
    section: Mapped[str] = mapped_column(Text)  # JSON: the validated section (secrets included)
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(64))


class SelfTestRunRow(Base):
    """One self-test run (ems.selftest): written first, as the store's write check, then its results."""

    __tablename__ = "selftest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    checks: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


meters = cast(Table, Meter.__table__)
interval_readings = cast(Table, IntervalRow.__table__)
demand_samples = cast(Table, DemandSample.__table__)
register_readings = cast(Table, RegisterReading.__table__)
prices = cast(Table, PriceRow.__table__)
messages = cast(Table, MessageRow.__table__)
dr_events = cast(Table, DrEventRow.__table__)
event_status_reports = cast(Table, EventStatusRow.__table__)
outbox = cast(Table, OutboxRow.__table__)
users = cast(Table, UserRow.__table__)
sessions = cast(Table, SessionRow.__table__)
login_failures = cast(Table, LoginFailureRow.__table__)
known_devices = cast(Table, KnownDeviceRow.__table__)
consents = cast(Table, ConsentRow.__table__)
api_tokens = cast(Table, ApiTokenRow.__table__)
token_uses = cast(Table, TokenUseRow.__table__)
devices = cast(Table, DeviceRow.__table__)
device_readings = cast(Table, DeviceReadingRow.__table__)
device_commands = cast(Table, DeviceCommandRow.__table__)
controlled_devices = cast(Table, ControlledDeviceRow.__table__)
dr_participation = cast(Table, DrParticipationRow.__table__)
relayed_events = cast(Table, RelayedEventRow.__table__)
appliance_identity = cast(Table, IdentityRow.__table__)
program_preferences = cast(Table, ProgramPreferencesRow.__table__)
provisioning_log = cast(Table, ProvisioningLogRow.__table__)
provisioned_devices = cast(Table, ProvisionedDeviceRow.__table__)
selftest_runs = cast(Table, SelfTestRunRow.__table__)
meter_pins = cast(Table, MeterPinRow.__table__)
meter_sources = cast(Table, MeterSourceRow.__table__)
integration_settings = cast(Table, IntegrationSettingRow.__table__)
