"""The scenario's home section: validated like the rest, with clear errors."""

from __future__ import annotations

import pytest

from ems.config import default_config_dir
from ems.errors import ConfigError
from integrations.simulator.scenario import load_scenario


def test_the_demo_home_has_every_kind_of_device():
    scenario = load_scenario(default_config_dir() / "scenarios" / "demo.yaml")
    devices = {d["name"]: d for d in scenario.home["devices"]}
    assert {d["kind"] for d in devices.values()} == {"thermostat", "plug", "battery", "load_controller"}
    assert (devices["Pool pump"]["nominal_kw"], devices["Water heater"]["nominal_kw"],
            devices["EV charger"]["nominal_kw"]) == (1.5, 4.5, 7.2)
    assert devices["Home battery"]["capacity_kwh"] == 13.5


def test_errors_in_the_home_name_file_line_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "home:\n"
        "  devices:\n"
        "    - {kind: plug, name: Pump}\n"
        "    - {kind: fridge, name: Cold}\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    text = "\n".join(err.value.problems)
    assert f"{path}:3: home.devices.0.nominal_kw: required key not provided" in text


def test_an_unknown_kind_of_device_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("home:\n  devices:\n    - {kind: fridge, name: Cold}\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert "home.devices.0.kind: expected one of thermostat, plug, battery, load_controller" in err.value.problems[0]


def test_a_setpoint_outside_the_thermostats_limits_is_a_scenario_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("home:\n  devices:\n    - {kind: thermostat, name: Hall,\n"
                    "       cooling_setpoint_c: 40}\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert "home.devices.0.cooling_setpoint_c: cooling setpoint 40.0 °C is outside 16.0-32.0 °C" in \
        err.value.problems[0]


def test_two_devices_with_one_name_are_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("home:\n  devices:\n    - {kind: plug, name: Pump, nominal_kw: 1}\n"
                    "    - {kind: plug, name: Pump, nominal_kw: 2}\n")
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert f"{path}:4: home.devices.1.name: 'Pump' is already used by device 0" in err.value.problems[0]
