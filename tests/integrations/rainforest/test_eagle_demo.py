"""`ems demo --meter eagle`: the whole appliance, composed as the demo composes it, reads the demo's
simulated home through a simulated EAGLE on loopback; the ZigBee meter link does not run."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from ems.cli import DEMO_METERS, _DeferredSimulator, compose, read_config, with_demo_meter
from ems.clock import SimulatedClock
from ems.model import LinkState
from integrations.simulator import load_scenario

REPO = Path(__file__).resolve().parents[3]


async def test_the_demo_reads_the_simulated_home_through_the_eagle(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "ems.yaml").write_text("site: {name: Demo home, timezone: America/Los_Angeles}\n"
                                     "web: {host: 127.0.0.1, port: 0}\n")
    clock = SimulatedClock(datetime(2026, 7, 15, 19, 0, tzinfo=UTC), 10.0)
    simulator = _DeferredSimulator(load_scenario(REPO / "config" / "scenarios" / "demo.yaml"), clock)
    maker = DEMO_METERS["eagle"]
    assert maker is not None
    demo_meter = maker(simulator, clock, tmp_path / "data")
    config = with_demo_meter(read_config(folder), demo_meter)
    hub, _web = compose(config, tmp_path / "data", simulator=simulator, demo=True, clock=clock,
                        demo_meter=demo_meter)
    await hub.start()
    try:
        async with asyncio.timeout(30):
            while True:  # noqa: ASYNC110 - the state is filled by the bus
                meter = hub.state.meters.get("main")
                if meter is not None and meter.link is LinkState.ONLINE and meter.value("demand_kw") is not None:
                    break
                await asyncio.sleep(0.05)
        assert "zigbee_se" not in hub.integrations and "eagle" in hub.integrations
        assert abs(meter.value("summation_delivered_kwh") - simulator.han.meter.delivered_kwh) < 1.0
        assert (await hub.meter_pins.get("main")).kind == "eagle"
    finally:
        await hub.stop()
