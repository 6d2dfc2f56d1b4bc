"""EMU-2 fragment on the serial line -> value on the dashboard's WebSocket, and recovery after a stall.

The whole appliance runs in this process (``ems.cli.compose``, the real web server on a free
port, the simulated HAN for the home devices, the ZigBee SE link off) reading a simulated EMU-2
on a real pseudo-terminal pair through the ``emu2`` section:

1. Latency: InstantaneousDemand fragments, each with a new value, are written on the pty's master
   end at ``--rate`` per second; each is timed from the write to the push of that value on
   ``/api/v1/ws`` (the bridge's own schedule keeps pushing the household's demand meanwhile).
2. Recovery: the bridge stalls (stops writing and answering) until the link has gone stale, then
   offline, and has reopened the port a few times with its backoff growing; then it answers again
   (its schedule pushes demand every 10 s, as a real EMU-2's does every 8-11 s). Recovery is the
   time from that moment to the link's ``online``.

    python bench/bridges_emu2.py [--fragments 250] [--rate 20]
Last line: emu2_p99_ms=.. recovery_s=..
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
from ems.model import LinkState, MeterLinkChanged  # noqa: E402
from integrations.simulator import SimulatedHan, load_scenario  # noqa: E402
from integrations.simulator.emu2 import Emu2Schedule, SimulatedEmu2  # noqa: E402

SCENARIO = REPO / "config" / "scenarios" / "demo.yaml"
STALE_AFTER_S = 10.0  # reopened after twice that


async def measure(fragments: int = 250, rate_per_s: float = 20.0) -> dict[str, float]:
    """Run both measurements; the figures as a dict (``emu2_p99_ms``, ``recovery_s``, ...)."""
    scenario = load_scenario(SCENARIO)
    bridge = SimulatedEmu2(scenario, _real_clock(), schedule=Emu2Schedule(demand_s=10.0))
    port = bridge.open()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "config"
        folder.mkdir()
        (folder / "ems.yaml").write_text(
            "web: {host: 127.0.0.1, port: 0}\nzigbee_se: {enabled: false}\n"
            f"emu2: {{port: {port}, stale_after_s: {STALE_AFTER_S}}}\n")
        config = read_config(folder)
        simulator = SimulatedHan(scenario)
        hub, web = compose(config, Path(tmp) / "data", simulator=simulator)
        await bridge.start()
        await hub.start()
        try:
            await _wait_state(hub, LinkState.ONLINE, 30.0)
            token = await _token(hub)
            latencies = await _latency(web.url, token, bridge, fragments, rate_per_s)
            recovery_s, reopens = await _recovery(hub, bridge)
        finally:
            await hub.stop()
            await bridge.stop()
    return {
        "emu2_p50_ms": statistics.median(latencies),
        "emu2_p99_ms": statistics.quantiles(latencies, n=100)[98],
        "emu2_max_ms": max(latencies),
        "emu2_fragments": float(len(latencies)),
        "recovery_s": recovery_s,
        "reopens": float(reopens),
    }


def _real_clock() -> Any:
    from ems.clock import REAL

    return REAL


async def _wait_state(hub: Any, state: LinkState, timeout_s: float) -> float:
    """Wait for the meter link to reach ``state``; the real time it took."""
    reached = asyncio.Event()
    start = time.perf_counter()

    def on_change(change: MeterLinkChanged) -> None:
        if change.state is state:
            reached.set()

    unsubscribe = hub.bus.listen(MeterLinkChanged, on_change)
    try:
        meter = hub.state.meters.get("main")
        if meter is None or meter.link is not state:
            async with asyncio.timeout(timeout_s):
                await reached.wait()
    finally:
        unsubscribe()
    return time.perf_counter() - start


async def _token(hub: Any) -> str:
    """An owner and a read token: the WebSocket needs credentials like any client."""
    accounts = Accounts(hub.store)
    owner = await accounts.create_user("bench", "bench-password", Role.OWNER)
    return (await accounts.create_token(owner, "bench", [Scope.READ])).secret


async def _latency(url: str, token: str, bridge: SimulatedEmu2, count: int, rate_per_s: float) -> list[float]:
    sent: dict[float, float] = {}
    latencies: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(
        url + "/api/v1/ws", headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        await ws.receive()  # the snapshot

        async def receive() -> None:
            async for message in ws:
                data = json.loads(message.data)
                if data.get("topic") != "meter":
                    continue
                demand = data["data"].get("demand_kw")
                at = sent.pop(demand, None) if demand is not None else None
                if at is not None:
                    latencies.append((time.perf_counter() - at) * 1000)

        receiver = asyncio.create_task(receive())
        start = time.perf_counter()
        for i in range(count):
            raw = 100_000 + i  # a new demand each time: 100.000 kW + i W
            fragment = bridge.fragment("InstantaneousDemand", [
                ("MeterMacId", f"0x{bridge.meter_mac}"), ("TimeStamp", bridge._stamp()),
                ("Demand", f"0x{raw:06x}"), ("Multiplier", "0x00000001"), ("Divisor", "0x000003e8"),
                ("DigitsRight", "0x03"), ("DigitsLeft", "0x06"), ("SuppressLeadingZero", "Y")])
            sent[round(raw / 1000, 3)] = time.perf_counter()
            bridge.write_bytes(fragment, "InstantaneousDemand")
            delay = start + (i + 1) / rate_per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await asyncio.sleep(0.5)
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
    if len(latencies) < count * 0.95:
        raise SystemExit(f"only {len(latencies)} of {count} fragments reached the WebSocket")
    return latencies


async def _recovery(hub: Any, bridge: SimulatedEmu2) -> tuple[float, int]:
    """Stall until the link is offline and has reopened the port a few times; then the bridge
    answers again: the real seconds from then to online, and the reopens it took."""
    link = hub.integrations["emu2"]
    bridge.stall()
    await _wait_state(hub, LinkState.STALE, 4 * STALE_AFTER_S)
    await _wait_state(hub, LinkState.OFFLINE, 4 * STALE_AFTER_S)
    # A few reopens, the backoff growing (3, 3, 4, 8 s of listening between them), and the outage
    # ends somewhere inside a listening wait, as a real one would.
    await asyncio.sleep(13.0)
    bridge.resume()
    seconds = await _wait_state(hub, LinkState.ONLINE, 120.0)
    return seconds, link.reopens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fragments", type=int, default=250)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.fragments, args.rate))
    print(f"EMU-2 fragment on the pty -> value on the WebSocket, {figures['emu2_fragments']:.0f} fragments at "
          f"{args.rate:g}/s: p50 {figures['emu2_p50_ms']:.2f} ms, p99 {figures['emu2_p99_ms']:.2f} ms, "
          f"max {figures['emu2_max_ms']:.2f} ms (target p99 < 100 ms).")
    print(f"Recovery after a stall: online {figures['recovery_s']:.1f} s after the EMU-2 answered again "
          f"(after {figures['reopens']:.0f} reopens of the port; target < 60 s).")
    print(f"emu2_p99_ms={figures['emu2_p99_ms']:.2f} recovery_s={figures['recovery_s']:.1f}")


if __name__ == "__main__":
    main()
