"""Benchmark: one bill check (``BillWatch.check``) on a month and a half of 1-minute intervals.

A real hub on a real SQLite file (in a temporary folder) with the TOU-D-T plan holds 40 days of
1-minute intervals (57,600, the demo's profile) before a fixed instant 12 days into a billing
cycle. Before each check the clock moves a minute on and the next interval is stored; the check
costs the window it needs (about 45 days) and derives the warnings, as ``ems run`` does once a
minute. Also measured: one read of the whole window as columns (``Store.interval_columns``:
what the first costing after a start, or after a page of late history, reads). Measured per check: the process's CPU (every
thread), the wall time, and the longest stall of the event loop, seen by a probe task that
sleeps 1 ms at a time and records how late it wakes (target: no stall over 20 ms). Then, in a
separate pass under tracemalloc, the peak of memory allocated during one check.

With ``--whatif-days N`` a second store holds N days of 1-minute intervals and the 12-month
comparison (``billing.plan_comparison``, ``GET /api/v1/cost/whatif``) runs over them: its CPU,
wall time, longest loop stall, and (in a separate pass under tracemalloc) its peak memory.

    python bench/bill_check.py [--checks 7] [--whatif-days 365]
Last line: cpu_ms=.. wall_ms=.. max_stall_ms=.. idle_stall_ms=.. peak_mb=.. first_stall_ms=.. [whatif_cpu_ms=.. whatif_stall_ms=.. whatif_peak_mb=..]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ems import billing  # noqa: E402
from ems.bill_watch import BillWatch  # noqa: E402
from ems.clock import FixedClock  # noqa: E402
from ems.config import load_config  # noqa: E402
from ems.hub import Hub  # noqa: E402
from ems.model import IntervalReading  # noqa: E402

NOW = datetime(2026, 5, 22, 19, 0, tzinfo=UTC)  # a Friday, noon in Los Angeles; the cycle began on 10 May
DAYS = 40
CONFIG = f"""
site: {{name: Bench home, timezone: America/Los_Angeles}}
tariff: {{plan: TOU-D-T, climate_zone: "10", rates_file: "{REPO / 'config' / 'rates.yaml'}",
         warning_threshold_cost: 50.0}}
"""


class StallProbe:
    """Sleeps 1 ms at a time and keeps the longest lateness (the loop's longest stall)."""

    def __init__(self) -> None:
        self.max_s = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.max_s = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> float:
        assert self._task is not None
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        return self.max_s

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            self.max_s = max(self.max_s, time.perf_counter() - t0 - 0.001)


def minutes(days: int = DAYS) -> list[IntervalReading]:
    first = NOW - timedelta(days=days)
    return [
        IntervalReading("m1", first + timedelta(minutes=i), 60, 0.004 + 0.01 * ((i * 7919) % 13) / 13,
                        0.002 * ((i % 1440) > 600 and (i % 1440) < 1100))
        for i in range(days * 1440)
    ]


async def whatif(days: int) -> tuple[float, float, float, float]:
    """CPU, wall and longest stall (ms) of one 12-month comparison over ``days`` of minutes; peak MB."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "config"
        folder.mkdir()
        (folder / "ems.yaml").write_text(CONFIG)
        hub = Hub(load_config(folder), Path(tmp) / "data", FixedClock(NOW))
        await hub.start()
        try:
            every = minutes(days)
            for k in range(0, len(every), 30 * 1440):
                await hub.store.add_intervals(every[k:k + 30 * 1440])
            del every
            probe = StallProbe()
            probe.start()
            await asyncio.sleep(0.01)
            c0, w0 = time.process_time(), time.perf_counter()
            comparison = await billing.plan_comparison(hub, "m1")
            cpu, wall = (time.process_time() - c0) * 1000, (time.perf_counter() - w0) * 1000
            await asyncio.sleep(0.01)
            stall = await probe.stop() * 1000
            tracemalloc.start()
            await billing.plan_comparison(hub, "m1")
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            await hub.stop()
    print(f"12-month comparison over {days} days of minutes ({comparison.intervals_read:,} read, "
          f"{len(comparison.bills)} plans): CPU {cpu:.0f} ms, wall {wall:.0f} ms, loop stall {stall:.1f} ms, "
          f"peak memory {peak / 2**20:.1f} MB")
    return cpu, wall, stall, peak / 2**20


async def run(checks: int, whatif_days: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "config"
        folder.mkdir()
        (folder / "ems.yaml").write_text(CONFIG)
        clock = FixedClock(NOW)
        hub = Hub(load_config(folder), Path(tmp) / "data", clock)
        await hub.start()
        try:
            await hub.store.add_intervals(minutes())
            watch = BillWatch(hub)
            probe = StallProbe()
            probe.start()
            await asyncio.sleep(0.01)
            c0 = time.process_time()
            await watch.check("m1")  # first use: imports, the whole window read, holiday and time-zone caches
            first_cpu = (time.process_time() - c0) * 1000
            await asyncio.sleep(0.01)
            first_stall = await probe.stop() * 1000
            cpu, wall, stall = [], [], []
            for k in range(checks):
                # Half a minute after the next interval ended (it started before the last check).
                clock.set(NOW + timedelta(minutes=k + 1, seconds=30))
                await hub.store.add_intervals([IntervalReading("m1", NOW + timedelta(minutes=k), 60, 0.01, 0.0)])
                probe.start()
                await asyncio.sleep(0.01)
                c0, w0 = time.process_time(), time.perf_counter()
                await watch.check("m1")
                cpu.append((time.process_time() - c0) * 1000)
                wall.append((time.perf_counter() - w0) * 1000)
                await asyncio.sleep(0.01)
                stall.append(await probe.stop() * 1000)
            idle = []
            for _ in range(checks):  # the same probe with nothing else running: the machine's own noise
                probe.start()
                await asyncio.sleep(0.02 + statistics.median(wall) / 1000)
                idle.append(await probe.stop() * 1000)
            tracemalloc.start()
            await watch.check("m1")
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            probe.start()
            await asyncio.sleep(0.01)
            c0 = time.process_time()
            await hub.store.interval_columns("m1", NOW - timedelta(days=DAYS), clock.now())
            full_cpu = (time.process_time() - c0) * 1000
            await asyncio.sleep(0.01)
            full_stall = await probe.stop() * 1000
        finally:
            await hub.stop()
    print(f"{DAYS * 1440:,} one-minute intervals stored; {checks} checks at {NOW.isoformat()}.")
    print(f"First check after the start (imports the engine, reads the whole window): CPU {first_cpu:.0f} ms, "
          f"loop stall {first_stall:.1f} ms")
    print(f"CPU per check (all threads): median {statistics.median(cpu):.1f} ms, runs {[round(x) for x in cpu]}")
    print(f"Wall per check: median {statistics.median(wall):.1f} ms; loop stall: median "
          f"{statistics.median(stall):.1f} ms, max {max(stall):.1f} ms (probe sleeping 1 ms)")
    print(f"One read of all {DAYS} days as columns: CPU {full_cpu:.1f} ms, "
          f"loop stall {full_stall:.1f} ms")
    print(f"The probe alone (no check, same length): max stall {max(idle):.1f} ms (the machine's noise)")
    print(f"Peak memory allocated during one check (tracemalloc): {peak / 2**20:.1f} MB")
    last = (f"cpu_ms={statistics.median(cpu):.1f} wall_ms={statistics.median(wall):.1f} "
            f"max_stall_ms={max(stall):.1f} idle_stall_ms={max(idle):.1f} peak_mb={peak / 2**20:.1f} "
            f"first_stall_ms={first_stall:.1f}")
    if whatif_days:
        w_cpu, _, w_stall, w_peak = await whatif(whatif_days)
        last += f" whatif_cpu_ms={w_cpu:.0f} whatif_stall_ms={w_stall:.1f} whatif_peak_mb={w_peak:.1f}"
    print(last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=7)
    parser.add_argument("--whatif-days", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(run(args.checks, args.whatif_days))


if __name__ == "__main__":
    main()
