"""Rules that may fight over a device are found, and the warning says which one wins."""

from __future__ import annotations

from rules import check_conflicts, parse_rules


def conflicts(rules: str) -> list[str]:
    return check_conflicts(parse_rules("rules:\n" + rules))


def rule(name: str, action: str, targets: str = "[Pool pump]", priority: int = 50, extra: str = "") -> str:
    return f"  - name: {name}\n    priority: {priority}\n    targets: {targets}\n{extra}    action: {action}\n"


def test_on_against_off_for_one_device_is_a_conflict_won_by_the_higher_priority():
    (warning,) = conflicts(rule("Pump off", "turn_off", priority=60) + rule("Pump on", "turn_on", priority=40))
    assert warning == ("Rules 'Pump off' (line 2) and 'Pump on' (line 6) can hold at the same time and ask "
                       "different things of Pool pump: turn off against turn on. 'Pump off' wins (priority 60 > 40).")


def test_equal_priorities_are_won_by_the_rule_written_first():
    (warning,) = conflicts(rule("A", "turn_off") + rule("B", "turn_on"))
    assert warning.endswith("'A' wins (same priority; the rule written first wins).")


def test_two_different_setpoints_are_a_conflict():
    setpoint = "{{setpoint: {{cooling_c: {}}}}}"
    assert conflicts(rule("A", setpoint.format(25), "[Living room]") + rule("B", setpoint.format(27), "[Living room]"))


def test_the_same_setpoint_twice_is_no_conflict():
    setpoint = "{setpoint: {cooling_c: 25}}"
    assert conflicts(rule("A", setpoint, "[Living room]") + rule("B", setpoint, "[Living room]")) == []


def test_rules_for_different_devices_do_not_conflict():
    assert conflicts(rule("A", "turn_off", "[Pool pump]") + rule("B", "turn_on", "[EV charger]")) == []


def test_a_kind_target_may_share_a_device_with_a_name():
    assert conflicts(rule("A", "turn_off", "[{kind: switch}]") + rule("B", "turn_on", "[Pool pump]"))


def test_rules_in_disjoint_time_windows_do_not_conflict():
    morning = "    conditions:\n      - time: {from: '06:00', to: '09:00'}\n"
    evening = "    triggers:\n      - schedule: {from: '17:00', to: '21:00'}\n"
    assert conflicts(rule("A", "turn_off", extra=morning) + rule("B", "turn_on", extra=evening)) == []


def test_rules_in_overlapping_windows_across_midnight_conflict():
    night = "    conditions:\n      - time: {from: '22:00', to: '06:00'}\n"
    early = "    conditions:\n      - time: {from: '05:00', to: '07:00'}\n"
    assert conflicts(rule("A", "turn_off", extra=night) + rule("B", "turn_on", extra=early))


def test_rules_in_different_seasons_do_not_conflict():
    summer, winter = ("    conditions:\n      - season: summer\n", "    conditions:\n      - season: winter\n")
    assert conflicts(rule("A", "turn_off", extra=summer) + rule("B", "turn_on", extra=winter)) == []


def test_an_announced_and_an_active_event_rule_do_not_conflict():
    announced = "    triggers:\n      - event: announced\n"
    active = "    triggers:\n      - event: active\n"
    assert conflicts(rule("A", "{offset_c: -1}", "[Living room]", extra=announced)
                     + rule("B", "{offset_c: 2}", "[Living room]", extra=active)) == []


def test_a_followed_event_wins_over_a_rule_whatever_its_priority():
    (warning,) = conflicts(rule("Keep pump on", "turn_on", priority=900) + rule("Follow", "follow_event", "all", 10))
    assert warning.endswith("'Follow' wins (the utility's event comes before the customer's rules).")


def test_disabled_rules_do_not_conflict():
    disabled = rule("B", "turn_on").replace("    action", "    enabled: false\n    action")
    assert conflicts(rule("A", "turn_off") + disabled) == []
