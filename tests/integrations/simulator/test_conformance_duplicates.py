"""The strict meter's duplicate-report rules (issue 11): the same status for the same event twice, or a
message confirmed again under another TSN, is a violation; a retry under the first TSN is not. Both are
counted (``duplicate_reports``, ``retried_reports``) for the soak."""

from __future__ import annotations

import pytest

from ems.clock import FixedClock
from integrations.simulator.conformance import ConformanceChecker
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Messaging
from tests.integrations.simulator.test_conformance import (
    DRLC,
    MESSAGING,
    NOW,
    T0,
    lce,
    message,
    res,
    rules,
)


@pytest.fixture
def checker() -> ConformanceChecker:
    return ConformanceChecker(FixedClock(T0), device_class_value=0x0001, utility_enrollment_group=5, grace_s=60)


def _confirmation(tsn: int, message_id: int = 1, when: int = NOW + 30) -> bytes:
    return codec.build_frame(Messaging, "message_confirmation", tsn=tsn, message_id=message_id,
                             confirmation_time=when)


def test_a_confirmation_retried_under_its_first_tsn_is_a_retry(checker: ConformanceChecker) -> None:
    checker.meter_sent(MESSAGING, message(1, 1, control=0x88))
    checker.client_sent(MESSAGING, _confirmation(0x30))
    checker.client_sent(MESSAGING, _confirmation(0x30))
    assert checker.violations == ()
    assert checker.retried_reports["message_confirmation"] == 1
    assert checker.duplicate_reports["message_confirmation"] == 0


def test_a_second_confirmation_under_another_tsn_is_a_duplicate(checker: ConformanceChecker) -> None:
    checker.meter_sent(MESSAGING, message(1, 1, control=0x88))
    checker.client_sent(MESSAGING, _confirmation(0x30))
    checker.client_sent(MESSAGING, _confirmation(0x31))
    assert rules(checker.violations) == ["SE-UP-duplicate-confirmation"]
    assert checker.duplicate_reports["message_confirmation"] == 1


def test_the_same_message_sent_again_is_not_confirmed_again_but_a_new_one_under_its_id_is(
        checker: ConformanceChecker) -> None:
    checker.meter_sent(MESSAGING, message(1, 1, control=0x88))
    checker.client_sent(MESSAGING, _confirmation(0x30))
    checker.meter_sent(MESSAGING, codec.build_frame(  # another text under id 1: a new message
        Messaging, "display_message", tsn=2, disable_default_response=True, message_id=1, message_control=0x88,
        start_time=0, duration_in_minutes=60, message="Another"))
    checker.client_sent(MESSAGING, _confirmation(0x32))
    assert checker.violations == ()


def test_the_same_opt_out_twice_in_a_row_is_a_duplicate(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(40))
    checker.client_sent(DRLC, res(40, status=0x01))
    checker.client_sent(DRLC, res(0x41, status=0x04, when=NOW + 10))
    checker.client_sent(DRLC, res(0x42, status=0x04, when=NOW + 11))
    assert rules(checker.violations) == ["SE-UP-duplicate-status"]
    assert checker.duplicate_reports["event_status"] == 1


def test_received_twice_is_counted_as_a_duplicate(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(43))
    checker.client_sent(DRLC, res(43, status=0x01))
    checker.client_sent(DRLC, res(0x44, status=0x01))
    assert rules(checker.violations) == ["SE-DRLC-2.12-order"]  # flagged once, by the order rule
    assert checker.duplicate_reports["event_status"] == 1


def test_opt_out_opt_in_opt_out_is_no_duplicate(checker: ConformanceChecker) -> None:
    checker.meter_sent(DRLC, lce(45))
    for index, status in enumerate((0x01, 0x04, 0x05, 0x04)):
        checker.client_sent(DRLC, res(45 if index == 0 else 0x50 + index, status=status, when=NOW + index))
    assert checker.violations == ()
    assert not checker.duplicate_reports

