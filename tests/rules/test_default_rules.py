"""The rules shipped in config/rules.yaml load and do something sensible in the simulator's home."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from ems.model import DeviceClass, EventPhase, ProposalAction, ProposalSource
from rules import check_conflicts, evaluate, load_rules, unknown_targets
from tests.rules.home import (
    EV_CHARGER,
    LIVING_ROOM,
    NAMES,
    NOW,
    POOL_PUMP,
    SPA_HEATER,
    WATER_HEATER,
    event,
    home,
    snapshot,
)

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "config" / "rules.yaml"


def defaults():
    return load_rules(DEFAULT_RULES, known_devices=NAMES)


def by_device(proposals) -> dict:
    return {p.device_id: p for p in proposals if p.device_id is not None}


def test_the_default_rules_load_for_the_simulators_home():
    ruleset = defaults()
    assert len(ruleset.rules) >= 4 and unknown_targets(ruleset, home()) == []


def test_the_default_rules_do_not_conflict():
    assert check_conflicts(defaults()) == []


def test_the_default_comfort_limits_are_the_customers():
    prefs = {p.device_id: p for p in defaults().preferences}
    assert prefs["Living room"].comfort.max_offset_c == 3
    assert prefs["Water heater"].comfort.max_off_min == 120
    assert prefs["Pool pump"].comfort.min_on_min == 15


def test_a_summer_event_is_followed():
    ev = event(device_class=DeviceClass.HVAC | DeviceClass.POOL_PUMP | DeviceClass.SMART_APPLIANCE,
               cooling_offset_c=2.0)
    proposals = evaluate(defaults(), snapshot(at=NOW - timedelta(hours=3), events=(ev,), demand_kw=8.0))
    devices = by_device(proposals)
    assert devices[LIVING_ROOM].action is ProposalAction.OFFSET and devices[LIVING_ROOM].value == 2.0
    assert devices[POOL_PUMP].action is ProposalAction.OFF
    assert devices[SPA_HEATER].action is ProposalAction.RELAY_EVENT
    assert all(p.source is ProposalSource.EVENT for p in devices.values())
    # The EMS announces events itself (ems.dr.component, in the reader's language): no rule repeats it.
    assert [p for p in proposals if p.action is ProposalAction.NOTIFY] == []


def test_the_living_room_is_pre_cooled_in_the_half_hour_before_a_summer_event():
    at = NOW - timedelta(hours=3)  # 13:30, before the peak window
    soon = event(phase=EventPhase.SCHEDULED, start=at + timedelta(minutes=25))
    (p,) = by_device(evaluate(defaults(), snapshot(at=at, events=(soon,)))).values()
    assert (p.device_id, p.action, p.value) == (LIVING_ROOM, ProposalAction.OFFSET, -1.0)


def test_there_is_no_pre_cooling_in_winter():
    winter = NOW - timedelta(days=180)
    soon = event(phase=EventPhase.SCHEDULED, start=winter + timedelta(minutes=25))
    assert evaluate(defaults(), snapshot(at=winter, events=(soon,))) == []


def test_demand_is_kept_under_10_kw_on_peak_by_shedding_the_ev_charger_first():
    proposals = by_device(evaluate(defaults(), snapshot(demand_kw=16.0)))  # 16:30 on a weekday
    assert set(proposals) == {EV_CHARGER} and proposals[EV_CHARGER].action is ProposalAction.OFF


def test_then_the_pool_pump_and_then_the_water_heater():
    assert set(by_device(evaluate(defaults(), snapshot(demand_kw=18.0)))) == {EV_CHARGER, POOL_PUMP}
    assert set(by_device(evaluate(defaults(), snapshot(demand_kw=21.0)))) == {EV_CHARGER, WATER_HEATER}


def test_nothing_is_shed_off_peak():
    assert evaluate(defaults(), snapshot(at=NOW - timedelta(hours=8), demand_kw=16.0)) == []


def test_the_customer_hears_when_the_house_draws_over_15_kw_for_10_minutes():
    at = NOW - timedelta(hours=3)
    history = tuple((at - timedelta(minutes=m), 16.0) for m in range(11, -1, -1))
    (p,) = evaluate(defaults(), snapshot(at=at, demand_kw=16.0, demand_history=history))
    assert p.action is ProposalAction.NOTIFY and "15 kW" in p.text
