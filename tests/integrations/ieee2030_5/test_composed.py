"""The 2030.5 meter as the appliance composes it: from ems.yaml, and as ``ems demo --meter ieee2030_5``."""

from __future__ import annotations

import asyncio

import pytest

from ems.cli import DEMO_METERS, _DeferredSimulator, compose, read_config, with_demo_meter
from ems.config import default_config_dir
from ems.model import LinkState
from integrations.ieee2030_5.identity import identity_for
from integrations.simulator import load_scenario, scenario_from_dict
from integrations.simulator.ieee2030_5 import Ieee2030Meter
from integrations.simulator.runner import SimulatedHan
from tests.integrations.ieee2030_5.conftest import REPO


async def _online(hub, guard_s: float = 30.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + guard_s
    while True:
        meter = hub.state.meters.get("main")
        if meter is not None and meter.link is LinkState.ONLINE and meter.last_reading_at is not None:
            return meter
        assert loop.time() < end, "the 2030.5 meter did not come online"
        await asyncio.sleep(0.05)


async def test_an_ieee2030_5_section_in_ems_yaml_reads_the_meter_in_place_of_zigbee(tmp_path) -> None:
    data = tmp_path / "data"
    meter = Ieee2030Meter(load_scenario(REPO / "config" / "scenarios" / "demo.yaml"))
    meter.register_client(identity_for(data).cert_path.read_bytes())
    await meter.start()
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "ems.yaml").write_text(f"web: {{host: 127.0.0.1, port: 0}}\nzigbee_se: {{enabled: false}}\n"
                                     f"ieee2030_5: {{url: '{meter.url}', poll_min_s: 1}}\n")
    simulator = SimulatedHan(scenario_from_dict({"meter": {"report_interval": "10m"}}))
    hub, _web = compose(read_config(folder), data, simulator=simulator)
    await hub.start()
    try:
        state = await _online(hub)
        assert state.info is not None and state.info.ieee == meter.lfdi
        assert hub.meter_sources.running["main"][0] == "ieee2030_5"  # a source saved later replaces it
        assert hub.meter_source_kinds == {}  # the kinds' modules load when the setup page first asks
        await hub.meter_sources.ensure_kinds()
        assert "ieee2030_5" in hub.meter_source_kinds  # the Commissioning page can set one up
        assert "zigbee_se" not in hub.integrations
    finally:
        await hub.stop()
        await meter.stop()


async def test_the_demo_meter_serves_the_simulated_hans_registers(tmp_path) -> None:
    data = tmp_path / "data"
    config = read_config(default_config_dir())
    scenario = load_scenario(REPO / "config" / "scenarios" / "demo.yaml")
    from ems.clock import REAL

    simulator = _DeferredSimulator(scenario, REAL)
    demo_meter = DEMO_METERS["ieee2030_5"](simulator, REAL, data)
    config = with_demo_meter(config, demo_meter)
    assert config.sections["zigbee_se"]["enabled"] is False
    from dataclasses import replace

    from ems.config import WebConfig

    config = replace(config, web=WebConfig(host="127.0.0.1", port=0))
    hub, _web = compose(config, data, simulator=simulator, demo=True, demo_meter=demo_meter)
    await hub.start()
    try:
        state = await _online(hub)
        assert state.value("summation_delivered_kwh") == pytest.approx(simulator.han.meter.delivered_kwh, abs=0.05)
        await hub.meter_sources.ensure_kinds()  # as the setup page does: the kinds load when first needed
        found = await hub.meter_source_kinds["ieee2030_5"].discover(3.0)  # the page's "Find"
        url = config.sections["ieee2030_5"]["url"]
        assert [c.address for c in found] == [url] or not found  # (found unless multicast is off here)
        kept = data / "simulated_ieee2030_5_meter" / "meter.crt"
        assert await asyncio.to_thread(kept.exists)  # the same simulated meter at the next demo (it is pinned)
    finally:
        await hub.stop()
