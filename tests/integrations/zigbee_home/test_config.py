"""The zigbee_home section of ems.yaml: defaults, and errors that name the key."""

from __future__ import annotations

import pytest

from ems.config import load_config
from ems.errors import ConfigError
from integrations.zigbee_home import CONFIG_SCHEMA, HomeSettings


def test_defaults():
    settings = HomeSettings.from_section(CONFIG_SCHEMA({}))
    assert settings.radio == {"type": "virtual", "path": "virtual://127.0.0.1:8812"}
    assert (settings.command_timeout_s, settings.permit_join_s) == (5.0, 60)


def test_devices_are_keyed_by_their_ieee_address_in_lower_case():
    section = CONFIG_SCHEMA({"devices": {"02:50:52:45:4D:48:00:01": {"name": "Living room",
                                                                      "device_class": "HVAC"}}})
    device = HomeSettings.from_section(section).device("02:50:52:45:4d:48:00:01")
    assert (device.name, device.device_class) == ("Living room", "hvac")


def test_errors_name_the_file_line_and_key(tmp_path):
    (tmp_path / "ems.yaml").write_text(
        "zigbee_home:\n"
        "  command_timeout_s: soon\n"
        "  devices:\n"
        "    not-an-address: {name: X}\n"
        "    \"02:50:52:45:4d:48:00:01\": {device_class: fridge}\n")
    from ems.cli import _integration_schemas

    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, _integration_schemas())
    text = "\n".join(err.value.problems)
    assert "ems.yaml:2: zigbee_home.command_timeout_s" in text
    assert "ems.yaml:4: zigbee_home.devices.not-an-address: expected an IEEE address" in text
    assert "ems.yaml:5: zigbee_home.devices.02:50:52:45:4d:48:00:01.device_class: expected one of hvac" in text


def test_the_default_configuration_names_the_demo_devices():
    from ems.cli import read_config
    from ems.config import default_config_dir

    section = read_config(default_config_dir()).sections["zigbee_home"]
    names = {d["name"] for d in section["devices"].values()}
    assert names == {"Living room", "Pool pump", "Water heater", "EV charger", "Home battery", "Spa heater"}
