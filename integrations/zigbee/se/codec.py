"""Pure helpers that turn SE 1.x wire values into numbers, times and names.

Protocol only (zigpy and the standard library, no ``ems`` import). The adapter calls
these to map raw ZCL fields to domain values: UTCTime <-> datetime (digest §1.4),
nibble-packed price bytes (§3.3), price and metering scaling (§3.2, §5.6), formatting
bitmaps (§5.3), ISO 4217 codes, "not used" sentinels (§1.5), and ``parse_frame``,
which decodes a whole ZCL frame and reports every kind of bad input as one exception,
``MalformedFrame``, for the appliance to count and log.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, NamedTuple

import zigpy.types as t
from zigpy.zcl import Cluster, foundation

ZIGBEE_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
UTC_TIME_INVALID: Final = 0xFFFFFFFF

# --- Time (§1.4) -------------------------------------------------------------------------


def utc_time_to_datetime(value: int) -> datetime | None:
    """UTCTime (seconds since 2000-01-01 UTC) -> aware UTC datetime; 0xFFFFFFFF -> None.

    0 is returned as the epoch: whether it means "now" depends on the field (§1.4), so
    the caller decides.
    """
    if value == UTC_TIME_INVALID:
        return None
    if not 0 <= value < UTC_TIME_INVALID:
        raise ValueError(f"UTCTime {value!r} is outside 0..0xFFFFFFFE")
    return ZIGBEE_EPOCH + timedelta(seconds=int(value))


def datetime_to_utc_time(value: datetime) -> int:
    """Aware datetime -> UTCTime seconds (fractions dropped). Naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value!r} is naive; UTCTime needs an aware datetime")
    seconds = int((value - ZIGBEE_EPOCH).total_seconds())
    if not 0 <= seconds < UTC_TIME_INVALID:
        raise ValueError(f"{value.isoformat()} is outside the UTCTime range")
    return seconds


# --- Nibble-packed bytes (§3.3) --------------------------------------------------------


def unpack_nibbles(value: int) -> tuple[int, int]:
    """Return (high nibble, low nibble) of a byte."""
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{value!r} is not a byte")
    return (value >> 4) & 0x0F, value & 0x0F


def unpack_price_trailing_digit_and_tier(value: int) -> tuple[int, int]:
    """PublishPrice byte b+11 -> (price_trailing_digit, price_tier). 0x43 -> (4, 3)."""
    return unpack_nibbles(value)


def unpack_price_tiers_and_register_tier(value: int) -> tuple[int, int]:
    """PublishPrice byte b+12 -> (number_of_price_tiers, register_tier). 0x33 -> (3, 3)."""
    return unpack_nibbles(value)


# --- Prices and metering values --------------------------------------------------------


def price_to_decimal(raw: int, trailing_digits: int) -> Decimal:
    """Raw price -> currency units per unit of measure: 1234 with 4 digits -> 0.1234."""
    if trailing_digits < 0:
        raise ValueError(f"trailing digits {trailing_digits!r} is negative")
    return Decimal(int(raw)).scaleb(-int(trailing_digits))


def scale_metering(raw: int, multiplier: int | None, divisor: int | None) -> float:
    """raw x Multiplier / Divisor (§5.6); a 0 or missing factor counts as 1 (as in ZHA)."""
    return raw * (multiplier or 1) / (divisor or 1)


def int24_from_bytes(data: bytes) -> int:
    """Three little-endian bytes -> signed int24: ``18 FC FF`` -> -1000."""
    if len(data) != 3:
        raise ValueError(f"int24 needs 3 bytes, got {len(data)}")
    return int.from_bytes(data, "little", signed=True)


def sign_extend_int24(value: int) -> int:
    """A uint24 read without its sign (0..0xFFFFFF) -> the signed int24 it encodes."""
    if not 0 <= value <= 0xFFFFFF:
        raise ValueError(f"{value!r} is not a 24-bit value")
    return value - 0x1000000 if value & 0x800000 else value


class Formatting(NamedTuple):
    """A decoded Summation/Demand/HistoricalConsumptionFormatting bitmap (§5.3)."""

    right_digits: int
    left_digits: int
    suppress_leading_zeros: bool


def decode_formatting(value: int) -> Formatting:
    """Formatting bitmap -> digits right (bits 2-0), left (bits 6-3), zero suppression (7)."""
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{value!r} is not a byte")
    return Formatting(value & 0x07, (value >> 3) & 0x0F, bool(value & 0x80))


def format_reading(value: float, formatting: Formatting) -> str:
    """Display a scaled value as the meter asks: 2000.0 with 0x2B -> "02000.000"."""
    text = f"{abs(value):.{formatting.right_digits}f}"
    integer, _, fraction = text.partition(".")
    if not formatting.suppress_leading_zeros:
        integer = integer.zfill(formatting.left_digits)
    sign = "-" if value < 0 else ""
    return f"{sign}{integer}.{fraction}" if fraction else f"{sign}{integer}"


# ISO 4217 numeric -> alphabetic, for the currencies SE meters are deployed with.
ISO4217_ALPHA: Final[Mapping[int, str]] = {
    36: "AUD",
    124: "CAD",
    156: "CNY",
    208: "DKK",
    356: "INR",
    392: "JPY",
    484: "MXN",
    554: "NZD",
    578: "NOK",
    710: "ZAR",
    752: "SEK",
    756: "CHF",
    826: "GBP",
    840: "USD",
    978: "EUR",
    986: "BRL",
}


def currency_alpha(numeric: int) -> str | None:
    """ISO 4217 numeric code -> alphabetic code (840 -> "USD"); None if not in the table."""
    return ISO4217_ALPHA.get(int(numeric))


# --- "Not used" sentinels (§1.5) -------------------------------------------------------


def temperature_offset_c(raw: int) -> float | None:
    """LoadControlEvent offset (uint8, 0.1 degC steps) -> degC; 0xFF -> None."""
    return None if raw == 0xFF else raw / 10


def temperature_set_point_c(raw: int) -> float | None:
    """Set point (int16, 0.01 degC steps) -> degC; 0x8000 (-32768 signed) -> None."""
    if raw in (0x8000, -0x8000):
        return None
    return raw / 100


def average_load_adjustment_percent(raw: int) -> int | None:
    """AverageLoadAdjustmentPercentage (int8) -> percent; -128 (0x80) -> None."""
    return None if raw in (-128, 0x80) else int(raw)


def duty_cycle_percent(raw: int) -> int | None:
    """DutyCycle (uint8 percent) -> percent; 0xFF -> None."""
    return None if raw == 0xFF else int(raw)


def duration_minutes(raw: int) -> int | None:
    """DurationInMinutes (Price, Messaging) -> minutes; 0xFFFF ("until changed") -> None."""
    return None if raw == 0xFFFF else int(raw)


def generation_price(raw: int) -> int | None:
    """GenerationPrice / AlternateCostDelivered (uint32) -> raw; 0xFFFFFFFF -> None."""
    return None if raw == 0xFFFFFFFF else int(raw)


def uint8_or_none(raw: int) -> int | None:
    """Any uint8 "0xFF = not used" field (ratios, units, NumberOfBlockThresholds)."""
    return None if raw == 0xFF else int(raw)


# --- Whole frames ---------------------------------------------------------------------


class MalformedFrame(ValueError):
    """A ZCL frame that cannot be decoded: truncated, garbage or an unknown command.

    The message says what was wrong, in words fit for a log line.
    """


class ParsedFrame(NamedTuple):
    """A decoded ZCL frame: header, command name and the fields that were present."""

    header: foundation.ZCLHeader
    command_name: str
    fields: dict[str, Any]


def parse_frame(
    cluster_cls: type[Cluster],
    data: bytes,
    direction: foundation.Direction | None = None,
) -> ParsedFrame:
    """Decode a ZCL frame (header + command) of ``cluster_cls`` (``inbound.decode``, as a dict).

    Cluster-specific commands are looked up by the header's direction bit (server ->
    client frames in ``ClientCommandDefs``, §8 item 3); global commands (Default
    Response, Report Attributes ...) by zigpy's foundation table. If ``direction`` is
    given, a frame whose direction bit differs is refused. Optional fields that are
    absent are left out of ``fields``; trailing bytes are ignored (§1.6). A 17-byte
    Price PublishBlockPeriod is decoded in its SE 1.1 layout (§3.5).

    Raises ``MalformedFrame`` for anything that cannot be decoded (an unknown command too).
    """
    from .inbound import decode  # inbound imports the clusters, as this module does

    frame = decode(cluster_cls, data, direction)
    if frame.problem is not None or frame.header is None:
        raise MalformedFrame(frame.reason)
    fields = {key: val for key, val in frame.payload.as_dict().items() if val is not None}
    return ParsedFrame(frame.header, frame.name, fields)


def build_frame(
    cluster_cls: type[Cluster],
    command_name: str,
    *,
    tsn: int,
    disable_default_response: bool = False,
    **fields: Any,
) -> bytes:
    """Encode a cluster-specific SE command (header + payload) without a manufacturer code.

    The direction comes from where the command is defined: ``ClientCommandDefs`` are
    sent server -> client, ``ServerCommandDefs`` client -> server. Unset optional fields
    are omitted; set them as a prefix, as later fields are only ever appended (§1.6).
    """
    client_def = getattr(cluster_cls.ClientCommandDefs, command_name, None)
    server_def = getattr(cluster_cls.ServerCommandDefs, command_name, None)
    if isinstance(client_def, foundation.ZCLCommandDef):
        command, direction = client_def, foundation.Direction.Server_to_Client
    elif isinstance(server_def, foundation.ZCLCommandDef):
        command, direction = server_def, foundation.Direction.Client_to_Server
    else:
        raise KeyError(f"{cluster_cls.__name__} has no command {command_name!r}")

    header = foundation.ZCLHeader(
        frame_control=foundation.FrameControl(
            frame_type=foundation.FrameType.CLUSTER_COMMAND,
            is_manufacturer_specific=False,
            direction=direction,
            disable_default_response=int(disable_default_response),
            reserved=0,
        ),
        tsn=t.uint8_t(tsn),
        command_id=command.id,
    )
    request = command.schema(**fields)
    _check_optional_prefix(request)
    return header.serialize() + request.serialize()


def _check_optional_prefix(request: t.Struct) -> None:
    """Refuse a gap in the optional tail: it would shift every later field on the wire."""
    gap = None
    for field in request.fields:
        value = getattr(request, field.name)
        if value is None and field.optional:
            gap = gap or field.name
        elif gap is not None and value is not None:
            raise ValueError(
                f"{type(request).__name__}: {field.name!r} is set but the earlier optional"
                f" field {gap!r} is not"
            )
