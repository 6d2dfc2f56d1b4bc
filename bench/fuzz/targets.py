"""The fuzz targets: bytes in, the appliance's own parse path, an outcome (or a crash) out.

Each target takes one input (``bytes``) and returns the outcome's *kind*: ``"accepted"`` (with
what it was), or ``"rejected: <why>"`` for a documented refusal. Anything else is a crash:

* an exception that is not the target's documented rejection type escapes ``run``;
* an ERROR record with a traceback is logged while the input is handled (the frame session,
  the event bus and the task sets catch and log a handler's exception so that the link carries
  on: the fuzzer must still see it);
* an accepted result breaks an invariant the caller relies on (``Invariant``).

Targets (the same ones the atheris harnesses and the hypothesis tests drive):

``frames``
    Every row of ``integrations.zigbee_se.frames.HANDLERS``: the input picks a row (or a raw
    frame on any SE cluster), the ZCL header flags and TSN, and the payload; the frame goes in
    as a ``ZigbeePacket`` through ``SmartEnergyAwareDevice.packet_received``, the radio's path
    (zigpy's header parse, the SE clusters' one parse, the meter session's table), and the
    answers go out through zigpy to a recording ``send_packet``. Rejections: the session's
    ``FrameRejected`` (malformed, unknown, rejected), an ``Ignored`` command, or no answer.
``greenbutton``
    ``ems.greenbutton.parse`` (what ``ems.importer`` runs on a file): ESPI XML or CSV, told apart
    by the first byte. Rejection: ``GreenButtonError``. Invariants: readings in time order,
    positive durations, finite energies.
``rules``
    ``rules.parse_rules`` then ``rules.check_conflicts`` (the Rules page's and the API's
    validate path, ``RuleBook.validate``), and an accepted rule set is evaluated over two
    snapshots of the simulator's home (a quiet tick, a live DR event). Rejection: ``ConfigError``.
``config``
    ``ems.config.load_config`` with the integrations' sections (``ems.cli``'s schemas) on a
    folder holding the input as ``ems.yaml`` (first byte even) or as ``rates.yaml`` next to a
    fixed ``ems.yaml`` naming a plan (odd). Rejection: ``ConfigError``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path
from typing import Any

NOW = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)  # the targets' fixed clock (no real time)
REPO = Path(__file__).resolve().parents[2]


class Invariant(AssertionError):
    """An accepted input produced a result the caller cannot rely on (a crash of its own kind)."""


class LoggedError(AssertionError):
    """An exception was caught and logged at ERROR by the code under test (a hidden crash)."""


def kind_of(problem: str) -> str:
    """A rejection's reason as a countable kind: numbers, quoted values, bytes and paths blanked out."""
    lines = problem.strip().splitlines()
    text = re.sub(r"^\S*?(\.ya?ml|\.xml|\.csv)(:\d+)?: ", "", lines[0] if lines else "")
    text = re.sub(r"^[\w\-]+(\.[\w\- ]+)+: ", "", text)  # a key path ("rules.3.when"): the kind is what follows
    text = re.sub(r"\((?:[0-9a-f]{2} ?)*\)", "(…)", text)
    text = re.sub(r"\d{4}-\d\d-\d\d[T ][\d:.]+([+-]\d\d:\d\d|Z)?", "TIME", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"(/[\w.\-]+)+", "PATH", text)
    text = re.sub(r"0x[0-9A-Fa-f]+|#x[0-9A-Fa-f]+|(?<![A-Za-z-])[-+]?\d+(\.\d+)?", "N", text)
    return text[:70]


class _ErrorLog(logging.Handler):
    """Keeps the ERROR records with a traceback logged while one input runs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info or record.levelno >= logging.CRITICAL:
            self.records.append(record)


class Target:
    """One fuzz target: ``run(data) -> kind``; raises for a crash."""

    name = ""

    def __init__(self) -> None:
        self._errors = _ErrorLog()
        root = logging.getLogger()
        root.addHandler(self._errors)
        self._level = root.level
        root.setLevel(logging.WARNING)  # debug records are not even made (put back by ``close``)

    def run(self, data: bytes) -> str:
        self._errors.records.clear()
        outcome = self._run(data)
        if self._errors.records:
            record = self._errors.records[0]
            error = LoggedError(f"{record.name}: {record.getMessage()}")
            if record.exc_info and record.exc_info[1] is not None:
                raise error from record.exc_info[1]
            raise error
        return outcome

    def _run(self, data: bytes) -> str:
        raise NotImplementedError

    def seeds(self) -> list[bytes]:
        return []

    def words(self) -> list[bytes]:
        """Tokens worth splicing into inputs (libFuzzer's -dict): the keys and names real files use."""
        return []

    def close(self) -> None:
        logging.getLogger().removeHandler(self._errors)
        logging.getLogger().setLevel(self._level)


# --- frames -----------------------------------------------------------------------------


class Frames(Target):
    """Every ZCL frame handler, through the radio's path (see the module docstring)."""

    name = "frames"

    def __init__(self) -> None:
        super().__init__()
        import zigpy.types as t

        from integrations.zigbee.radio import VirtualRadioApplication
        from integrations.zigbee.se_profile import SMART_ENERGY_PROFILE_ID
        from integrations.zigbee_se.frames import HANDLERS, SE_CLUSTER_IDS, TIME_CLUSTER

        self._t = t
        self.keys = list(HANDLERS)
        self.names = [f"{HANDLERS[k].parser.__name__}" for k in self.keys]
        self.cluster_ids = SE_CLUSTER_IDS
        self.profile = SMART_ENERGY_PROFILE_ID
        self.loop = asyncio.new_event_loop()  # the target's own (not set as the thread's current loop)
        self.app = VirtualRadioApplication({"device": {"path": "virtual://127.0.0.1:9"}})
        self.sent: list[Any] = []

        async def send_packet(packet: Any) -> None:  # the radio: what would go on the air
            self.sent.append(packet)

        self.app.send_packet = send_packet  # type: ignore[method-assign]
        self.device = self.app.add_device(t.EUI64.convert("00:0d:6f:00:0f:ee:d0:01"), 0x4D2E)
        endpoint = self.device.add_endpoint(1)
        endpoint.profile_id = SMART_ENERGY_PROFILE_ID
        for cluster_id in (*SE_CLUSTER_IDS, TIME_CLUSTER):
            endpoint.add_input_cluster(cluster_id)
        self.endpoint = endpoint

    def _session(self, formatting_known: bool) -> tuple[Any, list[Any]]:
        import zigpy.datastructures

        from ems.bus import EventBus
        from ems.clock import FixedClock
        from ems.model import FrameRejected
        from ems.state import CurrentState
        from integrations.zigbee_se.frames import MeterSession
        from integrations.zigbee_se.translate import Formatting

        class Hub:  # what a MeterSession reads of the hub: its clock, bus and state
            clock = FixedClock(NOW)
            bus = EventBus()
            state = CurrentState()

        Hub.state.attach(Hub.bus)
        rejected: list[Any] = []
        Hub.bus.listen(FrameRejected, rejected.append)
        session = MeterSession(Hub, self.app, self.device, 1, "fuzz")
        if formatting_known:
            session.formatting = Formatting(1, 1000)
        for cluster_id in self.cluster_ids:
            self.endpoint.in_clusters[cluster_id].attach(session)
        self.device._packet_debouncer = zigpy.datastructures.Debouncer()  # every input is new
        return session, rejected

    def frame(self, data: bytes) -> tuple[int, bytes, bool, str]:
        """(cluster id, ZCL frame, broadcast, what) from an input (see the module docstring)."""
        from zigpy.zcl import foundation

        pick, flags, tsn, payload = (data + b"\x00\x00\x00")[0], (data + b"\x00\x00")[1:2], data[2:3], data[3:]
        flag = flags[0] if flags else 0
        if pick % (len(self.keys) + 1) == len(self.keys):  # a raw frame, header and all
            cluster_id = self.cluster_ids[flag % len(self.cluster_ids)]
            return cluster_id, data[2:], bool(flag & 0x80), "raw"
        key = self.keys[pick % (len(self.keys) + 1)]
        control = (0x00 if key.general else 0x01) | (0x08 if key.direction == foundation.Direction.Server_to_Client else 0)
        if flag & 0x01:
            control |= 0x10  # disable default response
        header = bytes([control, tsn[0] if tsn else 0, key.command_id])
        return key.cluster_id, header + payload, bool(flag & 0x02), self.names[pick % (len(self.keys) + 1)]

    def _run(self, data: bytes) -> str:
        from integrations.zigbee_se.translate import Ignored  # noqa: F401 - the documented refusal

        t = self._t
        cluster_id, frame, broadcast, what = self.frame(data)
        flag = data[1] if len(data) > 1 else 0
        session, rejected = self._session(formatting_known=not flag & 0x04)
        self.sent.clear()
        destination = t.AddrModeAddress(addr_mode=t.AddrMode.Broadcast, address=0xFFFF) if broadcast else \
            t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x0000)
        packet = t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x4D2E), src_ep=1, dst=destination, dst_ep=1,
            profile_id=self.profile, cluster_id=cluster_id, data=t.SerializableBytes(frame),
            tsn=frame[1] if len(frame) > 1 else 0, lqi=255, rssi=-40)

        async def deliver() -> None:
            self.device.packet_received(packet)
            for _ in range(3):  # the answers the session spawned (Default Response, acknowledgements)
                await asyncio.sleep(0)
            await session.stop()
            for cluster_id_ in self.cluster_ids:
                self.endpoint.in_clusters[cluster_id_].attach(None)

        self.loop.run_until_complete(deliver())
        if rejected:
            return f"{what} rejected {rejected[0].kind}: {kind_of(rejected[0].reason.split(': ', 1)[-1])}"
        return f"{what} accepted ({len(self.sent)} answers)"

    def seeds(self) -> list[bytes]:
        out = []
        for index in range(len(self.keys) + 1):
            for flag in (0x00, 0x01, 0x04):
                out.append(bytes([index, flag, 7]) + b"\x00" * 64)
                out.append(bytes([index, flag, 7]) + b"\x01\x00\x00\x00" * 16)
        # A LoadControlEvent starting now for an hour, a PublishPrice, a DisplayMessage.
        lce = (0x12345678).to_bytes(4, "little") + (0x0005).to_bytes(2, "little") + b"\x00" + b"\x00" * 4 + \
            (60).to_bytes(2, "little") + b"\x02\x14\xff\x00\x80\x00\x80\x80\xff\x03"
        message = (7).to_bytes(4, "little") + b"\x00" + b"\x00" * 4 + (30).to_bytes(2, "little") + b"\x05Hello"
        for index, name in enumerate(self.names):
            if name == "LoadControlEvent":
                out.append(bytes([index, 0, 9]) + lce)
            if name == "DisplayMessage":
                out.append(bytes([index, 0, 9]) + message)
        return out

    def close(self) -> None:
        super().close()
        self.loop.close()


# --- Green Button -----------------------------------------------------------------------


class GreenButton(Target):
    """``ems.greenbutton.parse``, what ``ems.importer`` runs on a file."""

    name = "greenbutton"

    def _run(self, data: bytes) -> str:
        from ems.greenbutton import GreenButtonError, parse

        try:
            result = parse(BytesIO(data), "fuzz", "America/Los_Angeles")
        except GreenButtonError as err:
            return f"rejected: {kind_of(err.problem)}"
        previous = None
        for reading in result.readings:
            if reading.duration_s <= 0:
                raise Invariant(f"interval of {reading.duration_s} s at {reading.start}")
            if not (math.isfinite(reading.consumed_kwh) and math.isfinite(reading.generated_kwh)):
                raise Invariant(f"energy not finite at {reading.start}: {reading}")
            if reading.start.tzinfo is None:
                raise Invariant(f"naive start {reading.start}")
            if previous is not None and reading.start < previous:
                raise Invariant(f"readings out of order: {reading.start} after {previous}")
            previous = reading.start
        return f"accepted {result.kind} ({'some' if result.readings else 'no'} intervals)"

    def seeds(self) -> list[bytes]:
        files = [p.read_bytes() for p in sorted((REPO / "tests" / "ems" / "data").iterdir())
                 if p.suffix in (".xml", ".csv")]
        return files + [  # short CSVs of each shape the reader knows (short inputs mutate faster)
            b"TYPE,DATE,START TIME,END TIME,USAGE (kWh),NOTES\nElectric usage,2024-03-10,01:45,01:59,0.2,\n"
            b"Electric usage,2024-03-10,03:00,03:14,0.3,\n",
            b"Type,Date,Start Time,End Time,Usage,Units\nelectric,2024-11-03,2024-11-03 01:00:00-04:00,"
            b"2024-11-03 01:00:00-05:00,1.0,kWh\n",
            b"Meter Number,Date,Start Time,Duration,Consumption,Generation,Net\n1,1/15/2025,12:00 AM,15,0.2,0.0,0.2\n"
            b'1,1/15/2025,1:30 PM,15,"1,000.5",0.0,"1,000.5"\n',
            b"DATE,USAGE (Wh)\n2024-01-01,1200\n2024-01-02,900\n",
        ]

    def words(self) -> list[bytes]:
        espi = (REPO / "tests" / "ems" / "data" / "espi_two_directions.xml").read_text()
        elements = set(re.findall(r"</?([A-Za-z][\w:]*)", espi))
        return sorted({f"<{e}>".encode() for e in elements} | {f"</{e}>".encode() for e in elements}
                      | {w.encode() for w in ("TYPE", "DATE", "START TIME", "END TIME", "DURATION", "USAGE (kWh)",
                                              "IMPORT (kWh)", "EXPORT (kWh)", "Consumption", "Generation", "Net",
                                              "kWh", "Wh", "MWh", " AM", " PM", "-05:00", "24:00")})


def yaml_words(*paths: Path) -> list[bytes]:
    """The keys and short scalar values of YAML files, as dictionary tokens."""
    import yaml

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                found.add(f"{key}:")
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str | int | float) and len(str(node)) <= 24:
            found.add(str(node))

    for path in paths:
        walk(yaml.safe_load(path.read_text()))
    return sorted(w.encode() for w in found)


# --- rules ------------------------------------------------------------------------------


class Rules(Target):
    """``rules.parse_rules`` then ``rules.check_conflicts`` (``RuleBook.validate``)."""

    name = "rules"
    snapshots: list[Any] | None = None

    def _run(self, data: bytes) -> str:
        from ems.errors import ConfigError
        from rules import check_conflicts, evaluate, parse_rules

        text = data.decode("utf-8", "replace")
        try:
            ruleset = parse_rules(text, "rules.yaml")
        except ConfigError as err:
            return f"rejected: {kind_of(str(err.problems[0]) if err.problems else str(err))}"
        warnings = check_conflicts(ruleset)
        proposals = sum(len(evaluate(ruleset, snapshot)) for snapshot in self._snapshots())
        return f"accepted ({'with' if warnings else 'no'} warnings, {'some' if proposals else 'no'} proposals)"

    def _snapshots(self) -> list[Any]:
        """The simulator's home as the rules see it, at a quiet tick and during a live DR event
        (tests/rules/home.py): an accepted rule set must also evaluate (the control cycle runs it)."""
        if self.snapshots is None:
            from tests.rules import home

            self.snapshots = [home.snapshot(demand_kw=3.2, price_per_kwh=0.31, price_tier=2, outdoor_c=31.0),
                              home.snapshot(events=(home.event(),), demand_kw=7.5, outdoor_c=None)]
        return self.snapshots

    def seeds(self) -> list[bytes]:
        return [(REPO / "config" / "rules.yaml").read_bytes()]

    def words(self) -> list[bytes]:
        return yaml_words(REPO / "config" / "rules.yaml")


# --- configuration ----------------------------------------------------------------------


_MAIN_WITH_PLAN = b"site: {timezone: America/Los_Angeles}\ntariff: {plan: TOU-D-T, climate_zone: '10'}\n"


class Config(Target):
    """``ems.config.load_config`` with the integrations' sections, on a folder of the input."""

    name = "config"

    def __init__(self) -> None:
        super().__init__()
        from ems.cli import _integration_schemas

        self.schemas = _integration_schemas()
        self.folder = Path(tempfile.mkdtemp(prefix="ems-fuzz-config-"))
        self.rates = (REPO / "config" / "rates.yaml").read_bytes()  # beside a fuzzed ems.yaml

    def _run(self, data: bytes) -> str:
        from ems.config import load_config
        from ems.errors import ConfigError

        as_rates = bool(data[:1]) and data[0] % 2 == 1
        body = data[1:]
        main, rates = self.folder / "ems.yaml", self.folder / "rates.yaml"
        if as_rates:
            main.write_bytes(_MAIN_WITH_PLAN)
            rates.write_bytes(body)
        else:
            main.write_bytes(body)
            rates.write_bytes(self.rates)
        what = "rates.yaml" if as_rates else "ems.yaml"
        try:
            load_config(self.folder, self.schemas)
        except ConfigError as err:
            return f"{what} rejected: {kind_of(str(err.problems[0]) if err.problems else str(err))}"
        return f"{what} accepted"

    def seeds(self) -> list[bytes]:
        config = REPO / "config"
        return [b"\x00" + (config / "ems.yaml").read_bytes(), b"\x01" + (config / "rates.yaml").read_bytes()]

    def words(self) -> list[bytes]:
        return yaml_words(REPO / "config" / "ems.yaml", REPO / "config" / "rates.yaml")


TARGETS: dict[str, Callable[[], Target]] = {
    "frames": Frames,
    "greenbutton": GreenButton,
    "rules": Rules,
    "config": Config,
    "emu2": lambda: __import__("bench.fuzz.targets_emu2", fromlist=["Emu2"]).Emu2(),  # the EMU-2's serial line
    "eagle": lambda: __import__("bench.fuzz.targets_eagle", fromlist=["Eagle"]).Eagle(),  # bench/fuzz/targets_eagle.py
    "ieee2030_5": lambda: __import__("bench.fuzz.targets_ieee2030_5", fromlist=["_"]).Ieee2030Resources(),
    **{n: lambda n=n: __import__("bench.fuzz.targets_programs", fromlist=["TARGETS"]).TARGETS[n]()  # the programs'
       for n in ("openadr_event", "openadr_xml", "mqtt")},
}


def make(name: str) -> Target:
    """A target by name (see ``TARGETS``)."""
    return TARGETS[name]()
