"""A building under load for a simulated day: 8 meters, 300 devices, a DR event, 25 screens.

The whole appliance runs in this process on simulated time (``ems.clock.SimulatedClock``, the
clock ``ems run --speed`` uses), as bench/dr.py and bench/ingest.py do:

- 8 simulated meters, each on its own virtual HAN with the real zigpy stack, each with its own
  meter link (``zigbee_se`` with meter ids main, m2 .. m8). Every meter's demand changes once a
  real second (a unique value, so each one's arrival on each screen is timed), and the meters'
  own rhythm (summations, load profile intervals) runs on simulated time.
- 300 simulated smart plugs on the home's own Zigbee network (``--devices``), over the virtual
  radio and the real zigpy stack (bench/dr.py runs 200 the same way).
- The main meter sends a DR event for every device class (``device_class`` 0x0FFF) every 6
  simulated hours, 2 hours long, and a utility message every simulated hour; the customer's rules
  follow every event, so the 300 plugs are shed and restored each time.
- 20 dashboards (owner API token) and 5 In-Home Displays (a display link: ``/ihd?k=`` sets the
  kiosk cookie) hold the live WebSocket (``/api/v1/ws``) the pages use, as real aiohttp clients;
  like live.js and ihd.js they ask for a fresh snapshot every 60 s.

Measured: queue depths sampled every 2 real seconds (the bus's listener tasks, the hub's tasks,
the store writer's backlog, the outbox's undelivered items), and whether any grows after the
warm-up; delivery latency meter -> screen (the demand value's set on the simulated meter to its
arrival on each WebSocket; C6: 10 s) and utility -> screen (a DR event's or message's send by the
meter to its arrival in the 'events' / 'messages' push on each screen; C6: 2 min); the longest
event-loop stall (ems.loop_probe's method, every 10 ms); this process's RSS over the simulated
day and rss_growth_pct (the mean of the last tenth of the samples over the mean of the first
tenth after the warm-up). Everything (simulators and clients too) shares the one event loop and
process, so the stalls and the RSS are an upper bound on the appliance's own: the simulated meters
keep, by design, their load profile and the conformance checker's and virtual nodes' frame logs
(the census printed at the end says what grew); bench/soak.py's rss stage measures ``ems run`` alone.

    PYTHONPATH=$PWD .venv/bin/python bench/load.py [--quick] [--hours 24] [--speed 96]

Last line: meters=.. devices=.. dashboards=.. ihds=.. max_queue=.. queue_growth=.. p99_display_latency_s=..
max_display_latency_s=.. p99_utility_latency_s=.. max_loop_block_ms=.. rss_growth_pct=.. simulated_hours=..
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import threading
import time
import traceback
import tracemalloc
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402

from ems.accounts import Accounts, Role  # noqa: E402
from ems.cli import compose, read_config  # noqa: E402
from ems.clock import SimulatedClock  # noqa: E402
from ems.loop_probe import rss_kb  # noqa: E402
from integrations import zigbee_se  # noqa: E402
from integrations.simulator import SimulatedHan, scenario_from_dict  # noqa: E402
from integrations.zigbee.se.clusters import Metering  # noqa: E402
from web.keys import LIVE  # noqa: E402

START = datetime(2026, 7, 15, 13, 0, tzinfo=UTC)  # 06:00 in Los Angeles
EVENT_EVERY_H, EVENT_HOURS = 6, 2
CONFIG = f"""
site: {{name: Load building, timezone: America/Los_Angeles}}
tariff: {{plan: TOU-D-T, climate_zone: "10", rates_file: "{REPO / 'config' / 'rates.yaml'}"}}
web: {{host: 127.0.0.1, port: 0}}
zigbee_se: {{report_interval_s: 1, stale_after_s: 600}}
zigbee_home:
  permit_join_s: 254
  report_interval_s: 60
  command_timeout_s: 10
demand_response:
  start_randomization_min: 0
  cycle_tick_s: 60
"""
RULES = """\
rules:
  - name: Follow every event
    triggers: [{event: active}]
    action: follow_event
"""


def census() -> Counter[str]:
    """How many objects the collector tracks, by type name."""
    return Counter(type(o).__name__ for o in gc.get_objects())


async def profile_cycle(hub: Any, cycles: int) -> None:
    """While an event holds every device: ``cycles`` control cycles (a demand trigger) under cProfile."""
    import cProfile
    import io
    import pstats

    from ems.model import Trigger, TriggerKind

    profiler = cProfile.Profile()
    began = time.perf_counter()
    profiler.enable()
    for _ in range(cycles):
        await hub.control.cycle.run_once(Trigger(TriggerKind.DEMAND, meter_id="main"))
    profiler.disable()
    say(f"{cycles} control cycles with every device held: {(time.perf_counter() - began) * 1000 / cycles:.0f} ms "
        "each under cProfile; by cumulative time:")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(r"(ems|rules|web|integrations)/", 22)
    for line in out.getvalue().splitlines():
        if line.strip() and ("/" in line or "ncalls" in line):
            print("    " + line.replace(str(REPO) + "/", ""), flush=True)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def main_scenario(devices: int, events: int, messages: int, event_min: int) -> dict[str, Any]:
    """The main meter and the home's plugs. The events and messages are listed (validated the
    scenario's way) at a time never reached; the bench sends them by hand once every device has joined."""
    return {"name": "load", "timezone": "America/Los_Angeles",
            "meter": {"report_interval": "60s", "profile_interval_min": 5},
            "events": [{"at": "3650d", "id": 9001 + n, "start": "now", "duration_min": event_min,
                        "criticality": 3, "device_class": 0x0FFF} for n in range(events)],
            "messages": [{"at": "3650d", "id": 501 + n, "text": f"Building notice {n + 1}.", "duration_min": 120}
                         for n in range(messages)],
            "home": {"devices": [], "extra_plugs": {"count": devices, "nominal_kw": 0.5}}}


def extra_scenario(index: int) -> dict[str, Any]:
    return {"name": f"load-m{index}", "timezone": "America/Los_Angeles",
            "meter": {"report_interval": "60s", "profile_interval_min": 5,
                      "ieee": f"00:0d:6f:00:0a:90:70:{index:02x}", "initial_delivered_kwh": 10_000.0 + index},
            "home": {"devices": []}}


class StallWatch:
    """A thread that samples the loop's thread every 10 ms while the loop has not turned for
    ``threshold_ms``: which functions the stalls are spent in (inclusive and innermost samples)."""

    def __init__(self, threshold_ms: float = 100.0) -> None:
        self.threshold_s = threshold_ms / 1000
        self.beat = time.monotonic()
        self.inclusive: Counter[str] = Counter()
        self.innermost: Counter[str] = Counter()
        self.samples = 0
        self._thread_id = threading.get_ident()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            if time.monotonic() - self.beat < self.threshold_s:
                continue
            frame = sys._current_frames().get(self._thread_id)
            if frame is None:
                continue
            stack = traceback.extract_stack(frame)
            self.samples += 1
            names = {f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.name}" for f in stack}
            self.inclusive.update(names)
            last = stack[-1]
            self.innermost[f"{Path(last.filename).parent.name}/{Path(last.filename).name}:{last.lineno} {last.name}"] += 1

    def report(self) -> None:
        if not self.samples:
            return
        say(f"  {self.samples} samples (every 10 ms) while the loop was stalled over {self.threshold_s * 1000:.0f} ms;"
            " inclusive, this project's code:")
        ours = [(k, v) for k, v in self.inclusive.most_common() if k.split("/")[0] in ("dr", "ems", "store", "web",
                "zigbee_se", "zigbee_home", "zigbee", "rules", "simulator")]
        for where, count in ours[:14]:
            say(f"    {count:5d}  {where}")
        say("  innermost:")
        for where, count in self.innermost.most_common(6):
            say(f"    {count:5d}  {where}")


class Screen:
    """One open page's WebSocket: what arrived, when."""

    def __init__(self, name: str, bench: Bench) -> None:
        self.name = name
        self.bench = bench
        self.frames = 0
        self.seen_events: set[int] = set()
        self.seen_messages: set[int] = set()

    async def run(self, session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
        async with session.ws_connect(url, headers=headers, heartbeat=30) as ws:
            self.bench.connected += 1
            resend = asyncio.get_running_loop().create_task(self._snapshots(ws))
            try:
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        continue
                    self.frames += 1
                    self.receive(json.loads(message.data), time.monotonic())
            finally:
                resend.cancel()

    async def _snapshots(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:  # as live.js and ihd.js do
            await asyncio.sleep(60)
            await ws.send_str("snapshot")

    def receive(self, data: dict[str, Any], at: float) -> None:
        topic = data["topic"]
        if topic == "meter":
            self.bench.meter_seen(data["data"], at)
        elif topic in ("events", "snapshot"):
            events = data["data"] if topic == "events" else data["data"]["events"]
            for event in events if isinstance(events, list) else []:
                event_id = event.get("issuer_event_id")
                if event_id is not None and event_id not in self.seen_events:
                    self.seen_events.add(event_id)
                    self.bench.utility_seen(("event", event_id), at)
        if topic in ("messages", "snapshot"):
            messages = data["data"] if topic == "messages" else data["data"]["messages"]
            for message in messages:
                message_id = message.get("message_id")
                if message_id is not None and message_id not in self.seen_messages:
                    self.seen_messages.add(message_id)
                    self.bench.utility_seen(("message", message_id), at)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.connected = 0
        self.demand_sent: dict[tuple[str, float], float] = {}
        self.display_latency: list[float] = []
        self.utility_sent: dict[tuple[str, int], float] = {}
        self.utility_latency: dict[str, list[float]] = defaultdict(list)
        self.samples: list[dict[str, Any]] = []
        self.worst_block_ms = 0.0
        self.block_after_warmup_ms = 0.0
        self.warm = False
        self.stalls = StallWatch()
        self.busiest_count, self.busiest_tasks = -1, []
        self.census: Counter[str] = Counter()
        self.profiled = False

    # -- what the screens saw ---------------------------------------------------------------

    def meter_seen(self, meter: dict[str, Any], at: float) -> None:
        sent = self.demand_sent.get((meter["meter_id"], meter["demand_kw"]))
        if sent is not None:
            self.display_latency.append(at - sent)

    def utility_seen(self, key: tuple[str, int], at: float) -> None:
        sent = self.utility_sent.get(key)
        if sent is not None:
            self.utility_latency[key[0]].append(at - sent)

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        args = self.args
        warmup_h = args.warmup_hours
        clock = SimulatedClock(START, args.speed)
        with tempfile.TemporaryDirectory(prefix="ems-load-") as tmp:
            folder = Path(tmp) / "config"
            folder.mkdir()
            (folder / "ems.yaml").write_text(CONFIG)
            (folder / "rules.yaml").write_text(RULES)
            config = read_config(folder)
            total_h = warmup_h + args.hours
            spec = scenario_from_dict(main_scenario(args.devices, int(total_h // EVENT_EVERY_H) + 1, int(total_h) + 1,
                                                       args.event_minutes))
            main = SimulatedHan(spec, clock=clock)
            hub, web = compose(config, Path(tmp) / "data", simulator=main, clock=clock, settle_quiet_s=2.0)
            self.web = web
            extras = [SimulatedHan(scenario_from_dict(extra_scenario(i)), clock=clock) for i in range(2, args.meters + 1)]
            links: list[Any] = []
            tasks: list[asyncio.Task[Any]] = []
            began = time.monotonic()
            await hub.start()
            try:
                for i, sim in enumerate(extras, start=2):
                    # Each meter is registered and commissioned on its own (C6 4.1): the utility has
                    # registered the appliance's install code with every one of them.
                    sim.register_appliance(hub.identity.ieee, hub.identity.install_code)
                    await sim.start()
                    section = zigbee_se.with_overrides(dict(config.sections["zigbee_se"], meter_id=f"m{i}"),
                                                       radio_path=f"virtual://127.0.0.1:{sim.port}")
                    links.append(await zigbee_se.async_setup(hub, section))
                meters = {"main": main, **{f"m{i}": sim for i, sim in enumerate(extras, start=2)}}
                await self._wait(lambda: len(hub.state.meters) >= args.meters and all(
                    m.link.value == "online" for m in hub.state.meters.values()), 120, f"{args.meters} meter links")
                await self._wait(lambda: sum(1 for d in hub.control.registry.devices.values()
                                             if d.reading is not None) >= args.devices, 600,
                                 f"{args.devices} devices joined and reporting")
                await asyncio.wait_for(hub.integrations["settled_freeze"].done.wait(), 120)
                say(f"{args.meters} meters online and {args.devices} devices joined and reporting after "
                    f"{time.monotonic() - began:.0f} s (simulated {clock().isoformat(timespec='minutes')})")
                tasks.append(asyncio.get_running_loop().create_task(self._probe()))
                await self._screens(hub, web.url, tasks)
                for meter_id, sim in meters.items():
                    tasks.append(asyncio.get_running_loop().create_task(self._drive(meter_id, sim)))
                ready = clock()
                tasks.append(asyncio.get_running_loop().create_task(self._utility(main, spec, clock, ready, warmup_h)))
                return await self._soak(hub, clock, ready, warmup_h)
            finally:
                for task in tasks:
                    task.cancel()
                await self._bounded("the screens and drivers", asyncio.gather(*tasks, return_exceptions=True))
                for link in links:
                    await self._bounded(f"meter link {link.meter_id}", link.close())
                for sim in extras:
                    await self._bounded("a simulated meter", sim.stop())
                await self._bounded("the hub", hub.stop())

    @staticmethod
    async def _bounded(what: str, awaitable: Any, timeout_s: float = 60.0) -> None:
        """Stop something; if it hangs, say what every task is waiting on (a bench must end)."""
        try:
            await asyncio.wait_for(awaitable, timeout_s)
        except TimeoutError:
            say(f"stopping {what} took over {timeout_s:g} s; the tasks still running:")
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    say(f"  {task.get_name()}: {task.get_coro()}")
                    task.print_stack(limit=3, file=sys.stdout)

    async def _utility(self, main: SimulatedHan, spec: Any, clock: SimulatedClock, ready: datetime,
                       warmup_h: float) -> None:
        """The utility's script: a message every simulated hour (from ready + 30 min), a DR event for
        every device every 6 hours (from the warm-up's end + 10 min), timed from the meter's send."""
        steps = [(ready + timedelta(minutes=30 + 60 * n), "message", m) for n, m in enumerate(spec.messages)]
        steps += [(ready + timedelta(hours=warmup_h + EVENT_EVERY_H * n, minutes=10), "event", e)
                  for n, e in enumerate(spec.events)]
        for at, kind, item in sorted(steps, key=lambda s: s[0]):
            delay = (at - clock()).total_seconds()
            if delay > 0:
                await clock.sleep(delay)
            self.utility_sent[(kind, item["id"])] = time.monotonic()
            await (main.send_event(item) if kind == "event" else main.send_message(item))
            say(f"  the meter sent {kind} {item['id']} at simulated {clock().isoformat(timespec='minutes')}")

    async def _screens(self, hub: Any, url: str, tasks: list[asyncio.Task[Any]]) -> None:
        accounts = Accounts(hub.store)
        owner = await accounts.create_user("owner", "owner-password-load", Role.OWNER)
        token = (await accounts.create_token(owner, "dashboards", owner.scopes)).secret
        ws_url = url.replace("http://", "ws://") + "/api/v1/ws"
        loop = asyncio.get_running_loop()
        self.screens = []
        for n in range(self.args.dashboards):
            screen = Screen(f"dashboard {n + 1}", self)
            session = aiohttp.ClientSession()
            tasks.append(loop.create_task(self._hold(session, screen.run(
                session, ws_url, {"Authorization": f"Bearer {token}"}))))
            self.screens.append(screen)
        for n in range(self.args.ihds):
            link = (await accounts.create_kiosk_token(owner, f"Lobby {n + 1}")).secret
            session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            async with session.get(f"{url}/ihd?k={link}") as response:  # sets the kiosk cookie, then /ihd
                assert response.status == 200, f"/ihd answered {response.status}"
            screen = Screen(f"IHD {n + 1}", self)
            tasks.append(loop.create_task(self._hold(session, screen.run(session, ws_url, {}))))
            self.screens.append(screen)
        await self._wait(lambda: self.connected >= len(self.screens), 30, "every screen connected")
        say(f"{self.args.dashboards} dashboards and {self.args.ihds} IHDs connected")

    @staticmethod
    async def _hold(session: aiohttp.ClientSession, run: Any) -> None:
        try:
            await run
        finally:
            await session.close()

    async def _drive(self, meter_id: str, sim: SimulatedHan) -> None:
        """The meter's demand changes once a real second, to a value no other second had."""
        seq = 0
        node = sim.node
        while True:
            seq += 1
            raw = 200_000 + seq * 10 + int(meter_id[1:] if meter_id != "main" else 1)
            self.demand_sent[(meter_id, round(raw / 1000, 3))] = time.monotonic()
            node.set_attribute(1, Metering, "instantaneous_demand", raw)
            await asyncio.sleep(1.0)

    async def _probe(self) -> None:
        """ems.loop_probe's method: how late a 10 ms sleep wakes."""
        self.stalls.start()
        while True:
            before = self.stalls.beat = time.monotonic()
            await asyncio.sleep(0.01)
            late_ms = (time.monotonic() - before - 0.01) * 1000
            self.worst_block_ms = max(self.worst_block_ms, late_ms)
            if self.warm:
                self.block_after_warmup_ms = max(self.block_after_warmup_ms, late_ms)

    async def _sample(self, hub: Any, clock: SimulatedClock) -> dict[str, Any]:
        pending = await hub.outbox.pending()
        return {"w": time.monotonic(), "sim": clock(), "rss_kb": rss_kb() or 0, "bus_tasks": len(hub.bus._tasks),
                "hub_tasks": len(hub._tasks), "writer_backlog": hub.store.backlog, "outbox": len(pending),
                "sockets": self.web.app[LIVE].client_count, "controlled": len(hub.control.dispatcher.controlled),
                "cycles": hub.control.cycle.cycles,
                "cycle_ms": hub.control.cycle.last.duration_ms if hub.control.cycle.last else 0.0}

    async def _soak(self, hub: Any, clock: SimulatedClock, ready: datetime, warmup_h: float) -> dict[str, Any]:
        args = self.args
        warm_at = ready + timedelta(hours=warmup_h)
        end_at = warm_at + timedelta(hours=args.hours)
        say(f"soak: {warmup_h:g} h of warm-up then {args.hours:g} simulated hours at {args.speed:g}x "
            f"(about {(end_at - clock()).total_seconds() / args.speed / 60:.1f} real minutes)")
        last_say = 0.0
        while clock() < end_at:
            await asyncio.sleep(2.0)
            if not self.warm and clock() >= warm_at:
                gc.collect()
                self.warm = True
                self.census = census()
                if args.tracemalloc:
                    tracemalloc.start(args.tracemalloc)
            sample = await self._sample(hub, clock)
            sample["warm"] = self.warm
            if args.profile_cycle and not self.profiled and sample["controlled"] >= args.devices:
                self.profiled = True
                await profile_cycle(hub, args.profile_cycle)
            if sample["hub_tasks"] > self.busiest_count:
                self.busiest_count = sample["hub_tasks"]
                self.busiest_tasks = Counter(t.get_name() for t in hub._tasks._tasks).most_common(5)
            self.samples.append(sample)
            if time.monotonic() - last_say > 60:
                last_say = time.monotonic()
                say(f"  {sample['sim'].isoformat(timespec='minutes')}: rss {sample['rss_kb'] / 1024:.0f} MiB, bus tasks "
                    f"{sample['bus_tasks']}, hub tasks {sample['hub_tasks']}, writer backlog "
                    f"{sample['writer_backlog']}, outbox {sample['outbox']}, sockets {sample['sockets']}, control cycles "
                    f"{sample['cycles']} (last {sample['cycle_ms']:.0f} ms), controlled {sample['controlled']}, "
                    f"display latencies {len(self.display_latency)}")
        await asyncio.sleep(3.0)  # what was sent last arrives
        gc.collect()
        grown = census() - self.census
        say("objects alive after the day and not after the warm-up (gc's census by type, most grown): "
            + ", ".join(f"{name} +{count}" for name, count in grown.most_common(12)))
        if args.tracemalloc:
            snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            tracemalloc.stop()
            say("allocated after the warm-up and still alive (tracemalloc, by traceback):")
            for stat in snapshot.statistics("traceback")[:12]:
                say(f"  {stat.size / 1024:8.1f} KiB in {stat.count:6d} blocks: "
                    + " <- ".join(f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno}"
                                  for f in reversed(stat.traceback)))
        return self.figures()

    def figures(self) -> dict[str, Any]:
        warm = [s for s in self.samples if s["warm"]]
        keys = ("bus_tasks", "hub_tasks", "writer_backlog", "outbox")
        tenth = max(1, len(warm) // 10)
        half = len(warm) // 2
        growth = {}
        for key in keys:
            first, second = max(s[key] for s in warm[:half]), max(s[key] for s in warm[half:])
            growth[key] = second - first
            say(f"{key}: max {max(s[key] for s in self.samples)} (during warm-up included); after warm-up the first "
                f"half's max {first}, the second half's {second}; mean {statistics.mean(s[key] for s in warm):.1f}")
        say(f"hub tasks by name at the busiest sample: {self.busiest_tasks}")
        span = warm[-1]["w"] - warm[0]["w"]
        say(f"control cycles: {(warm[-1]['cycles'] - warm[0]['cycles']) / span:.1f} a real second after warm-up; "
            f"a cycle took {statistics.median(s['cycle_ms'] for s in warm):.0f} ms (median of the samples), "
            f"{max(s['cycle_ms'] for s in warm):.0f} ms at most")
        rss0 = statistics.mean(s["rss_kb"] for s in warm[:tenth])
        rss1 = statistics.mean(s["rss_kb"] for s in warm[-tenth:])
        say(f"RSS: {rss0 / 1024:.1f} MiB after warm-up, {rss1 / 1024:.1f} MiB at the end, max "
            f"{max(s['rss_kb'] for s in warm) / 1024:.1f} MiB ({len(warm)} samples over "
            f"{(warm[-1]['sim'] - warm[0]['sim']).total_seconds() / 3600:.1f} simulated hours)")
        lat = sorted(self.display_latency)
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
        say(f"meter -> screen: {len(lat)} arrivals on {len(self.screens)} screens, p50 "
            f"{statistics.median(lat):.3f} s, p99 {p99:.3f} s, max {lat[-1]:.3f} s (C6: 10 s)" if lat else
            "meter -> screen: nothing arrived")
        utility = sorted(v for values in self.utility_latency.values() for v in values)
        for kind, values in sorted(self.utility_latency.items()):
            say(f"utility {kind} -> screen: {len(values)} arrivals, p50 {statistics.median(values):.3f} s, "
                f"max {max(values):.3f} s (C6: 2 min)")
        missing = [(key, screen.name) for key in self.utility_sent for screen in self.screens
                   if key[1] not in (screen.seen_events if key[0] == "event" else screen.seen_messages)]
        if missing:
            say(f"utility -> screen: {len(missing)} (item, screen) pairs never arrived, e.g. {missing[:4]}")
        say(f"event loop: longest stall {self.worst_block_ms:.1f} ms, after warm-up {self.block_after_warmup_ms:.1f} ms")
        self.stalls.stop()
        self.stalls.report()
        return {
            "meters": self.args.meters, "devices": self.args.devices, "dashboards": self.args.dashboards,
            "ihds": self.args.ihds,
            "max_queue": max(max(s[k] for s in warm) for k in keys),
            "queue_growth": max(growth.values()),
            "p99_display_latency_s": None if p99 is None else round(p99, 3),
            "max_display_latency_s": round(lat[-1], 3) if lat else None,
            "p99_utility_latency_s": round(utility[min(len(utility) - 1, int(len(utility) * 0.99))], 3)
            if utility else None,
            "undelivered_utility": len(missing),
            "max_loop_block_ms": round(self.block_after_warmup_ms, 1),
            "rss_growth_pct": round((rss1 - rss0) / rss0 * 100, 1),
            "simulated_hours": self.args.hours,
        }

    @staticmethod
    async def _wait(predicate: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            await asyncio.sleep(0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 simulated hours, a 30-minute event (under 2 minutes)")
    parser.add_argument("--meters", type=int, default=8)
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--dashboards", type=int, default=20)
    parser.add_argument("--ihds", type=int, default=5)
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours after the warm-up")
    parser.add_argument("--warmup-hours", type=float, default=1.0)
    parser.add_argument("--event-minutes", type=int, default=EVENT_HOURS * 60, help="each DR event's length")
    parser.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES",
                        help="trace allocations after the warm-up (that many frames) and list what stayed")
    parser.add_argument("--profile-cycle", type=int, default=0, metavar="N",
                        help="once an event holds every device, profile N control cycles (cProfile)")
    parser.add_argument("--speed", type=float, default=96.0, help="simulated seconds per real second")
    args = parser.parse_args()
    if args.quick:
        args.hours, args.warmup_hours = min(args.hours, 2.0), min(args.warmup_hours, 0.25)
        args.event_minutes = min(args.event_minutes, 30)
    figures = asyncio.run(Bench(args).run())
    print(" ".join(f"{k}={'n/a' if v is None else v}" for k, v in figures.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
