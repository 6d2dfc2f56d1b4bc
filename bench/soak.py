"""Power loss, recovery, memory and bad input: the whole appliance killed, starved and fed garbage.

    python bench/soak.py [--kills 50] [--fuzz-seconds 600] [--quick] [--speed 30]

Power loss: the simulated meter runs in its own process (``ems simulate-meter --log``, which
writes what it reported and heard), the appliance as ``ems run`` against it, both on one
simulated clock (``--start/--speed/--since``), so an hour passes in two minutes at 30x. The
appliance is killed with SIGKILL ``--kills`` times at random moments of five kinds: mid-write
(any moment), mid-dispatch (at an event's start or end), mid-event, mid-opt-out (a few ms after
the customer's opt-out request) and mid-import (an ``ems import`` writing to the same database,
killed with it). After every kill the database must pass ``PRAGMA integrity_check`` and
``foreign_key_check``. At the end (a last clean run to catch up) it compares the store with the
meter's own log: every interval the meter closed is stored, every stored reading is one the meter
reported, scaled right (finding 1), the energy total has no gap; every report upstream was
delivered once as the meter saw it (duplicates of an event status or a message confirmation) and
none it owed is missing; no home device stayed controlled after its event's end, cancel or the
customer's opt-out for longer than the appliance was up (simulated seconds; one control cycle is
the target).

Recovery: once in the soak the meter is frozen (SIGSTOP: connection open, no answers) for a
while; recovery_s is the time from SIGCONT until the API shows the link online with a reading
taken after it. Loop block: the appliance runs with ``EMS_LOOP_PROBE`` (ems/loop_probe.py), which
logs the longest event-loop stall of each second; max_loop_block_ms is the worst of the steady
segments (after start-up; the memory segment's after its warm-up too). RSS: a fresh meter and
appliance run uninterrupted for a simulated day after a warm-up (``--rss-hours`` at
``--rss-speed``); the appliance's RSS is sampled every 2 real seconds, and rss_growth_pct is the
mean of the last tenth of the samples over the first tenth's.

EMU-2: the Rainforest bridge link through a day of simulated time with its bridge's faults (stalls
of minutes to hours, reboots, junk, a field's new format; ``bench/bridges_emu2.py --soak-hours``):
a minute no interval covers counts as a lost reading, one covered twice, a spike or an error logged
as an invented one.

Bad input: ``python -m bench.fuzz`` runs each target in its own process, two at a time,
``--fuzz-seconds`` each: atheris (coverage-guided) on every ZCL frame handler through the radio's
path, the Green Button importer's parser, the rules loader and the configuration loader
(bench/fuzz/targets.py says what each feeds and what counts as a crash), and schemathesis against
the live appliance with the owner's token and without one (bench/fuzz/api.py, which also probes
the appliance's event loop: its figure joins max_loop_block_ms). fuzz_crashes counts distinct
crashes, inputs over 100 ms (timed again uninstrumented) and fuzzers that died; each one's input
is saved under bench/fuzz/crashes/ (gitignored) and printed.

EAGLE: the appliance against the simulated EAGLE for simulated hours of stalls, reboots, drops,
cached (duplicate) replies and odd firmware (bench/bridges_eagle.py ``soak``); its lost and invented
(or duplicate) intervals add to lost_readings and invented_readings, its recovery to recovery_s.

IEEE 2030.5: the appliance against the simulated 2030.5 meter through its faults one after another
(stalls, reboots, hours off the network, failed handshakes, a field in a new format, idle drops;
bench/bridges_ieee2030_5.py ``soak``); its lost and invented intervals and its recovery count the same.

Last line: kills=.. lost_readings=.. invented_readings=.. duplicate_reports=.. lost_reports=..
stuck_device_s=.. recovery_s=.. fuzz_crashes=.. max_loop_block_ms=.. rss_growth_pct=..
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.children import child_env, free_port, say  # noqa: E402

EMS = str(Path(sys.executable).parent / "ems")
START = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)  # 05:00 in Los Angeles: a summer morning
KINDS = ("mid-write", "mid-dispatch", "mid-event", "mid-opt-out", "mid-import")
TERMINAL = {0x03, 0x06, 0x07, 0x08, 0x09, 0x0A, 0xFB, 0xFE}
CYCLE_TICK_S = 15.0  # the appliance's control cycle (simulated seconds), as configured below
HOME = {"thermostat": "02:50:52:45:4d:48:00:01", "pump": "02:50:52:45:4d:48:00:02",
        "spa": "02:50:52:45:4d:48:00:06"}


# -- the scenario and the configuration -------------------------------------------------------


def scenario(sim_minutes: float, report_interval: str = "10s") -> dict[str, Any]:
    """Events every 20 simulated minutes (8 long, announced 1 minute ahead; every third cancelled
    half-way), a message asking for confirmation every 30 minutes, and a home to control."""
    events, cancels, messages = [], [], []
    at, event_id = 3.0, 6001
    while at < sim_minutes:
        events.append({"at": f"{at}m", "id": event_id, "starts_in": "1m", "duration_min": 8,
                       "criticality": 3, "device_class": 0x0FFF, "cooling_offset_c": 2.0})
        if event_id % 3 == 0:
            cancels.append({"at": f"{at + 5}m", "id": event_id, "effective_in": "now"})
        at += 20
        event_id += 1
    at, message_id = 2.0, 701
    while at < sim_minutes:
        messages.append({"at": f"{at}m", "id": message_id, "text": f"Please confirm notice {message_id}.",
                         "confirm": True, "start": "now", "duration_min": 60})
        at += 30
        message_id += 1
    return {
        "name": "soak",
        "timezone": "America/Los_Angeles",
        "meter": {"report_interval": report_interval, "profile_interval_min": 5},
        "messages": messages,
        "events": events,
        "cancellations": cancels,
        "home": {"devices": [
            {"kind": "thermostat", "name": "Living room", "ieee": HOME["thermostat"],
             "cooling_setpoint_c": 24, "heating_setpoint_c": 19, "system_mode": "cool"},
            {"kind": "plug", "name": "Pool pump", "ieee": HOME["pump"], "nominal_kw": 1.5},
            {"kind": "load_controller", "name": "Spa heater", "ieee": HOME["spa"], "nominal_kw": 2.0,
             "device_class": 0x0010},
        ]},
    }


def config_text(meter_port: int, home_port: int, stale_after_s: float) -> str:
    rates = REPO / "config" / "rates.yaml"
    return f"""
site: {{name: Soak home, timezone: America/Los_Angeles}}
tariff: {{plan: TOU-D-T, climate_zone: "10", rates_file: "{rates}"}}
web: {{host: 127.0.0.1, port: 0}}
zigbee_se:
  radio: {{type: virtual, path: "virtual://127.0.0.1:{meter_port}"}}
  report_interval_s: 1
  stale_after_s: {stale_after_s}
  first_retry_s: 0.2
  registration_retry_interval_min: 0.02
  identity: development  # the identity the simulated meter in the other process has registered
zigbee_home:
  radio: {{type: virtual, path: "virtual://127.0.0.1:{home_port}"}}
  permit_join_s: 254
  report_interval_s: 1
  command_timeout_s: 3
  devices:
    "{HOME['thermostat']}": {{name: Living room, device_class: hvac}}
    "{HOME['pump']}": {{name: Pool pump, device_class: pool_pump, nominal_kw: 1.5}}
    "{HOME['spa']}": {{name: Spa heater, device_class: smart_appliance, nominal_kw: 2.0}}
demand_response:
  start_randomization_min: 0
  cycle_tick_s: {CYCLE_TICK_S}
"""


RULES = """devices:
  Living room: {max_offset_c: 3}
rules:
  - name: Follow every event
    triggers: [{event: active}]
    action: follow_event
"""


# -- processes ------------------------------------------------------------------------------


@dataclass
class Timeline:
    """One simulated time for every process: T0 at real moment W0, ``speed`` times faster."""

    start: datetime
    since: float
    speed: float

    def sim(self, wall: float) -> datetime:
        return self.start + timedelta(seconds=(wall - self.since) * self.speed)

    def args(self) -> list[str]:
        return ["--start", self.start.isoformat(), "--speed", str(self.speed), "--since", repr(self.since)]


class Meter:
    """``ems simulate-meter`` in its own process, with its log."""

    def __init__(self, work: Path, spec: dict[str, Any], timeline: Timeline) -> None:
        import yaml

        self.port, self.home_port = free_port(), free_port()
        self.log = work / "meter-log.jsonl"
        path = work / "scenario.yaml"
        path.write_text(yaml.safe_dump(spec))
        self._stderr = (work / "meter-stderr.log").open("w")
        self.proc = subprocess.Popen(
            [EMS, "simulate-meter", "--scenario", str(path), "--port", str(self.port), "--home-port",
             str(self.home_port), "--log", str(self.log), *timeline.args()],
            stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=child_env())
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "home devices listening" in line:
                break
        else:
            raise SystemExit(f"the simulated meter did not start: {(work / 'meter-stderr.log').read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Appliance:
    """``ems run`` against the meter; started and killed many times on one data folder."""

    def __init__(self, work: Path, meter: Meter, timeline: Timeline, stale_after_s: float) -> None:
        self.work = work
        self.timeline = timeline
        self.config = work / "config"
        self.config.mkdir(exist_ok=True)
        (self.config / "ems.yaml").write_text(config_text(meter.port, meter.home_port, stale_after_s))
        (self.config / "rules.yaml").write_text(RULES)
        self.data = work / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.probe = work / "loop-probe.jsonl"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.token = ""

    def make_owner(self) -> None:
        """The owner's account and an API token, written into the store before the first start."""
        from ems.accounts import Accounts, Role
        from ems.cli import read_config
        from ems.store import Store

        async def make() -> str:
            store = Store(read_config(self.config).store, self.data)
            await store.open()
            try:
                accounts = Accounts(store)
                owner = await accounts.create_user("owner", "owner-password-soak", Role.OWNER)
                return (await accounts.create_token(owner, "soak", owner.scopes)).secret
            finally:
                await store.close()

        self.token = asyncio.run(make())

    def start(self) -> float:
        """Start and wait until it answers; returns the real time it became ready."""
        self.starts += 1
        stderr = (self.work / f"appliance-{self.starts:03d}.log").open("w")
        self.proc = subprocess.Popen(
            [EMS, "run", "-c", str(self.config), "--data-dir", str(self.data), "--port", str(self.port),
             *self.timeline.args()],
            stdout=subprocess.DEVNULL, stderr=stderr, env=child_env(EMS_LOOP_PROBE=str(self.probe)))
        stderr.close()
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"ems run ended ({self.proc.returncode}): "
                                 f"{(self.work / f'appliance-{self.starts:03d}.log').read_text()[-3000:]}")
            with contextlib.suppress(OSError, ValueError):
                if self.get("/api/v1/health") is not None:
                    return time.time()
            time.sleep(0.05)
        raise SystemExit("ems run did not answer within 120 s")

    def kill(self) -> float:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        return time.time()

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def request(self, method: str, path: str, timeout: float = 5.0) -> tuple[int, Any]:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None,
                                     headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, None

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        return body if status == 200 else None

    def meter_view(self) -> dict[str, Any] | None:
        with contextlib.suppress(OSError, ValueError):
            body = self.get("/api/v1/meter")
            # The HAN meter ("main"): an imported meter is listed too once an import has run.
            for meter in (body or {}).get("meters", []):
                if meter.get("meter_id") == "main":
                    return dict(meter)
        return None

    def wait_online(self, timeout_s: float = 60) -> float | None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            view = self.meter_view()
            if view and view["link"] == "online" and view["demand_kw"] is not None:
                return time.time()
            time.sleep(0.05)
        return None

    def wait_devices(self, timeout_s: float = 30) -> float | None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            with contextlib.suppress(OSError, ValueError):
                body = self.get("/api/v1/devices")
                if body and len(body["devices"]) >= 3 and all(d["available"] for d in body["devices"]):
                    return time.time()
            time.sleep(0.1)
        return None


def read_log(path: Path) -> list[dict[str, Any]]:
    lines = []
    with contextlib.suppress(FileNotFoundError), path.open() as handle:
        for line in handle:
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
    return lines


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def integrity(db: Path) -> list[str]:
    """What ``integrity_check`` and ``foreign_key_check`` say is wrong (nothing: clean)."""
    if not db.exists():
        return []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
        problems += [f"foreign key: {row}" for row in conn.execute("PRAGMA foreign_key_check")]
    return problems


def green_button_csv(path: Path, days: int) -> int:
    """A Green Button CSV of ``days`` of hourly intervals well before the soak (what mid-import writes)."""
    first = datetime(2026, 4, 1)  # noqa: DTZ001 - local wall times, as the CSV has them; no DST change in 60 days
    rows = ["TYPE,DATE,START TIME,END TIME,USAGE (kWh),NOTES"]
    for hour in range(days * 24):
        moment = first + timedelta(hours=hour)
        rows.append(f"Electric usage,{moment:%Y-%m-%d},{moment:%H:%M},{moment:%H}:59,{0.5 + (hour % 7) / 10:.2f},")
    path.write_text("\n".join(rows) + "\n")
    return days * 24


# -- the soak -------------------------------------------------------------------------------


@dataclass
class Soak:
    kills: int
    speed: float
    work: Path
    recovery_outage_s: float
    rng: random.Random = field(default_factory=lambda: random.Random(11))
    up: list[tuple[float, float]] = field(default_factory=list)  # real times the appliance ran
    frozen: list[tuple[float, float]] = field(default_factory=list)  # real times the meter process was stopped
    integrity_failures: int = 0
    kinds: collections.Counter[str] = field(default_factory=collections.Counter)
    imports_total: int = 0
    import_rows: int = 0
    import_partial: int = 0
    recovery_s: float | None = None
    probe_from: list[tuple[float, float]] = field(default_factory=list)  # steady windows for the probe

    def run(self) -> dict[str, Any]:
        sim_minutes = self.kills * 14 * self.speed / 60 + 60
        timeline = Timeline(START, time.time(), self.speed)
        meter = Meter(self.work, scenario(sim_minutes), timeline)
        appliance = Appliance(self.work, meter, timeline, stale_after_s=max(30.0, 4 * self.speed))
        csv = self.work / "history.csv"
        self.import_rows = green_button_csv(csv, 60)
        try:
            appliance.make_owner()
            for number in range(1, self.kills + 1):
                kind = KINDS[(number - 1) % len(KINDS)] if number <= len(KINDS) else self.rng.choice(KINDS)
                ready = appliance.start()
                online = appliance.wait_online()
                appliance.wait_devices()
                if number == max(1, self.kills // 2) and self.recovery_outage_s > 0:
                    # After the session's schedule check has settled (two asks, 5 simulated s apart):
                    # an outage that swallows it is a test of its own (tests/e2e/test_link_faults.py),
                    # and one that also outlasts the event leaves a cancel nobody could have heard.
                    time.sleep(max(1.0, 30.0 / self.speed))
                    self.recovery_s = self.outage(meter, appliance, self.recovery_outage_s)
                self.probe_from.append((ready + 3.0, 0.0))
                detail = self.strike(kind, appliance, meter, timeline, csv)
                killed = appliance.kill()
                self.probe_from[-1] = (self.probe_from[-1][0], killed)
                self.up.append((online or ready, killed))
                problems = integrity(appliance.data / "ems.db")
                self.integrity_failures += bool(problems)
                self.kinds[kind] += 1
                say(f"kill {number}/{self.kills} {kind}{detail}: up {killed - ready:.1f} s"
                    f"{'' if online else ' (never online)'}; integrity "
                    f"{'clean' if not problems else problems[:3]}")
            # The last start: catch up, deliver what is owed, then a clean stop.
            ready = appliance.start()
            online = appliance.wait_online()
            appliance.wait_devices()
            time.sleep(max(20.0, 600 / self.speed))
            end = time.time()
            appliance.terminate()
            self.up.append((online or ready, end))
            self.probe_from.append((ready + 3.0, end))
            problems = integrity(appliance.data / "ems.db")
            self.integrity_failures += bool(problems)
            say(f"last run: up {end - ready:.1f} s; integrity {'clean' if not problems else problems[:3]}")
            time.sleep(1.0)
        finally:
            appliance.terminate()
            meter.stop()
        return self.check(appliance, timeline, read_log(meter.log), end)

    def outage(self, meter: Meter, appliance: Appliance, seconds: float) -> float | None:
        """Freeze the meter (SIGSTOP) for ``seconds``; how long after SIGCONT the API shows it fresh."""
        say(f"meter frozen for {seconds:g} s (connection open, no answers)")
        stopped = time.time()
        meter.proc.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        meter.proc.send_signal(signal.SIGCONT)
        resumed = time.time()
        self.frozen.append((stopped, resumed))
        resumed_sim = appliance.timeline.sim(resumed)
        deadline = resumed + 120
        while time.time() < deadline:
            view = appliance.meter_view()
            if view and view["link"] == "online" and view["last_reading_at"] and \
                    at(view["last_reading_at"]) >= resumed_sim:
                recovery = time.time() - resumed
                say(f"meter back: online with a fresh reading {recovery:.2f} s after it answered again")
                return recovery
            time.sleep(0.05)
        say("meter back: the appliance did not show a fresh reading within 120 s")
        return 120.0

    def strike(self, kind: str, appliance: Appliance, meter: Meter, timeline: Timeline, csv: Path) -> str:
        """Wait for the moment of ``kind`` (bounded), do what it needs; the caller kills right after."""
        log = read_log(meter.log)
        events = {}
        for line in log:
            if line["k"] == "drlc" and line["command"] == "load_control_event":
                fields = line["fields"]
                start = at(line["t"]) if fields["start_time"] == 0 else datetime(2000, 1, 1, tzinfo=UTC) + \
                    timedelta(seconds=fields["start_time"])
                events[fields["issuer_event_id"]] = (start, start + timedelta(minutes=fields["duration_in_minutes"]))
        now_sim = timeline.sim(time.time())
        if kind == "mid-write":
            # Readings are written all the time; now and then also the customer's confirmation.
            confirmable = [line["message_id"] for line in log if line["k"] == "message"]
            if confirmable and self.rng.random() < 0.5:
                message_id = self.rng.choice(confirmable[-2:])
                answer = self._safe(lambda: appliance.request("POST", f"/api/v1/messages/main/{message_id}/confirm", 2.0))
                status = answer[0] if isinstance(answer, tuple) else type(answer).__name__
                time.sleep(self.rng.uniform(0.0, 0.2))
                return f" (confirmed message {message_id}: {status})"
            time.sleep(self.rng.uniform(0.2, 3.0))
            return ""
        if kind in ("mid-dispatch", "mid-event"):
            # The next event's start or end (mid-dispatch), a moment inside one (mid-event).
            wanted = []
            for start, end in events.values():
                if kind == "mid-dispatch":
                    wanted += [m for m in (start, end) if m > now_sim]
                elif end > now_sim:
                    wanted.append(max(start, now_sim) + (end - max(start, now_sim)) * self.rng.uniform(0.1, 0.9))
            nxt = min(wanted, default=None)
            if nxt is None or (nxt - now_sim).total_seconds() / self.speed > 25:
                time.sleep(self.rng.uniform(0.2, 2.0))
                return " (no event near: at a random moment)"
            wait = (nxt - now_sim).total_seconds() / self.speed
            jitter = self.rng.uniform(0.0, 1.5) if kind == "mid-dispatch" else 0.0
            time.sleep(max(0.0, wait + jitter))
            return f" ({'event boundary' if kind == 'mid-dispatch' else 'inside an event'} +{jitter:.2f} s)"
        if kind == "mid-opt-out":
            live = [i for i, (start, end) in events.items() if end > now_sim + timedelta(seconds=30)]
            if not live:
                time.sleep(self.rng.uniform(0.2, 2.0))
                return " (no live event: at a random moment)"
            event_id = min(live)
            delay = self.rng.uniform(0.0, 0.05)
            import threading

            result: list[Any] = []
            thread = threading.Thread(target=lambda: result.append(
                self._safe(lambda: appliance.request("POST", f"/api/v1/events/main/{event_id}/opt-out", 2.0))),
                daemon=True)
            thread.start()
            time.sleep(delay)
            return f" (event {event_id}, {delay * 1000:.0f} ms after the request)"
        # mid-import: an `ems import` into the same database, killed with the appliance.
        importer = subprocess.Popen(
            [EMS, "import", str(csv), "-c", str(appliance.config), "--data-dir", str(appliance.data),
             "--meter-id", "imported"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=child_env())
        time.sleep(self.rng.uniform(0.3, 2.5))
        finished = importer.poll() is not None
        importer.kill()
        importer.wait()
        self.imports_total += 1
        return f" (import {'had finished' if finished else 'killed too'})"

    @staticmethod
    def _safe(call: Any) -> Any:
        try:
            return call()
        except (OSError, ValueError) as err:
            return err

    # -- the checks ---------------------------------------------------------------------------

    def check(self, appliance: Appliance, timeline: Timeline, log: list[dict[str, Any]], end: float) -> dict[str, Any]:
        db = sqlite3.connect(appliance.data / "ems.db")
        formatting = next(line for line in log if line["k"] == "formatting")
        scale = formatting["multiplier"] / formatting["divisor"]
        period = timedelta(seconds=formatting["period_s"])
        up_sim = [(timeline.sim(a), timeline.sim(b)) for a, b in self.up]
        final_sim = timeline.sim(end)
        result: dict[str, Any] = {}

        # Readings: every interval the meter closed is stored with its values; every stored value
        # is one the meter reported (scaled right); the summation's increase is the intervals' sum.
        meter_intervals = {at(line["start"]): line for line in log if line["k"] == "interval"}
        stored = {}
        for start, consumed, generated in db.execute(
                "SELECT start, consumed_kwh, generated_kwh FROM interval_readings WHERE meter_id = 'main'"):
            stored[parse_db_time(start)] = (consumed, generated)
        # Owed: what closed before the last start came online (it re-reads a day at link-up; what
        # closes later is read by its profile poll, once a real minute, not yet due).
        last_closed = up_sim[-1][0] - period
        owed = [s for s in meter_intervals if s + period <= last_closed and s >= final_sim - timedelta(days=1)]
        lost: list[Any] = [f"interval {s}" for s in owed if s not in stored]
        invented = []
        for start, (consumed, generated) in stored.items():
            line = meter_intervals.get(start)
            if line is None:
                invented.append(f"interval {start} the meter never had")
            elif abs(consumed - (line["consumed_raw"] & 0xFFFFFF) * scale) > scale * 1.01 or \
                    abs(generated - (line["generated_raw"] & 0xFFFFFF) * scale) > scale * 1.01:
                invented.append(f"interval {start}: stored {consumed}/{generated}, the meter "
                                f"{line['consumed_raw'] * scale}/{line['generated_raw'] * scale}")
        reported: dict[int, set[int]] = collections.defaultdict(set)
        for line in log:
            if line["k"] == "reported":
                for attr, raw in line["values"].items():
                    reported[int(attr)].add(raw)
        for column, attr in (("summation_delivered_kwh", 0x0000), ("summation_received_kwh", 0x0001)):
            for (value,) in db.execute(f"SELECT {column} FROM register_readings WHERE meter_id = 'main'"
                                       f" AND {column} IS NOT NULL"):
                if round(value / scale) not in reported[attr] or abs(round(value / scale) * scale - value) > 1e-6:
                    invented.append(f"{column} {value} the meter never reported")
        demand_raw = {raw if raw < 0x800000 else raw - 0x1000000 for raw in reported[0x0400]}
        for (value,) in db.execute("SELECT demand_kw FROM demand_samples WHERE meter_id = 'main'"):
            if round(value / scale) not in demand_raw:
                invented.append(f"demand {value} kW the meter never reported")
        # The energy total: between the first and the last stored summation, the stored intervals
        # add up to the increase (within the two partial intervals at the ends).
        rows = db.execute("SELECT at, summation_delivered_kwh FROM register_readings WHERE meter_id = 'main'"
                          " AND summation_delivered_kwh IS NOT NULL ORDER BY at").fetchall()
        gap_note = ""
        if len(rows) >= 2:
            covered = max(stored) + period  # the summations up to the last stored interval's end
            rows = [r for r in rows if parse_db_time(r[0]) <= covered] or rows
            (t1, s1), (t2, s2) = (parse_db_time(rows[0][0]), rows[0][1]), (parse_db_time(rows[-1][0]), rows[-1][1])
            inside = [stored[s][0] for s in stored if s >= t1 and s + period <= t2]
            edges = [stored[s][0] for s in stored if (s < t1 < s + period) or (s < t2 < s + period)]
            gap = (s2 - s1) - sum(inside)
            if not -scale * 10 <= gap <= sum(edges) + max(edges, default=0) + scale * 10:
                lost.append(f"energy total: summation rose {s2 - s1:.3f} kWh, intervals hold {sum(inside):.3f}")
            gap_note = f"summation +{s2 - s1:.3f} kWh, intervals {sum(inside):.3f} kWh inside"
            drops = sum(1 for (_, a), (_, b) in zip(rows, rows[1:], strict=False) if b < a)
            if drops:
                invented.append(f"the stored summation went down {drops} times")
        result["lost"], result["invented"] = lost, invented
        say(f"readings: {len(owed)} intervals owed, {len(lost)} lost, {len(invented)} invented; {gap_note}")

        # The import: all or nothing, every time.
        (imported,) = db.execute("SELECT COUNT(*) FROM interval_readings WHERE meter_id = 'imported'").fetchone()
        if imported not in (0, self.import_rows):
            self.import_partial += 1
        say(f"import: {self.imports_total} killed or finished, {imported} of {self.import_rows} rows stored"
            f" ({'all or nothing' if imported in (0, self.import_rows) else 'PARTIAL'})")

        # Reports as the utility saw them (a retransmission, the same bytes within 10 s, is one).
        seen: dict[tuple[Any, ...], list[float]] = collections.defaultdict(list)
        first_tsn: dict[tuple[Any, ...], Any] = {}  # a confirmation retried under its first TSN is one
        for line in log:
            if line["k"] != "answer":
                continue
            fields = line["fields"]
            if line["command"] == "report_event_status":
                key: tuple[Any, ...] = ("status", int(fields["issuer_event_id"]), int(fields["event_status"]))
            elif line["command"] == "message_confirmation":
                key = ("confirmation", int(fields["message_id"]))
            else:
                continue
            times = seen[key]
            if times and line.get("tsn") is not None and line.get("tsn") == first_tsn.get(key):
                continue  # the meter recognises a retry by its TSN (issue 11 finding 3b), also after a restart
            first_tsn.setdefault(key, line.get("tsn"))
            if not times or line["w"] - times[-1] > 10 or line.get("tsn") is None:
                times.append(line["w"])
        duplicates = {key: len(times) - 1 for key, times in seen.items() if len(times) > 1}
        # What was owed: each event the appliance was up for (received), started if it was up
        # during it, an end once over, an opt-out the store keeps, a confirmation it stored.
        events: dict[int, dict[str, Any]] = {}
        for line in log:
            if line["k"] != "drlc":
                continue
            fields = line["fields"]
            if line["command"] == "load_control_event":
                event_id = fields["issuer_event_id"]
                sent = at(line["t"])
                start = sent if fields["start_time"] == 0 else datetime(2000, 1, 1, tzinfo=UTC) + timedelta(
                    seconds=fields["start_time"])
                events.setdefault(event_id, {"sent": sent, "start": start,
                                             "end": start + timedelta(minutes=fields["duration_in_minutes"])})
            elif line["command"] == "cancel_load_control_event" and fields["issuer_event_id"] in events:
                events[fields["issuer_event_id"]].setdefault("cancelled", at(line["t"]))
        opt_outs = {int(e): parse_db_time(c) for e, c in db.execute(
            "SELECT issuer_event_id, changed_at FROM dr_participation WHERE meter_id = 'main' AND device_id = ''"
            " AND opted_out = 1")}
        statuses: dict[int, set[int]] = collections.defaultdict(set)
        for key in seen:
            if key[0] == "status":
                statuses[key[1]].add(key[2])
        grace = timedelta(seconds=self.speed * 5)
        lost_reports = []
        for event_id, ev in events.items():
            over = min(ev["end"], ev.get("cancelled", ev["end"]))
            heard = any(a < over and b > ev["sent"] for a, b in up_sim)
            if not heard:
                continue
            got = statuses[event_id]
            if 0x01 not in got:
                lost_reports.append(f"event {event_id}: received")
            if any(a < over and b > ev["start"] for a, b in up_sim) and ev["start"] < over and \
                    not got & {0x02, 0x04, 0x06, 0x07}:
                lost_reports.append(f"event {event_id}: started")
            if over + grace < final_sim and not got & TERMINAL:
                lost_reports.append(f"event {event_id}: its end")
            if "cancelled" in ev and ev["cancelled"] < ev["end"] and 0x06 not in got and \
                    ev["cancelled"] + grace < final_sim:
                lost_reports.append(f"event {event_id}: cancelled")
            when = opt_outs.get(event_id)
            if when is not None and when < over and 0x04 not in got and not got & {0x08}:
                lost_reports.append(f"event {event_id}: opted out")
        confirmed = [int(m) for (m,) in db.execute(
            "SELECT message_id FROM messages WHERE meter_id = 'main' AND confirmed_at IS NOT NULL")]
        lost_reports += [f"message {m}: confirmation" for m in confirmed if ("confirmation", m) not in seen]
        result["duplicates"], result["lost_reports"] = duplicates, lost_reports
        say(f"reports: {sum(1 for k in seen if k[0] == 'status')} event statuses, "
            f"{sum(1 for k in seen if k[0] == 'confirmation')} confirmations; duplicates "
            f"{sum(duplicates.values())} {sorted(duplicates)[:6]}; owed and missing {len(lost_reports)} "
            f"{lost_reports[:6]}")
        violations = collections.Counter(line["rule"] for line in log if line["k"] == "violation")
        if violations:
            say(f"the strict meter's checker recorded: {dict(violations)}")

        # Devices: controlled after every release (end, cancel, opt-out) while the appliance was up.
        releases = []
        for event_id, ev in events.items():
            release = min(ev["end"], ev.get("cancelled", ev["end"]), max(opt_outs.get(event_id, ev["end"]), ev["start"]))
            releases.append((release, event_id))
        live = [(ev["start"], min(ev["end"], ev.get("cancelled", ev["end"]), max(opt_outs.get(i, ev["end"]), ev["start"])))
                for i, ev in events.items()]
        stuck_by: dict[str, float] = {}
        worst: tuple[float, str, list[tuple[datetime, datetime]]] = (0.0, "", [])
        controlled = device_controlled_spans(log, final_sim)
        # While the meter's process is stopped, so are the simulated home's devices (one process):
        # nobody can put them back then, so that time is not held against the appliance.
        reachable = [piece for a, b in up_sim
                     for piece in subtract(a, b, [(timeline.sim(f0), timeline.sim(f1)) for f0, f1 in self.frozen])]
        for name, spans in controlled.items():
            for c0, c1 in spans:
                outside = subtract(c0, c1, live)
                seconds = sum(overlap(a, b, reachable) for a, b in outside)
                stuck_by[name] = max(stuck_by.get(name, 0.0), seconds)
                if seconds > worst[0]:
                    worst = (seconds, name, outside)
        result["stuck_s"] = max(stuck_by.values(), default=0.0)
        say(f"devices: longest controlled outside an event while up (simulated s): "
            f"{ {k: round(v, 1) for k, v in stuck_by.items()} }; one control cycle is {CYCLE_TICK_S:g} s")
        if worst[0] > 0:  # where the worst one was, to find its cause in the logs
            pieces = ", ".join(f"{a:%H:%M:%S.%f}-{b:%H:%M:%S.%f}" for a, b in worst[2])
            ups = [f"{a:%H:%M:%S.%f}-{b:%H:%M:%S.%f}" for a, b in up_sim
                   if any(a < p1 and b > p0 for p0, p1 in worst[2])]
            say(f"devices: the worst, {worst[1]} {worst[0]:.1f} s, held outside its event at {pieces} "
                f"(simulated UTC) while up {ups}")
        db.close()
        return result


def parse_db_time(text: Any) -> datetime:
    value = datetime.fromisoformat(str(text))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def device_controlled_spans(log: list[dict[str, Any]], final: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
    """For each device, when it was in a state the EMS set (a plug off, a thermostat off its set
    points, a load controller shedding), from the meter's own log of the devices."""
    first: dict[str, Any] = {}
    since: dict[str, datetime | None] = {}
    spans: dict[str, list[tuple[datetime, datetime]]] = collections.defaultdict(list)
    for line in log:
        if line["k"] != "device":
            continue
        name, state, moment = line["name"], line["state"], at(line["t"])
        first.setdefault(name, state)
        if line["kind"] == "plug":
            held = not state["on"]
        elif line["kind"] == "thermostat":
            held = state != first[name]
        else:
            held = bool(state["shedding"])
        if held and since.get(name) is None:
            since[name] = moment
        elif not held and since.get(name) is not None:
            spans[name].append((since[name], moment))  # type: ignore[arg-type]
            since[name] = None
    for name, start in since.items():
        if start is not None:
            spans[name].append((start, final))
    return spans


def subtract(a: datetime, b: datetime, cuts: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    pieces = [(a, b)]
    for c0, c1 in cuts:
        nxt = []
        for p0, p1 in pieces:
            if c1 <= p0 or c0 >= p1:
                nxt.append((p0, p1))
                continue
            if p0 < c0:
                nxt.append((p0, c0))
            if c1 < p1:
                nxt.append((c1, p1))
        pieces = nxt
    return pieces


def overlap(a: datetime, b: datetime, spans: list[tuple[datetime, datetime]]) -> float:
    return sum(max(0.0, (min(b, s1) - max(a, s0)).total_seconds()) for s0, s1 in spans)


def probe_max(path: Path, windows: list[tuple[float, float]]) -> tuple[float | None, float | None]:
    """The worst loop stall inside ``windows`` (real times) and the 99th percentile of the seconds."""
    values = sorted(line["max_block_ms"] for line in read_log(path)
                    if any(a <= line["w"] <= b for a, b in windows))
    if not values:
        return None, None
    return values[-1], values[min(len(values) - 1, int(len(values) * 0.99))]


# -- memory over a simulated day ------------------------------------------------------------


def rss_segment(work: Path, sim_hours: float, speed: float,
                warmup_h: float) -> tuple[float | None, list[float], float | None]:
    """A fresh meter and appliance (``ems run``), uninterrupted, on simulated time ``speed`` x faster:
    the appliance's RSS (/proc) every 2 real seconds for ``sim_hours`` after ``warmup_h``.

    The growth is the mean of the last tenth of the samples over the mean of the first tenth (one
    sample each end would be at the mercy of a collection or an arena freed a moment before). The
    meter must be online with its readings moving on, or the figure would be an idle appliance's.
    """
    work.mkdir(parents=True, exist_ok=True)
    timeline = Timeline(START, time.time(), speed)
    meter = Meter(work, scenario((sim_hours + warmup_h) * 60 + 30, report_interval="60s"), timeline)
    appliance = Appliance(work, meter, timeline, stale_after_s=max(60.0, 4 * speed))
    samples: list[tuple[float, float]] = []  # (simulated hours after the warm-up, kB)
    readings: set[str] = set()
    try:
        appliance.make_owner()
        ready = appliance.start()
        if appliance.wait_online() is None:
            raise SystemExit("memory: the meter link did not come online; no figure for an idle appliance")
        warm_until = ready + warmup_h * 3600 / speed
        end = warm_until + sim_hours * 3600 / speed
        say(f"memory: {sim_hours:g} simulated hours at {speed:g}x after {warmup_h:g} h of warm-up "
            f"({(end - time.time()) / 60:.1f} real minutes)")
        assert appliance.proc is not None
        next_say = warm_until
        while time.time() < end:
            if appliance.proc.poll() is not None:
                raise SystemExit("the appliance ended during the memory segment")
            now = time.time()
            if now >= warm_until:
                kb = proc_rss_kb(appliance.proc.pid)
                if kb is not None:
                    samples.append(((now - warm_until) * speed / 3600, kb))
                view = appliance.meter_view()
                if view and view.get("last_reading_at"):
                    readings.add(view["last_reading_at"])
                if now >= next_say and samples:
                    say(f"  memory: {samples[-1][0]:4.1f} simulated h after warm-up: RSS {samples[-1][1] / 1024:.1f} MiB")
                    next_say = now + 4 * 3600 / speed
            time.sleep(2.0)
        windows = [(warm_until, end)]
    finally:
        appliance.terminate()
        meter.stop()
    block, p99 = probe_max(appliance.probe, windows)
    if len(samples) < 10 or len(readings) < 10:
        say(f"memory: {len(samples)} samples and {len(readings)} distinct readings seen: too few for a figure")
        return None, [kb for _, kb in samples], block
    tenth = len(samples) // 10
    first = statistics.mean(kb for _, kb in samples[:tenth])
    last = statistics.mean(kb for _, kb in samples[-tenth:])
    growth = (last - first) / first * 100
    say(f"memory: RSS {first / 1024:.1f} MiB after warm-up, {last / 1024:.1f} MiB a simulated {sim_hours:g} h later "
        f"(means of the first and last tenth of {len(samples)} samples; max {max(kb for _, kb in samples) / 1024:.1f}"
        f" MiB; {len(readings)} distinct readings seen); loop stalls max {block} ms, p99 {p99} ms")
    return growth, [kb for _, kb in samples], block


def proc_rss_kb(pid: int) -> float | None:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    return None


# -- main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--fuzz-seconds", type=float, default=600.0, help="per fuzz target (default 600)")
    parser.add_argument("--quick", action="store_true", help="a few kills, 20 s of fuzzing per target")
    parser.add_argument("--speed", type=float, default=30.0, help="simulated time per real second in the soak")
    parser.add_argument("--rss-hours", type=float, default=24.0, help="simulated hours of the memory segment")
    parser.add_argument("--rss-speed", type=float, default=480.0)
    parser.add_argument("--outage-s", type=float, default=20.0, help="how long the meter is frozen once")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["soak", "rss", "fuzz", "eagle", "emu2", "ieee2030_5"])
    parser.add_argument("--emu2-hours", type=float, default=24.0, help="simulated hours of EMU-2 bridge faults")
    parser.add_argument("--targets", help="comma-separated fuzz targets (default: all)")
    parser.add_argument("--work", type=Path, help="keep the logs and databases here (default: a temp folder)")
    args = parser.parse_args()
    if args.quick:
        args.kills, args.fuzz_seconds = min(args.kills, 6), min(args.fuzz_seconds, 20.0)
        args.rss_hours, args.outage_s = min(args.rss_hours, 2.0), min(args.outage_s, 8.0)
        args.emu2_hours = min(args.emu2_hours, 3.0)
    work = args.work or Path(tempfile.mkdtemp(prefix="ems-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    say(f"working in {work}")

    fuzz: subprocess.Popen[str] | None = None
    figures: dict[str, Any] = {"kills": 0, "lost_readings": 0, "invented_readings": 0, "duplicate_reports": 0,
                               "lost_reports": 0, "stuck_device_s": 0.0, "recovery_s": None, "fuzz_crashes": 0,
                               "max_loop_block_ms": None, "rss_growth_pct": None}
    blocks: list[float] = []
    if "soak" not in args.skip:
        soak = Soak(args.kills, args.speed, work / "soak", args.outage_s)
        soak.work.mkdir(parents=True, exist_ok=True)
        say(f"power loss: {args.kills} kills at {args.speed:g}x simulated time")
        result = soak.run()
        figures.update(kills=sum(soak.kinds.values()), lost_readings=len(result["lost"]),
                       invented_readings=len(result["invented"]),
                       duplicate_reports=sum(result["duplicates"].values()),
                       lost_reports=len(result["lost_reports"]) + soak.import_partial,
                       stuck_device_s=round(result["stuck_s"], 1),
                       recovery_s=None if soak.recovery_s is None else round(soak.recovery_s, 2))
        for item in (result["lost"] + result["invented"])[:10]:
            say(f"  reading: {item}")
        say(f"kills by kind: {dict(soak.kinds)}; integrity failures: {soak.integrity_failures}")
        block, p99 = probe_max(soak.work / "loop-probe.jsonl", [w for w in soak.probe_from if w[1] > w[0]])
        say(f"loop stalls while running between kills: max {block} ms, p99 {p99} ms")
        if block is not None:
            blocks.append(block)
    if "emu2" not in args.skip:  # the EMU-2 link under its bridge's faults (bench/bridges_emu2.py: soak)
        from bench.bridges_emu2 import soak as emu2_soak

        emu2 = asyncio.run(emu2_soak(args.emu2_hours))
        say(f"EMU-2: {args.emu2_hours:g} simulated hours, {emu2['emu2_faults']:.0f} faults: {emu2}")
        figures["lost_readings"] += int(emu2["lost_s"] // 60) + int(emu2["lost_kwh"] > 0.001)  # minutes, kWh
        figures["invented_readings"] += (int(emu2["duplicate_s"] // 60) + int(emu2["spikes"])
                                         + int(emu2["invented_kwh"] > 0.001) + int(emu2["errors"]))
    if "eagle" not in args.skip:  # the EAGLE path's faults (bench/bridges_eagle.py soak): the same zero targets
        from bench.bridges_eagle import soak as eagle_soak

        eagle = asyncio.run(eagle_soak(2.0 if args.quick else 6.0))
        say("eagle: " + " ".join(f"{k}={v:g}" for k, v in eagle.items()))
        figures.update(lost_readings=figures["lost_readings"] + int(eagle["lost_intervals"]),
                       invented_readings=figures["invented_readings"] + int(eagle["invented_intervals"]
                                                                            + eagle["duplicate_intervals"]),
                       recovery_s=max(figures["recovery_s"] or 0.0, round(eagle["recovery_s"], 2)))
    if "ieee2030_5" not in args.skip:  # the 2030.5 path's faults (bench/bridges_ieee2030_5.py soak): the same zero targets
        from bench.bridges_ieee2030_5 import soak as ieee2030_5_soak

        meter = asyncio.run(ieee2030_5_soak(15 if args.quick else 60))
        say("ieee2030_5: " + " ".join(f"{k}={v:g}" for k, v in meter.items()))
        figures.update(lost_readings=figures["lost_readings"] + int(meter["lost_intervals"]),
                       invented_readings=figures["invented_readings"] + int(meter["invented_intervals"]),
                       recovery_s=max(figures["recovery_s"] or 0.0, round(meter["recovery_s"], 2)))
    targets = args.targets.split(",") if args.targets else None
    if "fuzz" not in args.skip:
        # In the background while the memory segment runs (two targets at a time).
        fuzz = subprocess.Popen([sys.executable, "-m", "bench.fuzz", "--seconds", str(args.fuzz_seconds),
                                 "--work", str(work / "fuzz"), *(["--targets", args.targets] if targets else [])],
                                stdout=subprocess.PIPE, text=True, env=child_env(), cwd=REPO)
    if "rss" not in args.skip:
        growth, _samples, block = rss_segment(work / "rss", args.rss_hours, args.rss_speed,
                                              warmup_h=min(2.0, args.rss_hours))
        figures["rss_growth_pct"] = None if growth is None else round(growth, 1)
        if block is not None:  # a steady segment too: its stalls count
            blocks.append(block)
    if fuzz is not None:
        assert fuzz.stdout is not None
        summary: dict[str, Any] = {}
        for line in fuzz.stdout:
            if line.startswith("FUZZ-SUMMARY "):
                summary = json.loads(line[len("FUZZ-SUMMARY "):])
            else:
                print(line, end="", flush=True)
        fuzz.wait()
        # No summary means the fuzz stage itself failed: that is not "no crashes".
        figures["fuzz_crashes"] = summary.get("crashes", f"? (bench.fuzz exited {fuzz.returncode})")
        for name, target in summary.get("targets", {}).items():
            say(f"fuzz {name}: runs={target['runs']} crashes={target['crashes']} slow={target['slow']}"
                f" died={target['died']} accepted={target['accepted']} rejected={target['rejected']}"
                f" ({target['rejected_kinds']} kinds)")
        if summary.get("crashes"):
            say(f"fuzz: crashing and slow inputs are in {REPO / 'bench' / 'fuzz' / 'crashes'} (listed above)")
        if summary.get("max_loop_block_ms") is not None:
            blocks.append(summary["max_loop_block_ms"])
    figures["max_loop_block_ms"] = max(blocks) if blocks else None
    print(" ".join(f"{k}={'n/a' if v is None else v}" for k, v in figures.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
