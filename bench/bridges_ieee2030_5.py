"""IEEE 2030.5 meter -> dashboard WebSocket: latency after the response arrives, and recovery after a stall.

The whole appliance runs in this process (``ems.cli.compose``, the real web server on a free port,
the ZigBee meter link off) against the simulated 2030.5 meter over mutual TLS on loopback.

1. Latency: the meter serves a new demand at every read (``demand_sequence``); the link polls it
   as fast as its bounds allow. A read is three requests (demand, summation delivered, received);
   for each we note when its last response is in (the link's ``read_values`` returning) and when
   the value arrives on a WebSocket client of the dashboard: the translation, the bus, the state
   and the push. At least ``--reads`` reads. Also shown: the same from the demand's own response
   (two more round trips to the meter included).
2. Recovery: the meter stalls (connections accepted, nothing answered) for ``--stall-s`` seconds,
   long enough for the link to time out, go offline and back off; then it answers again. Then it
   leaves the network (its port closed) as long, and comes back. Recovery is the time from the
   meter answering again to the next value on the WebSocket, the larger of the two (target < 60 s).

    python bench/bridges_ieee2030_5.py [--reads 300] [--stall-s 30]
Last line: ieee2030_5_p99_ms=.. recovery_s=..

``--soak ROUNDS`` instead runs the meter's faults one after another on a clock it moves and checks
that nothing is lost and nothing invented (``soak()``, for bench/soak.py); last line
``ieee2030_5_faults=.. recoveries_failed=.. lost_intervals=.. invented_intervals=.. errors_logged=..``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
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

    read_done: dict[float, float] = {}  # demand kW -> when the read's last response was in (all three values)
    original_read = link.read_values

    async def timed_read() -> Any:
        reading, rate = await original_read()
        if reading is not None and reading.demand_kw is not None:
            read_done[reading.demand_kw] = time.perf_counter()
        return reading, rate

    client.get = timed_get
    link.read_values = timed_read
    from_first: list[float] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(
        url + "/api/v1/ws", headers={"Authorization": f"Bearer {token}"}
    ) as ws:
        await ws.receive()  # the snapshot

        async def receive() -> None:
            async for message in ws:
                item = json.loads(message.data)
                if item.get("topic") != "meter":
                    continue
                now = time.perf_counter()
                value = item["data"].get("demand_kw")
                first, done = arrived.pop(value, None), read_done.pop(value, None)
                if done is not None:
                    latencies.append((now - done) * 1000)
                    if first is not None:
                        from_first.append((now - first) * 1000)
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
        # And off the network (the port closed: connections refused) as long, then back.
        await meter.drop()
        await asyncio.sleep(stall_s)
        pushed.clear()
        await meter.resume()
        answering = time.perf_counter()
        await asyncio.wait_for(pushed.wait(), 120)
        recovery_drop_s = time.perf_counter() - answering
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
    client.get = original_get
    link.read_values = original_read
    return {"reads": float(len(latencies)), "p50_ms": statistics.median(latencies),
            "p99_from_demand_response_ms": statistics.quantiles(from_first, n=100)[98],
            "p99_ms": statistics.quantiles(latencies, n=100)[98], "max_ms": max(latencies),
            "recovery_s": max(recovery_s, recovery_drop_s), "recovery_stall_s": recovery_s,
            "recovery_drop_s": recovery_drop_s, "handshakes": float(client.context.handshakes),
            "resumed": float(client.context.resumed)}


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def soak(rounds: int = 40, seed: int = 1) -> dict[str, float]:
    """The meter's faults one after another (stalls, reboots, drops of hours, failed handshakes, a
    field in a new format, idle drops), on a clock the soak moves; then nothing lost, nothing
    invented: every interval the meter kept in the span read is published once, as the meter has it.

    Figures: ``faults``, ``recoveries_failed``, ``lost_intervals``, ``invented_intervals``,
    ``errors_logged``, ``recovery_s`` (the longest, of the clock: the link polls at most every 2 s
    after a fault; 999 when one never came back)."""
    import random
    from datetime import UTC, datetime

    from ems.clock import FixedClock
    from ems.config import load_config
    from ems.hub import Hub
    from ems.model import IntervalReading, LinkState
    from integrations.ieee2030_5 import async_setup

    rng = random.Random(seed)
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    clock = FixedClock(datetime(2026, 7, 15, 19, 0, tzinfo=UTC))
    failed = 0
    recovery_s = 0.0  # the longest, in the soak clock's seconds, from the meter back to the link online
    kinds: dict[str, int] = {}
    published: list[IntervalReading] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder, data = Path(tmp) / "config", Path(tmp) / "data"
        folder.mkdir()
        (folder / "ems.yaml").write_text("site: {name: Soak, timezone: America/Los_Angeles}\n")
        meter = Ieee2030Meter(load_scenario(REPO / "config" / "scenarios" / "demo.yaml"), clock, idle_s=0.3)
        meter.register_client(identity_for(data).cert_path.read_bytes())
        await meter.start()
        hub = Hub(load_config(folder), data, clock)
        await hub.start()
        hub.bus.listen(IntervalReading, published.append)
        link = await async_setup(hub, {"url": meter.url, "poll_min_s": 5, "stale_after_s": 30, "timeout_s": 0.5,
                                       "retries": 1, "first_retry_s": 1, "retry_max_s": 10, "history_h": 0.2})

        async def advance(seconds: float, step: float = 5.0) -> None:
            while seconds > 0:
                clock.advance(seconds=min(step, seconds))
                seconds -= step
                await asyncio.sleep(0.03)

        async def back_online() -> bool:
            nonlocal recovery_s
            for step in range(60):
                await advance(2, 1)
                if link.state is LinkState.ONLINE:
                    recovery_s = max(recovery_s, 2.0 * (step + 1))
                    return True
            return False

        try:
            for _round in range(rounds):
                fault = rng.choice(["stall", "reboot", "hours", "handshake", "format", "idle", "none"])
                kinds[fault] = kinds.get(fault, 0) + 1
                if fault == "stall":
                    meter.stall()
                    await advance(rng.uniform(10, 60))
                    meter.unstall()
                elif fault == "reboot":
                    await meter.drop()
                    await advance(rng.uniform(5, 90))
                    await meter.resume()
                elif fault == "hours":
                    await meter.drop()
                    await advance(5)
                    clock.advance(hours=rng.uniform(0.5, 3))
                    await meter.resume()
                elif fault == "handshake":
                    await asyncio.sleep(0.4)  # the idle connection goes
                    meter.fail_handshakes(1)
                elif fault == "format":
                    meter.change_format("demand")
                    await advance(20)
                    meter.formats.discard("demand")
                elif fault == "idle":
                    await asyncio.sleep(0.5)
                if not await back_online():
                    failed += 1
                await advance(rng.uniform(15, 60))
            await advance(30)
        finally:
            await link.close()
            await hub.stop()
            await meter.stop()
            logging.getLogger().removeHandler(errors)
        kept = {i.start: i for i in meter.registers.intervals}
    first = min(i.start for i in published)
    last = max(i.start for i in published)
    seen: dict[Any, IntervalReading] = {}
    invented = 0
    for interval in published:
        truth = kept.get(interval.start)
        if truth is None or abs(truth.consumed_kwh - interval.consumed_kwh) > 0.0011 \
                or abs(truth.generated_kwh - interval.generated_kwh) > 0.0011 \
                or (interval.start in seen and seen[interval.start] != interval):
            invented += 1
        seen[interval.start] = interval
    lost = sum(1 for start in kept if first <= start <= last and start not in seen)
    return {"faults": float(rounds), "recoveries_failed": float(failed), "lost_intervals": float(lost),
            "invented_intervals": float(invented), "intervals": float(len(seen)),
            "errors_logged": float(len(errors.records)), "recovery_s": recovery_s if not failed else 999.0,
            **{f"fault_{k}": float(v) for k, v in sorted(kinds.items())}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reads", type=int, default=300)
    parser.add_argument("--stall-s", type=float, default=30.0)
    parser.add_argument("--soak", type=int, default=0, metavar="ROUNDS",
                        help="instead: ROUNDS of the meter's faults, then check nothing lost, nothing invented")
    args = parser.parse_args()
    if args.soak:
        result = asyncio.run(soak(args.soak))
        kinds = ", ".join(f"{k[6:]} {v:.0f}" for k, v in result.items() if k.startswith("fault_"))
        print(f"{result['faults']:.0f} faults ({kinds}): {result['recoveries_failed']:.0f} without recovery, "
              f"{result['intervals']:.0f} intervals read, {result['lost_intervals']:.0f} lost, "
              f"{result['invented_intervals']:.0f} invented, {result['errors_logged']:.0f} errors logged.")
        print(f"ieee2030_5_faults={result['faults']:.0f} recoveries_failed={result['recoveries_failed']:.0f} "
              f"lost_intervals={result['lost_intervals']:.0f} invented_intervals={result['invented_intervals']:.0f} "
              f"errors_logged={result['errors_logged']:.0f}")
        return
    figures = asyncio.run(measure(args.reads, args.stall_s))
    print(f"2030.5 read -> WebSocket after the read's responses arrived, {figures['reads']:.0f} reads: p50 "
          f"{figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms, max {figures['max_ms']:.2f} ms "
          f"(target p99 < 100 ms); from the demand's own response (two summation requests later): p99 "
          f"{figures['p99_from_demand_response_ms']:.2f} ms.")
    print(f"Recovery, from the meter answering again to a value on the WebSocket (target < 60 s): after a "
          f"{args.stall_s:g} s stall {figures['recovery_stall_s']:.1f} s, after {args.stall_s:g} s off the network "
          f"{figures['recovery_drop_s']:.1f} s (its port probed every 2 s while the link backs off); TLS handshakes {figures['handshakes']:.0f}, "
          f"{figures['resumed']:.0f} resumed.")
    print(f"ieee2030_5_p99_ms={figures['p99_ms']:.2f} recovery_s={figures['recovery_s']:.1f}")


if __name__ == "__main__":
    main()
