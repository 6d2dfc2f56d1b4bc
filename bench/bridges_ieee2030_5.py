"""IEEE 2030.5 meter -> dashboard WebSocket: latency after the response arrives, and recovery after a stall.

The whole appliance runs in this process (``ems.cli.compose``, the real web server on a free port,
the ZigBee meter link off) against the simulated 2030.5 meter over mutual TLS on loopback.

1. Latency: the meter serves a new demand at every read (``demand_sequence``); the link polls it
   as fast as its bounds allow. For each read we note when the client has the response body (the
   client's ``get`` returning) and when the value arrives on a WebSocket client of the dashboard:
   the link's parse and translation, the bus, the state and the push. At least ``--reads`` reads.
2. Recovery: the meter stalls (connections accepted, nothing answered) for ``--stall-s`` seconds,
   long enough for the link to time out, go offline and back off; then it answers again. Recovery
   is the time from the meter answering again to the next value on the WebSocket (target < 60 s).

    python bench/bridges_ieee2030_5.py [--reads 300] [--stall-s 30]
Last line: ieee2030_5_p99_ms=.. recovery_s=..
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from ems.accounts import Accounts, Role, Scope  # noqa: E402
from ems.cli import compose, read_config  # noqa: E402
from integrations.ieee2030_5.identity import identity_for  # noqa: E402
from integrations.simulator import SimulatedHan, load_scenario, scenario_from_dict  # noqa: E402
from integrations.simulator.ieee2030_5 import Ieee2030Meter  # noqa: E402

CONFIG = """
web: {{host: 127.0.0.1, port: 0}}
zigbee_se: {{enabled: false}}
ieee2030_5: {{url: "{url}", poll_min_s: 0.05, stale_after_s: 5, timeout_s: 2, retries: 1,
             first_retry_s: 2, retry_max_s: 30, history_h: 0}}
"""


async def measure(reads: int = 300, stall_s: float = 30.0) -> dict[str, float]:
    """Run both measurements; the figures as a dict (``p50_ms``, ``p99_ms``, ``max_ms``, ``reads``, ``recovery_s``)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        meter = Ieee2030Meter(load_scenario(REPO / "config" / "scenarios" / "demo.yaml"), poll_rate_s=0)
        meter.register_client(identity_for(data).cert_path.read_bytes())
        await meter.start()
        folder = Path(tmp) / "config"
        folder.mkdir()
        (folder / "ems.yaml").write_text(CONFIG.format(url=meter.url))
        config = read_config(folder)
        simulator = SimulatedHan(scenario_from_dict({"meter": {"report_interval": "10m"}}))
        hub, web = compose(config, data, simulator=simulator)
        await hub.start()
        try:
            link = await _online(hub)
            token = await _token(hub)
            figures = await _run(web.url, token, meter, link, reads, stall_s)
        finally:
            await hub.stop()
            await meter.stop()
    return figures


async def _online(hub: Any) -> Any:
    for _ in range(400):
        link = hub.integrations.get("ieee2030_5")
        meter = hub.state.meters.get("main")
        if link is not None and meter is not None and meter.link.value == "online":
            return link
        await asyncio.sleep(0.05)
    raise SystemExit("the 2030.5 link did not come online")


async def _token(hub: Any) -> str:
    accounts = Accounts(hub.store)
    owner = await accounts.create_user("bench", "bench-password", Role.OWNER)
    return (await accounts.create_token(owner, "bench", [Scope.READ])).secret


async def _run(url: str, token: str, meter: Ieee2030Meter, link: Any, reads: int, stall_s: float) -> dict[str, float]:
    arrived: dict[float, float] = {}  # demand kW -> when the client had the response
    latencies: list[float] = []
    pushed = asyncio.Event()
    demand_href = link.plan.demand[0]
    client = link.client
    original_get = client.get

    async def timed_get(path: str) -> bytes:
        body = await original_get(path)
        if path == demand_href:
            start = body.find(b"<value>")
            value = body[start + 7:body.find(b"</value>", start)]
            if value.isdigit():
                arrived[round(int(value) / 1000, 3)] = time.perf_counter()
        return body

    client.get = timed_get
    async with aiohttp.ClientSession() as http, http.ws_connect(
        url + "/api/v1/ws", headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        await ws.receive()  # the snapshot

        async def receive() -> None:
            async for message in ws:
                item = json.loads(message.data)
                if item.get("topic") != "meter":
                    continue
                at = arrived.pop(item["data"].get("demand_kw"), None)
                if at is not None:
                    latencies.append((time.perf_counter() - at) * 1000)
                    pushed.set()

        receiver = asyncio.create_task(receive())
        meter.demand_sequence = 1_000_000  # 1000.001 kW, 1000.002 kW, ...: each read a new value
        while len(latencies) < reads:
            pushed.clear()
            await asyncio.wait_for(pushed.wait(), 10)
        # Recovery: the meter stops answering; the link times out, goes offline, backs off.
        meter.stall()
        await asyncio.sleep(stall_s)
        pushed.clear()
        meter.unstall()
        answering = time.perf_counter()
        await asyncio.wait_for(pushed.wait(), 120)
        recovery_s = time.perf_counter() - answering
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
    client.get = original_get
    return {"reads": float(len(latencies)), "p50_ms": statistics.median(latencies),
            "p99_ms": statistics.quantiles(latencies, n=100)[98], "max_ms": max(latencies),
            "recovery_s": recovery_s, "handshakes": float(client.context.handshakes),
            "resumed": float(client.context.resumed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--stall-s", type=float, default=30.0)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.reads, args.stall_s))
    print(f"2030.5 read -> WebSocket after the response arrived, {figures['reads']:.0f} reads: p50 "
          f"{figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, max {figures['max_ms']:.2f} ms "
          "(target p99 < 100 ms).")
    print(f"Recovery after a {args.stall_s:g} s stall: {figures['recovery_s']:.1f} s from the meter answering "
          f"again to a value on the WebSocket (target < 60 s); TLS handshakes {figures['handshakes']:.0f}, "
          f"{figures['resumed']:.0f} resumed.")
    print(f"ieee2030_5_p99_ms={figures['p99_ms']:.2f} recovery_s={figures['recovery_s']:.1f}")


if __name__ == "__main__":
    main()
