"""The mqtt section: off without a host, its keys checked like every section's."""

from __future__ import annotations

from pathlib import Path

import pytest

from ems.cli import read_config
from ems.errors import ConfigError
from integrations import mqtt


def _load(tmp_path: Path, text: str) -> dict:
    (tmp_path / "ems.yaml").write_text(text)
    return dict(read_config(tmp_path).sections["mqtt"])


def test_off_without_a_broker_host(tmp_path: Path) -> None:
    section = _load(tmp_path, "site: {name: Home, timezone: UTC}\n")
    assert not mqtt.enabled(section)
    assert mqtt.settings_from_section(section).site_id == "home"


def test_a_host_turns_it_on_with_the_defaults(tmp_path: Path) -> None:
    section = _load(tmp_path, "mqtt: {host: broker.lan, site_id: maple-12}\n")
    settings = mqtt.settings_from_section(section)
    assert mqtt.enabled(section) and (settings.port, settings.discovery_prefix) == (1883, "homeassistant")


def test_a_site_id_that_would_break_the_topics_and_an_unknown_key_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "mqtt:\n  host: broker.lan\n  site_id: a/b\n  colour: red\n")
    text = "\n".join(err.value.problems)
    assert "mqtt.site_id" in text.replace(" -> ", ".") or "site_id" in text
    assert "colour" in text


def test_zigbee2mqtt_is_off_by_default_and_its_devices_are_read_by_name_or_address(tmp_path: Path) -> None:
    assert not mqtt.settings_from_section(_load(tmp_path, "mqtt: {host: broker.lan}\n")).zigbee2mqtt.enabled
    (tmp_path / "more").mkdir()
    section = _load(tmp_path / "more", """mqtt:
  host: broker.lan
  zigbee2mqtt:
    enabled: true
    base_topic: home/z2m
    devices:
      garage/pool_pump_plug: {device_class: Pool_Pump, nominal_kw: 1.5}
      "0x000d6f0000000002": {name: Hall}
""")
    z2m = mqtt.settings_from_section(section).zigbee2mqtt
    assert (z2m.enabled, z2m.base_topic, z2m.command_timeout_s) == (True, "home/z2m", 5.0)
    assert z2m.device("garage/pool_pump_plug", "a4:c1:38:00:00:00:00:01").device_class == "pool_pump"
    assert z2m.device("hall", "00:0d:6f:00:00:00:00:02").name == "Hall"  # by its 0x address
    assert z2m.device("other", "00:00:00:00:00:00:00:09").name is None


def test_a_zigbee2mqtt_device_class_or_topic_that_cannot_be_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "mqtt:\n  host: broker.lan\n  zigbee2mqtt:\n    base_topic: 'z2m/#'\n"
                        "    devices: {plug: {device_class: toaster}}\n    colour: red\n")
    problems = err.value.problems
    assert len(problems) == 3  # every problem at once, each with its line and key path
    assert "ems.yaml:4: mqtt.zigbee2mqtt.base_topic: expected a topic" in problems[0]
    assert "ems.yaml:5: mqtt.zigbee2mqtt.devices.plug.device_class: expected one of" in problems[1]
    assert "(found 'toaster')" in problems[1]
    assert "ems.yaml:6: mqtt.zigbee2mqtt.colour: unknown key" in problems[2]
