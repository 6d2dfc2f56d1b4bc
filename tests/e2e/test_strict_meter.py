"""The whole appliance against the strict meter: scenarios written to probe one SE rule each.

Every test here runs through ``running_appliance``, which settles the meter's conformance checker
after the test and fails it on any violation; the test body only drives the scenario and checks
what the appliance shows. A test that fails here names the rule (``SE-...``) the appliance broke.
"""

from __future__ import annotations

from typing import Any

from .conftest import (
    CONFIG,
    FAST_SCENARIO,
    HOME_CONFIG,
    HOME_SCENARIO,
    Appliance,
    local_clock,
    running_appliance,
)

QUIET = {**FAST_SCENARIO, "events": [], "messages": [
    {"at": 0.3, "text": "Welcome", "importance": "low"},
    {"at": 0.4, "text": "Reply please", "confirm": True},
]}


async def _script_ran(app: Appliance) -> None:
    await app.online()
    await app.wait_until(app.simulator.script_done.is_set, what="the scenario's script to run")


def _statuses(app: Appliance, issuer: int) -> list[int]:
    return [int(a.fields["event_status"]) for a in app.simulator.meter.answers
            if a.command == "report_event_status" and int(a.fields["issuer_event_id"]) == issuer]


def _prices(app: Appliance) -> set[int]:
    return {p.issuer_event_id for p in app.hub.state.prices.get("main", ())}


async def test_a_quiet_scenario_passes_the_strict_meter(tmp_path: Any) -> None:
    async with running_appliance(tmp_path, QUIET, clock=local_clock("20:00")) as app:
        await _script_ran(app)
        assert app.simulator.meter.checker.frames_checked > 0


async def test_a_message_with_ddr_0_gets_exactly_one_default_response(tmp_path: Any) -> None:
    """SE-ZCL-2.5.12-missing / -duplicate (ZCL 2.5.12.2)."""
    scenario = {**QUIET, "messages": [{"at": 0.3, "text": "Answer me", "disable_default_response": False}]}
    async with running_appliance(tmp_path, scenario, clock=local_clock("20:00")) as app:
        await _script_ran(app)
        await app.wait_until(lambda: app.hub.state.counters["frames_received"] > 0, what="frames")


async def test_a_price_with_ddr_0_and_no_ack_bit_is_applied_and_answered_once(tmp_path: Any) -> None:
    """SE-ZCL-2.5.12-missing / -duplicate; the price must reach the appliance's state."""
    scenario = {**QUIET, "price_changes": [
        {"at": 0.5, "price": "0.4321", "issuer_event_id": 7001, "disable_default_response": False}]}
    async with running_appliance(tmp_path, scenario, clock=local_clock("20:00")) as app:
        await _script_ran(app)
        await app.wait_until(lambda: 7001 in _prices(app), what="the price to be applied")


async def test_a_repeated_price_gets_one_duplicate_exists(tmp_path: Any) -> None:
    """SE-ZCL-2.5.12-duplicate: DUPLICATE_EXISTS alone, not beside a SUCCESS."""
    scenario = {**QUIET, "price_changes": [
        {"at": 0.5, "price": "0.40", "issuer_event_id": 7002, "disable_default_response": False},
        {"at": 0.7, "price": "0.40", "issuer_event_id": 7002, "disable_default_response": False}]}
    async with running_appliance(tmp_path, scenario, clock=local_clock("20:00")) as app:
        await _script_ran(app)
        await app.wait_until(lambda: 7002 in _prices(app), what="the price to be applied")


async def test_a_price_that_asks_for_an_ack_gets_the_ack_alone(tmp_path: Any) -> None:
    """SE-PRICE-3.4-ack-missing / SE-ZCL-2.5.12-redundant / SE-ZCL-tsn-echo."""
    scenario = {**QUIET, "price_changes": [
        {"at": 0.5, "price": "0.55", "issuer_event_id": 7003, "price_control": 1,
         "disable_default_response": False}]}
    async with running_appliance(tmp_path, scenario, clock=local_clock("20:00")) as app:
        await _script_ran(app)
        await app.simulator.node.wait_for("price_acknowledgement", timeout_s=10)


async def test_eleven_trailing_digits_are_a_valid_price(tmp_path: Any) -> None:
    """SE-PRICE-3.10-refused: the PriceTrailingDigit nibble runs 0-15."""
    scenario = {**QUIET, "price_changes": [
        {"at": 0.5, "price": "0.00000012345", "issuer_event_id": 7004, "disable_default_response": False}]}
    async with running_appliance(tmp_path, scenario, clock=local_clock("20:00")) as app:
        await _script_ran(app)
        await app.wait_until(lambda: 7004 in _prices(app), what="the price to be applied")


async def test_unknown_manufacturer_specific_and_malformed_frames_get_their_status(tmp_path: Any) -> None:
    """SE-ZCL-2.5.12-error-status: 0x81, 0x83 and 0x80 even with DDR = 1."""
    scenario = {**QUIET, "raw_frames": [
        {"at": 0.5, "cluster": "drlc", "hex": "19 f0 7f"},
        {"at": 0.5, "cluster": "price", "hex": "1d 34 12 f1 00 01"},
        {"at": 0.5, "cluster": "price", "hex": "19 f2 00 01 00"},
        {"at": 0.5, "cluster": "messaging", "hex": "09 f3 7e", "disable_default_response": False}]}
    async with running_appliance(tmp_path, scenario, clock=local_clock("20:00")) as app:
        await _script_ran(app)


GROUP_CONFIG = CONFIG + """
demand_response:
  enrollment_group: 5
  start_randomization_min: 0
"""


async def test_events_and_cancels_for_another_group_or_class_are_not_answered(tmp_path: Any) -> None:
    """SE-DRLC-2.12.1-not-addressed / -cancelled-without-cancel (§2.12 item 1)."""
    scenario = {**QUIET, "conformance": {"device_class_value": 0x0FFF, "utility_enrollment_group": 5},
                "events": [
                    {"at": 0.5, "id": 8001, "starts_in": "10m", "duration_min": 30, "enrollment_group": 5},
                    {"at": 0.5, "id": 8002, "starts_in": "10m", "duration_min": 30, "enrollment_group": 9},
                    {"at": 0.5, "id": 8003, "starts_in": "10m", "duration_min": 30, "device_class": 0x1000}],
                "cancellations": [{"at": 1.0, "id": 8001, "enrollment_group": 9, "disable_default_response": False}]}
    async with running_appliance(tmp_path, scenario, config_text=GROUP_CONFIG, clock=local_clock("20:00")) as app:
        await _script_ran(app)
        await app.wait_until(lambda: _statuses(app, 8001), what="event 8001 to be answered")


async def test_an_event_that_starts_now_is_received_before_it_starts(tmp_path: Any) -> None:
    """SE-DRLC-2.12-order and -time-before-cause: 0x01 first, under the event's TSN."""
    scenario = {**QUIET, "events": [{"at": 0.5, "id": 8101, "start": "now", "duration_min": 30}]}
    config = CONFIG + "demand_response: {start_randomization_min: 0, cycle_tick_s: 0.5}\n"
    async with running_appliance(tmp_path, scenario, config_text=config, clock=local_clock("20:00")) as app:
        await _script_ran(app)
        await app.wait_until(lambda: 0x02 in _statuses(app, 8101), what="the event to start")


async def test_a_cancel_of_a_superseded_event_is_rejected_as_undefined(tmp_path: Any) -> None:
    """SE-DRLC-2.12.11-cancel: 0xFD for an event the client no longer holds."""
    scenario = {**QUIET, "events": [
        {"at": 0.5, "id": 8201, "starts_in": "10m", "duration_min": 30},
        {"at": 0.8, "id": 8202, "starts_in": "10m", "duration_min": 30}],
        "cancellations": [{"at": 1.5, "id": 8201}]}
    async with running_appliance(tmp_path, scenario, clock=local_clock("20:00")) as app:
        await _script_ran(app)
        await app.wait_until(lambda: 0x07 in _statuses(app, 8201), what="event 8201 to be superseded")


async def test_a_cancel_for_a_class_the_home_does_not_have_cancels_nothing(tmp_path: Any) -> None:
    """SE-DRLC-2.12.11-cancelled-without-cancel and SE-DRLC-2.12.1-not-addressed: the home's devices
    are HVAC, a pool pump and a smart appliance (DeviceClassValue 0x0019); a water-heater event or
    cancel is not for it."""
    scenario = {**HOME_SCENARIO, "conformance": {"device_class_value": 0x0019}, "events": [
        {"at": 1.0, "id": 5301, "starts_in": "2s", "duration_min": 1, "device_class": 0x0004},
        {"at": 1.0, "id": 5302, "starts_in": "10m", "duration_min": 1, "device_class": 0x0001}],
        "cancellations": [{"at": 2.0, "id": 5302, "device_class": 0x0004, "disable_default_response": False}]}
    async with running_appliance(tmp_path, scenario, config_text=HOME_CONFIG) as app:
        await _script_ran(app)
        await app.wait_until(lambda: _statuses(app, 5302), what="event 5302 to be answered")
