"""The self-test (I1FR6, I1NFR2): the store, the radios, the meter link, the clock and free disk.

``ems selftest`` runs it on a stopped appliance (it starts the store and the meter link itself);
every start runs the same checks in the background (``SelfTest.start``), and the Commissioning
page and ``GET /api/v1/selftest`` show the latest report (``hub.state.selftest``). Each check says
in plain words what it found and, when something is wrong, what to do; ``critical`` marks what
stops the appliance doing its job, and ``ems selftest`` exits non-zero on any of those.

Each run writes one row (``selftest_runs``): that write is the store's write check, and the row
keeps the run's results (the last ``RUNS_KEPT``).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.bus import EventBus
from ems.clock import FollowingClock
from ems.local_text import N_
from ems.model import CheckOutcome, LinkState, MeterLinkChanged, SelfTestCheck, SelfTestReport, Text
from ems.store import tables

if TYPE_CHECKING:
    from ems.hub import Hub
    from ems.state import CurrentState
    from ems.store import Store

_LOGGER = logging.getLogger(__name__)

# A floor this release surely runs after: a clock that reads earlier was never set (a board without a
# real-time clock starts at 1970 or at its image's date).
BUILD_DATE = date(2025, 1, 1)
RUNS_KEPT = 50
RADIO_TIMEOUT_S = 3.0
CLOCK_AHEAD_TOLERANCE = timedelta(minutes=5)
DISK_CRITICAL_MB = 16.0  # below this the store cannot keep its own minimum size (store.max_size_mb)

# The checks' names, in the order they run and are shown.
STORE, RADIO, METER_LINK, CLOCK, DISK = "store", "radio", "meter_link", "clock", "disk"

STORE_OK = N_("The database opens, is intact and takes writes.")
STORE_NOT_OPEN = N_("The database is not open: {problem}. Restart the appliance; if this stays, ask for help.")
STORE_DAMAGED = N_("The database is damaged ({problem}). Restore it from a backup, or ask for help.")
STORE_UNWRITABLE = N_("The database cannot be written ({problem}). Check that the disk is not full or read-only.")
RADIO_OK = N_("The {network_phrase} radio answers ({address}).")
RADIO_SILENT = N_("The {network_phrase} radio does not answer at {address}. Check that it is plugged in and switched on.")
RADIO_MISSING = N_("The {network_phrase} radio is not plugged in: {address} does not exist. Plug it in, or check the "
                   "radio's path in the configuration.")
RADIO_NONE = N_("No radio is configured.")
METER_OK = N_("The meter {meter} answers: the link is up.")
METER_SILENT = N_("No session with the meter {meter} within {seconds_num} seconds. Check that the utility has "
                  "registered this appliance and that the meter is in range.")
METER_SILENT_BECAUSE = N_("No session with the meter {meter} within {seconds_num} seconds: {detail}")
METER_NONE = N_("No meter is configured: name your meter in the configuration (zigbee_se).")
CLOCK_OK = N_("The clock is right; it keeps to the meter's time.")
CLOCK_OK_UNCOMPARED = N_("The clock looks right; it has not been compared with the meter's time yet.")
CLOCK_UNSET = N_("The clock reads {date}, before this software was made. Set the date and time, or connect the "
                 "meter: the appliance takes its time from it.")
CLOCK_WAS_UNSET = N_("The appliance's own clock reads {date}, which is wrong; it keeps to the meter's time instead.")
CLOCK_AHEAD = N_("The appliance's own clock is {minutes_num} minutes ahead of the meter's; it keeps to the "
                 "meter's time instead.")
DISK_OK = N_("{free_num} MB free on the data disk.")
DISK_LOW = N_("Only {free_num} MB free on the data disk. Free some space, or set a size limit for the database.")
DISK_FULL = N_("The data disk is full ({free_num} MB free): readings can no longer be kept. Free some space.")
DISK_UNREADABLE = N_("The free space of the data disk cannot be read: {problem}.")


@dataclass(frozen=True, slots=True)
class RadioTarget:
    """A radio the appliance uses: ``network`` names it for the customer ("meter", "home")."""

    network: str
    kind: str  # virtual | ezsp | znp | deconz
    path: str


def radio_targets(sections: Mapping[str, Any]) -> list[RadioTarget]:
    """The radios of the configuration's meter link and home network (their ``radio`` sections);
    not the meter link's when it is off (a bridge or a 2030.5 meter reads the meter instead)."""
    found = []
    for key, network in (("zigbee_se", N_("meter network")), ("zigbee_home", N_("home network"))):
        section = sections.get(key) or {}
        if section.get("enabled", True) is False:
            continue
        radio = section.get("radio") or {}
        if radio.get("path"):
            found.append(RadioTarget(network, str(radio.get("type", "virtual")), str(radio["path"])))
    return found


def _check(name: str, outcome: CheckOutcome, summary: Text, critical: bool, started: float) -> SelfTestCheck:
    return SelfTestCheck(name, outcome, summary, critical and outcome is CheckOutcome.FAILED,
                         time.perf_counter() - started)


def _problem(err: BaseException) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__


# --- the checks -------------------------------------------------------------------------------


async def _integrity(conn: AsyncConnection) -> str:
    if conn.dialect.name == "sqlite":
        rows = (await conn.execute(text("PRAGMA integrity_check"))).scalars().all()
        return "ok" if list(rows) == ["ok"] else "; ".join(str(r) for r in rows[:3])
    await conn.execute(text("SELECT 1"))
    return "ok"


async def check_store(store: Store, now: datetime) -> tuple[SelfTestCheck, int | None]:
    """Opens (it is open), is intact (``PRAGMA integrity_check``), takes a durable write; the run's row id."""
    started = time.perf_counter()
    if store.outage is not None:
        return _check(STORE, CheckOutcome.FAILED, Text.of(STORE_UNWRITABLE, problem=store.outage.problem),
                      True, started), None
    try:
        verdict = await store.read("check the database", _integrity)
    except Exception as err:
        return _check(STORE, CheckOutcome.FAILED, Text.of(STORE_NOT_OPEN, problem=_problem(err)), True, started), None
    if verdict != "ok":
        return _check(STORE, CheckOutcome.FAILED, Text.of(STORE_DAMAGED, problem=verdict), True, started), None

    async def begin_run(conn: AsyncConnection) -> int:
        runs = tables.selftest_runs
        run_id = (await conn.execute(insert(runs).values(at=now).returning(runs.c.id))).scalar_one()
        keep = select(runs.c.id).order_by(runs.c.id.desc()).limit(RUNS_KEPT).scalar_subquery()
        await conn.execute(delete(runs).where(runs.c.id.not_in(keep)))
        return int(run_id)

    try:
        run_id = await store.write("write the self-test's run", begin_run, durable=True)
    except Exception as err:
        return _check(STORE, CheckOutcome.FAILED, Text.of(STORE_UNWRITABLE, problem=_problem(err)),
                      True, started), None
    return _check(STORE, CheckOutcome.PASSED, Text.of(STORE_OK), True, started), run_id


async def check_radio(target: RadioTarget, *, critical: bool, timeout_s: float = RADIO_TIMEOUT_S) -> SelfTestCheck:
    """A virtual radio (or a radio over TCP) accepts a connection; a serial radio's device exists."""
    started = time.perf_counter()
    parts = urlsplit(target.path)
    if parts.scheme in ("virtual", "socket", "tcp") and parts.hostname:
        address = f"{parts.hostname}:{parts.port}"
        try:
            async with asyncio.timeout(timeout_s):
                _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            writer.close()
            await writer.wait_closed()
        except (OSError, TimeoutError, ValueError):
            return _check(RADIO, CheckOutcome.FAILED,
                          Text.of(RADIO_SILENT, network_phrase=target.network, address=address), critical, started)
        return _check(RADIO, CheckOutcome.PASSED,
                      Text.of(RADIO_OK, network_phrase=target.network, address=address), critical, started)
    exists = await asyncio.to_thread(Path(target.path).exists)
    if not exists:
        return _check(RADIO, CheckOutcome.FAILED,
                      Text.of(RADIO_MISSING, network_phrase=target.network, address=target.path), critical, started)
    return _check(RADIO, CheckOutcome.PASSED,
                  Text.of(RADIO_OK, network_phrase=target.network, address=target.path), critical, started)


async def check_meter_link(state: CurrentState, bus: EventBus, meter_ids: Iterable[str],
                           timeout_s: float) -> list[SelfTestCheck]:
    """Each meter's link is up (a session with the meter), waiting up to ``timeout_s`` for it."""
    started = time.perf_counter()
    meters = list(meter_ids)

    def online(meter_id: str) -> bool:
        meter = state.meters.get(meter_id)
        return meter is not None and meter.link is LinkState.ONLINE

    changed = asyncio.Event()
    unsubscribe = bus.listen(MeterLinkChanged, lambda _event: changed.set())
    try:
        async with asyncio.timeout(timeout_s):
            while not all(online(m) for m in meters):
                changed.clear()
                await changed.wait()
    except TimeoutError:
        pass
    finally:
        unsubscribe()
    checks = []
    for meter_id in meters:
        if online(meter_id):
            checks.append(_check(METER_LINK, CheckOutcome.PASSED, Text.of(METER_OK, meter=meter_id), True, started))
            continue
        stage = state.latest_stage(meter_id)
        meter = state.meters.get(meter_id)
        detail = (stage.detail if stage is not None and stage.detail else
                  meter.link_detail if meter is not None and meter.link_detail else "")
        summary = (Text.of(METER_SILENT_BECAUSE, meter=meter_id, seconds_num=timeout_s, detail=detail) if detail
                   else Text.of(METER_SILENT, meter=meter_id, seconds_num=timeout_s))
        checks.append(_check(METER_LINK, CheckOutcome.FAILED, summary, True, started))
    return checks


def check_clock(system_now: datetime, meter_offset: timedelta | None, build_date: date = BUILD_DATE) -> SelfTestCheck:
    """The appliance's own clock is after the build date and not ahead of the meter's (when known).

    ``meter_offset``: how far the meter's clock is ahead of the appliance's own (None: not known yet).
    """
    started = time.perf_counter()
    shown = system_now.date().isoformat()
    if system_now.date() < build_date:
        if meter_offset is None:
            return _check(CLOCK, CheckOutcome.FAILED, Text.of(CLOCK_UNSET, date=shown), True, started)
        return _check(CLOCK, CheckOutcome.WARNING, Text.of(CLOCK_WAS_UNSET, date=shown), True, started)
    if meter_offset is None:
        return _check(CLOCK, CheckOutcome.PASSED, Text.of(CLOCK_OK_UNCOMPARED), True, started)
    if -meter_offset > CLOCK_AHEAD_TOLERANCE:
        minutes = round(-meter_offset.total_seconds() / 60)
        return _check(CLOCK, CheckOutcome.WARNING, Text.of(CLOCK_AHEAD, minutes_num=minutes), True, started)
    return _check(CLOCK, CheckOutcome.PASSED, Text.of(CLOCK_OK), True, started)


async def check_disk(data_dir: Path, min_free_mb: float) -> SelfTestCheck:
    started = time.perf_counter()
    def usage() -> Any:
        return shutil.disk_usage(data_dir if data_dir.exists() else data_dir.parent)

    try:
        free = (await asyncio.to_thread(usage)).free
    except OSError as err:
        return _check(DISK, CheckOutcome.WARNING, Text.of(DISK_UNREADABLE, problem=_problem(err)), True, started)
    free_mb = round(free / 2**20)
    if free_mb < DISK_CRITICAL_MB:
        return _check(DISK, CheckOutcome.FAILED, Text.of(DISK_FULL, free_num=free_mb), True, started)
    if free_mb < min_free_mb:
        return _check(DISK, CheckOutcome.WARNING, Text.of(DISK_LOW, free_num=free_mb), True, started)
    return _check(DISK, CheckOutcome.PASSED, Text.of(DISK_OK, free_num=free_mb), True, started)


def clock_readings(hub: Hub) -> tuple[datetime, timedelta | None]:
    """The appliance's own time and how far the meter's is ahead of it (None: no meter time read yet)."""
    meters = list(hub.state.meters.values())
    if isinstance(hub.clock, FollowingClock):
        known = hub.clock.followed or any(m.meter_time is not None for m in meters)
        return hub.clock.base.now(), hub.clock.offset if known else None
    offsets = [m.meter_time - m.last_reading_at for m in meters
               if m.meter_time is not None and m.last_reading_at is not None]
    return hub.clock(), offsets[-1] if offsets else None


# --- a run ------------------------------------------------------------------------------------


class SelfTest:
    """Runs the checks for one hub and publishes each report on its bus (``hub.state.selftest``)."""

    def __init__(self, hub: Hub, *, radios: Iterable[RadioTarget] | Callable[[], Iterable[RadioTarget]] | None = None,
                 meter_ids: Iterable[str] | None = None) -> None:
        """``radios``: the radios to check (or what says so when the run starts: a simulator's ports are
        known only once it listens); by default the configuration's."""
        self._hub = hub
        config = hub.config
        self._radios = radios if callable(radios) else list(radio_targets(config.sections) if radios is None
                                                             else radios)
        se = config.sections.get("zigbee_se") or {}
        self._meter_ids = list(meter_ids if meter_ids is not None else ([se["meter_id"]] if "meter_id" in se else []))
        self.meter_timeout_s = config.commissioning.selftest_meter_timeout_s
        self.min_free_mb = config.commissioning.selftest_min_free_mb
        self._running: asyncio.Task[SelfTestReport] | None = None

    @property
    def meter_ids(self) -> list[str]:
        """The configured meters and any other the appliance has heard of (a second meter, C6 4.1)."""
        return sorted(set(self._meter_ids) | set(self._hub.state.meters))

    async def run(self, *, meter_timeout_s: float | None = None) -> SelfTestReport:
        """Every check once, in order; published and stored. ``meter_timeout_s`` 0 skips the wait."""
        hub = self._hub
        at = hub.clock()
        store_check, run_id = await check_store(hub.store, at)
        checks: list[SelfTestCheck] = [store_check]
        radios = list(self._radios() if callable(self._radios) else self._radios)
        for index, radio in enumerate(radios):
            checks.append(await check_radio(radio, critical=index == 0))
        if not radios:
            checks.append(SelfTestCheck(RADIO, CheckOutcome.FAILED, Text.of(RADIO_NONE), True))
        timeout = self.meter_timeout_s if meter_timeout_s is None else meter_timeout_s
        meters = self.meter_ids
        if meters:
            checks.extend(await check_meter_link(hub.state, hub.bus, meters, timeout))
        else:
            checks.append(SelfTestCheck(METER_LINK, CheckOutcome.FAILED, Text.of(METER_NONE), True))
        system_now, offset = clock_readings(hub)
        checks.append(check_clock(system_now, offset))
        checks.append(await check_disk(hub.data_dir, self.min_free_mb))
        report = SelfTestReport(at, tuple(checks))
        hub.state.apply(report)  # at once, also where the state does not follow the bus (a page's test)
        hub.bus.publish(report)
        if run_id is not None:
            await self._keep(run_id, report)
        level = logging.WARNING if report.failed_critically else logging.INFO
        _LOGGER.log(level, "Self-test: %s", "; ".join(f"{c.name} {c.outcome.value}" for c in checks))
        return report

    async def _keep(self, run_id: int, report: SelfTestReport) -> None:
        payload = [{"name": c.name, "outcome": c.outcome.value, "critical": c.critical,
                    "summary": c.summary.english()} for c in report.checks]
        runs = tables.selftest_runs
        try:
            await self._hub.store.write("keep the self-test's results", lambda conn: conn.execute(
                update(runs).where(runs.c.id == run_id).values(passed=not report.failed_critically, checks=payload)))
        except Exception:
            _LOGGER.warning("The self-test's results could not be kept in the store", exc_info=True)

    # -- at every start: a hub component -------------------------------------------------------

    async def start(self) -> None:
        """Run once in the background (the meter link may take a while to come up)."""
        self._running = self._hub.create_task(self.run(), "selftest")

    async def stop(self) -> None:
        return None


# --- ems selftest -----------------------------------------------------------------------------


MARKS = {CheckOutcome.PASSED: "OK     ", CheckOutcome.WARNING: "WARNING", CheckOutcome.FAILED: "FAILED "}
LABELS = {STORE: "Store", RADIO: "Radio", METER_LINK: "Meter link", CLOCK: "Clock", DISK: "Disk"}


def report_lines(report: SelfTestReport) -> list[str]:
    """The report in words, a line a check (English: the command line has no reader's language)."""
    lines = [f"{MARKS[c.outcome]} {LABELS.get(c.name, c.name)}: {c.summary.english()}" for c in report.checks]
    if report.failed_critically:
        lines.append("The self-test found a problem that stops the appliance working (marked FAILED above).")
    else:
        lines.append("The self-test passed.")
    return lines
