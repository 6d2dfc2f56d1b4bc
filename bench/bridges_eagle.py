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
3. Soak (``--soak-hours N``, and bench/soak.py's "eagle" stage): hours of the clock with a fault
   every 10-30 minutes, then the published intervals checked against the registers the EAGLE
   served: nothing lost, nothing invented, no duplicates (``soak`` says what each figure counts).

    python bench/bridges_eagle.py [--polls 250] [--poll-ms 50] [--stall-s 600] [--speed 40] [--soak-hours 0]
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
from datetime import UTC, datetime, timedelta
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


class LoggedEagle(SimulatedEagle):
    """The simulated EAGLE, keeping the registers it served (the truth the soak checks against)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple[datetime, float, float, float]] = []  # at, delivered, received, demand

    def variables(self, now: datetime) -> list[tuple[str, str, str, str]]:
        out = super().variables(now)
        if self.meter is not None and self._listed().connection_status == "Connected" and not self._meter_frozen:
            delivered, received = self._registers()
            self.log.append((now, delivered, received, self.meter.demand_kw))
        return out


def _truth(log: list[tuple[datetime, float, float, float]], at: datetime) -> tuple[float, float]:
    """The registers at ``at``, interpolated between the replies served around it."""
    before = max((e for e in log if e[0] <= at), key=lambda e: e[0])
    after = min((e for e in log if e[0] >= at), key=lambda e: e[0])
    if after[0] == before[0]:
        return before[1], before[2]
    share = (at - before[0]) / (after[0] - before[0])
    return before[1] + (after[1] - before[1]) * share, before[2] + (after[2] - before[2]) * share


async def soak(hours: float = 4.0, speed: float = 60.0, seed: int = 1) -> dict[str, float]:
    """The appliance on the section's defaults against the simulated EAGLE for ``hours`` of a clock
    ``speed`` times faster, with a fault every 10-30 minutes: a stall (2-20 min), a reboot (1-5 min),
    a drop (1-2 h), the EAGLE answering from its cache (the same reply again and again, 2-10 min) and
    a firmware reading 0, hex or nothing (2-10 min). Then the intervals it published are checked
    against the registers the EAGLE served: ``lost_intervals`` (time not covered, or energy missing
    beyond 0.05 kWh), ``invented_intervals`` (energy beyond the highest demand served), overlapping
    ``duplicate_intervals``, ``duplicate_readings`` (the same reading published twice running), and
    ``recovery_s`` (the longest, of the clock, from answering again to online)."""
    import random

    rng = random.Random(seed)
    clock = SimulatedClock(START, speed)
    eagle = LoggedEagle(simulated_meter(load_scenario(SCENARIO), clock), clock=clock)
    await eagle.start()
    events: list[Any] = []
    faults: dict[str, int] = {}
    recoveries: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        hub, _web = compose(_config(tmp / "config", eagle, ""), tmp / "data", clock=clock)
        from ems.model import IntervalReading, MeterReading

        online = asyncio.Event()

        def seen(event: Any) -> None:
            if isinstance(event, (IntervalReading, MeterReading)):
                events.append(event)
            elif isinstance(event, MeterLinkChanged):
                (online.set if event.state is LinkState.ONLINE else online.clear)()

        hub.bus.listen_all(seen)
        await hub.start()
        try:
            async with asyncio.timeout(60):
                await online.wait()
            end = START + timedelta(hours=hours)
            order: list[str] = []
            while clock() < end:
                await clock.sleep(rng.uniform(10, 30) * 60)
                if not order:  # every kind once per round, in a shuffled order
                    order = rng.sample(["stall", "reboot", "drop", "cache", "firmware"], 5)
                kind = order.pop()
                faults[kind] = faults.get(kind, 0) + 1
                if kind == "stall":
                    eagle.stall()
                    await clock.sleep(rng.uniform(2, 20) * 60)
                    eagle.release()
                elif kind in ("reboot", "drop"):
                    await eagle.go_down()
                    await clock.sleep(rng.uniform(1, 5) * 60 if kind == "reboot" else rng.uniform(60, 120) * 60)
                    await eagle.come_up()
                elif kind == "cache":
                    eagle.freeze_meter()
                    await clock.sleep(rng.uniform(2, 10) * 60)
                    eagle.freeze_meter(False)
                else:
                    eagle.firmware = rng.choice(["zero", "hex", "empty"])
                    await clock.sleep(rng.uniform(2, 10) * 60)
                    eagle.firmware = "current"
                answering = clock()
                if kind in ("stall", "reboot", "drop"):
                    online.clear()
                async with asyncio.timeout(clock.real_seconds(600) + 10):
                    await online.wait()
                if kind in ("stall", "reboot", "drop"):
                    recoveries.append((clock() - answering).total_seconds())
                    print(f"soak: {kind} ended at {answering:%H:%M:%S}, online {recoveries[-1]:.1f} s later", flush=True)
            await clock.sleep(120)  # the last minutes close
        finally:
            await hub.stop()
            await eagle.stop()
    intervals = sorted((e for e in events if isinstance(e, IntervalReading)), key=lambda i: i.start)
    readings = [e for e in events if isinstance(e, MeterReading)]
    holes = sum(1 for a, b in zip(intervals, intervals[1:], strict=False) if b.start > a.end)
    overlaps = sum(1 for a, b in zip(intervals, intervals[1:], strict=False) if b.start < a.end)
    first, last = _truth(eagle.log, intervals[0].start), _truth(eagle.log, intervals[-1].end)
    missing_in = abs(sum(i.consumed_kwh for i in intervals) - (last[0] - first[0]))
    missing_out = abs(sum(i.generated_kwh for i in intervals) - (last[1] - first[1]))
    peak_kw = max(abs(e[3]) for e in eagle.log)
    invented = sum(1 for i in intervals
                   if max(i.consumed_kwh, i.generated_kwh) > peak_kw * 1.5 * i.duration_s / 3600 + 0.01)
    twice = sum(1 for a, b in zip(readings, readings[1:], strict=False)
                if (a.demand_kw, a.summation_delivered_kwh, a.summation_received_kwh)
                == (b.demand_kw, b.summation_delivered_kwh, b.summation_received_kwh))
    return {
        "hours": hours, "faults": float(sum(faults.values())), **{f"faults_{k}": float(v) for k, v in faults.items()},
        "intervals": float(len(intervals)), "gap_readings": float(sum(1 for i in intervals if i.duration_s > 60)),
        "lost_intervals": float(holes + (missing_in > 0.05) + (missing_out > 0.05)),
        "missing_kwh": round(max(missing_in, missing_out), 4),
        "invented_intervals": float(invented), "duplicate_intervals": float(overlaps),
        "duplicate_readings": float(twice), "recovery_s": max(recoveries, default=0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=250)
    parser.add_argument("--poll-ms", type=float, default=50.0)
    parser.add_argument("--stall-s", type=float, default=600.0)
    parser.add_argument("--speed", type=float, default=40.0)
    parser.add_argument("--soak-hours", type=float, default=0.0,
                        help="also soak the EAGLE path for this many simulated hours (faults, nothing lost or invented)")
    args = parser.parse_args()
    if args.soak_hours:
        result = asyncio.run(soak(args.soak_hours))
        print("EAGLE soak: " + " ".join(f"{k}={v:g}" for k, v in result.items()))
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
