"""`ems simulate-meter` runs the meter alone; an appliance started separately joins it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from ems.cli import compose, read_config
from tests.e2e.conftest import FAST_SCENARIO, write_config

EMS = str(Path(sys.executable).parent / "ems")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


IEEE = "02:50:52:45:4d:00:0a:01"
CODE = "83FED3407A939723A5C639B26916D505C3B5"  # SE 1.x's example install code, with its CRC


async def test_appliance_joins_a_meter_simulated_in_another_process(tmp_path):
    port = _free_port()
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(FAST_SCENARIO))
    with (tmp_path / "simulate-meter.log").open("wb") as log:  # a file: an unread pipe could fill and block it
        proc = await asyncio.create_subprocess_exec(
            # The utility registers the appliance's install code with the meter (C6 3.1 steps 5-9).
            EMS, "simulate-meter", "--scenario", str(scenario), "--port", str(port), "--register", f"{IEEE}={CODE}",
            stdout=subprocess.PIPE, stderr=log)
    try:
        # It says where it listens once it does; the bounds below only guard against a hang.
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert f"virtual://127.0.0.1:{port}" in line.decode()
        folder = write_config(tmp_path / "config", f"""
web: {{host: 127.0.0.1, port: 0}}
zigbee_se: {{radio: {{type: virtual, path: "virtual://127.0.0.1:{port}"}}, first_retry_s: 0.2,
             identity: {{ieee: "{IEEE}", install_code: "{CODE}"}}}}
""")
        hub, _web = compose(read_config(folder), tmp_path / "data")
        await hub.start()
        try:
            async with asyncio.timeout(60):
                while True:
                    meter = hub.state.meters.get("main")
                    if meter and meter.link.value == "online" and meter.value("demand_kw") is not None:
                        break
                    await asyncio.sleep(0.05)
            assert hub.state.meters["main"].link.value == "online"
            assert hub.state.meters["main"].value("summation_delivered_kwh") > 11_999
        finally:
            await hub.stop()
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == 0
