"""Properties over many generated rule sets, homes and plans (hypothesis)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ems.model import Criticality, DeviceClass, DevicePreference, EventPhase
from rules import Candidate, evaluate, parse_rules, plan_shedding
from tests.rules.home import NOW, event, home, snapshot

ACTIONS = ["follow_event", "turn_off", "turn_on", "{duty_cycle_pct: 30}", "{offset_c: 2}", "{offset_c: -1}",
           "{setpoint: {cooling_c: 26}}", "{shed_to_limit_kw: 6}", "{reduce_load_pct: 25}", "{notify: 'Event {event_id}'}",
           "[turn_off, {duty_cycle_pct: 50}, follow_event]", "[{offset_c: 1}, {setpoint: {heating_c: 18}}]"]
TARGETS = ["all", "[Pool pump]", "[{kind: switch}]", "[{kind: thermostat}, EV charger]",
           "[{device_class: [hvac, water_heater]}]", "[Living room, Living room]"]
TRIGGERS = ["", "    triggers:\n      - event: active\n", "    triggers:\n      - event: announced\n",
            "    triggers:\n      - demand: {above_kw: 5}\n", "    triggers:\n      - schedule: {from: '16:00', to: '17:00'}\n"]

rule_text = st.builds(
    lambda action, targets, trigger, priority: (action, targets, trigger, priority),
    st.sampled_from(ACTIONS), st.sampled_from(TARGETS), st.sampled_from(TRIGGERS), st.integers(0, 100),
)

event_view = st.builds(
    lambda i, classes, crit, phase, adjust, duty: event(
        i, device_class=DeviceClass(classes), criticality=Criticality(crit), phase=phase,
        start=NOW - timedelta(minutes=10) if phase is EventPhase.ACTIVE else NOW + timedelta(minutes=20),
        average_load_adjustment_pct=adjust, duty_cycle_pct=duty),
    st.integers(1, 50), st.integers(1, 0x0FFF), st.integers(1, 15), st.sampled_from(list(EventPhase)),
    st.one_of(st.none(), st.integers(-100, 100)), st.one_of(st.none(), st.integers(0, 100)),
)


def ruleset_of(rules: list[tuple[str, str, str, int]]):
    text = "rules:\n"
    for i, (action, targets, trigger, priority) in enumerate(rules):
        text += f"  - name: rule {i}\n    priority: {priority}\n    targets: {targets}\n{trigger}    action: {action}\n"
    return parse_rules(text)


@settings(max_examples=150, deadline=None)
@given(st.lists(rule_text, min_size=1, max_size=8), st.lists(event_view, max_size=3, unique_by=lambda v: v.event.issuer_event_id),
       st.one_of(st.none(), st.floats(0, 30)))
def test_never_more_than_one_proposal_per_device_source_and_rule(rules, events, demand_kw):
    proposals = evaluate(ruleset_of(rules), snapshot(events=tuple(events), demand_kw=demand_kw))
    counts = Counter((p.device_id, p.source, p.rule) for p in proposals if p.device_id is not None)
    assert all(n == 1 for n in counts.values())


@settings(max_examples=150, deadline=None)
@given(st.lists(rule_text, min_size=1, max_size=8), st.lists(event_view, max_size=3, unique_by=lambda v: v.event.issuer_event_id),
       st.floats(0, 30), st.sets(st.sampled_from([d.info.device_id for d in home()])))
def test_a_device_kept_out_of_demand_response_is_never_asked_for_an_event(rules, events, demand_kw, kept_out):
    prefs = tuple(DevicePreference(device_id, takes_part=False) for device_id in kept_out)
    proposals = evaluate(ruleset_of(rules), snapshot(events=tuple(events), demand_kw=demand_kw, preferences=prefs))
    assert not [p for p in proposals if p.device_id in kept_out and p.issuer_event_id is not None]


candidate = st.builds(
    Candidate, st.text("abcdef", min_size=1, max_size=3), st.floats(0, 10), st.integers(0, 100), st.booleans(),
)


@given(st.lists(candidate, max_size=8, unique_by=lambda c: c.device_id), st.floats(0, 40))
def test_shedding_never_chooses_a_device_that_does_not_take_part(candidates, target_kw):
    plan = plan_shedding(candidates, target_kw)
    out = {c.device_id for c in candidates if not c.takes_part}
    assert not out & {s.device_id for s in plan.sheds}


@given(st.lists(candidate, max_size=8, unique_by=lambda c: c.device_id), st.floats(0, 40))
def test_shedding_meets_the_target_whenever_the_devices_that_take_part_can(candidates, target_kw):
    available = sum(c.kw for c in candidates if c.takes_part)
    plan = plan_shedding(candidates, target_kw)
    assert plan.met == (available + 1e-9 >= target_kw or target_kw <= 1e-9)


@given(st.lists(candidate, max_size=8, unique_by=lambda c: c.device_id), st.floats(0.01, 40))
def test_a_plan_that_meets_its_target_needs_every_device_in_it(candidates, target_kw):
    plan = plan_shedding(candidates, target_kw)
    if plan.met:
        assert all(plan.expected_kw - s.kw + 1e-9 < target_kw for s in plan.sheds)
