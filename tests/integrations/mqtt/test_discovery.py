"""The discovery payloads, checked against Home Assistant's rules (tests/integrations/mqtt/ha_rules.py)."""

from __future__ import annotations

import json

from integrations.mqtt.discovery import (
    DEVICE_SENSORS,
    METER_SENSORS,
    Topics,
    device_configs,
    meter_configs,
    number,
)
from tests.integrations.mqtt.ha_rules import check_sensor_config

TOPICS = Topics("ems", "maple-12")


def test_every_meter_sensor_is_one_home_assistant_accepts() -> None:
    configs = meter_configs(TOPICS, "main", "Test home", "USD")
    assert len(configs) == len(METER_SENSORS)
    for topic, payload in configs.items():
        assert topic.startswith("homeassistant/sensor/ems_maple-12_main/") and topic.endswith("/config")
        assert check_sensor_config(json.loads(payload)) == [], topic


def test_every_device_sensor_is_one_home_assistant_accepts() -> None:
    configs = device_configs(TOPICS, "02:50:52:45:4d:48:00:01", "Living room", "thermostat", "",
                             tuple(s.key for s in DEVICE_SENSORS))
    for payload in configs.values():
        config = json.loads(payload)
        assert check_sensor_config(config) == []
        assert config["availability"] == [{"topic": "ems/maple-12/status"},
                                          {"topic": "ems/maple-12/device/02_50_52_45_4d_48_00_01/availability"}]


def test_the_energy_sensors_are_what_the_energy_dashboard_takes() -> None:
    configs = {json.loads(p)["unique_id"]: json.loads(p) for p in meter_configs(TOPICS, "main", "Home", "EUR").values()}
    delivered = configs["ems_maple-12_main_energy_delivered_kwh"]
    assert (delivered["device_class"], delivered["state_class"], delivered["unit_of_measurement"]) == (
        "energy", "total_increasing", "kWh")
    assert configs["ems_maple-12_main_price"]["unit_of_measurement"] == "EUR/kWh"
    assert configs["ems_maple-12_main_projected_bill"]["unit_of_measurement"] == "EUR"


def test_the_rules_catch_what_home_assistant_refuses() -> None:
    """The checker itself can fail: each payload here breaks one of Home Assistant's rules."""
    good = json.loads(meter_configs(TOPICS, "main", "Home", "USD")["homeassistant/sensor/ems_maple-12_main/demand_kw/config"])
    assert check_sensor_config({**good, "state_class": "total_increasing"})  # power is a measurement
    assert check_sensor_config({**good, "unit_of_measurement": "kWh"})  # not a power unit
    assert check_sensor_config({**good, "device_class": "energy", "unit_of_measurement": "kWh",
                                "state_class": "measurement"})  # energy: total(_increasing) only
    assert check_sensor_config({**good, "device_class": "monetary", "unit_of_measurement": "USD",
                                "state_class": "measurement"})  # monetary: total only
    assert check_sensor_config({**good, "options": ["a"], "device_class": None})
    assert check_sensor_config({k: v for k, v in good.items() if k != "state_topic"})


def test_the_topics_carry_site_and_meter_and_commands_parse_back() -> None:
    assert TOPICS.meter("Main Meter", "demand_kw") == "ems/maple-12/main_meter/demand_kw"
    assert TOPICS.parse_command("ems/maple-12/main/command/opt_out") == ("main", "opt_out")
    assert TOPICS.parse_command("ems/other-site/main/command/opt_out") is None
    assert TOPICS.parse_command("ems/maple-12/main/command/opt_out/result") is None
    assert (number(1.5), number(2.0), number(0.12345, 5), number(3.14159, 2)) == ("1.5", "2", "0.12345", "3.14")
