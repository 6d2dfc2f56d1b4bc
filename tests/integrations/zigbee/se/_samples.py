"""One sample field set per SE command, used by the per-cluster round-trip tests.

Every optional field is filled in (so the whole layout is exercised); the spec vectors
in each test module cover the truncated forms.
"""

from typing import Any

from integrations.zigbee.se.clusters.drlc import FILLER_SIGNATURE
from integrations.zigbee.se.clusters.price import (
    BlockThresholdSubPayload,
    PriceMatrixEntry,
    TierLabel,
)

T0 = 757382400  # 2024-01-01T00:00:00Z as UTCTime

PRICE: dict[str, dict[str, Any]] = {
    # ServerCommandDefs (client -> server)
    "get_current_price": {"command_options": 0x01},
    "get_scheduled_prices": {"start_time": 0, "number_of_events": 5},
    "price_acknowledgement": {
        "provider_id": 1,
        "issuer_event_id": 100,
        "price_ack_time": T0 + 60,
        "control": 0x01,
    },
    "get_block_periods": {"start_time": T0, "number_of_events": 2, "tariff_type": 0x00},
    "get_conversion_factor": {
        "earliest_start_time": T0,
        "min_issuer_event_id": 7,
        "number_of_commands": 1,
    },
    "get_calorific_value": {
        "earliest_start_time": T0,
        "min_issuer_event_id": 8,
        "number_of_commands": 2,
    },
    "get_tariff_information": {
        "earliest_start_time": T0,
        "min_issuer_event_id": 9,
        "number_of_commands": 3,
        "tariff_type": 0x02,
    },
    "get_price_matrix": {"issuer_tariff_id": 0xAABBCCDD},
    "get_block_thresholds": {"issuer_tariff_id": 0x01020304},
    "get_co2_value": {
        "earliest_start_time": T0,
        "min_issuer_event_id": 10,
        "number_of_commands": 1,
        "tariff_type": 0x00,
    },
    "get_tier_labels": {"issuer_tariff_id": 42},
    "get_billing_period": {
        "earliest_start_time": T0,
        "min_issuer_event_id": 11,
        "number_of_commands": 1,
        "tariff_type": 0x01,
    },
    "get_consolidated_bill": {
        "earliest_start_time": T0,
        "min_issuer_event_id": 12,
        "number_of_commands": 1,
        "tariff_type": 0x00,
    },
    "cpp_event_response": {"issuer_event_id": 77, "cpp_auth": 0x01},
    "get_credit_payment": {"latest_end_time": T0, "number_of_records": 4},
    "get_currency_conversion": {},
    "get_tariff_cancellation": {},
    # ClientCommandDefs (server -> client)
    "publish_price": {
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
        "price_control": 0x03,
        "number_of_generation_tiers": 1,
        "generation_tier": 0x01,
        "extended_number_of_price_tiers": 0x01,
        "extended_price_tier": 0x01,
        "extended_register_tier": 0x01,
    },
    "publish_block_period": {
        "provider_id": 1,
        "issuer_event_id": 200,
        "block_period_start_time": T0,
        "block_period_duration": 1,
        "block_period_control": 0x02,
        "block_period_duration_type": 0x03,
        "tariff_type": 0x00,
        "tariff_resolution_period": 0x01,
    },
    "publish_conversion_factor": {
        "issuer_event_id": 3,
        "start_time": T0,
        "conversion_factor": 1_022_640,
        "conversion_factor_trailing_digit": 0x60,
    },
    "publish_calorific_value": {
        "issuer_event_id": 4,
        "start_time": T0,
        "calorific_value": 39_500,
        "calorific_value_unit": 0x01,
        "calorific_value_trailing_digit": 0x30,
    },
    "publish_tariff_information": {
        "provider_id": 1,
        "issuer_event_id": 5,
        "issuer_tariff_id": 6,
        "start_time": T0,
        "tariff_type_charging_scheme": 0x10,
        "tariff_label": b"Winter TOU",
        "number_of_price_tiers_in_use": 3,
        "number_of_block_thresholds_in_use": 2,
        "unit_of_measure": 0x00,
        "currency": 978,
        "price_trailing_digit": 0x40,
        "standing_charge": 2500,
        "tier_block_mode": 0x00,
        "block_threshold_multiplier": 1,
        "block_threshold_divisor": 1000,
    },
    "publish_price_matrix": {
        "provider_id": 1,
        "issuer_event_id": 7,
        "start_time": T0,
        "issuer_tariff_id": 6,
        "command_index": 0,
        "total_number_of_commands": 1,
        "sub_payload_control": 0x00,
        "price_matrix_sub_payload": [
            PriceMatrixEntry(tier_block_id=0x11, price=1000),
            PriceMatrixEntry(tier_block_id=0x12, price=1500),
        ],
    },
    "publish_block_thresholds": {
        "provider_id": 1,
        "issuer_event_id": 8,
        "start_time": T0,
        "issuer_tariff_id": 6,
        "command_index": 0,
        "total_number_of_commands": 1,
        "sub_payload_control": 0x00,
        "block_threshold_sub_payload": [
            BlockThresholdSubPayload(
                tier_number_of_block_thresholds=0x12, block_thresholds=[500_000, 1_000_000]
            ),
            BlockThresholdSubPayload(tier_number_of_block_thresholds=0x20, block_thresholds=[]),
        ],
    },
    "publish_co2_value": {
        "provider_id": 1,
        "issuer_event_id": 9,
        "start_time": T0,
        "tariff_type": 0x00,
        "co2_value": 185,
        "co2_value_unit": 0x01,
        "co2_value_trailing_digit": 0x30,
    },
    "publish_tier_labels": {
        "provider_id": 1,
        "issuer_event_id": 10,
        "issuer_tariff_id": 6,
        "command_index": 0,
        "total_number_of_commands": 1,
        "tier_labels": [
            TierLabel(tier_id=1, tier_label=b"Off-peak"),
            TierLabel(tier_id=2, tier_label=b"Peak"),
        ],
    },
    "publish_billing_period": {
        "provider_id": 1,
        "issuer_event_id": 11,
        "billing_period_start_time": T0,
        "billing_period_duration": 1,
        "billing_period_duration_type": 0x03,
        "tariff_type": 0x00,
    },
    "publish_consolidated_bill": {
        "provider_id": 1,
        "issuer_event_id": 12,
        "billing_period_start_time": T0,
        "billing_period_duration": 1,
        "billing_period_duration_type": 0x03,
        "tariff_type": 0x00,
        "consolidated_bill": 12_345,
        "currency": 826,
        "bill_trailing_digit": 0x20,
    },
    "publish_cpp_event": {
        "provider_id": 1,
        "issuer_event_id": 13,
        "start_time": T0,
        "duration_in_minutes": 180,
        "tariff_type": 0x00,
        "cpp_price_tier": 0x00,
        "cpp_auth": 0x00,
    },
    "publish_credit_payment": {
        "provider_id": 1,
        "issuer_event_id": 14,
        "credit_payment_due_date": T0,
        "credit_payment_overdue_amount": 0,
        "credit_payment_status": 0x00,
        "credit_payment": 5000,
        "credit_payment_date": T0 - 86400,
        "credit_payment_ref": b"REF-1",
    },
    "publish_currency_conversion": {
        "provider_id": 1,
        "issuer_event_id": 15,
        "start_time": T0,
        "old_currency": 826,
        "new_currency": 978,
        "conversion_factor": 11_600,
        "conversion_factor_trailing_digit": 0x40,
        "currency_change_control_flags": 0x00000003,
    },
    "cancel_tariff": {"provider_id": 1, "issuer_tariff_id": 6, "tariff_type": 0x00},
}

DRLC: dict[str, dict[str, Any]] = {
    "report_event_status": {
        "issuer_event_id": 0x12345678,
        "event_status": 0x02,
        "event_status_time": T0,
        "criticality_level_applied": 0x02,
        "cooling_temperature_set_point_applied": 2500,
        "heating_temperature_set_point_applied": -0x8000,
        "average_load_adjustment_percentage_applied": -10,
        "duty_cycle_applied": 0xFF,
        "event_control": 0x03,
        "signature_type": 0x00,
        "signature": FILLER_SIGNATURE,
    },
    "get_scheduled_events": {"start_time": 0, "number_of_events": 0, "issuer_event_id": 1},
    "load_control_event": {
        "issuer_event_id": 1,
        "device_class": 0x0FFF,
        "utility_enrollment_group": 0,
        "start_time": 0,
        "duration_in_minutes": 30,
        "criticality_level": 0x03,
        "cooling_temperature_offset": 0xFF,
        "heating_temperature_offset": 0xFF,
        "cooling_temperature_set_point": -0x8000,
        "heating_temperature_set_point": -0x8000,
        "average_load_adjustment_percentage": -50,
        "duty_cycle": 0xFF,
        "event_control": 0x00,
    },
    "cancel_load_control_event": {
        "issuer_event_id": 1,
        "device_class": 0x0FFF,
        "utility_enrollment_group": 0,
        "cancel_control": 0x00,
        "effective_time": T0,
    },
    "cancel_all_load_control_events": {"cancel_control": 0x01},
}

MESSAGING: dict[str, dict[str, Any]] = {
    "get_last_message": {},
    "message_confirmation": {
        "message_id": 1,
        "confirmation_time": T0 + 120,
        "message_confirmation_control": 0x02,
        "message_response": "Ja, gerne",
    },
    "get_message_cancellation": {"earliest_implementation_time": T0},
    "display_message": {
        "message_id": 2,
        "message_control": 0x88,
        "start_time": 0,
        "duration_in_minutes": 60,
        "message": "Spitzenlast: Strom ist teuer \N{HIGH VOLTAGE SIGN}",
        "extended_message_control": 0x00,
    },
    "cancel_message": {"message_id": 2, "message_control": 0x00},
    "display_protected_message": {
        "message_id": 3,
        "message_control": 0x0C,
        "start_time": T0,
        "duration_in_minutes": 0xFFFF,
        "message": "Coupure programmée à 14 h",
        "extended_message_control": 0x01,
    },
    "cancel_all_messages": {"implementation_date_time": T0},
}

METERING: dict[str, dict[str, Any]] = {
    "get_profile": {"interval_channel": 0, "end_time": 0, "number_of_periods": 24},
    "get_profile_response": {
        "end_time": T0,
        "status": 0,
        "profile_interval_period": 3,
        "number_of_periods_delivered": 2,
        "intervals": [500, 200],
    },
    "request_fast_poll_mode": {"fast_poll_update_period": 2, "duration": 15},
    "request_fast_poll_mode_response": {
        "applied_update_period": 5,
        "fast_poll_mode_end_time": T0 + 900,
    },
}


def assert_round_trip(cluster: type, command_name: str, fields: dict[str, Any]) -> None:
    """Encode ``fields`` as a full frame, decode it, and expect the same fields back."""
    from integrations.zigbee.se.codec import build_frame, parse_frame

    frame = build_frame(cluster, command_name, tsn=0x10, **fields)
    parsed = parse_frame(cluster, frame)
    assert parsed.command_name == command_name
    assert parsed.fields == fields
    # Re-encoding the decoded fields gives the same bytes.
    assert build_frame(cluster, command_name, tsn=0x10, **parsed.fields) == frame
