"""SE values -> domain events, and the SE client's refusals (C6 bad-input rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zigpy.zcl import foundation

from ems.model import Criticality, DeviceClass, EventStatus, MessageImportance, MessageOrigin
from integrations.zigbee.se import codec, commands
from integrations.zigbee.se.clusters import Drlc, Messaging, Metering, Price
from integrations.zigbee.se.inbound import decode
from integrations.zigbee_se.translate import (
    Ignored,
    OutOfRange,
    event_cancellation,
    load_control_event,
    price_amounts,
    price_signal,
    utility_message,
)

NOW = datetime(2024, 1, 1, 0, 0, 30, tzinfo=UTC)


def ns(schema=None, **fields):
    """The typed payload a translator takes: the command's schema struct, as ``inbound.decode`` builds it."""
    return schema(**fields)


def lce(**overrides):
    fields = dict(
        issuer_event_id=0x12345678, device_class=0x0005, utility_enrollment_group=0, start_time=0,
        duration_in_minutes=60, criticality_level=2, cooling_temperature_offset=0x14,
        heating_temperature_offset=0xFF, cooling_temperature_set_point=-0x8000,
        heating_temperature_set_point=-0x8000, average_load_adjustment_percentage=-128,
        duty_cycle=0xFF, event_control=0x03,
    )
    fields.update(overrides)
    return ns(commands.LoadControlEvent, **fields)


def publish_price(**overrides):
    fields = dict(
        provider_id=1, rate_label=b"PEAK", issuer_event_id=100, current_time=0, unit_of_measure=0,
        currency=840, price_trailing_digit_and_price_tier=0x43, number_of_price_tiers_and_register_tier=0x33,
        start_time=0, duration_in_minutes=0xFFFF, price=1234, price_ratio=0xFF,
        generation_price=0xFFFFFFFF, generation_price_ratio=0xFF, alternate_cost_delivered=0xFFFFFFFF,
        alternate_cost_unit=0xFF, alternate_cost_trailing_digit=0xFF, number_of_block_thresholds=0xFF,
        price_control=0x01,
    )
    fields.update(overrides)
    return ns(commands.PublishPrice, **fields)


def test_load_control_event_fields_become_domain_values():
    event = load_control_event(lce(), "main", NOW)
    assert event.start == NOW  # StartTime 0 means now
    assert event.end == NOW + timedelta(minutes=60)
    assert event.device_class == DeviceClass.HVAC | DeviceClass.WATER_HEATER
    assert event.criticality is Criticality.LEVEL_1
    assert event.cooling_offset_c == 2.0
    assert event.heating_offset_c is None and event.cooling_setpoint_c is None
    assert event.average_load_adjustment_pct is None and event.duty_cycle_pct is None
    assert event.randomize_start and event.randomize_end


def test_zero_minute_event_is_rejected():
    with pytest.raises(OutOfRange) as err:
        load_control_event(lce(duration_in_minutes=0), "main", NOW)
    assert err.value.status == EventStatus.REJECTED


def test_event_longer_than_a_day_is_rejected():
    with pytest.raises(OutOfRange, match="1441 minutes"):
        load_control_event(lce(duration_in_minutes=1441), "main", NOW)


def test_event_already_over_is_rejected_as_expired():
    start = codec.datetime_to_utc_time(NOW - timedelta(hours=2))
    with pytest.raises(OutOfRange) as err:
        load_control_event(lce(start_time=start, duration_in_minutes=60), "main", NOW)
    assert err.value.status == EventStatus.REJECTED_EXPIRED


def test_event_that_started_in_the_past_but_still_runs_is_accepted():
    start = codec.datetime_to_utc_time(NOW - timedelta(minutes=10))
    event = load_control_event(lce(start_time=start), "main", NOW)
    assert event.start == NOW - timedelta(minutes=10)


@pytest.mark.parametrize("criticality", [0x00, 0x10, 0xFF])
def test_event_with_reserved_criticality_is_ignored(criticality):
    with pytest.raises(Ignored):
        load_control_event(lce(criticality_level=criticality), "main", NOW)


def test_a_cancel_becomes_a_domain_cancel_whether_or_not_the_event_is_known_here():
    # Whether event 7 is known (else REJECTED_UNDEFINED_EVENT) is the DR core's to judge:
    # tests/ems/dr/test_events.py checks it.
    fields = ns(commands.CancelLoadControlEvent, issuer_event_id=7, device_class=1, utility_enrollment_group=0,
                cancel_control=1, effective_time=0)
    cancel = event_cancellation(fields, "main", NOW)
    assert (cancel.issuer_event_id, cancel.effective_at, cancel.randomize_end) == (7, NOW, True)


def test_a_cancel_whose_effective_time_is_no_time_is_answered_invalid_cancel_time():
    fields = ns(commands.CancelLoadControlEvent, issuer_event_id=7, device_class=1, utility_enrollment_group=0,
                cancel_control=0, effective_time=0xFFFFFFFF)
    with pytest.raises(OutOfRange) as err:
        event_cancellation(fields, "main", NOW)
    assert err.value.status == EventStatus.REJECTED_INVALID_CANCEL_TIME


def test_price_fields_become_a_price_signal():
    signal = price_signal(publish_price(), "main", NOW)
    assert signal.price_per_kwh == pytest.approx(0.1234)
    assert (signal.tier, signal.number_of_tiers, signal.register_tier) == (3, 3, 3)
    assert signal.currency == "USD" and signal.rate_label == "PEAK"
    assert signal.end is None and signal.generation_price_per_kwh is None


@pytest.mark.parametrize("digits", range(16))
def test_every_trailing_digit_count_a_nibble_holds_is_a_price_kept_exact(digits):
    # §3.3: PriceTrailingDigit is a nibble, 0-15 decimal places (11 used to be refused).
    fields = publish_price(price_trailing_digit_and_price_tier=(digits << 4) | 3, price=1234, generation_price=7)
    price, generation = price_amounts(fields)
    assert price == Decimal(1234).scaleb(-digits) and generation == Decimal(7).scaleb(-digits)
    signal = price_signal(fields, "main", NOW)
    assert (signal.price_per_kwh_exact, signal.generation_price_per_kwh_exact) == (price, generation)
    assert signal.price_per_kwh == float(price)


def test_expired_price_is_refused():
    start = codec.datetime_to_utc_time(NOW - timedelta(hours=2))
    with pytest.raises(OutOfRange, match="ended"):
        price_signal(publish_price(start_time=start, duration_in_minutes=30), "main", NOW)


def test_message_control_gives_importance_and_confirmation():
    fields = ns(commands.DisplayMessage, message_id=1, message_control=0x88, start_time=0, duration_in_minutes=60,
                message="Hello")
    message = utility_message(fields, "main", NOW)
    assert message.importance is MessageImportance.HIGH
    assert message.confirmation_required is True
    assert message.end == NOW + timedelta(minutes=60)


@pytest.mark.parametrize(("control", "origin"), [
    (0x88, MessageOrigin.UTILITY),  # normal transmission only: the utility writing to this home
    (0x89, MessageOrigin.PUBLIC),  # normal and anonymous Inter-PAN: a public broadcast, relayed
    (0x0A, MessageOrigin.PUBLIC),  # Inter-PAN only (heard if the meter relays it)
])
def test_a_message_also_sent_by_inter_pan_is_a_public_alert(control, origin):
    fields = ns(commands.DisplayMessage, message_id=1, message_control=control, start_time=0, duration_in_minutes=60,
                message="Grid reliability alert")
    assert utility_message(fields, "main", NOW).origin is origin


TRANSLATORS = {
    (Price, "publish_price"): lambda f: price_signal(f, "main", NOW),
    (Messaging, "display_message"): lambda f: utility_message(f, "main", NOW),
    (Drlc, "load_control_event"): lambda f: load_control_event(f, "main", NOW),
    (Drlc, "cancel_load_control_event"): lambda f: event_cancellation(f, "main", NOW),
}


@settings(max_examples=400, deadline=None)
@given(cluster=st.sampled_from([Price, Drlc, Messaging, Metering]), command_id=st.integers(0, 3),
       payload=st.binary(max_size=64), frame_control=st.sampled_from([0x09, 0x19, 0x08, 0x18, 0x01]))
def test_any_bytes_are_either_understood_or_refused_with_a_reason(cluster, command_id, payload, frame_control):
    """Fuzz: a frame handler never fails with anything but a counted, explained refusal."""
    data = bytes([frame_control, 0x01, command_id]) + payload
    frame = decode(cluster, data)
    if frame.problem is not None:
        assert frame.reason and frame.problem_status is not None
        return
    translate = TRANSLATORS.get((cluster, frame.name))
    if translate is None:
        return
    try:
        translate(frame.payload)
    except (OutOfRange, Ignored) as err:
        assert str(err)


def test_every_row_of_the_frame_table_takes_the_payload_its_command_decodes_to():
    from integrations.zigbee.se.clusters import cluster_class
    from integrations.zigbee_se.frames import HANDLERS

    for key, handler in HANDLERS.items():
        cls = cluster_class(key.cluster_id)
        if key.general:
            schema = foundation.GENERAL_COMMANDS[foundation.GeneralCommand(key.command_id)].schema
        else:
            commands = cls.client_commands if key.direction == foundation.Direction.Server_to_Client else cls.server_commands
            schema = commands[key.command_id].schema
        assert handler.parser is schema, key
