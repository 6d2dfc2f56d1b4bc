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
