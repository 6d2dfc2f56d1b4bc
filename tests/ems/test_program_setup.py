"""Integrations set up on the Commissioning page: the saved section wins over ems.yaml's at the next
start, and saving one restarts the integration on it (the composition root's part, with a real broker)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ems.cli import _add_mqtt, read_config
from ems.clock import FixedClock
from ems.hub import Hub
from ems.program_setup import load_section, save_section, section_in_force
from integrations import mqtt
from tests.conftest import require_tool
from tests.mosquitto import MOSQUITTO, running_broker

NOW = datetime(2026, 6, 1, 19, 0, tzinfo=UTC)


def _hub(tmp_path: Path, text: str) -> Hub:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "ems.yaml").write_text("site: {name: Test home, timezone: UTC}\n" + text)
    return Hub(read_config(folder), tmp_path / "data", FixedClock(NOW))


async def test_a_section_saved_on_the_page_is_in_force_at_the_start_and_a_new_one_restarts_it(
        tmp_path: Path) -> None:
    require_tool(MOSQUITTO, "the MQTT integration connects to a real broker")
    async with running_broker(tmp_path / "broker") as broker:
        hub = _hub(tmp_path, "mqtt: {site_id: from-file}\n")  # ems.yaml names no broker: off
        _add_mqtt(hub, hub.config)
        await hub.store.open()
        registered = hub.program_setups["mqtt"]
        section, saved = await section_in_force(hub.store, registered)
        assert (section["host"], saved) == (None, False)
        page = mqtt.CONFIG_SCHEMA({"host": "127.0.0.1", "port": broker.port, "site_id": "from-page",
                                   "first_retry_s": 0.1})
        await save_section(hub.store, "mqtt", page, NOW, "owner")
        await hub.store.close()

        await hub.start()
        try:
            bridge = hub.integrations["mqtt"]
            assert bridge.settings.site_id == "from-page" and bridge.connections == 1
            assert await load_section(hub.store, "mqtt") == page
            await registered.restart({**page, "host": None})  # turned off on the page
            assert "mqtt" not in hub.integrations
            await registered.restart(page)
            assert hub.integrations["mqtt"].connections == 1
        finally:
            await hub.stop()
