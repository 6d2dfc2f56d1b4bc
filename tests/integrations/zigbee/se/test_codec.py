"""``codec.py``: time, nibbles, scaling, formatting, currencies, sentinels, frames."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import zigpy.types as t
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc, Messaging, Metering, Price, Time
from integrations.zigbee.se.codec import MalformedFrame, parse_frame

from ._hex import h

NEW_YEAR_2024 = datetime(2024, 1, 1, tzinfo=UTC)

# --- UTCTime -------------------------------------------------------------------------


def test_utc_time_757382400_is_2024_new_year() -> None:
    assert codec.utc_time_to_datetime(757382400) == NEW_YEAR_2024


def test_2024_new_year_is_utc_time_757382400() -> None:
    assert codec.datetime_to_utc_time(NEW_YEAR_2024) == 757382400


def test_utc_time_wire_bytes_match_spec() -> None:
    assert t.UTCTime(757382400).serialize() == h("00 BD 24 2D")


def test_utc_time_invalid_is_none() -> None:
    assert codec.utc_time_to_datetime(0xFFFFFFFF) is None


def test_utc_time_zero_is_the_epoch_for_the_caller_to_interpret() -> None:
    assert codec.utc_time_to_datetime(0) == datetime(2000, 1, 1, tzinfo=UTC)


def test_other_time_zones_convert_to_the_same_instant() -> None:
    cet = timezone(timedelta(hours=1))
    assert codec.datetime_to_utc_time(datetime(2024, 1, 1, 1, tzinfo=cet)) == 757382400


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        codec.datetime_to_utc_time(datetime(2024, 1, 1))  # noqa: DTZ001


def test_datetime_before_2000_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        codec.datetime_to_utc_time(datetime(1999, 12, 31, tzinfo=UTC))


# --- Nibbles -------------------------------------------------------------------------


def test_trailing_digit_and_tier_0x43_is_4_digits_tier_3() -> None:
    assert codec.unpack_price_trailing_digit_and_tier(0x43) == (4, 3)


def test_tiers_and_register_tier_0x61_is_6_tiers_register_1() -> None:
    assert codec.unpack_price_tiers_and_register_tier(0x61) == (6, 1)


def test_unpack_nibbles_refuses_non_bytes() -> None:
    with pytest.raises(ValueError, match="not a byte"):
        codec.unpack_nibbles(0x100)


# --- Prices and metering values -------------------------------------------------------


def test_price_1234_with_4_trailing_digits_is_0_1234() -> None:
    assert codec.price_to_decimal(1234, 4) == Decimal("0.1234")


def test_price_with_no_trailing_digits_is_whole_units() -> None:
    assert codec.price_to_decimal(15, 0) == Decimal(15)


def test_summation_2000000_times_1_over_1000_is_2000_kwh() -> None:
    assert codec.scale_metering(2_000_000, 1, 1000) == 2000.0


@pytest.mark.parametrize(("multiplier", "divisor"), [(0, 0), (None, None), (0, None)])
def test_zero_or_missing_multiplier_and_divisor_count_as_one(
    multiplier: int | None, divisor: int | None
) -> None:
    assert codec.scale_metering(1234, multiplier, divisor) == 1234.0


def test_int24_bytes_18_fc_ff_are_minus_1000() -> None:
    assert codec.int24_from_bytes(h("18 FC FF")) == -1000


def test_uint24_0xfffc18_sign_extends_to_minus_1000() -> None:
    assert codec.sign_extend_int24(0xFFFC18) == -1000


def test_positive_int24_is_unchanged_by_sign_extension() -> None:
    assert codec.sign_extend_int24(0x7FFFFF) == 0x7FFFFF


def test_int24_needs_exactly_three_bytes() -> None:
    with pytest.raises(ValueError, match="3 bytes"):
        codec.int24_from_bytes(h("18 FC"))


def test_demand_minus_1000_over_1000_is_minus_1_kw() -> None:
    raw = codec.int24_from_bytes(h("18 FC FF"))
    assert codec.scale_metering(raw, 1, 1000) == -1.0


# --- Formatting ----------------------------------------------------------------------


def test_formatting_0x2b_is_3_right_5_left_no_suppression() -> None:
    assert codec.decode_formatting(0x2B) == codec.Formatting(3, 5, False)


def test_formatting_bit_7_suppresses_leading_zeros() -> None:
    assert codec.decode_formatting(0xAB).suppress_leading_zeros is True


def test_formatting_left_digits_use_four_bits() -> None:
    assert codec.decode_formatting(0x78).left_digits == 15


def test_format_reading_pads_to_left_digits() -> None:
    assert codec.format_reading(2000.0, codec.decode_formatting(0x2B)) == "02000.000"


def test_format_reading_with_suppression_drops_leading_zeros() -> None:
    assert codec.format_reading(2000.0, codec.decode_formatting(0xAB)) == "2000.000"


def test_format_reading_keeps_the_sign() -> None:
    assert codec.format_reading(-1.0, codec.decode_formatting(0x13)) == "-01.000"


# --- Currencies ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numeric", "alpha"),
    [
        (840, "USD"),
        (978, "EUR"),
        (826, "GBP"),
        (124, "CAD"),
        (36, "AUD"),
        (484, "MXN"),
        (392, "JPY"),
        (756, "CHF"),
        (554, "NZD"),
    ],
)
def test_iso4217_numeric_maps_to_alpha(numeric: int, alpha: str) -> None:
    assert codec.currency_alpha(numeric) == alpha


@pytest.mark.parametrize(
    ("wire", "alpha"),
    [("48 03", "USD"), ("D2 03", "EUR"), ("3A 03", "GBP"), ("7C 00", "CAD"), ("24 00", "AUD")],
)
def test_currency_wire_bytes_of_spec_9_3_map_to_alpha(wire: str, alpha: str) -> None:
    numeric, _ = t.uint16_t.deserialize(h(wire))
    assert codec.currency_alpha(numeric) == alpha


def test_unknown_currency_is_none() -> None:
    assert codec.currency_alpha(999) is None


# --- Sentinels -----------------------------------------------------------------------


def test_temperature_offset_0xff_is_not_used() -> None:
    assert codec.temperature_offset_c(0xFF) is None


def test_temperature_offset_0x14_is_2_degrees() -> None:
    assert codec.temperature_offset_c(0x14) == 2.0


@pytest.mark.parametrize("raw", [-0x8000, 0x8000])
def test_temperature_set_point_0x8000_is_not_used(raw: int) -> None:
    assert codec.temperature_set_point_c(raw) is None


def test_temperature_set_point_2600_is_26_degrees() -> None:
    assert codec.temperature_set_point_c(2600) == 26.0


@pytest.mark.parametrize("raw", [-128, 0x80])
def test_average_load_adjustment_minus_128_is_not_used(raw: int) -> None:
    assert codec.average_load_adjustment_percent(raw) is None


def test_average_load_adjustment_minus_20_is_kept() -> None:
    assert codec.average_load_adjustment_percent(-20) == -20


def test_duty_cycle_0xff_is_not_used() -> None:
    assert codec.duty_cycle_percent(0xFF) is None
    assert codec.duty_cycle_percent(50) == 50


def test_duration_0xffff_is_until_changed() -> None:
    assert codec.duration_minutes(0xFFFF) is None
    assert codec.duration_minutes(60) == 60


def test_generation_price_0xffffffff_is_not_used() -> None:
    assert codec.generation_price(0xFFFFFFFF) is None
    assert codec.generation_price(0) == 0


def test_uint8_0xff_is_not_used() -> None:
    assert codec.uint8_or_none(0xFF) is None
    assert codec.uint8_or_none(0) == 0


# --- parse_frame ---------------------------------------------------------------------


def test_malformed_frame_is_a_value_error() -> None:
    assert issubclass(MalformedFrame, ValueError)


def test_empty_frame_is_a_truncated_header() -> None:
    with pytest.raises(MalformedFrame, match="truncated ZCL header"):
        parse_frame(Price, b"")


def test_two_byte_frame_is_a_truncated_header() -> None:
    with pytest.raises(MalformedFrame, match="truncated ZCL header"):
        parse_frame(Price, h("09 01"))


def test_unknown_command_id_is_named() -> None:
    with pytest.raises(MalformedFrame, match="unknown Server_to_Client command 0x0F"):
        parse_frame(Price, h("09 01 0F"))


def test_unknown_client_to_server_command_is_named() -> None:
    with pytest.raises(MalformedFrame, match="unknown Client_to_Server command 0x02"):
        parse_frame(Drlc, h("01 01 02 00"))


def test_manufacturer_specific_command_is_unknown() -> None:
    with pytest.raises(MalformedFrame, match="manufacturer 0x1234"):
        parse_frame(Drlc, h("0D 34 12 01 00"))


def test_reserved_frame_type_is_refused() -> None:
    with pytest.raises(MalformedFrame, match="reserved frame type 2"):
        parse_frame(Drlc, h("0A 01 00"))


def test_direction_mismatch_is_refused_when_expected() -> None:
    with pytest.raises(MalformedFrame, match="expected Client_to_Server"):
        parse_frame(
            Messaging, h("09 01 03 00 00 00 00"), direction=foundation.Direction.Client_to_Server
        )


def test_direction_selects_the_command_table() -> None:
    parsed = parse_frame(Messaging, h("01 01 00"), direction=foundation.Direction.Client_to_Server)
    assert parsed.command_name == "get_last_message"
    assert parsed.fields == {}


def test_trailing_bytes_are_ignored() -> None:
    parsed = parse_frame(Messaging, h("09 01 03 | 00 BD 24 2D | AA BB"))
    assert parsed.fields == {"implementation_date_time": 757382400}


def test_parsed_frame_unpacks_as_header_name_fields() -> None:
    header, name, fields = parse_frame(Messaging, h("09 07 03 | 00 BD 24 2D"))
    assert (header.tsn, name, fields) == (
        7,
        "cancel_all_messages",
        {"implementation_date_time": 757382400},
    )


def test_global_default_response_decodes() -> None:
    parsed = parse_frame(Price, h("18 05 0B | 00 8B"))
    assert parsed.command_name == "Default_Response"
    assert parsed.fields["status"] == foundation.Status.NOT_FOUND


def test_global_report_attributes_decodes_instantaneous_demand() -> None:
    parsed = parse_frame(Metering, h("18 06 0A | 00 04 2A 18 FC FF"))
    assert parsed.command_name == "Report_Attributes"
    record = parsed.fields["attribute_reports"][0]
    assert (record.attrid, record.value.value) == (0x0400, -1000)


def test_unknown_global_command_is_refused() -> None:
    with pytest.raises(MalformedFrame, match="unknown global command 0xFE"):
        parse_frame(Price, h("18 05 FE"))


def test_build_frame_refuses_unknown_command_name() -> None:
    with pytest.raises(KeyError, match="no command"):
        codec.build_frame(Price, "publish_nonsense", tsn=1)


def test_build_frame_sets_disable_default_response_on_request() -> None:
    frame = codec.build_frame(
        Price, "get_current_price", tsn=1, disable_default_response=True, command_options=0
    )
    assert frame[:3] == h("11 01 00")


CLUSTERS = [Price, Drlc, Messaging, Metering, Time]


@settings(deadline=None, max_examples=500)
@given(cluster=st.sampled_from(CLUSTERS), data=st.binary(max_size=80))
def test_random_bytes_raise_only_malformed_frame(cluster: type, data: bytes) -> None:
    try:
        parse_frame(cluster, data)
    except MalformedFrame:
        pass


@st.composite
def cluster_frames(draw: st.DrawFn) -> tuple[type, bytes]:
    """A well-formed header for a known command of a random cluster, random payload."""
    cluster = draw(st.sampled_from(CLUSTERS))
    direction = draw(st.sampled_from(list(foundation.Direction)))
    commands = (
        cluster.client_commands
        if direction == foundation.Direction.Server_to_Client
        else cluster.server_commands
    )
    ids = sorted(commands) or [0]
    command_id = draw(st.sampled_from(ids))
    frame_control = 0x01 | (0x08 if direction == foundation.Direction.Server_to_Client else 0)
    frame_control |= draw(st.sampled_from([0x00, 0x10]))
    payload = draw(st.binary(max_size=90))
    return cluster, bytes([frame_control, draw(st.integers(0, 255)), command_id]) + payload


@settings(deadline=None, max_examples=1500)
@given(cluster_frames())
def test_random_payload_for_every_command_raises_only_malformed_frame(
    frame: tuple[type, bytes],
) -> None:
    cluster, data = frame
    try:
        parsed = parse_frame(cluster, data)
    except MalformedFrame:
        return
    assert parsed.command_name
    assert isinstance(parsed.fields, dict)


@pytest.mark.parametrize("cluster", CLUSTERS, ids=lambda c: c.__name__)
def test_every_command_truncated_to_every_length_raises_only_malformed_frame(
    cluster: type,
) -> None:
    for direction_bit, commands in (
        (0x08, cluster.client_commands),
        (0x00, cluster.server_commands),
    ):
        for command_id in commands:
            payload = bytes(range(1, 61)) + b"\xff" * 40
            for length in range(len(payload) + 1):
                try:
                    parse_frame(
                        cluster, bytes([0x01 | direction_bit, 0, command_id]) + payload[:length]
                    )
                except MalformedFrame:
                    pass
