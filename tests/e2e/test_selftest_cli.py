"""`ems selftest` against the simulated meter run by `ems simulate-meter`, both as a customer runs
them: every check passes and it exits 0; with no meter to talk to it says so and exits 1."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.e2e.conftest import FAST_SCENARIO, write_config

EMS = str(Path(sys.executable).parent / "ems")
REPO = str(Path(__file__).resolve().parents[2])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(tmp_path: Path, port: int, home_port: int) -> Path:
    return write_config(tmp_path / "config", f"""
web: {{host: 127.0.0.1, port: 0}}
zigbee_se: {{radio: {{type: virtual, path: "virtual://127.0.0.1:{port}"}}, first_retry_s: 0.2,
             identity: {{ieee: "{IEEE}", install_code: "{CODE}"}}}}
zigbee_home: {{radio: {{type: virtual, path: "virtual://127.0.0.1:{home_port}"}}}}
commissioning: {{selftest_meter_timeout_s: 60, selftest_min_free_mb: 1}}
""")


IEEE = "02:50:52:45:4d:00:0a:01"
CODE = "83FED3407A939723A5C639B26916D505C3B5"  # SE 1.x's example install code, with its CRC


async def _selftest(folder: Path, data_dir: Path, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        EMS, "selftest", "-c", str(folder), "--data-dir", str(data_dir), *extra,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": REPO})
    out, _err = await asyncio.wait_for(proc.communicate(), 150)
    return proc.returncode, out.decode()


async def test_selftest_passes_against_the_simulated_meter(tmp_path: Path) -> None:
    port, home_port = _free_port(), _free_port()
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(FAST_SCENARIO))
    with (tmp_path / "simulate-meter.log").open("wb") as log:
        meter = await asyncio.create_subprocess_exec(
            # The utility has registered the appliance's install code with the meter (C6 3.1 steps 5-9).
            EMS, "simulate-meter", "--scenario", str(scenario), "--port", str(port), "--home-port", str(home_port),
            "--register", f"{IEEE}={CODE}", stdout=subprocess.PIPE, stderr=log)
    try:
        assert meter.stdout is not None
        await asyncio.wait_for(meter.stdout.readline(), 60)
        code, out = await _selftest(_config(tmp_path, port, home_port), tmp_path / "data")
    finally:
        meter.terminate()
        await asyncio.wait_for(meter.wait(), 60)
    lines = out.splitlines()
    assert code == 0, out
    for label in ("Store", "Radio", "Meter link", "Clock", "Disk"):
        assert any(line.startswith("OK") and f" {label}: " in line for line in lines), (label, out)
    assert "The meter main answers: the link is up." in out
    assert "The clock is right; it keeps to the meter's time." in out
    assert lines[-1] == "The self-test passed."


async def test_selftest_without_a_meter_says_so_and_exits_1(tmp_path: Path) -> None:
    code, out = await _selftest(_config(tmp_path, _free_port(), _free_port()), tmp_path / "data", "--timeout", "1")
    assert code == 1, out
    assert "FAILED  Radio: The meter network radio does not answer at 127.0.0.1:" in out
    assert "FAILED  Meter link: No session with the meter main within 1 seconds" in out
    assert out.splitlines()[-1].startswith("The self-test found a problem")
    assert any(line.startswith("OK") and " Store: " in line for line in out.splitlines())


async def test_every_start_runs_the_same_checks_and_the_page_and_api_show_them(tmp_path: Path) -> None:
    from tests.e2e.conftest import running_appliance

    async with running_appliance(tmp_path) as appliance:
        await appliance.online()
        report = await appliance.wait_until(lambda: appliance.hub.state.selftest, what="the start's self-test")
        assert [c.name for c in report.checks][:2] == ["store", "radio"]
        assert not report.failed_critically, report
        api = await appliance.get("/api/v1/selftest")
        assert api["passed"] is True
        assert {c["name"]: c["outcome"] for c in api["checks"]}["meter_link"] == "passed"
        identity = appliance.hub.identity
        assert identity is not None
        assert (await appliance.get("/api/v1/commissioning"))["identity"]["install_code"] == \
            identity.install_code_printed
