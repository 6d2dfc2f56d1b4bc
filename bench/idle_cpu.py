"""The appliance's CPU use at rest and while a DR event runs: it should stay near idle.

A bug (fixed in 0d72918) made the load control's loop wait 0 s once an event had started, so the
appliance burnt a whole core for as long as any event ran. This runs the appliance as ``ems demo``
does, in this process: the default configuration, the demo's simulated household, rate and home
devices (without the demo's scripted messages and events), the whole appliance and the simulator on
one SimulatedClock. The load is issue 12's: the meter's registers move (and so it reports) every
5 s, and the six home devices report every 30 s (the configuration's ``report_interval_s``). Once
the meter link is up, the home's devices are set up and the start-up is over, it measures the
process's CPU time over a window of real time; then the simulated meter sends a DR event that starts
at once (every device class, an hour long), and once the EMS has it running it measures the same
window again. As ``ems demo`` does, the store is first given five weeks of past 1-minute intervals
(``--history-days 0``: none), so what reads the billing window reads a real one. The windows are whole minutes by default, so a job that runs once a minute (the bill
check on each new 1-minute interval) is counted once in each.

    python bench/idle_cpu.py [--window-s 60] [--speed 1] [--start 2026-07-15T14:00] [--history-days 35]
                             [--profile 25]
Last line: cpu_s_per_min_idle=.. cpu_s_per_min_event=.. event_to_idle_ratio=..

``--profile N`` runs cProfile over the event loop's thread during each window and prints its N
costliest functions (by own time): what to look at when the figure goes up. The profiler slows
what it watches, so the figures of a profiled run are not the ones to quote.

A whole core is 60 CPU seconds per minute. ``--speed`` and ``--start`` set the simulated clock;
they need every part of the appliance to read the hub's clock; without them it runs on the real clock,
as `ems run` and `ems demo` do.
The script also runs on checkouts older than ``ems.clock`` (in real time), to compare before a fix:
``git worktree add /tmp/wt <commit>`` then ``PYTHONPATH=/tmp/wt .venv/bin/python bench/idle_cpu.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import inspect
import io
import pstats
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Not bench/ (its rules.py would shadow the rules package); the repository after PYTHONPATH, so a
# worktree given there is the one measured.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"] + [str(REPO)]

from ems.cli import compose, freeze_startup_objects, read_config  # noqa: E402
from ems.config import WebConfig, default_config_dir  # noqa: E402
from integrations.simulator import SimulatedHan, load_scenario, scenario_from_dict  # noqa: E402

EVENT_ID = 4901
ALL_CLASSES = 0x0FFF
METER_REPORT_S = 5  # issue 12's load: the meter reports every 5 s (the demo's meter moves every 2 s)


def simulated_clock(start: datetime | None, speed: float) -> Any:
    """One SimulatedClock for the appliance and the simulator; None (the real clock, as ``ems run``
    and ``ems demo`` use without ``--start`` or ``--speed``) for real time, or where ems.clock does
    not exist yet."""
    try:
        from ems.clock import SimulatedClock
    except ImportError:
        return None
    if start is None and speed == 1:
        return None
    return SimulatedClock(start or datetime.now(UTC), speed)


async def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def cpu_per_minute(window_s: float, profile: int = 0) -> float:
    """This process's CPU seconds (every thread) over ``window_s`` real seconds, per real minute."""
    profiler = cProfile.Profile() if profile else None
    cpu0, wall0 = time.process_time(), time.monotonic()
    if profiler is not None:
        profiler.enable()
    await asyncio.sleep(window_s)
    if profiler is not None:
        profiler.disable()
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0) * 60
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(profile)
        print(out.getvalue())
    return cpu


def event_active(hub: Any) -> bool:
    return any(v.event.issuer_event_id == EVENT_ID and str(v.phase) == "active"
               for v in hub.control.load_control.views())


async def seed_history(hub: Any, config: Any, scenario: Any, days: int) -> None:
    """Past intervals as ``ems demo`` seeds them (nothing on checkouts without the seeding)."""
    import ems.cli

    seed = getattr(ems.cli, "_seed_demo_history", None)
    if seed is None or days <= 0:
        return
    old_days = getattr(ems.cli, "DEMO_HISTORY_DAYS", days)
    ems.cli.DEMO_HISTORY_DAYS = days
    try:
        await seed(hub, config, scenario)
    finally:
        ems.cli.DEMO_HISTORY_DAYS = old_days


async def measure(window_s: float, start: datetime | None, speed: float, history_days: int = 35,
                  profile: int = 0) -> tuple[float, float]:
    config = read_config(default_config_dir())
    config = replace(config, web=WebConfig(host="127.0.0.1", port=0))
    demo = load_scenario(default_config_dir() / "scenarios" / "demo.yaml")
    # The demo's household, rate and home, without its script: the one event is sent below.
    event = scenario_from_dict({"events": [{"at": 0, "id": EVENT_ID, "starts_in": "0s", "duration_min": 60,
                                            "criticality": 3, "device_class": ALL_CLASSES,
                                            "cooling_offset_c": 2.0}]}).events[0]
    scenario = dataclasses.replace(demo, messages=[], events=[], cancellations=[], price_changes=[],
                                   meter={**demo.meter, "report_interval": timedelta(seconds=METER_REPORT_S)})
    clock = simulated_clock(start, speed)
    if clock is None and (start is not None or speed != 1):
        raise SystemExit("this checkout has no ems.clock: --start and --speed need it")
    simulator = SimulatedHan(scenario, **({"clock": clock} if clock is not None else {}))
    extra = {"clock": clock} if clock is not None and "clock" in inspect.signature(compose).parameters else {}
    with tempfile.TemporaryDirectory() as tmp:
        hub, _web = compose(config, Path(tmp) / "data", simulator=simulator, settle_quiet_s=3.0, **extra)
        await hub.start()
        await seed_history(hub, config, scenario, history_days)
        freeze_startup_objects()  # as `ems demo` does once started
        try:
            devices = len(scenario.home["devices"])
            await wait_for(lambda: any(m.link.value == "online" for m in hub.state.meters.values()), 60,
                           "the meter link")
            registry = hub.control.registry
            await wait_for(lambda: sum(1 for d in registry.devices.values() if d.reading is not None) >= devices,
                           120, f"the {devices} home devices set up")
            await asyncio.wait_for(hub.integrations["settled_freeze"].done.wait(), 120)
            await asyncio.sleep(5.0)  # the devices' setup frames and the first cycle pass
            idle = await cpu_per_minute(window_s, profile)
            print(f"At rest ({len(registry.devices)} home devices, meter online): {idle:.2f} CPU s per real minute")

            await simulator.send_event(event)
            await wait_for(lambda: event_active(hub), 60, f"event {EVENT_ID} running in the EMS")
            await asyncio.sleep(3.0)  # the cycle sheds, the devices answer
            during = await cpu_per_minute(window_s, profile)
            assert event_active(hub), "the event ended during the measurement"
            print(f"While event {EVENT_ID} runs: {during:.2f} CPU s per real minute")
            return idle, during
        finally:
            await hub.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window-s", type=float, default=60.0, help="real seconds measured at rest and in the event")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated time runs this many times faster")
    parser.add_argument("--start", type=datetime.fromisoformat, help="simulated start (aware ISO 8601)")
    parser.add_argument("--history-days", type=int, default=35,
                        help="days of past 1-minute intervals seeded first, as `ems demo` does (0: none)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print the N costliest functions of each window (cProfile; slows the run)")
    args = parser.parse_args()
    idle, during = asyncio.run(measure(args.window_s, args.start, args.speed, args.history_days, args.profile))
    ratio = during / idle if idle > 0 else float("inf")
    print(f"CPU time of the whole process (appliance and simulator), per real minute over {args.window_s:g} s windows:"
          f" {idle:.2f} s at rest, {during:.2f} s while a DR event runs ({ratio:.1f}x; a whole core is 60 s).")
    print(f"cpu_s_per_min_idle={idle:.2f} cpu_s_per_min_event={during:.2f} event_to_idle_ratio={ratio:.2f}")


if __name__ == "__main__":
    main()
