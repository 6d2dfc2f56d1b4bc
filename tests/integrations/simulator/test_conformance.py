"""The strict meter's conformance checker, rule by rule: each catches a bad frame and passes a good one.

Frames are built on bytes (``codec.build_frame``, zigpy's foundation) and fed to the checker as
the meter's node would (``meter_sent`` for what the ESI sent, ``client_sent`` for what the EMS
sent back); no appliance, no radio. Time is a ``FixedClock``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from zigpy.zcl import foundation

from ems.clock import FixedClock
from integrations.simulator.conformance import RULES, ConformanceChecker, Violation
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc, Messaging, Price

T0 = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)
NOW = codec.datetime_to_utc_time(T0)
DRLC, PRICE, MESSAGING = Drlc.cluster_id, Price.cluster_id, Messaging.cluster_id
Status = foundation.Status


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def checker(clock: FixedClock) -> ConformanceChecker:
    # A client for HVAC (class bit 0) in enrollment group 5; answers may take up to 60 s.
    return ConformanceChecker(clock, device_class_value=0x0001, utility_enrollment_group=5, grace_s=60)


def rules(violations: tuple[Violation, ...] | list[Violation]) -> list[str]:
    return [v.rule for v in violations]


# --- frames -----------------------------------------------------------------------------


def lce(tsn: int, issuer: int = 7, *, ddr: bool = True, **overrides: Any) -> bytes:
    fields = {
        "issuer_event_id": issuer, "device_class": 0x0001, "utility_enrollment_group": 0,
        "start_time": NOW + 60, "duration_in_minutes": 30, "criticality_level": 3,
        "cooling_temperature_offset": 20, "heating_temperature_offset": 0xFF,
        "cooling_temperature_set_point": -0x8000, "heating_temperature_set_point": -0x8000,
        "average_load_adjustment_percentage": -128, "duty_cycle": 0xFF, "event_control": 0x01,
    }
    fields.update(overrides)
    return codec.build_frame(Drlc, "load_control_event", tsn=tsn, disable_default_response=ddr, **fields)


def cancel(tsn: int, issuer: int = 7, *, ddr: bool = True, **overrides: Any) -> bytes:
    fields = {"issuer_event_id": issuer, "device_class": 0x0001, "utility_enrollment_group": 0,
              "cancel_control": 0, "effective_time": 0}
    fields.update(overrides)
    return codec.build_frame(Drlc, "cancel_load_control_event", tsn=tsn, disable_default_response=ddr, **fields)


def res(tsn: int, issuer: int = 7, status: int = 0x01, when: int = NOW, *, ddr: bool = False,
        **overrides: Any) -> bytes:
    fields = {
        "issuer_event_id": issuer, "event_status": status, "event_status_time": when,
        "criticality_level_applied": 3, "cooling_temperature_set_point_applied": -0x8000,
        "heating_temperature_set_point_applied": -0x8000, "average_load_adjustment_percentage_applied": -128,
        "duty_cycle_applied": 0xFF, "event_control": 0x01, "signature_type": 0, "signature": b"\xff" * 42,
    }
    fields.update(overrides)
    return codec.build_frame(Drlc, "report_event_status", tsn=tsn, disable_default_response=ddr, **fields)


def price(tsn: int, issuer: int = 100, *, control: int = 0x01, ddr: bool = True) -> bytes:
    return codec.build_frame(
        Price, "publish_price", tsn=tsn, disable_default_response=ddr,
        provider_id=1, rate_label=b"PEAK", issuer_event_id=issuer, current_time=NOW, unit_of_measure=0,
        currency=840, price_trailing_digit_and_price_tier=0x43, number_of_price_tiers_and_register_tier=0x33,
        start_time=0, duration_in_minutes=0xFFFF, price=1234, price_ratio=0xFF, generation_price=0xFFFFFFFF,
        generation_price_ratio=0xFF, alternate_cost_delivered=0xFFFFFFFF, alternate_cost_unit=0xFF,
        alternate_cost_trailing_digit=0xFF, number_of_block_thresholds=0xFF, price_control=control,
    )


def ack(tsn: int, issuer: int = 100, *, provider: int = 1, control: int = 0x01, when: int = NOW) -> bytes:
    return codec.build_frame(Price, "price_acknowledgement", tsn=tsn, provider_id=provider,
                             issuer_event_id=issuer, price_ack_time=when, control=control)


def message(tsn: int, message_id: int = 1, *, control: int = 0x88, ddr: bool = True) -> bytes:
    return codec.build_frame(Messaging, "display_message", tsn=tsn, disable_default_response=ddr,
                             message_id=message_id, message_control=control, start_time=0,
                             duration_in_minutes=60, message="Hello")


def default_response(tsn: int, command_id: int, status: int = Status.SUCCESS) -> bytes:
    header = foundation.ZCLHeader.general(tsn=tsn, command_id=foundation.GeneralCommand.Default_Response,
                                          direction=foundation.Direction.Client_to_Server)
    return header.serialize() + bytes([command_id, status])


# --- layout -------------------------------------------------------------------------------


def test_a_60_byte_report_passes_and_an_unsigned_18_byte_one_is_caught(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(1))
    checker.client_sent(DRLC, res(1))
    assert checker.finish() == ()
    short = res(2, status=0x02, when=NOW + 60)[: 3 + 18]
    checker.client_sent(DRLC, short)
    assert rules(checker.violations) == ["SE-DRLC-2.8-length"]
    assert checker.violations[0].frame is not None and checker.violations[0].frame.tsn == 2


@pytest.mark.parametrize(("change", "rule"), [
    ({"event_status_time": 0}, "SE-DRLC-2.8-time"),
    ({"event_status_time": 0xFFFFFFFF}, "SE-DRLC-2.8-time"),
    ({"event_status": 0x0B}, "SE-DRLC-2.8-status"),
    ({"event_status": 0xFA}, "SE-DRLC-2.8-status"),
    ({"duty_cycle_applied": 101}, "SE-DRLC-2.8-fields"),
    ({"event_control": 0x04}, "SE-DRLC-2.8-fields"),
    ({"signature_type": 0x02}, "SE-DRLC-2.8-fields"),
])
def test_report_field_ranges(checker: ConformanceChecker, change: dict[str, Any], rule: str) -> None:
    checker.meter_sent(DRLC, lce(1))
    fields: dict[str, Any] = {"when": NOW}
    if "event_status_time" in change:
        fields["when"] = change.pop("event_status_time")
    if "event_status" in change:
        fields["status"] = change.pop("event_status")
    checker.client_sent(DRLC, res(1, **fields, **change))
    assert rule in rules(checker.violations)


@pytest.mark.parametrize(("payload", "ok"), [
    (bytes(5), True), (bytes(9), True), (bytes(6), False), (bytes(4), False)])
def test_get_scheduled_events_is_5_or_9_bytes(checker: ConformanceChecker, payload: bytes, ok: bool) -> None:
    checker.client_sent(DRLC, b"\x01\x10\x01" + payload)
    assert rules(checker.violations) == ([] if ok else ["SE-DRLC-2.11-length"])


def test_price_acknowledgement_is_13_bytes(checker: ConformanceChecker) -> None:
    checker.meter_sent(PRICE, price(9))
    checker.client_sent(PRICE, ack(9)[:-1])
    assert "SE-PRICE-3.1-length" in rules(checker.violations)


@pytest.mark.parametrize(("tail", "ok"), [
    (b"", True),  # SE 1.0/1.1: 8 bytes
    (b"\x02", True),  # control only
    (b"\x02\x03Yes", True),  # control and response
    (b"\x03", False),  # YES and NO at once
    (b"\x02\x05Yes", False),  # the response's length byte disagrees with the frame
    (b"\x02\x15" + b"x" * 21, False),  # 21 bytes of response text
])
def test_message_confirmation_layout(checker: ConformanceChecker, tail: bytes, ok: bool) -> None:
    checker.meter_sent(MESSAGING, message(3))
    body = (1).to_bytes(4, "little") + NOW.to_bytes(4, "little") + tail
    checker.client_sent(MESSAGING, b"\x01\x20\x01" + body)
    assert rules(checker.violations) == ([] if ok else ["SE-MSG-4.5-length"])


@pytest.mark.parametrize(("frame_control", "ok"), [
    (0x01, True), (0x11, True), (0x09, False), (0x05, False), (0x21, False), (0x03, False)])
def test_frame_control_of_a_client_command(checker: ConformanceChecker, frame_control: int, ok: bool) -> None:
    manufacturer = b"\x34\x12" if frame_control & 0x04 else b""
    checker.client_sent(DRLC, bytes([frame_control]) + manufacturer + b"\x10\x01" + bytes(5))
    found = rules(checker.violations)
    assert found == [] if ok else found and all(r.startswith("SE-ZCL-1.2") for r in found)


def test_frames_on_clusters_an_esi_does_not_serve_are_not_judged(checker: ConformanceChecker) -> None:
    checker.client_sent(0x0021, b"\x19\x01\x02\x08")  # zigpy's Green Power proxy broadcast
    assert checker.violations == ()


# --- Default Responses (ZCL 2.5.12.2) -----------------------------------------------------


def test_a_command_with_ddr_0_gets_exactly_one_default_response(checker: ConformanceChecker) -> None:
    checker.meter_sent(MESSAGING, message(4, ddr=False))
    assert checker.pending() == 1
    checker.client_sent(MESSAGING, default_response(4, 0x00))
    assert checker.pending() == 0
    assert checker.finish() == ()


def test_a_missing_default_response_is_caught_when_settled(checker: ConformanceChecker) -> None:
    checker.meter_sent(MESSAGING, message(4, ddr=False))
    assert rules(checker.finish()) == ["SE-ZCL-2.5.12-missing"]
    assert checker.violations[0].frame is not None and checker.violations[0].frame.outgoing


def test_two_default_responses_for_one_tsn(checker: ConformanceChecker) -> None:
    checker.meter_sent(PRICE, price(4, control=0x00))
    checker.meter_sent(PRICE, price(5, control=0x00, ddr=False))  # the same price again
    checker.client_sent(PRICE, default_response(5, 0x00, Status.DUPLICATE_EXISTS))
    checker.client_sent(PRICE, default_response(5, 0x00, Status.SUCCESS))
    assert rules(checker.finish()) == ["SE-ZCL-2.5.12-duplicate"]


def test_with_ddr_1_only_an_error_is_answered(checker: ConformanceChecker) -> None:
    checker.meter_sent(MESSAGING, message(6, ddr=True))
    checker.client_sent(MESSAGING, default_response(6, 0x00, Status.FAILURE))
    assert checker.violations == ()
    checker.meter_sent(MESSAGING, message(7, message_id=2, ddr=True))
    checker.client_sent(MESSAGING, default_response(7, 0x00, Status.SUCCESS))
    assert rules(checker.finish()) == ["SE-ZCL-2.5.12-unrequested-success"]


def test_a_default_response_names_the_command_it_answers(checker: ConformanceChecker) -> None:
    checker.meter_sent(MESSAGING, message(8, ddr=False))
    checker.client_sent(MESSAGING, default_response(8, 0x01))
    assert "SE-ZCL-2.5.12-command-id" in rules(checker.finish())


def test_a_default_response_under_a_fresh_tsn_answers_nothing(checker: ConformanceChecker) -> None:
    checker.meter_sent(MESSAGING, message(8, ddr=False))
    checker.client_sent(MESSAGING, default_response(0x99, 0x00))
    assert rules(checker.finish()) == ["SE-ZCL-2.5.12-unsolicited", "SE-ZCL-2.5.12-missing"]


def test_a_default_response_must_be_two_bytes(checker: ConformanceChecker) -> None:
    checker.meter_sent(MESSAGING, message(8, ddr=False))
    checker.client_sent(MESSAGING, default_response(8, 0x00) + b"\x00")
    assert rules(checker.finish()) == ["SE-ZCL-2.5.12-default-response-length"]


@pytest.mark.parametrize(("frame", "owed"), [
    (b"\x1d\x34\x12\x05\x00\x01", Status.UNSUP_MANUF_CLUSTER_COMMAND),  # manufacturer-specific, DDR 1
    (b"\x19\x05\x7f", Status.UNSUP_CLUSTER_COMMAND),  # unknown DRLC command, DDR 1
    (b"\x19\x05\x00\x01\x00", Status.MALFORMED_COMMAND),  # LoadControlEvent cut short
    (b"\x18\x05\x7e", Status.UNSUP_GENERAL_COMMAND),  # unknown global command
])
def test_bad_meter_frames_get_their_error_status_even_with_ddr_1(
    checker: ConformanceChecker, frame: bytes, owed: int
) -> None:
    checker.meter_sent(DRLC, frame)
    assert rules(checker.finish()) == ["SE-ZCL-2.5.12-error-status"]  # nothing came
    good = ConformanceChecker(FixedClock(T0), grace_s=60)
    good.meter_sent(DRLC, frame)
    command_id = frame[4] if frame[0] & 0x04 else frame[2]
    good.client_sent(DRLC, default_response(0x05, command_id, owed))
    assert good.finish() == ()
    wrong = ConformanceChecker(FixedClock(T0), grace_s=60)
    wrong.meter_sent(DRLC, frame)
    wrong.client_sent(DRLC, default_response(0x05, command_id, Status.SUCCESS))
    assert rules(wrong.finish()) == ["SE-ZCL-2.5.12-error-status"]


# --- Price --------------------------------------------------------------------------------


def test_a_price_that_asks_for_an_ack_gets_one_and_nothing_else(checker: ConformanceChecker, clock: FixedClock) -> None:
    checker.meter_sent(PRICE, price(10))
    clock.advance(seconds=1)
    checker.client_sent(PRICE, ack(10, when=NOW + 1))
    assert checker.finish() == ()


def test_an_ack_owed_and_missing(checker: ConformanceChecker) -> None:
    checker.meter_sent(PRICE, price(10))
    assert rules(checker.finish()) == ["SE-PRICE-3.4-ack-missing"]


def test_a_success_beside_the_ack_is_redundant(checker: ConformanceChecker) -> None:
    checker.meter_sent(PRICE, price(10, ddr=False))
    checker.client_sent(PRICE, ack(10))
    checker.client_sent(PRICE, default_response(10, 0x00))
    assert rules(checker.finish()) == ["SE-ZCL-2.5.12-redundant"]


@pytest.mark.parametrize(("kwargs", "rule"), [
    ({"tsn": 0x44}, "SE-ZCL-tsn-echo"),
    ({"provider": 2}, "SE-PRICE-3.4-ack-echo"),
    ({"control": 0x00}, "SE-PRICE-3.4-ack-echo"),
    ({"when": NOW - 5}, "SE-PRICE-3.4-ack-echo"),
])
def test_the_ack_echoes_the_price(checker: ConformanceChecker, kwargs: dict[str, Any], rule: str) -> None:
    checker.meter_sent(PRICE, price(10))
    checker.client_sent(PRICE, ack(kwargs.pop("tsn", 10), **kwargs))
    assert rules(checker.finish()) == [rule]


def test_an_ack_for_a_price_that_asked_for_none(checker: ConformanceChecker) -> None:
    checker.meter_sent(PRICE, price(11, control=0x00))
    checker.client_sent(PRICE, ack(11, control=0x00))
    assert rules(checker.finish()) == ["SE-PRICE-3.4-unsolicited-ack"]


def test_a_cpp_response_answers_a_pending_cpp_event(checker: ConformanceChecker) -> None:
    cpp = codec.build_frame(Price, "publish_cpp_event", tsn=12, disable_default_response=True, provider_id=1,
                            issuer_event_id=55, start_time=0, duration_in_minutes=60, tariff_type=0,
                            cpp_price_tier=0, cpp_auth=0)
    checker.meter_sent(PRICE, cpp)
    checker.client_sent(PRICE, codec.build_frame(Price, "cpp_event_response", tsn=12, issuer_event_id=55,
                                                 cpp_auth=1))
    assert checker.violations == ()  # the response echoes the event's TSN and no Default Response is owed
    checker.client_sent(PRICE, codec.build_frame(Price, "cpp_event_response", tsn=2, issuer_event_id=56,
                                                 cpp_auth=1))
    checker.client_sent(PRICE, codec.build_frame(Price, "cpp_event_response", tsn=3, issuer_event_id=55,
                                                 cpp_auth=3))
    assert rules(checker.violations) == ["SE-PRICE-3.6-cpp-response"] * 3


def test_a_cpp_response_echoes_the_tsn_and_a_pending_event_unanswered_is_a_violation(
        checker: ConformanceChecker) -> None:
    for tsn, issuer in ((20, 60), (21, 61)):
        checker.meter_sent(PRICE, codec.build_frame(Price, "publish_cpp_event", tsn=tsn, disable_default_response=False,
                                                    provider_id=1, issuer_event_id=issuer, start_time=0,
                                                    duration_in_minutes=60, tariff_type=0, cpp_price_tier=0,
                                                    cpp_auth=0))
    checker.client_sent(PRICE, codec.build_frame(Price, "cpp_event_response", tsn=99, issuer_event_id=60,
                                                 cpp_auth=1))
    assert rules(checker.finish()) == ["SE-ZCL-tsn-echo", "SE-PRICE-3.6-cpp-response"]


# --- Messaging ----------------------------------------------------------------------------


def confirmation(message_id: int, when: int) -> bytes:
    return codec.build_frame(Messaging, "message_confirmation", tsn=0x30, message_id=message_id,
                             confirmation_time=when)


def test_confirmation_only_for_a_message_that_asked(checker: ConformanceChecker, clock: FixedClock) -> None:
    checker.meter_sent(MESSAGING, message(1, 1, control=0x88))
    checker.meter_sent(MESSAGING, message(2, 2, control=0x08))
    clock.advance(seconds=30)
    checker.client_sent(MESSAGING, confirmation(1, NOW + 30))
    assert checker.violations == ()
    checker.client_sent(MESSAGING, confirmation(2, NOW + 30))  # did not ask
    checker.client_sent(MESSAGING, confirmation(3, NOW + 30))  # never sent
    checker.client_sent(MESSAGING, confirmation(1, NOW - 1))  # before it arrived
    assert rules(checker.violations) == ["SE-MSG-4.5-confirmation"] * 3


# --- the life of an event (§2.12) ---------------------------------------------------------


def test_an_event_s_whole_life_passes(checker: ConformanceChecker, clock: FixedClock) -> None:
    checker.meter_sent(DRLC, lce(20))
    checker.client_sent(DRLC, res(20, status=0x01, when=NOW))
    checker.client_sent(DRLC, res(0x60, status=0x02, when=NOW + 60))
    checker.client_sent(DRLC, res(0x61, status=0x04, when=NOW + 120))
    checker.client_sent(DRLC, res(0x62, status=0x05, when=NOW + 180))
    checker.client_sent(DRLC, res(0x63, status=0x09, when=NOW + 1860))
    assert checker.finish() == ()


def test_an_event_addressed_to_the_client_must_be_answered(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(20))
    assert rules(checker.finish()) == ["SE-DRLC-2.12.5-unanswered"]


def test_the_first_report_echoes_the_event_s_tsn(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(20))
    checker.client_sent(DRLC, res(0x57))
    assert rules(checker.finish()) == ["SE-ZCL-tsn-echo"]


def test_started_before_received_is_out_of_order(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(21, start_time=0))
    checker.client_sent(DRLC, res(21, status=0x02))
    checker.client_sent(DRLC, res(0x70, status=0x01))
    assert rules(checker.finish()) == ["SE-DRLC-2.12-order", "SE-DRLC-2.12-order"]


def test_nothing_after_a_terminal_status(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(22))
    checker.client_sent(DRLC, res(22, status=0x01))
    checker.client_sent(DRLC, res(0x71, status=0x03, when=NOW + 1900))
    checker.client_sent(DRLC, res(0x72, status=0x03, when=NOW + 1900))
    assert rules(checker.finish()) == ["SE-DRLC-2.12-order"]


def test_no_status_for_an_event_never_sent(checker: ConformanceChecker) -> None:
    checker.client_sent(DRLC, res(0x73, issuer=999))
    assert rules(checker.finish()) == ["SE-DRLC-2.12-unknown-event"]


@pytest.mark.parametrize("overrides", [{"device_class": 0x0004}, {"utility_enrollment_group": 6}])
def test_no_status_for_an_event_not_addressed_to_the_client(checker: ConformanceChecker,
                                                            overrides: dict[str, Any]) -> None:
    checker.meter_sent(DRLC, lce(23, **overrides))
    assert checker.pending() == 0  # nothing is owed
    checker.client_sent(DRLC, res(23))
    assert rules(checker.finish()) == ["SE-DRLC-2.12.1-not-addressed"]


def test_the_client_s_own_group_and_group_0_address_it(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(24, issuer=1, utility_enrollment_group=5))
    checker.meter_sent(DRLC, lce(25, issuer=2, utility_enrollment_group=0))
    checker.client_sent(DRLC, res(24, issuer=1))
    checker.client_sent(DRLC, res(25, issuer=2))
    assert checker.finish() == ()


def test_a_reserved_criticality_is_ignored(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(26, criticality_level=0x10))
    assert checker.pending() == 0
    checker.client_sent(DRLC, res(26, criticality_level_applied=0x0F))
    assert rules(checker.finish()) == ["SE-DRLC-2.12.2-reserved-criticality"]


def test_status_times_never_before_their_cause_nor_backwards(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(27, start_time=0))
    checker.client_sent(DRLC, res(27, when=NOW - 1))
    checker.client_sent(DRLC, res(0x74, status=0x02, when=NOW + 10))
    checker.client_sent(DRLC, res(0x75, status=0x04, when=NOW + 5))
    assert rules(checker.finish()) == ["SE-DRLC-2.12-time-before-cause", "SE-DRLC-2.12-time-order"]


def test_started_not_before_the_event_s_start(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(28))  # starts at NOW + 60
    checker.client_sent(DRLC, res(28))
    checker.client_sent(DRLC, res(0x76, status=0x02, when=NOW + 30))
    assert rules(checker.finish()) == ["SE-DRLC-2.12-time-before-cause"]


def test_an_expired_event_is_rejected_with_its_criticality_and_control(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(29, issuer=1, start_time=NOW - 3600, duration_in_minutes=30))
    checker.client_sent(DRLC, res(29, issuer=1, status=0xFB))
    assert checker.violations == ()
    checker.meter_sent(DRLC, lce(30, issuer=2, start_time=NOW - 3600, duration_in_minutes=30))
    checker.client_sent(DRLC, res(30, issuer=2, status=0xFB, criticality_level_applied=1, event_control=0))
    assert rules(checker.violations) == ["SE-DRLC-2.12-echo"]
    checker.meter_sent(DRLC, lce(31, issuer=3, start_time=NOW - 3600, duration_in_minutes=30))
    checker.client_sent(DRLC, res(31, issuer=3, status=0x01))
    assert rules(checker.finish())[1:] == ["SE-DRLC-2.12.3-first-status"]


def test_an_invalid_event_is_rejected_with_0xfe(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(32, issuer=1, duration_in_minutes=1441))
    checker.client_sent(DRLC, res(32, issuer=1, status=0x01))
    checker.meter_sent(DRLC, lce(33, issuer=2, start_time=0xFFFFFFFF))
    checker.client_sent(DRLC, res(33, issuer=2, status=0xFE))
    assert rules(checker.finish()) == ["SE-DRLC-2.12.3-first-status"]


def test_received_applies_the_event_s_criticality(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(34))
    checker.client_sent(DRLC, res(34, criticality_level_applied=5))
    assert rules(checker.finish()) == ["SE-DRLC-2.12-echo"]


@pytest.mark.parametrize("applied", [
    {"average_load_adjustment_percentage_applied": -12},
    {"duty_cycle_applied": 40},
    {"heating_temperature_set_point_applied": 1900},
])
def test_nothing_applied_that_the_event_did_not_ask(checker: ConformanceChecker, applied: dict[str, Any]) -> None:
    checker.meter_sent(DRLC, lce(35))  # asks a cooling offset only
    checker.client_sent(DRLC, res(35, **applied))
    assert rules(checker.finish()) == ["SE-DRLC-2.8-applied-not-requested"]


def test_a_cooling_set_point_may_be_applied_for_a_cooling_offset(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(36))
    checker.client_sent(DRLC, res(36, cooling_temperature_set_point_applied=2600))
    assert checker.finish() == ()


def test_the_same_id_again_is_ignored(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(37))
    checker.client_sent(DRLC, res(37))
    checker.meter_sent(DRLC, lce(38))  # the same event again: nothing owed
    assert checker.pending() == 0
    checker.client_sent(DRLC, res(38))
    assert rules(checker.finish()) == ["SE-DRLC-2.12-order"]


def test_a_reused_id_of_an_ended_event_is_rejected_as_expired(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(39))
    checker.client_sent(DRLC, res(39))
    checker.client_sent(DRLC, res(0x77, status=0x03, when=NOW + 1900))
    checker.meter_sent(DRLC, lce(40))
    assert checker.pending() == 1
    checker.client_sent(DRLC, res(40, status=0xFB))
    assert checker.finish() == ()


# --- cancels ------------------------------------------------------------------------------


def test_a_valid_cancel_ends_the_event_with_0x06(checker: ConformanceChecker, clock: FixedClock) -> None:
    checker.meter_sent(DRLC, lce(41))
    checker.client_sent(DRLC, res(41))
    clock.advance(seconds=5)
    checker.meter_sent(DRLC, cancel(42, ddr=False))
    checker.client_sent(DRLC, default_response(42, 0x01))
    checker.client_sent(DRLC, res(0x78, status=0x06, when=NOW + 5))
    assert checker.finish() == ()


def test_a_cancel_of_an_unknown_event_is_answered_0xfd_under_its_tsn(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, cancel(43, issuer=500))
    checker.client_sent(DRLC, res(43, issuer=500, status=0xFD))
    assert checker.finish() == ()
    unanswered = ConformanceChecker(FixedClock(T0), grace_s=60)
    unanswered.meter_sent(DRLC, cancel(43, issuer=500))
    assert rules(unanswered.finish()) == ["SE-DRLC-2.12.11-cancel"]
    fresh_tsn = ConformanceChecker(FixedClock(T0), grace_s=60)
    fresh_tsn.meter_sent(DRLC, cancel(43, issuer=500))
    fresh_tsn.client_sent(DRLC, res(0x79, issuer=500, status=0xFD))
    assert rules(fresh_tsn.finish()) == ["SE-ZCL-tsn-echo"]


def test_a_cancel_of_a_superseded_event_is_0xfd(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(44, issuer=1))
    checker.client_sent(DRLC, res(44, issuer=1))
    checker.meter_sent(DRLC, lce(45, issuer=2))  # same span: supersedes event 1
    checker.client_sent(DRLC, res(45, issuer=2))
    checker.client_sent(DRLC, res(0x7A, issuer=1, status=0x07))
    checker.meter_sent(DRLC, cancel(46, issuer=1))
    checker.client_sent(DRLC, res(46, issuer=1, status=0xFD))
    assert checker.finish() == ()


def test_an_invalid_effective_time_is_0xf9(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(47))
    checker.client_sent(DRLC, res(47))
    checker.meter_sent(DRLC, cancel(48, effective_time=0xFFFFFFFF))
    checker.client_sent(DRLC, res(48, status=0xFD))
    assert rules(checker.finish()) == ["SE-DRLC-2.12.11-cancel"]


def test_a_cancel_not_addressed_to_the_client_must_not_cancel(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(49))
    checker.client_sent(DRLC, res(49))
    checker.meter_sent(DRLC, cancel(50, device_class=0x0004))
    assert checker.pending() == 0
    checker.client_sent(DRLC, res(0x7B, status=0x06))
    assert rules(checker.finish()) == ["SE-DRLC-2.12.11-cancelled-without-cancel"]


def test_cancel_all_cancels_every_live_event(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(51))
    checker.client_sent(DRLC, res(51))
    checker.meter_sent(DRLC, codec.build_frame(Drlc, "cancel_all_load_control_events", tsn=52,
                                               disable_default_response=True, cancel_control=0))
    checker.client_sent(DRLC, res(0x7C, status=0x06))
    assert checker.finish() == ()


def test_a_cancel_rejection_answers_a_cancel(checker: ConformanceChecker) -> None:
    checker.client_sent(DRLC, res(0x7D, issuer=8, status=0xFD))
    assert rules(checker.finish()) == ["SE-DRLC-2.12.11-unsolicited-rejection"]


# --- settling -----------------------------------------------------------------------------


async def test_settled_waits_for_owed_answers_and_reports_the_rest(clock: FixedClock) -> None:
    checker = ConformanceChecker(clock, grace_s=30)
    checker.meter_sent(MESSAGING, message(60, ddr=False))
    checker.meter_sent(MESSAGING, message(61, message_id=2, ddr=False))
    checker.client_sent(MESSAGING, default_response(60, 0x00))
    violations = await checker.settled(timeout_s=0.05)
    assert rules(violations) == ["SE-ZCL-2.5.12-missing"]
    assert "TSN 0x3D" in str(violations[0])


async def test_an_answer_past_the_grace_window_is_missing(clock: FixedClock) -> None:
    checker = ConformanceChecker(clock, grace_s=0.0)
    checker.meter_sent(MESSAGING, message(62, ddr=False))
    assert checker.pending() == 0  # the window is over: the answer is counted missing
    assert rules(checker.violations) == ["SE-ZCL-2.5.12-missing"]


def test_every_violation_names_its_rule_in_words(checker: ConformanceChecker) -> None:
    checker.client_sent(DRLC, res(0x7E, issuer=8, status=0x01))
    (violation,) = checker.violations
    assert violation.text == RULES[violation.rule]
    assert violation.frame is not None and violation.frame.at == T0
    assert violation.frame.hex.startswith("01 7e 00")
    assert violation.frame.command == "report_event_status"


def test_statuses_far_apart_in_time_on_a_moving_clock(clock: FixedClock) -> None:
    checker = ConformanceChecker(clock, grace_s=60)
    checker.meter_sent(DRLC, lce(63, start_time=0, duration_in_minutes=1))
    clock.advance(minutes=2)
    late = NOW + int(timedelta(minutes=2).total_seconds())
    checker.client_sent(DRLC, res(63, when=NOW))
    checker.client_sent(DRLC, res(0x7F, status=0x02, when=NOW))
    checker.client_sent(DRLC, res(0x80, status=0x03, when=late))
    assert checker.finish() == ()


def test_a_valid_price_is_not_refused(checker: ConformanceChecker) -> None:
    checker.meter_sent(PRICE, price(70, issuer=100, control=0x00, ddr=False))
    checker.client_sent(PRICE, default_response(70, 0x00, Status.SUCCESS))
    checker.meter_sent(PRICE, price(71, issuer=100, control=0x00, ddr=False))  # the same id again
    checker.client_sent(PRICE, default_response(71, 0x00, Status.DUPLICATE_EXISTS))
    checker.meter_sent(PRICE, price(72, issuer=90, control=0x00, ddr=False))  # older
    checker.client_sent(PRICE, default_response(72, 0x00, Status.FAILURE))
    assert checker.violations == ()
    checker.meter_sent(PRICE, price(73, issuer=101, control=0x00, ddr=False))  # e.g. 11 trailing digits
    checker.client_sent(PRICE, default_response(73, 0x00, Status.FAILURE))
    assert rules(checker.finish()) == ["SE-PRICE-3.10-refused"]


def test_a_set_point_applied_is_the_one_the_thermostat_keeps(checker: ConformanceChecker) -> None:
    kept = [(2400, 1900)]
    checker.set_point_probe = lambda: kept[0]
    checker.meter_sent(DRLC, lce(80, issuer=1, start_time=0, cooling_temperature_offset=0xFF,
                                 cooling_temperature_set_point=4000))
    checker.client_sent(DRLC, res(80, issuer=1))
    kept[0] = (3200, 1900)  # the thermostat clamps 40 degC to its 32 degC limit
    checker.sample()
    checker.client_sent(DRLC, res(0x81, issuer=1, status=0x02, cooling_temperature_set_point_applied=3200))
    assert checker.finish() == ()
    checker.meter_sent(DRLC, lce(82, issuer=2, start_time=0, cooling_temperature_offset=0xFF,
                                 cooling_temperature_set_point=4000))
    checker.client_sent(DRLC, res(82, issuer=2))
    checker.client_sent(DRLC, res(0x83, issuer=2, status=0x02, cooling_temperature_set_point_applied=4000))
    assert rules(checker.finish()) == ["SE-DRLC-2.8-applied-set-point"]


def test_a_default_response_is_never_answered_by_one(checker: ConformanceChecker) -> None:
    meter_dr = foundation.ZCLHeader.general(tsn=90, command_id=foundation.GeneralCommand.Default_Response,
                                            direction=foundation.Direction.Server_to_Client)
    checker.meter_sent(DRLC, meter_dr.serialize() + b"\x00\x00")
    assert checker.pending() == 0
    checker.client_sent(DRLC, default_response(90, 0x0B))
    assert rules(checker.finish()) == ["SE-ZCL-2.5.12-response-to-default-response"]


@pytest.mark.parametrize(("cluster", "frame", "ok"), [
    (MESSAGING, b"\x01\x10\x00", True),  # GetLastMessage: no payload
    (MESSAGING, b"\x01\x10\x00\x01", False),  # ... with a byte
    (DRLC, b"\x01\x10\x05", False),  # DRLC has no client -> server command 0x05
    (PRICE, b"\x01\x10\x03" + bytes(5), True),  # GetBlockPeriods, SE 1.1 form
    (PRICE, b"\x01\x10\x03" + bytes(8), False),  # ... with bytes past the last field
])
def test_other_commands_decode_with_nothing_left_over(checker: ConformanceChecker, cluster: int, frame: bytes,
                                                      ok: bool) -> None:
    checker.client_sent(cluster, frame)
    assert rules(checker.violations) == ([] if ok else ["SE-ZCL-layout"])


class Radio:
    """The checker's real-time counter, moved by the test (the grace window is 5 s of it)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_accepted_event_owes_its_start_end_and_cancel(clock: FixedClock) -> None:
    radio = Radio()
    checker = ConformanceChecker(clock, grace_s=5, monotonic=radio)
    checker.meter_sent(DRLC, lce(84, issuer=1, start_time=NOW + 60, duration_in_minutes=1, event_control=0))
    checker.client_sent(DRLC, res(84, issuer=1, event_control=0))
    clock.advance(seconds=61)
    assert checker.finish() == ()  # due only now: not yet late
    radio.now += 6
    assert rules(checker.finish()) == ["SE-DRLC-2.12-status-owed"]  # started, not reported
    checker.client_sent(DRLC, res(0x85, issuer=1, status=0x02, when=NOW + 61, event_control=0))
    clock.advance(seconds=60)
    checker.finish()
    radio.now += 6
    assert rules(checker.finish()) == ["SE-DRLC-2.12-status-owed"] * 2  # ended, not reported
    checker.client_sent(DRLC, res(0x86, issuer=1, status=0x03, when=NOW + 121, event_control=0))
    checker.meter_sent(DRLC, lce(87, issuer=2, start_time=NOW + 600, duration_in_minutes=30, event_control=0))
    checker.client_sent(DRLC, res(87, issuer=2, event_control=0, when=NOW + 121))
    checker.meter_sent(DRLC, cancel(88, issuer=2))
    checker.finish()
    radio.now += 6
    violations = checker.finish()
    assert len(violations) == 3 and "0x06" in str(violations[-1])


def test_a_status_in_time_owes_nothing(clock: FixedClock) -> None:
    radio = Radio()
    checker = ConformanceChecker(clock, grace_s=5, monotonic=radio)
    checker.meter_sent(DRLC, lce(84, issuer=1, start_time=NOW + 60, duration_in_minutes=1, event_control=0))
    checker.client_sent(DRLC, res(84, issuer=1, event_control=0))
    clock.advance(seconds=61)
    checker.finish()
    radio.now += 1
    checker.client_sent(DRLC, res(0x85, issuer=1, status=0x02, when=NOW + 61, event_control=0))
    radio.now += 10
    assert checker.finish() == ()


def test_randomized_times_are_not_timed(clock: FixedClock) -> None:
    radio = Radio()
    checker = ConformanceChecker(clock, grace_s=5, monotonic=radio)
    checker.meter_sent(DRLC, lce(89, start_time=NOW + 60, duration_in_minutes=1, event_control=0x01))
    checker.client_sent(DRLC, res(89))
    clock.advance(hours=1)
    checker.finish()
    radio.now += 60
    assert checker.finish() == ()
