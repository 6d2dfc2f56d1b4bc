"""EAGLE poll -> dashboard WebSocket latency, and recovery after the EAGLE's local API stalls.

The whole appliance runs in this process (``ems.cli.compose``: the real web server on a free
port, the store in SQLite, the ``eagle`` section on, the ZigBee meter link off) against the
simulated EAGLE on loopback (integrations/simulator/eagle.py) over a simulated meter.

1. Latency: the link polls every ``--poll-ms``; each reply carries a new demand. Each value is
   timed from the moment the simulated EAGLE hands its reply to the HTTP server (an upper bound of
   "the response arrives": the loopback transfer is included) to its arrival on a WebSocket
   client of the dashboard's API, over at least ``--polls`` polls. Real time.
2. Recovery: the appliance with the ``eagle`` section's defaults (poll 15 s, timeout 15 s, stale
   after 90 s, backoff up to 30 s) on a clock running ``--speed`` times faster; the EAGLE stalls
   for ``--stall-s`` of that clock (the link times out, goes stale, backs off), then answers
   again; recovery is the clock's seconds from answering again to the link online on the bus.

    python bench/bridges_eagle.py [--polls 250] [--poll-ms 50] [--stall-s 600] [--speed 40]
Last line: eagle_p99_ms=.. recovery_s=..
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from ems.accounts import Accounts, Role, Scope  # noqa: E402
from ems.cli import compose, read_config  # noqa: E402
from ems.clock import SimulatedClock  # noqa: E402
from ems.model import LinkState, MeterLinkChanged  # noqa: E402
from integrations.simulator.eagle import SimulatedEagle, simulated_meter  # noqa: E402
from integrations.simulator.scenario import load_scenario  # noqa: E402

SCENARIO = REPO / "config" / "scenarios" / "day.yaml"
START = datetime(2026, 7, 15, 19, 0, tzinfo=UTC)


class TimedEagle(SimulatedEagle):
    """The simulated EAGLE, with a new demand in every reply and the moment each reply was made."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: dict[float, float] = {}
        self.count = 0

    def variables(self, now: datetime) -> list[tuple[str, str, str, str]]:
        out = super().variables(now)
        self.count += 1
        demand = round(100 + self.count / 1000, 3)  # 100.001 kW, 100.002 kW, ...: each reply's own
        name, _value, units, description = out[0]
        out[0] = (name, f"{demand:.6f}", units, description)
        self.sent[demand] = time.perf_counter()  # the reply is rendered and returned right after this
        return out


def _config(folder: Path, eagle: SimulatedEagle, extra: str) -> Any:
    folder.mkdir(parents=True)
    (folder / "ems.yaml").write_text(
        "web: {host: 127.0.0.1, port: 0}\nzigbee_se: {enabled: false}\n"
        f"eagle: {{host: '{eagle.host}', cloud_id: {eagle.cloud_id}, install_code: '{eagle.install_code}'{extra}}}\n")
    return read_config(folder)


async def _token(hub: Any) -> str:
    accounts = Accounts(hub.store)
    owner = await accounts.create_user("bench", "bench-password", Role.OWNER)
    return (await accounts.create_token(owner, "bench", [Scope.READ])).secret


async def _latency(polls: int, poll_ms: float, tmp: Path) -> tuple[list[float], int]:
    clock = SimulatedClock(START, 1.0)
    eagle = TimedEagle(simulated_meter(load_scenario(SCENARIO), clock), clock=clock)
    await eagle.start()
    config = _config(tmp / "latency" / "config", eagle,
                     f", poll_interval_s: {poll_ms / 1000}, request_gap_s: 0, stale_after_s: 30")
    hub, web = compose(config, tmp / "latency" / "data", clock=clock)
    latencies: list[float] = []
    await hub.start()
    try:
        token = await _token(hub)
        async with aiohttp.ClientSession() as http, http.ws_connect(
                web.url + "/api/v1/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
            await ws.receive()  # the snapshot
            async with asyncio.timeout(120):
                async for message in ws:
                    data = json.loads(message.data)
                    if data.get("topic") != "meter":
                        continue
                    demand = data["data"].get("demand_kw")
                    at = eagle.sent.pop(round(demand, 3), None) if demand is not None else None
                    if at is not None:
                        latencies.append((time.perf_counter() - at) * 1000)
                    if len(latencies) >= polls:
                        break
    finally:
        await hub.stop()
        await eagle.stop()
    return latencies, eagle.count


async def _recovery(stall_s: float, speed: float, tmp: Path) -> tuple[float, list[str]]:
    clock = SimulatedClock(START, speed)
    eagle = SimulatedEagle(simulated_meter(load_scenario(SCENARIO), clock), clock=clock)
    await eagle.start()
    hub, _web = compose(_config(tmp / "recovery" / "config", eagle, ""), tmp / "recovery" / "data", clock=clock)
    online = asyncio.Event()
    states: list[str] = []

    def changed(event: MeterLinkChanged) -> None:
        states.append(event.state.value)
        if event.state is LinkState.ONLINE:
            online.set()

    hub.bus.listen(MeterLinkChanged, changed)
    await hub.start()
    try:
        async with asyncio.timeout(60):
            await online.wait()
        eagle.stall()
        await clock.sleep(stall_s)
        online.clear()
        answering = clock()
        eagle.release()
        async with asyncio.timeout(clock.real_seconds(600) + 5):
            await online.wait()
        recovered = (clock() - answering).total_seconds()
    finally:
        await hub.stop()
        await eagle.stop()
    return recovered, states


async def measure(polls: int = 250, poll_ms: float = 50.0, stall_s: float = 600.0, speed: float = 40.0) -> dict[str, float]:
    """Both figures: ``eagle_p99_ms`` (and p50, max, polls) and ``recovery_s``."""
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        latencies, replies = await _latency(polls, poll_ms, tmp)
        recovery_s, states = await _recovery(stall_s, speed, tmp)
    return {
        "polls": float(len(latencies)),
        "replies": float(replies),
        "eagle_p50_ms": statistics.median(latencies),
        "eagle_p99_ms": statistics.quantiles(latencies, n=100)[98],
        "eagle_max_ms": max(latencies),
        "recovery_s": recovery_s,
        "stale_seen": float("stale" in states),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=250)
    parser.add_argument("--poll-ms", type=float, default=50.0)
    parser.add_argument("--stall-s", type=float, default=600.0)
    parser.add_argument("--speed", type=float, default=40.0)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.polls, args.poll_ms, args.stall_s, args.speed))
    print(f"EAGLE reply -> dashboard WebSocket, {figures['polls']:.0f} polls ({figures['replies']:.0f} replies): "
          f"p50 {figures['eagle_p50_ms']:.2f} ms, p99 {figures['eagle_p99_ms']:.2f} ms, "
          f"max {figures['eagle_max_ms']:.2f} ms (target p99 < 100 ms).")
    print(f"Recovery after a {args.stall_s:g} s stall (defaults: poll 15 s, timeout 15 s, backoff up to 30 s; "
          f"{'stale shown during it' if figures['stale_seen'] else 'no stale state seen'}): "
          f"online {figures['recovery_s']:.1f} s after the EAGLE answered again (target < 60 s).")
    print(f"eagle_p99_ms={figures['eagle_p99_ms']:.2f} recovery_s={figures['recovery_s']:.1f}")


if __name__ == "__main__":
    main()
