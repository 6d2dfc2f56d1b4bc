"""When a rule holds: each kind of trigger (any one) and condition (all of them)."""

from __future__ import annotations

from datetime import timedelta

from ems.model import Criticality, DeviceClass, EventPhase, Trigger, TriggerKind
from rules import evaluate, parse_rules
from tests.rules.home import LIVING_ROOM, METER, NOW, event, home, snapshot, with_reading


def holds(section: str, item: str, snap) -> bool:
    """Whether a one-trigger (or one-condition) rule that notifies holds on ``snap``."""
    ruleset = parse_rules(f"rules:\n  - name: R\n    {section}:\n      - {item}\n    action: {{notify: hi}}\n")
    return bool(evaluate(ruleset, snap))


def trigger(item: str, snap) -> bool:
    return holds("triggers", item, snap)


def condition(item: str, snap) -> bool:
    return holds("conditions", item, snap)


def test_a_rule_without_triggers_or_conditions_always_holds():
    ruleset = parse_rules("rules:\n  - name: R\n    action: {notify: hi}\n")
    assert len(evaluate(ruleset, snapshot())) == 1


def test_a_disabled_rule_never_holds():
    ruleset = parse_rules("rules:\n  - name: R\n    enabled: false\n    action: {notify: hi}\n")
    assert evaluate(ruleset, snapshot()) == []


def test_a_rule_holds_when_any_trigger_holds():
    ruleset = parse_rules("rules:\n  - name: R\n    triggers:\n      - price_tier: {at_least: 4}\n"
                          "      - price: {at_least_per_kwh: 0.30}\n    action: {notify: hi}\n")
    assert evaluate(ruleset, snapshot(price_per_kwh=0.31, price_tier=2))
    assert not evaluate(ruleset, snapshot(price_per_kwh=0.29, price_tier=2))


def test_a_rule_holds_only_when_every_condition_holds():
    ruleset = parse_rules("rules:\n  - name: R\n    conditions:\n      - season: summer\n      - days: weekend\n"
                          "    action: {notify: hi}\n")
    assert not evaluate(ruleset, snapshot())  # a summer Wednesday
    assert evaluate(ruleset, snapshot(at=NOW + timedelta(days=3)))  # the Saturday after


# --- Event triggers ---------------------------------------------------------------------


def test_an_active_event_trigger_holds_while_an_event_is_active():
    assert trigger("event: active", snapshot(events=(event(),)))
    assert not trigger("event: active", snapshot(events=(event(phase=EventPhase.SCHEDULED),)))


def test_an_announced_event_trigger_holds_while_the_event_is_scheduled():
    scheduled = event(phase=EventPhase.SCHEDULED, start=NOW + timedelta(hours=2))
    assert trigger("event: announced", snapshot(events=(scheduled,)))


def test_an_announced_event_trigger_may_wait_until_shortly_before_the_start():
    item = "event: {phase: announced, within_min: 30}"
    soon = event(phase=EventPhase.SCHEDULED, start=NOW + timedelta(minutes=20))
    later = event(phase=EventPhase.SCHEDULED, start=NOW + timedelta(minutes=45))
    assert trigger(item, snapshot(events=(soon,)))
    assert not trigger(item, snapshot(events=(later,)))


def test_an_ended_event_trigger_holds_only_in_the_cycle_the_event_ended():
    ended = event(phase=EventPhase.ENDED)
    assert trigger("event: ended", snapshot(events=(ended,), trigger=Trigger(TriggerKind.EVENT_ENDED, METER, 1234)))
    assert not trigger("event: ended", snapshot(events=(ended,)))
    assert not trigger("event: ended", snapshot(events=(ended,), trigger=Trigger(TriggerKind.EVENT_ENDED, METER, 99)))


def test_an_event_trigger_filters_by_criticality():
    item = "event: {phase: active, min_criticality: 4, max_criticality: emergency}"
    assert not trigger(item, snapshot(events=(event(criticality=Criticality.LEVEL_2),)))
    assert trigger(item, snapshot(events=(event(criticality=Criticality.LEVEL_4),)))
    assert not trigger(item, snapshot(events=(event(criticality=Criticality.PLANNED_OUTAGE),)))


def test_an_event_trigger_filters_by_device_class():
    item = "event: {phase: active, device_class: [electric_vehicle]}"
    assert not trigger(item, snapshot(events=(event(device_class=DeviceClass.HVAC),)))
    assert trigger(item, snapshot(events=(event(device_class=DeviceClass.ELECTRIC_VEHICLE),)))


def test_an_event_trigger_filters_by_enrollment_group_and_group_0_addresses_all():
    item = "event: {phase: active, enrollment_group: 3}"
    assert trigger(item, snapshot(events=(event(group=3),)))
    assert trigger(item, snapshot(events=(event(group=0),)))
    assert not trigger(item, snapshot(events=(event(group=4),)))


def test_an_event_the_customer_opted_out_of_does_not_trigger():
    assert not trigger("event: active", snapshot(events=(event(opted_out=True),)))


# --- Other triggers ---------------------------------------------------------------------


def test_a_price_trigger_holds_at_or_above_the_price():
    assert trigger("price: {at_least_per_kwh: 0.30}", snapshot(price_per_kwh=0.30))
    assert not trigger("price: {at_least_per_kwh: 0.30}", snapshot(price_per_kwh=0.29))
    assert not trigger("price: {at_least_per_kwh: 0.30}", snapshot())


def test_a_tier_trigger_holds_at_or_above_the_tier():
    assert trigger("price_tier: {at_least: 3}", snapshot(price_tier=3))
    assert not trigger("price_tier: {at_least: 3}", snapshot(price_tier=2))


def history(*points: tuple[int, float]):
    """(minutes ago, kW) pairs, oldest first."""
    return tuple((NOW - timedelta(minutes=m), kw) for m, kw in points)


def test_a_demand_trigger_holds_when_demand_stayed_above_the_level_long_enough():
    item = "demand: {above_kw: 8, for_min: 10}"
    assert trigger(item, snapshot(demand_kw=9.0, demand_history=history((15, 9.5), (8, 8.5), (2, 9.0))))


def test_a_demand_trigger_does_not_hold_after_a_dip_within_the_window():
    item = "demand: {above_kw: 8, for_min: 10}"
    assert not trigger(item, snapshot(demand_kw=9.0, demand_history=history((15, 9.5), (5, 7.0), (2, 9.0))))


def test_a_demand_trigger_does_not_hold_without_enough_history():
    item = "demand: {above_kw: 8, for_min: 10}"
    assert not trigger(item, snapshot(demand_kw=9.0, demand_history=history((4, 9.5), (2, 9.0))))


def test_a_demand_trigger_without_minutes_looks_at_present_demand():
    assert trigger("demand: {above_kw: 8}", snapshot(demand_kw=8.1))
    assert not trigger("demand: {above_kw: 8}", snapshot(demand_kw=8.0))


# --- Demand window: keep the billed demand from rising ---------------------------------------


def window_snapshot(**fields):
    """Ten minutes into the 16:30-16:45 (local) window: 4 kW until 5 minutes in, 8 kW since.

    Projected: 4 kW x 5 min + 8 kW x 5 min + 8 kW x the 5 minutes left = 1 2/3 kWh in a quarter
    hour, 6 2/3 kW.
    """
    at = NOW + timedelta(minutes=10)
    points = ((NOW - timedelta(minutes=1), 4.0), (NOW + timedelta(minutes=5), 8.0))
    return snapshot(at=at, demand_kw=8.0, demand_history=points, demand_window_min=15, **fields)


def test_a_demand_window_condition_projects_the_window_against_a_cap():
    assert condition("demand_window: {above_kw: 6.5}", window_snapshot())
    assert not condition("demand_window: {above_kw: 6.7}", window_snapshot())


def test_a_demand_window_condition_projects_the_window_against_the_cycle_peak():
    assert condition("demand_window: {above_peak: true}", window_snapshot(demand_peak_kw=6.6))
    assert not condition("demand_window: {above_peak: true}", window_snapshot(demand_peak_kw=6.7))
    # No peak known yet (no demand charge, or none read this cycle): only a cap can hold.
    assert not condition("demand_window: {above_peak: true}", window_snapshot())
    assert condition("demand_window: {above_peak: true, above_kw: 6}", window_snapshot())
    # Both given: the lower level counts.
    assert condition("demand_window: {above_peak: true, above_kw: 9}", window_snapshot(demand_peak_kw=6.0))


def test_a_30_minute_window_averages_over_its_half_hour():
    # 16:30-17:00: 4 kW for 5 min, 8 kW for 5, 8 kW for the 20 left: (20 + 40 + 160) / 60 kWh / 0.5 h = 7.33 kW.
    snap = window_snapshot(demand_peak_kw=7.3)
    snap = type(snap)(**{**{f: getattr(snap, f) for f in snap.__dataclass_fields__}, "demand_window_min": 30})
    assert condition("demand_window: {above_peak: true}", snap)
    assert not condition("demand_window: {above_kw: 7.4}", snap)


def test_a_demand_window_condition_needs_a_level():
    import pytest

    from ems.errors import ConfigError

    with pytest.raises(ConfigError, match=r"demand_window: give above_kw \(a cap\), above_peak: true"):
        parse_rules("rules:\n  - name: R\n    conditions:\n      - demand_window: {}\n    action: {notify: hi}\n")


def test_an_indoor_temperature_trigger_reads_the_thermostats():
    hot = tuple(with_reading(d, indoor_c=27.5) if d.info.device_id == LIVING_ROOM else d for d in home())
    assert trigger("indoor_temperature: {above_c: 27}", snapshot(devices=hot))
    assert not trigger("indoor_temperature: {above_c: 27}", snapshot())
    assert trigger("indoor_temperature: {above_c: 27, device: Living room}", snapshot(devices=hot))
    assert not trigger("indoor_temperature: {above_c: 27, device: Bedroom}", snapshot(devices=hot))


def test_an_outdoor_temperature_trigger_reads_the_snapshot():
    assert trigger("outdoor_temperature: {above_c: 35}", snapshot(outdoor_c=38.0))
    assert trigger("outdoor_temperature: {below_c: 0}", snapshot(outdoor_c=-3.0))
    assert not trigger("outdoor_temperature: {below_c: 0}", snapshot())


def test_a_schedule_trigger_holds_in_its_window_on_its_days():
    assert trigger("schedule: {from: '16:00', to: '21:00', days: weekdays}", snapshot())
    assert not trigger("schedule: {from: '16:00', to: '21:00', days: weekend}", snapshot())
    assert not trigger("schedule: {from: '17:00', to: '21:00'}", snapshot())


# --- Conditions -------------------------------------------------------------------------


def test_a_time_window_may_cross_midnight():
    assert condition("time: {from: '22:00', to: '06:00'}", snapshot(at=NOW + timedelta(hours=8)))  # 00:30
    assert not condition("time: {from: '22:00', to: '06:00'}", snapshot())  # 16:30


def test_a_time_window_uses_local_time():
    assert condition("time: {from: '16:00', to: '17:00'}", snapshot())  # 23:30 UTC is 16:30 in Los Angeles


def test_a_days_condition_takes_a_list_of_days():
    assert condition("days: [wed]", snapshot())
    assert not condition("days: [mon, tue]", snapshot())


def test_seasons_follow_the_summer_months():
    assert condition("season: summer", snapshot())
    assert condition("season: winter", snapshot(at=NOW - timedelta(days=180)))  # January


def test_a_demand_condition_takes_a_range():
    assert condition("demand: {above_kw: 5, below_kw: 10}", snapshot(demand_kw=7.0))
    assert not condition("demand: {above_kw: 5, below_kw: 10}", snapshot(demand_kw=11.0))
    assert not condition("demand: {above_kw: 5}", snapshot())


def test_a_temperature_condition_reads_like_the_trigger():
    assert condition("indoor_temperature: {above_c: 22, below_c: 26}", snapshot())


def test_an_event_condition_asks_whether_an_event_is_active():
    assert condition("event: {active: true}", snapshot(events=(event(),)))
    assert condition("event: {active: false}", snapshot())
    assert not condition("event: {active: false}", snapshot(events=(event(),)))


def test_an_event_condition_may_ask_for_a_criticality():
    snap = snapshot(events=(event(criticality=Criticality.LEVEL_1),))
    assert not condition("event: {active: true, min_criticality: level_3}", snap)
