"""Benchmark: twenty home devices joined, discovered, provisioned and acknowledged, and how fast
local HAN messages are answered (UC134; I1NFR5: local messages within 10 s).

The whole appliance (``ems.cli.compose``) against the simulated HAN, with joining closed at start:
the clock starts when joining is opened through the provisioning facade (what the Add devices page
and ``ems han permit`` call); each of the twenty devices (ten price-aware SE load controllers, ten
plugs) must join, be discovered with its clusters, be put in its programs and acknowledge its
program parameters; ``provisioned_s`` is the time until the last acknowledgement, and the run
fails unless every device has every stage in the provisioning log. Then every device is tested
ten times (a round trip each: Read Attributes of Basic, answered over the virtual HAN) and
``local_reply_p99_ms`` is the 99th percentile of those 200 round trips.

This is the devices' part of ``bench/provision.py`` (the meter join's ``configured_s`` is the
other helper's); written apart while that file does not exist yet.
Run: .venv/bin/python bench/provision_devices.py
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ems.cli import compose, read_config  # noqa: E402
from integrations.simulator import SimulatedHan, scenario_from_dict  # noqa: E402

DEVICES = 20
ROUND_TRIPS = 10
TARGET_S = 60.0
LOCAL_LIMIT_MS = 10_000.0
RATES = Path(__file__).resolve().parent.parent / "config" / "rates.yaml"
CONFIG = f"""
site: {{name: Bench home, timezone: America/Los_Angeles}}
tariff: {{plan: TOU-D-T, climate_zone: "10", rates_file: "{RATES}"}}
web: {{host: 127.0.0.1, port: 0}}
zigbee_se: {{report_interval_s: 5, first_retry_s: 0.2}}
zigbee_home: {{permit_join_s: 0, report_interval_s: 30, command_timeout_s: 5}}
demand_response: {{enrollment_group: 3}}
"""
NEEDED = ("joined", "discovered", "chosen", "provisioning", "acknowledged")


def scenario() -> dict[str, Any]:
    devices: list[dict[str, Any]] = []
    for n in range(1, DEVICES // 2 + 1):
        devices.append({"kind": "load_controller", "name": f"Controller {n}", "nominal_kw": 1.0,
                        "device_class": 0x0010, "price_aware": True})
        devices.append({"kind": "plug", "name": f"Plug {n}", "nominal_kw": 0.5})
    return {"name": "bench", "meter": {"report_interval": 5, "profile_interval_min": 15},
            "messages": [], "events": [], "home": {"devices": devices}}


async def provision_devices() -> tuple[float, float, int]:
    """(seconds to the twentieth acknowledgement, p99 of the local round trips in ms, log entries)."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "config").mkdir()
        (root / "config" / "ems.yaml").write_text(CONFIG)
        simulator = SimulatedHan(scenario_from_dict(scenario()))
        hub, _web = compose(read_config(root / "config"), root / "data", simulator=simulator)
        await hub.start()
        try:
            provisioning = hub.provisioning
            assert provisioning is not None
            while provisioning.port is None or hub.integrations["zigbee_home"].app is None:  # type: ignore[attr-defined]  # noqa: ASYNC110 - the network says nothing when up
                await asyncio.sleep(0.05)
            started = time.perf_counter()
            await provisioning.permit(120)
            done: set[str] = set()
            pending: dict[str, asyncio.Task[Any]] = {}

            async def provision(device: dict[str, Any]) -> None:
                device_id = device["device_id"]
                await provisioning.choose(device_id, location="bench", programs=device["possible_programs"])
                choice = await provisioning.provision(device_id)
                if choice.readiness != "ready":
                    raise RuntimeError(f"{device_id} answered {choice.readiness}")
                done.add(device_id)

            while len(done) < DEVICES:
                if time.perf_counter() - started > 3 * TARGET_S:
                    raise RuntimeError(f"only {len(done)} of {DEVICES} devices provisioned in {3 * TARGET_S:g} s")
                for device in provisioning.devices():
                    if device["model"] and device["device_id"] not in pending:
                        pending[device["device_id"]] = hub.create_task(provision(device), "bench-provision")
                for task in [t for t in pending.values() if t.done()]:
                    task.result()  # a failure ends the run
                await asyncio.sleep(0.02)
            provisioned_s = time.perf_counter() - started

            log = await provisioning.entries()
            for device_id in done:
                stages = {e.stage for e in log if e.device_id == device_id}
                missing = [s for s in NEEDED if s not in stages]
                if missing:
                    raise RuntimeError(f"{device_id}: no {', '.join(missing)} in the provisioning log")

            trips: list[float] = []
            for _ in range(ROUND_TRIPS):
                for result in await provisioning.test():
                    if result.round_trip_ms is None:
                        raise RuntimeError(f"{result.device_id} did not answer its test")
                    trips.append(result.round_trip_ms)
            p99 = statistics.quantiles(trips, n=100, method="inclusive")[98]
            return provisioned_s, p99, len(log)
        finally:
            await hub.stop()


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    provisioned_s, p99_ms, entries = asyncio.run(provision_devices())
    print(f"{DEVICES} devices joined, discovered, provisioned and acknowledged in {provisioned_s:.1f} s "
          f"(target < {TARGET_S:g} s); {entries} log entries")
    print(f"local HAN round trips: p99 {p99_ms:.0f} ms over {DEVICES * ROUND_TRIPS} (limit {LOCAL_LIMIT_MS:g} ms)")
    print(f"devices={DEVICES} provisioned_s={provisioned_s:.1f} local_reply_p99_ms={p99_ms:.0f}")
    return 0 if provisioned_s < TARGET_S and p99_ms < LOCAL_LIMIT_MS else 1


if __name__ == "__main__":
    sys.exit(main())
