"""The rules file: what it accepts, and how it says what is wrong (file, line, key path, found)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ems.errors import ConfigError
from ems.model import DeviceClass
from rules import load_rules, parse_rules
from rules.ruleset import (
    DaysCondition,
    EventTrigger,
    FollowEventAction,
    NotifyAction,
    OffsetAction,
    Phase,
    ScheduleTrigger,
    SwitchAction,
    TargetBy,
    TimeWindow,
)
from tests.rules.home import NAMES


def problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, "rules.yaml", **kwargs)  # type: ignore[arg-type]
    return caught.value.problems


def test_an_empty_file_means_no_rules():
    ruleset = parse_rules("")
    assert ruleset.rules == () and ruleset.preferences == ()


def test_a_rule_with_triggers_targets_and_an_action_is_read_into_values():
    ruleset = parse_rules(
        "rules:\n"
        "  - name: Pre-cool\n"
        "    priority: 70\n"
        "    triggers:\n"
        "      - event: {phase: announced, within_min: 30, device_class: [hvac]}\n"
        "    targets: [Living room]\n"
        "    action: {offset_c: -1}\n"
    )
    (rule,) = ruleset.rules
    assert rule.name == "Pre-cool" and rule.priority == 70 and rule.line == 2
    (trigger,) = rule.triggers
    assert isinstance(trigger, EventTrigger)
    assert trigger.phase is Phase.ANNOUNCED and trigger.within_min == 30
    assert trigger.filter.device_class == DeviceClass.HVAC
    assert rule.targets is not None and rule.targets[0].by is TargetBy.NAME
    assert rule.actions == (OffsetAction(-1.0),)


def test_an_unknown_key_names_its_line_and_key_path():
    (problem,) = problems("rules:\n  - name: A\n    action: turn_off\n    targets: all\n    priorty: 3\n")
    assert problem.startswith("rules.yaml:5: rules.0.priorty: unknown key")


def test_a_bad_value_names_what_was_found():
    (problem,) = problems("rules:\n  - name: A\n    targets: all\n    action:\n      duty_cycle_pct: 150\n")
    assert problem.startswith("rules.yaml:5: rules.0.action.duty_cycle_pct:")
    assert "(found 150)" in problem


def test_every_broken_rule_is_reported_at_once():
    found = problems(
        "rules:\n"
        "  - name: A\n    action: {shed_to_limit_kw: -1}\n"
        "  - name: B\n    action: {notify: 'Event {evnt_id}'}\n"
    )
    assert [p.split(": ")[0] for p in found] == ["rules.yaml:3", "rules.yaml:5"]
    assert "unknown placeholder {evnt_id}" in found[1]


def test_an_unknown_device_class_is_an_error_that_lists_the_known_ones():
    (problem,) = problems("rules:\n  - name: A\n    targets:\n      - device_class: jacuzzi\n    action: turn_off\n")
    assert problem.startswith("rules.yaml:4: rules.0.targets.0.device_class: unknown device class")
    assert "pool_pump" in problem


def test_an_unknown_device_name_is_an_error_when_the_home_is_known():
    text = "rules:\n  - name: A\n    targets: [Pool pump, Pol pump]\n    action: turn_off\n"
    (problem,) = problems(text, known_devices=NAMES)
    assert problem.startswith("rules.yaml:3: rules.0.targets.1: no device named 'Pol pump'")


def test_an_unknown_device_name_is_accepted_when_the_home_is_not_known():
    ruleset = parse_rules("rules:\n  - name: A\n    targets: [Pol pump]\n    action: turn_off\n")
    assert ruleset.rules[0].targets is not None


def test_device_names_match_whatever_their_case():
    parse_rules("rules:\n  - name: A\n    targets: [pool PUMP]\n    action: turn_off\n", known_devices=NAMES)


def test_two_rules_may_not_share_a_name():
    text = "rules:\n  - name: A\n    action: follow_event\n  - name: a\n    action: follow_event\n"
    (problem,) = problems(text)
    assert problem.startswith("rules.yaml:4: rules.1.name: another rule (rules.0) has this name")


def test_a_switch_action_without_targets_is_an_error():
    (problem,) = problems("rules:\n  - name: A\n    action: turn_off\n")
    assert problem.startswith("rules.yaml:2: rules.0: this action needs targets")


def test_bare_on_and_off_mean_turn_on_and_turn_off():
    ruleset = parse_rules("rules:\n  - name: A\n    targets: all\n    action: off\n"
                          "  - name: B\n    targets: all\n    action: on\n")
    assert [r.actions for r in ruleset.rules] == [(SwitchAction(False),), (SwitchAction(True),)]


def test_unquoted_times_read_as_the_same_time_of_day():
    ruleset = parse_rules("rules:\n  - name: A\n    triggers:\n      - schedule: {from: 16:30, to: '21:00', days: weekdays}\n"
                          "    action: follow_event\n")
    (trigger,) = ruleset.rules[0].triggers
    assert trigger == ScheduleTrigger(TimeWindow(16 * 60 + 30, 21 * 60), DaysCondition(frozenset(range(5))).days)


def test_a_bad_time_is_an_error():
    found = problems("rules:\n  - name: A\n    conditions:\n      - time: {from: '25:00', to: '18:00'}\n"
                     "    action: follow_event\n")
    assert found == ["rules.yaml:4: rules.0.conditions.0.time.from: expected a time from '00:00' to '24:00' "
                     "(found '25:00')"]


def test_within_min_belongs_to_the_announced_phase_only():
    (problem,) = problems("rules:\n  - name: A\n    triggers:\n      - event: {phase: active, within_min: 5}\n"
                          "    action: follow_event\n")
    assert "rules.0.triggers.0.event.within_min: within_min applies only to phase 'announced'" in problem


def test_a_rule_may_have_several_actions():
    ruleset = parse_rules("rules:\n  - name: A\n    action: [follow_event, {notify: 'Event {event_id}'}]\n")
    assert ruleset.rules[0].actions == (FollowEventAction(), NotifyAction("Event {event_id}"))


def test_device_settings_become_preferences_with_comfort_limits():
    ruleset = parse_rules("devices:\n  Living room:\n    shed_priority: 90\n    max_offset_c: 3\n"
                          "  Home battery:\n    takes_part: false\n")
    room, battery = ruleset.preferences
    assert room.device_id == "Living room" and room.shed_priority == 90 and room.comfort.max_offset_c == 3
    assert battery.takes_part is False


def test_a_comfort_limit_out_of_range_is_an_error():
    (problem,) = problems("devices:\n  Living room:\n    max_offset_c: 12\n")
    assert problem.startswith("rules.yaml:3: devices.Living room.max_offset_c:")


def test_device_settings_for_an_unknown_device_are_an_error_when_the_home_is_known():
    (problem,) = problems("devices:\n  Garage heater:\n    shed_priority: 5\n", known_devices=NAMES)
    assert problem.startswith("rules.yaml:2: devices.Garage heater: no device named 'Garage heater'")


def test_an_unknown_section_is_an_error():
    (problem,) = problems("rulez: []\n")
    assert problem.startswith("rules.yaml:1: rulez: unknown section")


def test_yaml_that_does_not_parse_names_its_line():
    (problem,) = problems("rules:\n  - name: [A\n")
    assert problem.startswith("rules.yaml:3: not valid YAML")


def test_summer_months_are_configurable():
    assert parse_rules("seasons:\n  summer_months: [6, 7, 8]\n").summer_months == frozenset({6, 7, 8})


def test_load_rules_reports_the_file_it_read(tmp_path: Path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: A\n    action: {reduce_load_pct: 200}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_rules(path)
    assert caught.value.problems[0].startswith(f"{path}:3: rules.0.action.reduce_load_pct:")


def test_a_name_yaml_reads_as_a_boolean_asks_for_quotes():
    (problem,) = problems("rules:\n  - name: Off\n    action: follow_event\n")
    assert problem == "rules.yaml:2: rules.0.name: expected a name (quote it if YAML reads it as yes/no/on/off or a number) (found False)"
