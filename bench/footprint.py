"""Start-up, memory and CPU of `ems run` alone, next to a bare aiohttp server measured in the same run.

    python bench/footprint.py [--runs 3] [--window-s 60] [--rss-minutes 6] [--rss-speed 240]
    python bench/footprint.py --rss-minutes 60 --rss-speed 1      # RSS after a real hour
Last line: startup_ratio=.. rss_mb=.. rss_growth_pct=.. idle_cpu_s_per_min=.. event_cpu_s_per_min=..

The appliance runs as it is installed, ``ems run`` with the default configuration (its rate plan,
rules and six home devices), against the simulated meter in ANOTHER process (``ems simulate-meter``,
as bench/soak.py runs it), so the figures are the appliance's alone. The meter is the demo's
household, rate and home (without the demo's scripted messages and price changes); it reports
demand every 5 s, closes 1-minute intervals, and the six home devices report every 30 s.

1. ``--runs`` alternating pairs (a bare aiohttp server, then the appliance; medians of each):
   - start to HTTP answering: from the process's start to the first HTTP answer (any status) on
     the dashboard's port; ``startup_ratio`` is the appliance's median over the bare server's.
     The appliance's first answer is its "starting" page (503, web/starting.py); the table also
     shows the start to its own API answering (the dashboard's server up, the store open);
   - CPU per idle minute: once the meter link is online, the six devices report and the start-up
     is over (the settled-freeze of the objects made while starting, ~20 s after the last device
     joined), the appliance's CPU seconds (user + system, every thread) over ``--window-s`` real
     seconds, per minute; the same window of the bare server after it answered;
   - CPU per minute while a DR event runs: the meter then sends a DR event (every device class,
     criticality 3, starting at once, an hour long: the scenario's event at ``--event-at`` s after
     the meter started); once the API shows it active, the same window again;
   - RSS after the idle window, for the table.
2. Memory after a run: a fresh meter and appliance on one simulated clock ``--rss-speed`` times
   faster than real time (both are given ``--start/--speed/--since``), for ``--rss-minutes`` real
   minutes (default: a simulated day in 6 minutes, a DR event every 4 simulated hours, the meter
   reporting every 60 simulated seconds). RSS (/proc) every 2 real seconds; ``rss_mb`` is the mean
   of the last tenth of the samples, ``rss_growth_pct`` the growth over the second half of the run
   (mean of the last tenth over the mean of the tenth at the half-way point): the last 30 minutes
   of an hour's run, the last 12 simulated hours of the accelerated day.

Timing figures on a shared machine are noisy: quote medians, and the spread this prints.
The code measured is this checkout's (children run with PYTHONPATH set to it); to measure another
commit, ``git archive <commit> | tar -x -C /tmp/old`` and run this file copied into /tmp/old/bench.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import yaml

REPO = Path(__file__).resolve().parent.parent
# Not bench/ (its rules.py would shadow the rules package); the repository measured instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "bench"] + [str(REPO)]

from bench.children import child_env, free_port, say, stop_process  # noqa: E402

EMS = str(Path(sys.executable).parent / "ems")
EVENT_ID = 4901
ALL_CLASSES = 0x0FFF
DEVICES = 6
START = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)  # 05:00 in Los Angeles: the accelerated day's start

BARE_AIOHTTP = """
import sys
from aiohttp import web

async def hello(request):
    return web.Response(text="ok")

app = web.Application()
app.router.add_get("/", hello)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


def cpu_per_minute(pid: int, window_s: float) -> float:
    """CPU seconds of process ``pid`` (every thread) over ``window_s`` real seconds, per minute."""
    cpu0, wall0 = cpu_s(pid), time.monotonic()
    time.sleep(window_s)
    return (cpu_s(pid) - cpu0) / (time.monotonic() - wall0) * 60


def wait_answering(url: str, proc: subprocess.Popen[Any], started: float, timeout_s: float = 120) -> float:
    """Seconds from ``started`` (perf_counter) until ``url`` gives any HTTP answer."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args[:3]} ended ({proc.returncode}) before answering")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return time.perf_counter() - started
        except urllib.error.HTTPError:  # an answer, whatever its status
            return time.perf_counter() - started
        except OSError:
            time.sleep(0.005)
    raise SystemExit(f"{url} did not answer within {timeout_s:g} s")


# -- the bare aiohttp server -------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    startup_s: float
    rss_mb: float
    idle_cpu: float
    event_cpu: float | None = None
    ready_s: float | None = None  # to the appliance's own answer (not the "starting" page)


def bare_aiohttp(window_s: float) -> Figures:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", BARE_AIOHTTP, str(port)], env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        startup = wait_answering(f"http://127.0.0.1:{port}/", proc, started)
        idle = cpu_per_minute(proc.pid, window_s)
        return Figures(startup, rss_mb(proc.pid), idle)
    finally:
        stop_process(proc)


# -- the meter and the appliance -------------------------------------------------------------


def scenario(event_at: str | None, report_interval: str, events_every_h: float = 0, hours: float = 0) -> dict[str, Any]:
    """The demo's household, rate and home, without its script; the DR events given."""
    demo = yaml.safe_load((REPO / "config" / "scenarios" / "demo.yaml").read_text())
    event = {"id": EVENT_ID, "starts_in": "0s", "duration_min": 60, "criticality": 3,
             "device_class": ALL_CLASSES, "cooling_offset_c": 2.0, "randomize_start": False}
    events = [{**event, "at": event_at}] if event_at is not None else []
    if events_every_h:
        at, number = events_every_h, 0
        while at < hours:
            events.append({**event, "at": f"{at * 60:g}m", "id": EVENT_ID + 1 + number, "duration_min": 30})
            at, number = at + events_every_h, number + 1
    meter = {**demo["meter"], "report_interval": report_interval}
    return {**demo, "name": "footprint", "meter": meter, "messages": [], "events": events,
            "price_changes": [], "cancellations": []}


class Meter:
    """``ems simulate-meter`` in its own process."""

    def __init__(self, work: Path, spec: dict[str, Any], time_args: list[str]) -> None:
        self.port, self.home_port = free_port(), free_port()
        path = work / "scenario.yaml"
        path.write_text(yaml.safe_dump(spec))
        self._stderr = (work / "meter-stderr.log").open("w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [EMS, "simulate-meter", "--scenario", str(path), "--port", str(self.port), "--home-port",
             str(self.home_port), *time_args],
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=child_env())
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "home devices listening" in line:
                break
        else:
            raise SystemExit(f"the simulated meter did not start: {(work / 'meter-stderr.log').read_text()[-3000:]}")

    def stop(self) -> None:
        stop_process(self.proc)
        self._stderr.close()


class Appliance:
    """``ems run`` with the default configuration, its radios pointed at the meter's ports."""

    def __init__(self, work: Path, meter: Meter, stale_after_s: float = 30.0) -> None:
        self.work = work
        self.config = work / "config"
        shutil.copytree(REPO / "config", self.config)
        main = yaml.safe_load((self.config / "ems.yaml").read_text())
        main["web"] = {"host": "127.0.0.1", "port": 8080}
        main["zigbee_se"]["radio"]["path"] = f"virtual://127.0.0.1:{meter.port}"
        main["zigbee_se"]["identity"] = "development"  # registered with the meter in the other process
        main["zigbee_home"]["radio"]["path"] = f"virtual://127.0.0.1:{meter.home_port}"
        main["zigbee_se"]["stale_after_s"] = stale_after_s  # simulated seconds: 4 s of real time at speed
        main.setdefault("demand_response", {})["start_randomization_min"] = 0
        (self.config / "ems.yaml").write_text(yaml.safe_dump(main))
        self.data = work / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = make_owner(self.config, self.data)
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s: float | None = None

    def start(self, time_args: list[str]) -> float:
        """Start it; the seconds until its port gave an HTTP answer (``ready_s`` set too)."""
        stderr = (self.work / "appliance.log").open("w")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [EMS, "run", "-c", str(self.config), "--data-dir", str(self.data), "--port", str(self.port), *time_args],
            stdout=subprocess.DEVNULL, stderr=stderr, env=child_env())
        stderr.close()
        answered = wait_answering(self.url + "/api/v1/health", self.proc, started)
        self.wait(lambda: self.get("/api/v1/health") is not None, "the appliance's own answer", poll_s=0.1)
        self.ready_s = time.perf_counter() - started
        return answered

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def get(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {self.token}"})
        with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
        return None

    def wait(self, predicate: Any, what: str, timeout_s: float = 120, poll_s: float = 0.2) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise SystemExit(f"ems run ended ({self.proc.returncode}): "
                                 f"{(self.work / 'appliance.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(poll_s)

    def online(self) -> bool:
        return (self.get("/api/v1/health") or {}).get("status") == "ok"

    def devices_up(self) -> bool:
        devices = (self.get("/api/v1/devices") or {}).get("devices", [])
        return len(devices) >= DEVICES and all(d.get("available") for d in devices)

    def event_active(self, event_id: int = EVENT_ID) -> bool:
        events = (self.get("/api/v1/events") or {}).get("events", [])
        return any(e["issuer_event_id"] == event_id and e["status"] == "active" for e in events)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)


def make_owner(config: Path, data: Path) -> str:
    """The owner's account and an API token, written into the store before the first start."""
    from ems.accounts import Accounts, Role
    from ems.cli import read_config
    from ems.store import Store

    async def make() -> str:
        store = Store(read_config(config).store, data)
        await store.open()
        try:
            accounts = Accounts(store)
            owner = await accounts.create_user("owner", "owner-password-footprint", Role.OWNER)
            return str((await accounts.create_token(owner, "footprint", owner.scopes)).secret)
        finally:
            await store.close()

    return asyncio.run(make())


@contextlib.contextmanager
def meter_and_appliance(work: Path, spec: dict[str, Any], time_args: list[str],
                        speed: float = 1.0) -> Iterator[tuple[Meter, Appliance]]:
    work.mkdir(parents=True, exist_ok=True)
    meter = Meter(work, spec, time_args)
    appliance: Appliance | None = None
    try:
        appliance = Appliance(work, meter, stale_after_s=max(30.0, 4 * speed))
        yield meter, appliance
    finally:
        if appliance is not None:
            appliance.stop()
        meter.stop()


SETTLE_S = 25.0  # the settled-freeze waits 20 s without a new device (ems.cli.SettledFreeze)


def ems_run(work: Path, window_s: float, event_at_s: float) -> Figures:
    spec = scenario(f"{event_at_s:g}s", "5s")
    with meter_and_appliance(work, spec, []) as (meter, appliance):
        startup = appliance.start([])
        appliance.wait(appliance.online, "the meter link online")
        appliance.wait(appliance.devices_up, f"the {DEVICES} home devices available")
        time.sleep(SETTLE_S)
        left = event_at_s - (time.monotonic() - meter.started) - 2.0
        if left < 15:
            raise SystemExit(f"only {left:.0f} s before the event for the idle window: raise --event-at")
        if left < window_s:
            say(f"  the start-up was slow: an idle window of {left:.0f} s, not {window_s:g} s (raise --event-at)")
        idle = cpu_per_minute(appliance.pid, min(window_s, left))
        rss = rss_mb(appliance.pid)
        appliance.wait(appliance.event_active, f"event {EVENT_ID} active", timeout_s=event_at_s + 60)
        time.sleep(3.0)  # the cycle sheds, the devices answer
        during = cpu_per_minute(appliance.pid, window_s)
        if not appliance.event_active():
            raise SystemExit("the event ended during the measurement")
        return Figures(startup, rss, idle, during, appliance.ready_s)


# -- memory after a run ------------------------------------------------------------------------


def rss_run(work: Path, minutes: float, speed: float) -> tuple[float, float, float]:
    """(RSS MB at the end, growth % over the second half, max MB) of an appliance run on simulated time."""
    hours = minutes * speed / 60 + 1
    since = time.time()
    time_args = ["--start", START.isoformat(), "--speed", str(speed), "--since", repr(since)]
    spec = scenario(None, "60s" if speed > 1 else "5s", events_every_h=4.0 if speed > 1 else 0, hours=hours)
    with meter_and_appliance(work, spec, time_args, speed) as (_meter, appliance):
        appliance.start(time_args)
        appliance.wait(appliance.online, "the meter link online")
        began = time.monotonic()
        end = began + minutes * 60
        samples: list[float] = []
        next_say = began
        while time.monotonic() < end:
            assert appliance.proc is not None
            if appliance.proc.poll() is not None:
                raise SystemExit(f"the appliance ended during the memory run: "
                                 f"{(work / 'appliance.log').read_text()[-3000:]}")
            samples.append(rss_mb(appliance.pid))
            if time.monotonic() >= next_say:
                simulated = START + timedelta(seconds=(time.time() - since) * speed)
                say(f"  memory: {(time.monotonic() - began) / 60:4.1f} real min (simulated {simulated:%H:%M} UTC):"
                    f" RSS {samples[-1]:.1f} MB")
                next_say += 60
            time.sleep(2.0)
        if not appliance.online():
            raise SystemExit("the meter link was not online at the end of the memory run: no figure for an idle appliance")
    tenth = max(1, len(samples) // 10)
    half = len(samples) // 2
    at_half = statistics.mean(samples[half:half + tenth])
    last = statistics.mean(samples[-tenth:])
    return last, (last - at_half) / at_half * 100, max(samples)


# -- main ----------------------------------------------------------------------------------------


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="alternating runs of each (medians)")
    parser.add_argument("--window-s", type=float, default=60.0, help="real seconds of each CPU window")
    parser.add_argument("--event-at", type=float, default=160.0,
                        help="the DR event's moment, seconds after the meter started (after the idle window)")
    parser.add_argument("--rss-minutes", type=float, default=6.0, help="real minutes of the memory run (0: none)")
    parser.add_argument("--rss-speed", type=float, default=240.0, help="simulated time this many times faster")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ems-footprint-"))
    say(f"measuring {REPO} (work in {work})")
    bare: list[Figures] = []
    ems: list[Figures] = []
    try:
        for number in range(1, args.runs + 1):
            bare.append(bare_aiohttp(args.window_s))
            say(f"run {number}/{args.runs} bare aiohttp: answered in {bare[-1].startup_s:.2f} s, "
                f"{bare[-1].idle_cpu:.2f} CPU s/min idle, RSS {bare[-1].rss_mb:.1f} MB")
            ems.append(ems_run(work / f"run-{number}", args.window_s, args.event_at))
            say(f"run {number}/{args.runs} ems run: answered in {ems[-1].startup_s:.2f} s, "
                f"{ems[-1].idle_cpu:.2f} CPU s/min idle, {ems[-1].event_cpu:.2f} in the event, "
                f"RSS {ems[-1].rss_mb:.1f} MB after the idle window")
        rss = growth = peak = float("nan")
        if args.rss_minutes > 0:
            say(f"memory: {args.rss_minutes:g} real minutes at {args.rss_speed:g}x "
                f"({args.rss_minutes * args.rss_speed / 60:g} simulated hours)")
            rss, growth, peak = rss_run(work / "rss", args.rss_minutes, args.rss_speed)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    startup = statistics.median(f.startup_s for f in ems)
    startup_bare = statistics.median(f.startup_s for f in bare)
    idle = statistics.median(f.idle_cpu for f in ems)
    event = statistics.median(f.event_cpu for f in ems if f.event_cpu is not None)
    print(f"\nMedians of {args.runs} alternating runs (min-max); CPU over {args.window_s:g} s windows, per minute:")
    print(f"{'':28}{'ems run (meter apart)':>26}{'bare aiohttp':>22}")
    print(f"{'start to HTTP answering s':28}{spread([f.startup_s for f in ems]):>26}"
          f"{spread([f.startup_s for f in bare]):>22}")
    print(f"{'start to its own API s':28}{spread([f.ready_s or 0.0 for f in ems]):>26}{'-':>22}")
    print(f"{'RSS after the idle window MB':28}{spread([f.rss_mb for f in ems], '{:.1f}'):>26}"
          f"{spread([f.rss_mb for f in bare], '{:.1f}'):>22}")
    print(f"{'CPU s per idle minute':28}{spread([f.idle_cpu for f in ems]):>26}{spread([f.idle_cpu for f in bare]):>22}")
    print(f"{'CPU s per minute in an event':28}{spread([f.event_cpu or 0.0 for f in ems]):>26}{'-':>22}")
    if args.rss_minutes > 0:
        print(f"Memory run: {args.rss_minutes:g} min at {args.rss_speed:g}x: RSS {rss:.1f} MB at the end "
              f"(max {peak:.1f}), {growth:+.1f} % over the second half.")
    print("Targets: startup_ratio <= 2, rss_mb <= 100, rss_growth_pct <= 2, idle_cpu_s_per_min <= 0.3, "
          "event_cpu_s_per_min <= 0.5")
    print(f"startup_ratio={startup / startup_bare:.2f} rss_mb={rss:.1f} rss_growth_pct={growth:.1f} "
          f"idle_cpu_s_per_min={idle:.2f} event_cpu_s_per_min={event:.2f}")


if __name__ == "__main__":
    main()
