"""Least-discomfort shedding: few devices, the ones the customer minds least, and the truth about a shortfall."""

from __future__ import annotations

import pytest

from rules import Candidate, plan_shedding, thermostat_kw_per_c

EV = Candidate("ev", 7.2, shed_priority=10)
POOL = Candidate("pool", 1.5, shed_priority=20)
HEATER = Candidate("heater", 4.5, shed_priority=30)


def chosen(plan) -> list[str]:
    return [s.device_id for s in plan.sheds]


def test_the_device_the_customer_minds_least_is_shed_first():
    plan = plan_shedding([HEATER, POOL, EV], 5.0)
    assert chosen(plan) == ["ev"] and plan.met and plan.expected_kw == 7.2


def test_devices_are_added_in_priority_order_until_the_target_is_met():
    assert chosen(plan_shedding([HEATER, POOL, EV], 8.0)) == ["ev", "pool"]


def test_a_device_whose_kw_is_not_needed_is_put_back():
    # ev + pool (8.7) falls short of 11; adding the heater meets it, and then the pool is not needed.
    plan = plan_shedding([HEATER, POOL, EV], 11.0)
    assert chosen(plan) == ["ev", "heater"] and plan.expected_kw == pytest.approx(11.7)


def test_a_shortfall_sheds_everything_available_and_says_how_short():
    plan = plan_shedding([HEATER, POOL, EV], 20.0)
    assert sorted(chosen(plan)) == ["ev", "heater", "pool"]
    assert not plan.met and plan.shortfall_kw == pytest.approx(6.8)
    assert "6.8 kW short" in plan.describe()


def test_a_device_that_does_not_take_part_is_never_shed():
    plan = plan_shedding([Candidate("ev", 7.2, 10, takes_part=False), POOL], 5.0)
    assert chosen(plan) == ["pool"] and not plan.met


def test_a_device_that_draws_nothing_is_not_shed():
    assert chosen(plan_shedding([Candidate("ev", 0.0, 10), POOL], 1.0)) == ["pool"]


def test_nothing_is_shed_when_nothing_is_needed():
    plan = plan_shedding([EV, POOL], 0.0)
    assert plan.sheds == () and plan.met and plan.describe() == "nothing to shed"


def test_a_thermostat_is_eased_to_the_smallest_offset_that_meets_the_target():
    per_c = thermostat_kw_per_c(None)  # 0.525 kW per °C for a typical 3.5 kW system
    room = Candidate("room", per_c * 3, shed_priority=5, kw_per_c=per_c, max_offset_c=3.0)
    plan = plan_shedding([room, EV], 0.8)
    (shed,) = plan.sheds
    assert shed.device_id == "room" and shed.offset_c == 2.0 and plan.met


def test_a_thermostat_offset_never_exceeds_its_comfort_limit():
    per_c = thermostat_kw_per_c(4.0)
    room = Candidate("room", per_c * 2, shed_priority=5, kw_per_c=per_c, max_offset_c=2.0)
    (shed,) = plan_shedding([room], 5.0).sheds
    assert shed.offset_c == 2.0


def test_the_estimate_for_a_thermostat_follows_its_running_power():
    assert thermostat_kw_per_c(4.0) == pytest.approx(0.6)
    assert thermostat_kw_per_c(None) == pytest.approx(0.525)


@pytest.mark.parametrize("target_kw", [0.0, 5.0, 8.0, 11.0, 20.0])
def test_a_plans_outcome_agrees_with_what_it_says(target_kw):
    plan = plan_shedding([HEATER, POOL, EV], target_kw)
    said, expected_kw, short_kw = plan.outcome()
    assert expected_kw == plan.expected_kw and short_kw == plan.shortfall_kw
    assert said == ("nothing" if plan.describe() == "nothing to shed" else "met" if plan.met else "short")
