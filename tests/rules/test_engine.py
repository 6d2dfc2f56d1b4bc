"""What the rules propose: each action, following the utility's events, and the reasons given."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from ems.model import (
    DeviceClass,
    DevicePreference,
    EventPhase,
    ProposalAction,
    ProposalSource,
    Trigger,
    TriggerKind,
)
from rules import evaluate, parse_rules, unknown_targets
from tests.rules.home import (
    EV_CHARGER,
    LIVING_ROOM,
    METER,
    NOW,
    POOL_PUMP,
    SPA_HEATER,
    WATER_HEATER,
    event,
    home,
    snapshot,
    with_reading,
)


def rules(action: str, targets: str = "", extra: str = "", devices: str = "") -> object:
    text = (f"devices:\n{devices}" if devices else "") + "rules:\n  - name: R\n    priority: 60\n"
    if targets:
        text += f"    targets: {targets}\n"
    return parse_rules(text + extra + f"    action: {action}\n")


def by_device(proposals) -> dict:
    return {p.device_id: p for p in proposals}


# --- Device actions ---------------------------------------------------------------------


def test_a_setpoint_action_sets_the_thermostats_it_targets():
    (p,) = evaluate(rules("{setpoint: {cooling_c: 26}}", "[{kind: thermostat}]"), snapshot())
    assert (p.device_id, p.action, p.cooling_setpoint_c, p.heating_setpoint_c) == (
        LIVING_ROOM, ProposalAction.SETPOINTS, 26.0, None)
    assert p.source is ProposalSource.RULE and p.rule == "R" and p.priority == 60
    assert str(p.reason) == "Rule 'R': cooling 26.0 °C"


def test_an_offset_action_moves_thermostats_from_comfort():
    (p,) = evaluate(rules("{offset_c: 2}", "all"), snapshot())
    assert (p.device_id, p.action, p.value) == (LIVING_ROOM, ProposalAction.OFFSET, 2.0)
    assert p.expected_kw_reduction > 0


def test_turn_off_applies_to_switches_and_load_controllers_only():
    proposals = evaluate(rules("turn_off", "all"), snapshot())
    assert set(by_device(proposals)) == {POOL_PUMP, WATER_HEATER, EV_CHARGER, SPA_HEATER}
    assert by_device(proposals)[EV_CHARGER].expected_kw_reduction == 7.2


def test_turn_on_proposes_on_and_saves_nothing():
    (p,) = evaluate(rules("turn_on", "[Pool pump]"), snapshot())
    assert (p.action, p.expected_kw_reduction) == (ProposalAction.ON, 0.0)


def test_a_duty_cycle_saves_the_share_of_time_off():
    (p,) = evaluate(rules("{duty_cycle_pct: 25}", "[Water heater]"), snapshot())
    assert (p.action, p.value) == (ProposalAction.DUTY_CYCLE, 25.0)
    assert p.expected_kw_reduction == pytest.approx(4.5 * 0.75)


def test_targets_by_device_class_pick_matching_devices():
    proposals = evaluate(rules("turn_off", "[{device_class: [pool_pump, electric_vehicle]}]"), snapshot())
    assert set(by_device(proposals)) == {POOL_PUMP, EV_CHARGER}


def test_targets_by_device_id_work_like_names():
    (p,) = evaluate(rules("turn_off", f"['{POOL_PUMP}']"), snapshot())
    assert p.device_id == POOL_PUMP


def test_an_unknown_target_is_ignored_and_reported():
    ruleset = rules("turn_off", "[Pool pump, Garage heater]")
    assert set(by_device(evaluate(ruleset, snapshot()))) == {POOL_PUMP}
    assert unknown_targets(ruleset, home()) == ["rule 'R': no device named 'Garage heater' (ignored until one joins)"]


def test_a_schedule_reason_says_until_when():
    ruleset = rules("turn_off", "[Pool pump]", "    triggers:\n      - schedule: {from: '16:00', to: '21:00'}\n")
    (p,) = evaluate(ruleset, snapshot())
    assert str(p.reason) == "Rule 'R': off until 21:00"


# --- Shedding ---------------------------------------------------------------------------

SHED_ORDER = "  EV charger: {shed_priority: 10}\n  Pool pump: {shed_priority: 20}\n  Water heater: {shed_priority: 30}\n"


def test_shed_to_limit_turns_off_in_the_customers_order_until_under_the_limit():
    ruleset = rules("{shed_to_limit_kw: 10}", "[EV charger, Pool pump, Water heater]", devices=SHED_ORDER)
    proposals = evaluate(ruleset, snapshot(demand_kw=18.0))  # 8 kW to shed: EV (7.2) and pool pump (1.5)
    assert set(by_device(proposals)) == {EV_CHARGER, POOL_PUMP}
    assert all(p.action is ProposalAction.OFF for p in proposals)
    assert "sheds about 8.7 kW of the 8.0 kW needed" in str(proposals[0].reason)


def test_shed_to_limit_does_nothing_under_the_limit():
    ruleset = rules("{shed_to_limit_kw: 10}", "all", devices=SHED_ORDER)
    assert evaluate(ruleset, snapshot(demand_kw=9.0)) == []


def test_shed_to_limit_does_nothing_without_a_demand_reading():
    assert evaluate(rules("{shed_to_limit_kw: 10}", "all"), snapshot()) == []


def test_shed_to_limit_reports_a_shortfall():
    ruleset = rules("{shed_to_limit_kw: 2}", "[Pool pump]")
    (p,) = evaluate(ruleset, snapshot(demand_kw=10.0))
    assert "can shed only 1.5 kW of the 8.0 kW needed (6.5 kW short)" in str(p.reason)


def test_a_device_the_ems_holds_off_stays_shed_although_demand_fell():
    ruleset = rules("{shed_to_limit_kw: 10}", "[EV charger, Pool pump, Water heater]", devices=SHED_ORDER)
    held = tuple(replace(with_reading(d, power_kw=0.0, on=False), controlled_since=NOW - timedelta(minutes=5))
                 if d.info.device_id == EV_CHARGER else d for d in home())
    # With the EV charger off, demand reads 10.8 kW; it would be 18 kW with it on.
    proposals = evaluate(ruleset, snapshot(devices=held, demand_kw=10.8))
    assert set(by_device(proposals)) == {EV_CHARGER, POOL_PUMP}


def test_reduce_load_pct_sheds_a_share_of_present_demand():
    ruleset = rules("{reduce_load_pct: 10}", "all", devices=SHED_ORDER)
    (p,) = evaluate(ruleset, snapshot(demand_kw=12.0))  # 1.2 kW: the EV charger alone
    assert p.device_id == EV_CHARGER


def test_shedding_leaves_out_devices_kept_out_of_demand_response():
    ruleset = rules("{reduce_load_pct: 10}", "all", devices=SHED_ORDER + "  Spa heater: {shed_priority: 5}\n")
    prefs = (DevicePreference(EV_CHARGER, 10, takes_part=False),)
    proposals = evaluate(ruleset, snapshot(demand_kw=12.0, preferences=prefs))
    assert set(by_device(proposals)) == {SPA_HEATER}


def test_a_thermostat_sheds_by_an_offset():
    ruleset = rules("{reduce_load_pct: 5}", "[Living room]")
    (p,) = evaluate(ruleset, snapshot(demand_kw=10.0))  # 0.5 kW: one °C of a typical system
    assert (p.action, p.value) == (ProposalAction.OFFSET, 1.0)


# --- Following events -------------------------------------------------------------------

FOLLOW = "    triggers:\n      - event: active\n"


def follow(*events, **kwargs):
    return by_device(evaluate(rules("follow_event", extra=FOLLOW), snapshot(events=events, **kwargs)))


def test_follow_event_tags_proposals_with_the_event_and_its_source():
    p = follow(event(cooling_offset_c=2.0))[LIVING_ROOM]
    assert (p.source, p.meter_id, p.issuer_event_id, p.rule) == (ProposalSource.EVENT, METER, 1234, "R")
    assert str(p.reason) == "Event 1234 (urgency 3 of 5, until 18:20): 2.0 °C warmer than comfort — rule 'R'"


def test_follow_event_gives_thermostats_the_events_setpoints():
    p = follow(event(cooling_setpoint_c=27.0, heating_setpoint_c=18.0))[LIVING_ROOM]
    assert (p.action, p.cooling_setpoint_c, p.heating_setpoint_c) == (ProposalAction.SETPOINTS, 27.0, 18.0)


def test_follow_event_gives_thermostats_the_offset_for_their_mode():
    heating = tuple(with_reading(d, system_mode="heat") if d.info.device_id == LIVING_ROOM else d for d in home())
    p = follow(event(cooling_offset_c=2.0, heating_offset_c=1.5), devices=heating)[LIVING_ROOM]
    assert (p.action, p.value) == (ProposalAction.OFFSET, 1.5)


def test_follow_event_duty_cycles_switches():
    p = follow(event(duty_cycle_pct=40))[POOL_PUMP]
    assert (p.action, p.value) == (ProposalAction.DUTY_CYCLE, 40.0)


def test_follow_event_turns_off_switches_when_the_event_asks_nothing_more():
    assert follow(event())[WATER_HEATER].action is ProposalAction.OFF


def test_follow_event_relays_the_event_to_load_controllers():
    p = follow(event(device_class=DeviceClass.SMART_APPLIANCE))[SPA_HEATER]
    assert p.action is ProposalAction.RELAY_EVENT and p.issuer_event_id == 1234


def test_follow_event_addresses_only_devices_of_the_events_classes():
    assert set(follow(event(device_class=DeviceClass.POOL_PUMP))) == {POOL_PUMP}


def test_an_event_for_a_device_class_the_home_lacks_proposes_nothing():
    assert follow(event(device_class=DeviceClass.IRRIGATION_PUMP)) == {}


def test_follow_event_matches_the_enrollment_group():
    grouped = tuple(replace(d, info=replace(d.info, enrollment_group=3)) for d in home())
    assert follow(event(group=4), devices=grouped) == {}
    assert set(follow(event(group=3), devices=grouped)) == {LIVING_ROOM, POOL_PUMP, WATER_HEATER}
    assert set(follow(event(group=0), devices=grouped)) == {LIVING_ROOM, POOL_PUMP, WATER_HEATER}


def test_follow_event_leaves_a_device_the_customer_took_out_of_the_event():
    assert set(follow(event(excluded=frozenset({POOL_PUMP})))) == {LIVING_ROOM, WATER_HEATER}


def test_follow_event_does_nothing_for_an_event_the_customer_opted_out_of():
    assert follow(event(opted_out=True)) == {}


def test_follow_event_does_nothing_before_the_event_starts():
    assert follow(event(phase=EventPhase.SCHEDULED, start=NOW + timedelta(hours=1))) == {}


def test_follow_event_leaves_devices_kept_out_of_demand_response():
    prefs = (DevicePreference(WATER_HEATER, takes_part=False),)
    assert WATER_HEATER not in follow(event(), preferences=prefs)


def test_follow_event_meets_a_load_adjustment_with_the_least_discomfort():
    ruleset = parse_rules("devices:\n  Pool pump: {shed_priority: 10}\n  Water heater: {shed_priority: 20}\n"
                          "rules:\n  - name: R\n    action: follow_event\n")
    ev = event(average_load_adjustment_pct=-10)  # 10 % of 12 kW: 1.2 kW, the pool pump is enough
    proposals = by_device(evaluate(ruleset, snapshot(events=(ev,), demand_kw=12.0)))
    assert set(proposals) == {POOL_PUMP}
    assert proposals[POOL_PUMP].expected_kw_reduction == 1.5
    assert "sheds about 1.5 kW of the 1.2 kW needed" in str(proposals[POOL_PUMP].reason)


def test_follow_event_counts_a_relayed_load_controller_toward_the_load_adjustment():
    ev = event(device_class=DeviceClass.SMART_APPLIANCE | DeviceClass.POOL_PUMP, average_load_adjustment_pct=-20)
    proposals = follow(ev, demand_kw=8.0)  # 1.6 kW wanted; the spa heater takes 20 % of 2 kW itself
    assert proposals[SPA_HEATER].expected_kw_reduction == pytest.approx(0.4)
    assert proposals[POOL_PUMP].action is ProposalAction.OFF


def test_follow_event_follows_the_most_critical_of_two_events():
    mild = event(1, device_class=DeviceClass.POOL_PUMP, duty_cycle_pct=80)
    severe = event(2, device_class=DeviceClass.POOL_PUMP, duty_cycle_pct=20, criticality=5)
    p = follow(mild, severe)[POOL_PUMP]
    assert (p.issuer_event_id, p.value) == (2, 20.0)


def test_a_pre_cool_rule_tags_its_proposal_with_the_announced_event():
    ruleset = rules("{offset_c: -1}", "[Living room]", "    triggers:\n      - event: {phase: announced}\n")
    ev = event(phase=EventPhase.SCHEDULED, start=NOW + timedelta(minutes=30))
    (p,) = evaluate(ruleset, snapshot(events=(ev,)))
    assert (p.source, p.issuer_event_id) == (ProposalSource.RULE, 1234)
    assert str(p.reason) == "Rule 'R': 1.0 °C cooler than usual until event 1234 starts at 17:00"


# --- Notifications ----------------------------------------------------------------------


def test_a_notification_fills_in_the_event():
    ruleset = rules("{notify: 'Event {event_id} ({criticality}) {start}–{end}, {duration_min} min'}",
                    extra="    triggers:\n      - event: ended\n")
    snap = snapshot(events=(event(phase=EventPhase.ENDED),), trigger=Trigger(TriggerKind.EVENT_ENDED, METER, 1234))
    (p,) = evaluate(ruleset, snap)
    assert (p.device_id, p.action, p.issuer_event_id) == (None, ProposalAction.NOTIFY, 1234)
    assert p.text == "Event 1234 (level 3) 16:20–18:20, 120 min"


def test_a_notification_without_an_event_leaves_its_placeholders_blank():
    (p,) = evaluate(rules("{notify: 'Rule {rule}: event {event_id}'}"), snapshot())
    assert p.text == "Rule R: event —"


def test_a_rule_with_two_actions_for_one_device_proposes_once_for_it():
    ruleset = rules("[turn_off, {duty_cycle_pct: 50}]", "[Pool pump]")
    (p,) = evaluate(ruleset, snapshot())
    assert p.action is ProposalAction.OFF


def test_rules_sharing_targets_each_leave_out_only_what_their_own_event_excludes():
    # The engine works out a target list's devices once per evaluation and event: a rule tied to
    # the event leaves out the device taken out of it; the same targets without an event do not.
    ruleset = parse_rules(
        "rules:\n"
        "  - {name: During, triggers: [{event: active}], targets: all, action: turn_off}\n"
        "  - {name: Always, targets: all, action: turn_off}\n"
        "  - {name: Again, triggers: [{event: active}], targets: all, action: turn_off}\n"
    )
    proposals = evaluate(ruleset, snapshot(events=(event(excluded=frozenset({POOL_PUMP})),)))
    held = {name: {p.device_id for p in proposals if p.rule == name} for name in ("During", "Always", "Again")}
    assert held["During"] == held["Again"] == {WATER_HEATER, EV_CHARGER, SPA_HEATER}
    assert held["Always"] == {POOL_PUMP, WATER_HEATER, EV_CHARGER, SPA_HEATER}


def test_a_device_the_rules_file_says_nothing_of_takes_part_in_shedding():
    # Devices without settings get the default preference (made once per evaluation).
    ruleset = rules("{shed_to_limit_kw: 10}", "[{kind: switch}]")
    proposals = evaluate(ruleset, snapshot(demand_kw=14.0))
    assert {p.device_id for p in proposals} == {EV_CHARGER}


def test_a_rule_holds_off_a_new_demand_peak_by_turning_the_ev_charger_off():
    # 12 kW since before the 16:30 window began; ten minutes in, the window would average 12 kW.
    ruleset = rules("turn_off", "[EV charger]", "    conditions:\n      - demand_window: {above_peak: true}\n")
    steady = {"at": NOW + timedelta(minutes=10), "demand_kw": 12.0, "demand_window_min": 15,
              "demand_history": ((NOW - timedelta(minutes=2), 12.0),)}
    (p,) = evaluate(ruleset, snapshot(demand_peak_kw=10.5, **steady))  # it would raise the bill's 10.5 kW peak
    assert (p.device_id, p.action) == (EV_CHARGER, ProposalAction.OFF)
    assert evaluate(ruleset, snapshot(demand_peak_kw=12.5, **steady)) == []  # under this cycle's peak: no need
