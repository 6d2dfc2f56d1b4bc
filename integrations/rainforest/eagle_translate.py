"""An EAGLE ``device_query`` reply -> domain values (reading, price, rate, message), value by value.

Pure: given the parsed reply (``eagle_wire.QueryReply``), the meter id and the appliance's time,
return what the reply says in the domain's terms (kW, kWh, aware UTC, the currency's major unit
per kWh) and the list of values it refused, each with why. A value that cannot be read as what
its variable means is dropped alone (the rest of the reply stands): a firmware that changes one
field's format costs that field only (issue 16). Empty or ``invalid`` is "unknown", never 0 (§2.4).

Signed demand: the EAGLE sends kW already scaled and negative while exporting; a firmware that
passes the meter's 32-bit two's complement through unsigned (the EMU-2's known bug, §1.5: about
4 294 965 kW for -2 kW) is sign-extended here, using the reply's Multiplier and Divisor.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from ems.model import (
    MessageImportance,
    MeterInfo,
    MeterRate,
    MeterReading,
    PriceSignal,
    UtilityMessage,
)
from integrations.rainforest.eagle_wire import (
    BadValue,
    QueryReply,
    Variable,
    boolean,
    decimal_number,
    integer,
    is_unknown,
    quantity,
    unix_seconds,
)

T = TypeVar("T")
DEMAND = "zigbee:InstantaneousDemand"
DELIVERED = "zigbee:CurrentSummationDelivered"
RECEIVED = "zigbee:CurrentSummationReceived"
MAX_DEMAND_KW = 100_000.0  # beyond any premise's service: a misread, not a load
MAX_PRICE = Decimal(1000)  # per kWh, in the currency's major unit
MAX_MINUTES = 0xFFFFFF  # SE durations are at most 24-bit (a billing period in minutes: 31 years)
UNTIL_CHANGED = (0xFFFF, 0xFFFFFF, 0xFFFFFFFF)
_CURRENCY = {840: "USD", 124: "CAD", 978: "EUR", 36: "AUD", 826: "GBP", 554: "NZD", 484: "MXN"}
_IMPORTANCE = {"low": MessageImportance.LOW, "medium": MessageImportance.MEDIUM, "normal": MessageImportance.MEDIUM,
               "high": MessageImportance.HIGH, "critical": MessageImportance.CRITICAL}


@dataclass(frozen=True, slots=True)
class Translated:
    """What one reply says. ``problems``: (variable, why) for each value refused."""

    reading: MeterReading | None
    price: PriceSignal | None  # issuer_event_id 0: the link numbers each new price
    rate: MeterRate | None
    message: UtilityMessage | None
    block_prices: tuple[float, ...] = ()
    last_contact: datetime | None = None
    problems: tuple[tuple[str, str], ...] = field(default=())


class _Reader:
    """Reads variables of one reply, collecting the refusals instead of raising."""

    def __init__(self, reply: QueryReply) -> None:
        self.variables = reply.variables
        self.problems: list[tuple[str, str]] = []

    def get(self, *names: str) -> Variable | None:
        for name in names:
            variable = self.variables.get(name)
            if variable is not None:
                return variable
        return None

    def read(self, convert: Callable[[Variable], T | None], *names: str) -> T | None:
        variable = self.get(*names)
        if variable is None:
            return None
        try:
            return convert(variable)
        except BadValue as err:
            self.problems.append((variable.name, str(err)))
            return None

    def refuse(self, name: str, why: str) -> None:
        self.problems.append((name, why))

    def time(self, *names: str) -> datetime | None:
        seconds = self.read(lambda v: unix_seconds(v.value, v.name), *names)
        return None if seconds is None else datetime.fromtimestamp(seconds, UTC)

    def text(self, *names: str) -> str | None:
        variable = self.get(*names)
        return None if variable is None or is_unknown(variable.value) else variable.value.strip()


def translate(reply: QueryReply, meter_id: str, now: datetime) -> Translated:
    reader = _Reader(reply)
    last_contact = None
    if reply.device.last_contact:
        try:
            seconds = unix_seconds(reply.device.last_contact, "LastContact")
            last_contact = None if seconds is None else datetime.fromtimestamp(seconds, UTC)
        except BadValue as err:
            reader.refuse("LastContact", str(err))
    return Translated(
        reading=_reading(reader, meter_id, now),
        price=_price(reader, meter_id, now),
        rate=_rate(reader, meter_id, now),
        message=_message(reader, meter_id, now),
        block_prices=_block_prices(reader),
        last_contact=last_contact,
        problems=tuple(reader.problems),
    )


def _scale(reader: _Reader) -> float:
    """kW per raw count, from the reply's Multiplier and Divisor (0 or absent: 1, per the manual)."""
    multiplier = reader.read(integer, "zigbee:Multiplier") or 1
    divisor = reader.read(integer, "zigbee:Divisor") or 1
    return abs(multiplier) / abs(divisor) if divisor else 1.0


def _reading(reader: _Reader, meter_id: str, now: datetime) -> MeterReading | None:
    demand = reader.read(lambda v: quantity(v, "kW"), DEMAND)
    if demand is not None:
        scale = _scale(reader)
        if scale >= 1:
            scale = 0.001  # an EAGLE that scaled but sends M=D=1: the meter's counts are watts
        if demand >= (1 << 31) * scale and demand < (1 << 32) * scale:
            demand -= (1 << 32) * scale  # unsigned 32-bit two's complement passed through (§1.5)
        if abs(demand) > MAX_DEMAND_KW:
            reader.refuse(DEMAND, f"{demand:.0f} kW is beyond any premise's demand")
            demand = None
    delivered = _register(reader, DELIVERED)
    received = _register(reader, RECEIVED)
    if demand is None and delivered is None and received is None:
        return None
    return MeterReading(meter_id, now, demand_kw=demand, summation_delivered_kwh=delivered,
                        summation_received_kwh=received)


def _register(reader: _Reader, name: str) -> float | None:
    value = reader.read(lambda v: quantity(v, "kWh"), name)
    if value is not None and value < 0:
        reader.refuse(name, f"a negative register ({value:g} kWh)")
        return None
    return value


def _price_amount(reader: _Reader) -> Decimal | None:
    variable = reader.get("zigbee:Price")
    if variable is None or is_unknown(variable.value):
        return None
    text = variable.value.strip()
    try:
        amount = Decimal(text)
    except InvalidOperation:
        reader.refuse(variable.name, f"{text[:24]!r} is not a price")
        return None
    if not amount.is_finite():
        reader.refuse(variable.name, f"{text[:24]!r} is not a price per kWh")
        return None
    digits = reader.read(integer, "zigbee:PriceTrailingDigits")
    if "." not in text and "e" not in text.lower() and digits is not None and 0 < digits <= 15:
        amount = amount.scaleb(-digits)  # a raw count with its implied decimals (255 = not set)
    if abs(amount) > MAX_PRICE:
        reader.refuse(variable.name, f"{text[:24]!r} is not a price per kWh")
        return None
    return amount


def _currency(reader: _Reader) -> str:
    text = reader.text("zigbee:PriceCurrency") or ""
    if text.isalpha() and len(text) == 3:
        return text.upper()
    code = reader.read(integer, "zigbee:PriceCurrency")
    if code is None:
        return ""
    return _CURRENCY.get(code, f"ISO{code:03d}")


def _minutes_after(reader: _Reader, start: datetime, name: str) -> datetime | None:
    minutes = reader.read(integer, name)
    if minutes is None or minutes in UNTIL_CHANGED or minutes <= 0:
        return None
    if minutes > MAX_MINUTES:
        reader.refuse(name, f"{minutes} minutes is beyond any period")
        return None
    try:
        return start + timedelta(minutes=minutes)
    except OverflowError:
        reader.refuse(name, f"{minutes} minutes from {start.isoformat()} ends past the calendar")
        return None


def _price(reader: _Reader, meter_id: str, now: datetime) -> PriceSignal | None:
    amount = _price_amount(reader)
    if amount is None:
        return None
    start = reader.time("zigbee:PriceStartTime") or now
    end = _minutes_after(reader, start, "zigbee:PriceDuration")
    if end is not None and end <= now:
        reader.refuse("zigbee:Price", f"the price ended at {end.isoformat()}")
        return None
    tier = reader.read(integer, "zigbee:PriceTier")
    return PriceSignal(
        meter_id=meter_id,
        provider_id=0,
        issuer_event_id=0,
        rate_label=reader.text("zigbee:PriceRateLabel", "zigbee:RateLabel") or "",
        currency=_currency(reader),
        price_per_kwh=float(amount),
        start=min(start, now),
        end=end,
        tier=tier if tier is not None and 0 <= tier <= 48 else 0,
        received_at=now,
        price_per_kwh_exact=amount,
    )


def _rate(reader: _Reader, meter_id: str, now: datetime) -> MeterRate | None:
    thresholds: list[float] = []
    for index in range(1, 9):
        value = reader.read(lambda v: quantity(v, "kWh"), f"zigbee:Block{index}Threshold")
        if value is None or value <= 0 or (thresholds and value <= thresholds[-1]):
            break  # the blocks in use come first, rising; a zero or a fall ends them
        thresholds.append(value)
    billing_start = reader.time("zigbee:CurrentBillingPeriodStart")
    billing_end = None if billing_start is None else _minutes_after(
        reader, billing_start, "zigbee:CurrentBillingPeriodDuration")
    block_start = reader.time("zigbee:StartOfBlockPeriod")
    block_end = None if block_start is None else _minutes_after(reader, block_start, "zigbee:BlockPeriodDuration")
    if not (thresholds or billing_start or block_start):
        return None
    # No tier labels: the EAGLE names only the price in force (PriceRateLabel, on the PriceSignal).
    return MeterRate(meter_id, now, block_thresholds_kwh=tuple(thresholds),
                     block_period_start=block_start, block_period_end=block_end,
                     billing_period_start=billing_start, billing_period_end=billing_end)


def _block_prices(reader: _Reader) -> tuple[float, ...]:
    prices: list[float] = []
    for index in range(1, 9):
        value = reader.read(decimal_number, f"zigbee:NoTierBlock{index}Price")
        if value is None:
            break
        prices.append(value)
    return tuple(prices)


def _importance(reader: _Reader) -> MessageImportance:
    text = (reader.text("zigbee:MessagePriority") or "").lower()
    if text in _IMPORTANCE:
        return _IMPORTANCE[text]
    number = reader.read(integer, "zigbee:MessagePriority")
    return MessageImportance(number) if number is not None and 0 <= number <= 3 else MessageImportance.MEDIUM


def _message(reader: _Reader, meter_id: str, now: datetime) -> UtilityMessage | None:
    text = reader.text("zigbee:Message")
    if text is None:
        return None
    message_id = reader.read(integer, "zigbee:MessageId")
    if message_id is None or not 0 <= message_id <= 0xFFFFFFFF:
        reader.refuse("zigbee:MessageId", "a message without a usable id")
        return None
    start = reader.time("zigbee:MessageStartTime") or now
    end = _minutes_after(reader, start, "zigbee:MessageDurationInMinutes")
    if end is not None and end <= now:
        return None  # expired: the EAGLE still lists its last message
    return UtilityMessage(
        meter_id=meter_id,
        message_id=message_id,
        text=html.unescape(text)[:2000],
        importance=_importance(reader),
        start=min(start, now),
        end=end,
        confirmation_required=bool(reader.read(boolean, "zigbee:MessageConfirmationRequired")),
        received_at=now,
    )


def meter_info(reply: QueryReply, meter_id: str, now: datetime) -> MeterInfo:
    """What the EAGLE says of the meter (its ZigBee address as an EUI-64, the scaling it applied)."""
    reader = _Reader(reply)
    digits = reader.read(integer, "zigbee:DemandDigitsRight")
    return MeterInfo(
        meter_id=meter_id,
        ieee=eui64(reply.device.hardware_address),
        endpoint=0,
        unit="kWh",
        multiplier=reader.read(integer, "zigbee:Multiplier") or 1,
        divisor=reader.read(integer, "zigbee:Divisor") or 1,
        summation_decimals=3,
        demand_decimals=digits if digits is not None and 0 <= digits <= 9 else 3,
        device_type="electric",
        discovered_at=now,
    )


def eui64(hardware_address: str) -> str:
    """``0x0013500100aa3ce7`` -> ``00:13:50:01:00:aa:3c:e7`` (as the ZigBee link names meters)."""
    digits = hardware_address.lower().removeprefix("0x")
    if len(digits) != 16 or any(c not in "0123456789abcdef" for c in digits):
        return hardware_address.lower()
    return ":".join(digits[i:i + 2] for i in range(0, 16, 2))
