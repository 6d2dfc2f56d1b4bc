"""What the EMS makes of a device's clusters and values (protocol only, no radio)."""

from __future__ import annotations

import pytest

from integrations.zigbee_home.catalog import PowerScale, classify, reading_fields

BASIC, POWER, ON_OFF, TIME, THERMOSTAT, ELECTRICAL, METERING, DRLC = (
    0x0000, 0x0001, 0x0006, 0x000A, 0x0201, 0x0B04, 0x0702, 0x0701)


def test_a_thermostat_server_makes_a_thermostat():
    layout = classify([(1, [BASIC, THERMOSTAT, ELECTRICAL], [])])
    assert layout is not None and layout.kind == "thermostat"
    assert layout.endpoint_of(THERMOSTAT) == 1


def test_a_drlc_client_makes_a_load_controller_whatever_else_it_has():
    layout = classify([(1, [BASIC, METERING], [TIME, DRLC]), (2, [ON_OFF], [])])
    assert layout is not None
    assert (layout.kind, layout.drlc_endpoint, layout.power_cluster) == ("load_controller", 1, METERING)


def test_an_on_off_server_makes_a_switch():
    layout = classify([(1, [BASIC, ON_OFF, ELECTRICAL], [])])
    assert layout is not None and layout.kind == "switch"
    assert layout.power_cluster == ELECTRICAL


def test_a_power_configuration_with_a_power_measurement_makes_a_battery():
    layout = classify([(1, [BASIC, POWER, ELECTRICAL], [])])
    assert layout is not None and layout.kind == "battery"


def test_a_plain_sensor_is_none_of_ours():
    assert classify([(1, [BASIC, POWER, 0x0402], [])]) is None


@pytest.mark.parametrize(("cluster", "attribute", "raw", "fields"), [
    (THERMOSTAT, "local_temperature", 2345, {"indoor_c": 23.45}),
    (THERMOSTAT, "local_temperature", -0x8000, {}),
    (THERMOSTAT, "outdoor_temperature", -150, {"outdoor_c": -1.5}),
    (THERMOSTAT, "occupied_cooling_setpoint", 2600, {"cooling_setpoint_c": 26.0}),
    (THERMOSTAT, "occupied_heating_setpoint", 1900, {"heating_setpoint_c": 19.0}),
    (THERMOSTAT, "system_mode", 3, {"system_mode": "cool", "on": True}),
    (THERMOSTAT, "system_mode", 0, {"system_mode": "off", "on": False}),
    (THERMOSTAT, "system_mode", 1, {"system_mode": "auto", "on": True}),
    (ON_OFF, "on_off", 1, {"on": True}),
    (POWER, "battery_percentage_remaining", 121, {"soc_pct": 60.5}),
    (POWER, "battery_percentage_remaining", 0xFF, {}),
])
def test_values_become_reading_fields_in_domain_units(cluster, attribute, raw, fields):
    assert reading_fields(cluster, attribute, raw, None) == fields


def test_active_power_is_scaled_to_kw():
    assert reading_fields(ELECTRICAL, "active_power", 1500, PowerScale(1, 1)) == {"power_kw": 1.5}
    assert reading_fields(ELECTRICAL, "active_power", 150, PowerScale(1, 10)) == {"power_kw": 0.015}
    assert reading_fields(ELECTRICAL, "active_power", -5000, PowerScale()) == {"power_kw": -5.0}


def test_metering_demand_is_in_kw_by_multiplier_and_divisor():
    assert reading_fields(METERING, "instantaneous_demand", 2000, PowerScale(1, 1000, watts=False)) == {
        "power_kw": 2.0}
