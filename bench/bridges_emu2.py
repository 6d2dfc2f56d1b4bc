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

3. ``--soak-hours H``: instead, a day (or H hours) of simulated time on a fixed clock moved in
   steps, the link reading the bridge through a real Hub, with a fault every 20-90 minutes, in
   a random order (``--seed``): a stall of a minute to three hours (the hours-long drop), a reboot, junk
   on the line, a firmware writing the summation in another format for a while. The intervals are
   checked against every summation the bridge wrote: contiguous (``lost_s``: time no interval
   covers; ``duplicate_s``: time covered twice), their energy the registers' delta at their ends
   (``lost_kwh``/``invented_kwh``), no interval's mean demand above the household's peak (a spike),
   nothing logged at ERROR, and the link online again after every fault (``max_recovery_s`` of
   simulated time from the bridge answering again).
   Last line: emu2_faults=.. lost_s=.. duplicate_s=.. lost_kwh=.. invented_kwh=.. spikes=..
   errors=.. max_recovery_s=..
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import random
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


# -- the soak -------------------------------------------------------------------------------

SOAK_START = datetime(2026, 7, 15, 7, 0, tzinfo=UTC)  # midnight in Los Angeles


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def soak(hours: float = 24.0, seed: int = 16) -> dict[str, float]:
    """Faults at random over ``hours`` of simulated time; the figures (see the module docstring)."""
    from ems.clock import FixedClock
    from ems.config import load_config
    from ems.hub import Hub
    from ems.model import IntervalReading
    from integrations.rainforest.emu2_link import Emu2Link, Emu2Settings

    rng = random.Random(seed)
    clock = FixedClock(SOAK_START)
    errors = _Errors()
    logging.getLogger().addHandler(errors)
    intervals: list[IntervalReading] = []
    recoveries: list[float] = []
    faults: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "config"
        folder.mkdir()
        (folder / "ems.yaml").write_text("site: {name: Soak, timezone: America/Los_Angeles}\n")
        hub = Hub(load_config(folder), Path(tmp) / "data", clock)
        bridge = SimulatedEmu2(load_scenario(SCENARIO), clock)
        await hub.start()
        await bridge.start()
        link = Emu2Link(hub, Emu2Settings(port=bridge.path))
        hub.bus.listen(IntervalReading, intervals.append)
        await link.start()
        try:
            end = SOAK_START + timedelta(hours=hours)
            next_fault = clock() + timedelta(minutes=rng.uniform(20, 90))
            fault_ends: datetime | None = None
            answering_since: datetime | None = None
            undo: Any = None
            kinds: list[str] = []
            while clock() < end:
                now = clock()
                if fault_ends is None and now >= next_fault:
                    if not kinds:  # every kind in each round of five, in a random order
                        kinds = rng.sample(["stall", "stall", "reboot", "junk", "format"], 5)
                    kind = kinds.pop()
                    faults[kind] += 1
                    if kind == "stall":
                        bridge.stall()
                        fault_ends, undo = now + timedelta(minutes=rng.choice([1, 5, 20, 60, 180])), bridge.resume
                    elif kind == "reboot":
                        bridge.reboot()
                    elif kind == "junk":
                        bridge.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
                    else:
                        field = rng.choice(["SummationDelivered", "SummationReceived", "Demand"])
                        bridge.field_formats[field] = rng.choice(["decimal", "float"])
                        fault_ends, undo = now + timedelta(minutes=rng.uniform(5, 60)), bridge.field_formats.clear
                    if fault_ends is None:
                        next_fault = now + timedelta(minutes=rng.uniform(20, 90))
                elif fault_ends is not None and now >= fault_ends:
                    undo()
                    fault_ends, answering_since = None, now
                    next_fault = now + timedelta(minutes=rng.uniform(20, 90))
                if answering_since is not None and link.state is LinkState.ONLINE:
                    recoveries.append((now - answering_since).total_seconds())
                    answering_since = None
                clock.advance(seconds=30 if bridge.stalled else 5)
                await asyncio.sleep(0.004)  # the pty's bytes go through
        finally:
            await link.close()
            await bridge.stop()
            await hub.stop()
            logging.getLogger().removeHandler(errors)
    return _soak_figures(intervals, bridge.summations, faults, recoveries, errors.records,
                         peak_kw=max(abs(bridge.household.net_kw(SOAK_START + timedelta(minutes=m)))
                                     for m in range(0, int(hours * 60), 5)) + 1.0)


def _soak_figures(intervals: list[Any], written: list[tuple[datetime, float, float]],
                  faults: collections.Counter[str], recoveries: list[float], errors: list[logging.LogRecord],
                  peak_kw: float) -> dict[str, float]:
    ordered = sorted(intervals, key=lambda i: i.start)
    lost_s = duplicate_s = 0.0
    for before, after in zip(ordered, ordered[1:], strict=False):
        step = (after.start - before.end).total_seconds()
        lost_s += max(0.0, step)
        duplicate_s += max(0.0, -step)
    expected = _registers_at(written, ordered[-1].end)[0] - _registers_at(written, ordered[0].start)[0]
    got = sum(i.consumed_kwh for i in ordered)
    spikes = sum(1 for i in ordered if i.consumed_kwh / (i.duration_s / 3600) > peak_kw)
    return {"emu2_faults": float(sum(faults.values())), "lost_s": lost_s, "duplicate_s": duplicate_s,
            "lost_kwh": max(0.0, expected - got), "invented_kwh": max(0.0, got - expected),
            "spikes": float(spikes), "errors": float(len(errors)),
            "max_recovery_s": max(recoveries, default=0.0), "intervals": float(len(ordered)),
            "gap_intervals": float(sum(1 for i in ordered if i.duration_s > 60)),
            **{f"faults_{k}": float(v) for k, v in faults.items()}}


def _registers_at(written: list[tuple[datetime, float, float]], at: datetime) -> tuple[float, float]:
    """The bridge's registers at ``at``, linear between the summations it wrote (as the link reads them).

    The link stamps a summation when it reads it, a clock step after the bridge wrote it at worst:
    an interval's end a few seconds past the last one written takes that last one."""
    if at >= written[-1][0]:
        return written[-1][1], written[-1][2]
    for (t0, d0, r0), (t1, d1, r1) in zip(written, written[1:], strict=False):
        if t0 <= at <= t1:
            share = (at - t0).total_seconds() / (t1 - t0).total_seconds()
            return d0 + (d1 - d0) * share, r0 + (r1 - r0) * share
    return written[0][1], written[0][2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fragments", type=int, default=250)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--soak-hours", type=float, help="run the fault soak instead (simulated hours)")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    if args.soak_hours:
        result = asyncio.run(soak(args.soak_hours, args.seed))
        kinds = ", ".join(f"{k[7:]} {v:.0f}" for k, v in result.items() if k.startswith("faults_"))
        print(f"EMU-2 soak, {args.soak_hours:g} simulated hours, {result['emu2_faults']:.0f} faults ({kinds}): "
              f"{result['intervals']:.0f} intervals ({result['gap_intervals']:.0f} spanning a gap), "
              f"{result['lost_s']:.0f} s uncovered, {result['duplicate_s']:.0f} s covered twice, energy off by "
              f"{result['lost_kwh'] + result['invented_kwh']:.4f} kWh, {result['spikes']:.0f} spikes, "
              f"{result['errors']:.0f} errors logged, back online at most {result['max_recovery_s']:.0f} s "
              "(simulated) after the bridge answered again.")
        print(" ".join(f"{k}={result[k]:g}" for k in ("emu2_faults", "lost_s", "duplicate_s", "lost_kwh",
                                                         "invented_kwh", "spikes", "errors", "max_recovery_s")))
        return
    figures = asyncio.run(measure(args.fragments, args.rate))
    print(f"EMU-2 fragment on the pty -> value on the WebSocket, {figures['emu2_fragments']:.0f} fragments at "
          f"{args.rate:g}/s: p50 {figures['emu2_p50_ms']:.2f} ms, p99 {figures['emu2_p99_ms']:.2f} ms, "
          f"max {figures['emu2_max_ms']:.2f} ms (target p99 < 100 ms).")
    print(f"Recovery after a stall: online {figures['recovery_s']:.1f} s after the EMU-2 answered again "
          f"(after {figures['reopens']:.0f} reopens of the port; target < 60 s).")
    print(f"emu2_p99_ms={figures['emu2_p99_ms']:.2f} recovery_s={figures['recovery_s']:.1f}")


if __name__ == "__main__":
    main()
