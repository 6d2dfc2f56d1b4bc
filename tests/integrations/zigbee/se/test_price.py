"""Price cluster (0x0700): every command round-trips, spec §9.2 vectors, attributes."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.zigbee.se.clusters.price import (
    BlockThresholdSubPayload,
    NumberOfPriceTiersAndRegisterTier,
    Price,
    PriceClientAttributeDefs,
    PriceControl,
    PriceTrailingDigitAndPriceTier,
    PublishBlockPeriodSE11,
    decode_publish_block_period,
)
from integrations.zigbee.se.codec import MalformedFrame, build_frame, parse_frame

from ._hex import h
from ._samples import PRICE, T0, assert_round_trip

S2C = Price.ClientCommandDefs
C2S = Price.ServerCommandDefs

PUBLISH_PRICE_FIELDS = {
    "provider_id": 1,
    "rate_label": b"PEAK",
    "issuer_event_id": 100,
    "current_time": T0,
    "unit_of_measure": 0x00,
    "currency": 840,
    "price_trailing_digit_and_price_tier": 0x43,
    "number_of_price_tiers_and_register_tier": 0x33,
    "start_time": 0,
    "duration_in_minutes": 0xFFFF,
    "price": 1234,
    "price_ratio": 0xFF,
    "generation_price": 0xFFFFFFFF,
    "generation_price_ratio": 0xFF,
    "alternate_cost_delivered": 0xFFFFFFFF,
    "alternate_cost_unit": 0xFF,
    "alternate_cost_trailing_digit": 0xFF,
    "number_of_block_thresholds": 0,
    "price_control": 0x01,
}
PUBLISH_PRICE_SE11 = h(
    """01 00 00 00 | 04 50 45 41 4B | 64 00 00 00 | 00 BD 24 2D | 00 | 48 03 | 43 | 33 |
    00 00 00 00 | FF FF | D2 04 00 00 | FF | FF FF FF FF | FF | FF FF FF FF | FF | FF | 00 | 01"""
)
CORE_FIELDS = list(PUBLISH_PRICE_FIELDS)[: list(PUBLISH_PRICE_FIELDS).index("price") + 1]


@pytest.mark.parametrize("command_name", sorted(PRICE))
def test_command_round_trips(command_name: str) -> None:
    assert_round_trip(Price, command_name, PRICE[command_name])


def test_round_trip_samples_cover_every_command() -> None:
    assert set(PRICE) == {c.name for c in S2C} | {c.name for c in C2S}


def test_command_ids_match_spec_table() -> None:
    assert {c.id: c.name for c in S2C} == {
        0x00: "publish_price",
        0x01: "publish_block_period",
        0x02: "publish_conversion_factor",
        0x03: "publish_calorific_value",
        0x04: "publish_tariff_information",
        0x05: "publish_price_matrix",
        0x06: "publish_block_thresholds",
        0x07: "publish_co2_value",
        0x08: "publish_tier_labels",
        0x09: "publish_billing_period",
        0x0A: "publish_consolidated_bill",
        0x0B: "publish_cpp_event",
        0x0C: "publish_credit_payment",
        0x0D: "publish_currency_conversion",
        0x0E: "cancel_tariff",
    }
    assert {c.id: c.name for c in C2S} == {
        0x00: "get_current_price",
        0x01: "get_scheduled_prices",
        0x02: "price_acknowledgement",
        0x03: "get_block_periods",
        0x04: "get_conversion_factor",
        0x05: "get_calorific_value",
        0x06: "get_tariff_information",
        0x07: "get_price_matrix",
        0x08: "get_block_thresholds",
        0x09: "get_co2_value",
        0x0A: "get_tier_labels",
        0x0B: "get_billing_period",
        0x0C: "get_consolidated_bill",
        0x0D: "cpp_event_response",
        0x0E: "get_credit_payment",
        0x0F: "get_currency_conversion",
        0x10: "get_tariff_cancellation",
    }


# --- PublishPrice (§3.2, §9.2) ---------------------------------------------------------


def test_publish_price_se11_encodes_to_spec_vector() -> None:
    encoded = S2C.publish_price.schema(**PUBLISH_PRICE_FIELDS).serialize()
    assert encoded == PUBLISH_PRICE_SE11
    assert len(encoded) == 46


def test_publish_price_se11_decodes_to_spec_fields() -> None:
    parsed = parse_frame(Price, h("09 01 00") + PUBLISH_PRICE_SE11)
    assert parsed.fields == PUBLISH_PRICE_FIELDS


def test_publish_price_core_32_bytes_decodes() -> None:
    value, rest = S2C.publish_price.schema.deserialize(PUBLISH_PRICE_SE11[:32])
    assert rest == b""
    assert value.as_dict(skip_missing=True) == {k: PUBLISH_PRICE_FIELDS[k] for k in CORE_FIELDS}


def test_publish_price_se10_38_bytes_decodes_up_to_generation_price_ratio() -> None:
    value, _ = S2C.publish_price.schema.deserialize(PUBLISH_PRICE_SE11[:38])
    decoded = value.as_dict(skip_missing=True)
    assert list(decoded)[-1] == "generation_price_ratio"
    assert decoded["generation_price"] == 0xFFFFFFFF
    assert value.price_control is None


def test_publish_price_se12_carries_five_more_bytes() -> None:
    fields = PRICE["publish_price"]
    assert len(S2C.publish_price.schema(**fields).serialize()) == 47 + len(fields["rate_label"])


def test_publish_price_cut_inside_a_field_is_malformed() -> None:
    with pytest.raises(MalformedFrame, match="publish_price"):
        parse_frame(Price, h("09 01 00") + PUBLISH_PRICE_SE11[:30])


def test_publish_price_nibbles_read_as_named_fields() -> None:
    value, _ = S2C.publish_price.schema.deserialize(PUBLISH_PRICE_SE11)
    assert value.price_trailing_digit_and_price_tier.price_trailing_digit == 4
    assert value.price_trailing_digit_and_price_tier.price_tier == 3
    assert value.number_of_price_tiers_and_register_tier.number_of_price_tiers == 3
    assert value.number_of_price_tiers_and_register_tier.register_tier == 3


def test_publish_price_control_requests_acknowledgement() -> None:
    value, _ = S2C.publish_price.schema.deserialize(PUBLISH_PRICE_SE11)
    assert value.price_control & PriceControl.Price_Acknowledgement_Required


def test_price_trailing_digit_and_tier_packs_high_nibble_first() -> None:
    packed = PriceTrailingDigitAndPriceTier(price_tier=3, price_trailing_digit=4)
    assert packed == 0x43
    assert NumberOfPriceTiersAndRegisterTier(register_tier=1, number_of_price_tiers=6) == 0x61


@settings(deadline=None, max_examples=200)
@given(
    fields=st.fixed_dictionaries(
        {
            "provider_id": st.integers(0, 0xFFFFFFFF),
            "rate_label": st.binary(max_size=12),
            "issuer_event_id": st.integers(0, 0xFFFFFFFF),
            "current_time": st.integers(0, 0xFFFFFFFF),
            "unit_of_measure": st.integers(0, 0xFF),
            "currency": st.integers(0, 0xFFFF),
            "price_trailing_digit_and_price_tier": st.integers(0, 0xFF),
            "number_of_price_tiers_and_register_tier": st.integers(0, 0xFF),
            "start_time": st.integers(0, 0xFFFFFFFF),
            "duration_in_minutes": st.integers(0, 0xFFFF),
            "price": st.integers(0, 0xFFFFFFFF),
        }
    ),
    tail=st.tuples(
        st.integers(0, 0xFF),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0xFF),
        st.integers(0, 0xFFFFFFFF),
        *[st.integers(0, 0xFF)] * 9,
    ),
    tail_length=st.integers(0, 13),
)
def test_publish_price_round_trips_any_field_values_and_revision(
    fields: dict[str, object], tail: tuple[int, ...], tail_length: int
) -> None:
    optional = [f.name for f in S2C.publish_price.schema.fields if f.optional]
    fields = {**fields, **dict(zip(optional[:tail_length], tail, strict=False))}
    parsed = parse_frame(Price, build_frame(Price, "publish_price", tsn=7, **fields))
    assert parsed.fields == fields


# --- Other §9.2 vectors ---------------------------------------------------------------


def test_price_acknowledgement_matches_spec_vector() -> None:
    payload = h("01 00 00 00 | 64 00 00 00 | 3C BD 24 2D | 01")
    fields = {"provider_id": 1, "issuer_event_id": 100, "price_ack_time": T0 + 60, "control": 1}
    assert C2S.price_acknowledgement.schema(**fields).serialize() == payload
    assert parse_frame(Price, h("01 05 02") + payload).fields == fields


def test_get_current_price_with_rx_on_when_idle_is_one_byte() -> None:
    assert build_frame(Price, "get_current_price", tsn=5, command_options=0x01) == h("01 05 00 01")
    assert parse_frame(Price, h("01 05 00 01")).fields == {"command_options": 0x01}


def test_get_scheduled_prices_matches_spec_vector() -> None:
    payload = h("00 00 00 00 05")
    fields = {"start_time": 0, "number_of_events": 5}
    assert C2S.get_scheduled_prices.schema(**fields).serialize() == payload
    assert parse_frame(Price, h("01 06 01") + payload).fields == fields


# --- PublishBlockPeriod: two layouts (§3.5) -------------------------------------------

BLOCK_PERIOD_SE11 = h("01 00 00 00 | C8 00 00 00 | 00 BD 24 2D | A0 05 00 | 32 | 01")
BLOCK_PERIOD_SE12 = h("01 00 00 00 | C8 00 00 00 | 00 BD 24 2D | 01 00 00 | 02 | 03 | 00 | 01")


def test_block_period_helper_reads_17_bytes_as_se11() -> None:
    value, rest = decode_publish_block_period(BLOCK_PERIOD_SE11)
    assert isinstance(value, PublishBlockPeriodSE11)
    assert value.block_period_duration_in_minutes == 1440
    assert (value.number_of_price_tiers, value.number_of_block_thresholds) == (3, 2)
    assert value.block_period_control == 0x01
    assert rest == b""


def test_block_period_helper_reads_19_bytes_as_se12() -> None:
    value, _ = decode_publish_block_period(BLOCK_PERIOD_SE12)
    assert value.block_period_duration == 1
    assert value.block_period_duration_type.timebase == 3  # months
    assert value.tariff_resolution_period == 0x01


def test_parse_frame_decodes_se11_block_period_by_length() -> None:
    parsed = parse_frame(Price, h("09 03 01") + BLOCK_PERIOD_SE11)
    assert parsed.command_name == "publish_block_period"
    assert parsed.fields["block_period_duration_in_minutes"] == 1440
    assert "block_period_duration_type" not in parsed.fields


def test_parse_frame_decodes_se12_block_period_with_all_fields() -> None:
    parsed = parse_frame(Price, h("09 03 01") + BLOCK_PERIOD_SE12)
    assert parsed.fields["tariff_resolution_period"] == 0x01


# --- Variable-length tails (§3.6) ----------------------------------------------------


def test_tier_labels_count_prefixes_the_labels() -> None:
    encoded = S2C.publish_tier_labels.schema(**PRICE["publish_tier_labels"]).serialize()
    # header 14 bytes, then NumberOfLabels = 2, then {01, 08 "Off-peak"}, {02, 04 "Peak"}
    assert encoded[14:] == h("02 | 01 08") + b"Off-peak" + h("02 04") + b"Peak"


def test_tier_labels_claiming_more_labels_than_sent_is_malformed() -> None:
    encoded = S2C.publish_tier_labels.schema(**PRICE["publish_tier_labels"]).serialize()
    broken = encoded[:14] + b"\x03" + encoded[15:]
    with pytest.raises(MalformedFrame, match="publish_tier_labels"):
        parse_frame(Price, h("09 01 08") + broken)


def test_block_thresholds_tail_encodes_tier_count_then_uint48s() -> None:
    encoded = S2C.publish_block_thresholds.schema(**PRICE["publish_block_thresholds"]).serialize()
    assert encoded[19:] == h("12 | 20 A1 07 00 00 00 | 40 42 0F 00 00 00 | 20")


def test_block_threshold_sub_payload_exposes_tier_and_count() -> None:
    item = BlockThresholdSubPayload(tier_number_of_block_thresholds=0x12, block_thresholds=[1, 2])
    assert (item.tier, item.number_of_block_thresholds) == (1, 2)


def test_block_thresholds_count_larger_than_data_is_malformed() -> None:
    header = S2C.publish_block_thresholds.schema(
        **{**PRICE["publish_block_thresholds"], "block_threshold_sub_payload": []}
    ).serialize()
    with pytest.raises(MalformedFrame, match="publish_block_thresholds"):
        parse_frame(Price, h("09 01 06") + header + h("13 | 01 00 00 00 00 00"))


def test_price_matrix_tail_is_tier_block_id_and_uint32_price() -> None:
    encoded = S2C.publish_price_matrix.schema(**PRICE["publish_price_matrix"]).serialize()
    assert encoded[19:] == h("11 | E8 03 00 00 | 12 | DC 05 00 00")


def test_price_matrix_with_half_an_entry_is_malformed() -> None:
    encoded = S2C.publish_price_matrix.schema(**PRICE["publish_price_matrix"]).serialize()
    with pytest.raises(MalformedFrame, match="publish_price_matrix"):
        parse_frame(Price, h("09 01 05") + encoded[:-2])


def test_cancel_tariff_is_nine_bytes() -> None:
    assert len(S2C.cancel_tariff.schema(**PRICE["cancel_tariff"]).serialize()) == 9


def test_get_block_periods_tariff_type_is_optional() -> None:
    parsed = parse_frame(Price, h("01 01 03 | 00 00 00 00 | 00"))
    assert parsed.fields == {"start_time": 0, "number_of_events": 0}


# --- Attributes (§3.7, §3.8) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("attr_id", "name", "bits"),
    [
        (0x0000, "tier1_price_label", None),
        (0x000E, "tier15_price_label", None),
        (0x000F, "tier16_price_label", None),
        (0x002F, "tier48_price_label", None),
        (0x0100, "block1_threshold", 48),
        (0x010E, "block15_threshold", 48),
        (0x010F, "block_threshold_count", 8),
        (0x0110, "tier1_block1_threshold", 48),
        (0x011F, "tier1_block_threshold_count", 8),
        (0x01FE, "tier15_block15_threshold", 48),
        (0x0200, "start_of_block_period", 32),
        (0x0201, "block_period_duration", 24),
        (0x0202, "threshold_multiplier", 24),
        (0x0203, "threshold_divisor", 24),
        (0x0204, "block_period_duration_type", 8),
        (0x0300, "commodity_type", 8),
        (0x0301, "standing_charge", 32),
        (0x0302, "conversion_factor", 32),
        (0x0303, "conversion_factor_trailing_digit", 8),
        (0x0304, "calorific_value", 32),
        (0x0305, "calorific_value_unit", 8),
        (0x0306, "calorific_value_trailing_digit", 8),
        (0x0400, "no_tier_block1_price", 32),
        (0x040F, "no_tier_block16_price", 32),
        (0x0410, "tier1_block1_price", 32),
        (0x04FF, "tier15_block16_price", 32),
        (0x050F, "price_tier16", 32),
        (0x052F, "price_tier48", 32),
        (0x05FE, "cpp1_price", 32),
        (0x05FF, "cpp2_price", 32),
        (0x0610, "tariff_label", None),
        (0x0611, "number_of_price_tiers_in_use", 8),
        (0x0612, "number_of_block_thresholds_in_use", 8),
        (0x0613, "tier_block_mode", 8),
        (0x0615, "unit_of_measure", 8),
        (0x0616, "currency", 16),
        (0x0617, "price_trailing_digit", 8),
        (0x0619, "tariff_resolution_period", 8),
        (0x0620, "co2", 32),
        (0x0621, "co2_unit", 8),
        (0x0622, "co2_trailing_digit", 8),
        (0x0700, "current_billing_period_start", 32),
        (0x0701, "current_billing_period_duration", 24),
        (0x0702, "last_billing_period_start", 32),
        (0x0703, "last_billing_period_duration", 24),
        (0x0704, "last_billing_period_consolidated_bill", 32),
        (0xFFFE, "attribute_reporting_status", 8),
    ],
)
def test_server_attribute_id_name_and_width_match_spec(
    attr_id: int, name: str, bits: int | None
) -> None:
    attr = Price.attributes[attr_id]
    assert attr.name == name
    if bits is None:  # octet string
        assert attr.type.deserialize(h("02 41 42"))[0] == b"AB"
    else:
        assert attr.type._bits == bits


def test_server_attribute_count_is_complete() -> None:
    # 48 labels + 15 thresholds + 1 count + 15x(15+1) tier thresholds + 5 block period
    # + 7 commodity + 256 block prices + 33 extended tiers + 2 CPP + 11 tariff/CO2
    # + 5 billing + 1 reporting status
    assert len(Price.attributes) == 48 + 15 + 1 + 240 + 5 + 7 + 256 + 33 + 2 + 11 + 5 + 1


def test_client_attributes_are_declared_apart_from_server_ids() -> None:
    client = {a.id: a.name for a in PriceClientAttributeDefs}
    assert client == {
        0x0000: "price_increase_randomize_minutes",
        0x0001: "price_decrease_randomize_minutes",
        0x0002: "commodity_type",
    }
    assert Price.attributes[0x0000].name == "tier1_price_label"


def test_build_frame_refuses_a_gap_in_optional_fields() -> None:
    fields = {**{k: PUBLISH_PRICE_FIELDS[k] for k in CORE_FIELDS}, "price_control": 1}
    with pytest.raises(ValueError, match="price_control"):
        build_frame(Price, "publish_price", tsn=1, **fields)
