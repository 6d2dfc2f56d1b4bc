"""The house's thermal model and the thermostat's control logic move as physics and ZCL say."""

from __future__ import annotations

import pytest

from integrations.simulator.thermal import SetpointError, ThermalHouse, ThermostatLogic


def test_a_house_without_hvac_drifts_towards_the_outdoor_temperature():
    house = ThermalHouse(indoor_c=24.0, internal_gain_kw=0.0)
    house.step(1.0, outdoor_c=34.0, hvac_heat_kw=0.0)
    assert 24.0 < house.indoor_c < 34.0
    house.step(1000.0, outdoor_c=34.0, hvac_heat_kw=0.0)
    assert house.indoor_c == pytest.approx(34.0)


def test_cooling_takes_heat_out_of_the_house():
    free, cooled = ThermalHouse(indoor_c=26.0), ThermalHouse(indoor_c=26.0)
    free.step(0.5, outdoor_c=32.0, hvac_heat_kw=0.0)
    cooled.step(0.5, outdoor_c=32.0, hvac_heat_kw=-10.5)
    assert cooled.indoor_c < 26.0 < free.indoor_c


def test_the_model_does_not_depend_on_how_time_is_sliced():
    one, many = ThermalHouse(indoor_c=22.0), ThermalHouse(indoor_c=22.0)
    one.step(2.0, outdoor_c=30.0, hvac_heat_kw=-3.0)
    for _ in range(20):
        many.step(0.1, outdoor_c=30.0, hvac_heat_kw=-3.0)
    assert one.indoor_c == pytest.approx(many.indoor_c)


def test_the_thermostat_cools_above_its_setpoint_and_stops_below_it():
    logic = ThermostatLogic(cooling_setpoint_c=24.0, system_mode="cool", hysteresis_c=0.5)
    assert logic.decide(24.5) == "cooling"
    assert logic.decide(24.0) == "cooling"  # within the hysteresis it keeps running
    assert logic.decide(23.7) == "idle"
    assert logic.power_kw == 0.0


def test_the_thermostat_heats_in_heat_mode_only():
    logic = ThermostatLogic(heating_setpoint_c=20.0, system_mode="cool")
    assert logic.decide(15.0) == "idle"
    logic.system_mode = "heat"
    assert logic.decide(15.0) == "heating"
    assert logic.heat_kw == pytest.approx(logic.hvac_kw * logic.cop)


def test_an_off_thermostat_never_runs():
    logic = ThermostatLogic(system_mode="off")
    assert logic.decide(40.0) == "idle"
    assert logic.decide(0.0) == "idle"


def test_setpoints_outside_the_limits_are_refused():
    logic = ThermostatLogic(min_cool_c=18.0, max_cool_c=32.0)
    with pytest.raises(SetpointError, match="cooling setpoint 35.0 °C is outside 18.0-32.0 °C"):
        logic.check(35.0, 20.0)


def test_setpoints_closer_than_the_deadband_are_refused():
    logic = ThermostatLogic(deadband_c=2.0)
    with pytest.raises(SetpointError, match="at least 2.0 °C above"):
        logic.check(21.0, 20.0)
    logic.check(22.0, 20.0)
