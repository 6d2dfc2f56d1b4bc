"""The hub: owns the bus, the current state, the store, the outbox, the scheduler and every task.

It also holds the appliance's one clock (``hub.clock``): the core and the adapters read "now" and
wait through it, never through the wall clock. On real time it is a ``FollowingClock`` that the
meter link sets to the meter's time (SE §7.2: the ESI is the time master), so received,
acknowledged, started and completed times and every schedule share one time base. A clock a test
or ``ems demo`` passes (fixed, simulated) is used as it is: its owner sets the time.

Components (integrations, the web server) are started in the order they were added and
stopped in reverse, each stop bounded in time, so ``ems run`` shuts down cleanly on SIGTERM
with nothing lost. A start that fails undoes the stages already started. The first stage of a
stop puts back the devices demand response holds (its cycle stopped first, then each device
restored, all bounded in time and logged), while the home network is still up to carry it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from ems.bus import EventBus
from ems.clock import REAL, Clock, FollowingClock, RealClock
from ems.config import AppConfig
from ems.errors import StoreUnavailable
from ems.identity import ApplianceIdentity, InstallCodeMaker, load_or_create
from ems.meter_source import MeterPins, MeterSourceKind, MeterSources
from ems.outbox import Outbox
from ems.ports import DevicePort
from ems.preferences import ProgramPreferences
from ems.preferences import load as load_preferences
from ems.state import CurrentState
from ems.store import Store
from ems.store.engine import restrict_data_dir
from ems.tasks import TaskSet

if TYPE_CHECKING:
    from ems.dr.component import DemandResponse
    from ems.program_setup import RegisteredSetup
    from ems.provisioning import Provisioning

_LOGGER = logging.getLogger(__name__)

STOP_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Component:
    """Something the hub starts and stops: an integration, the web server, ..."""

    name: str
    start: Callable[[], Awaitable[Any]]
    stop: Callable[[], Awaitable[Any]]


class Hub:
    """The appliance's core: one per process, composed by ``ems.cli``."""

    def __init__(self, config: AppConfig, data_dir: Path, clock: Clock = REAL) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.clock: Clock = FollowingClock(clock) if isinstance(clock, RealClock) else clock
        clock = self.clock
        self.bus = EventBus()
        self.state = CurrentState(timedelta(hours=config.store.message_retention_hours))
        self.store = Store(config.store, self.data_dir, clock=clock)
        self.outbox = Outbox(self.store, clock=clock)
        # Real time (wall-clock jobs only); what follows the appliance's time uses every_day().
        self.scheduler = AsyncIOScheduler(timezone="UTC")
        self.started_at = clock()
        self.running = False
        # name -> what the composition root started (tests and benchmarks look at them; the core never does)
        self.integrations: dict[str, object] = {}
        # device id -> the port (ems.ports.DevicePort) of the integration that owns the device
        self.device_ports: dict[str, DevicePort] = {}
        self.control: DemandResponse | None = None  # demand response (its facade), set by cli
        # The appliance's identity on the meter's network, read (or made, at the first start) by
        # start() when the composition root gives it an install-code maker (ems.identity).
        self.make_install_code: InstallCodeMaker | None = None
        self.identity: ApplianceIdentity | None = None
        self.provisioning: Provisioning | None = None  # the home devices' provisioning (UC134), set by cli
        # section name -> an integration set up on the Commissioning page (ems.program_setup), set by cli
        self.program_setups: dict[str, RegisteredSetup] = {}
        # What of the utility's program the customer wants shown (ems.preferences), read at start.
        self.preferences = ProgramPreferences()
        # The meter each meter id reads (a different one waits for the owner), and the kinds of
        # meter source the Commissioning page can set up (ems.meter_source; kinds added by cli).
        self.meter_pins = MeterPins(self.store, clock)
        self.meter_source_kinds: dict[str, MeterSourceKind] = {}
        self.meter_sources = MeterSources(self.store, clock, self.meter_source_kinds)
        self._components: list[Component] = []
        self._started: list[Component] = []
        self._tasks = TaskSet(_LOGGER)
        self._stopped = asyncio.Event()

    # -- ownership -------------------------------------------------------------------------

    def create_task(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Start a background task the hub owns: cancelled on stop, its failure logged."""
        return self._tasks.spawn(coro, name)

    def every_day(self, at: time, job: Callable[[], Awaitable[Any]], name: str) -> None:
        """Run ``job`` once a day at ``at`` (UTC) of the hub's clock, from the next such moment on.

        On a simulated clock running N times faster the day passes N times faster too; a failed
        run is logged and the next day's runs as usual.
        """
        self.create_task(self._daily(at, job, name), name)

    async def _daily(self, at: time, job: Callable[[], Awaitable[Any]], name: str) -> None:
        while True:
            now = self.clock()
            due = datetime.combine(now.date(), at, UTC)
            if due <= now:
                due += timedelta(days=1)
            # Sleep in steps of at most an hour: a clock set forward (a test) is noticed soon.
            while (left := (due - self.clock()).total_seconds()) > 0:
                await self.clock.sleep(min(left, 3600.0))
            try:
                await job()
            except Exception:
                _LOGGER.exception("The daily %s failed; it runs again tomorrow", name)

    def every(self, interval: timedelta, job: Callable[[], Awaitable[Any]], name: str) -> None:
        """Run ``job`` now and then every ``interval`` of the hub's clock; a failed run is logged."""
        self.create_task(self._every(interval, job, name), name)

    async def _every(self, interval: timedelta, job: Callable[[], Awaitable[Any]], name: str) -> None:
        while True:
            try:
                await job()
            except StoreUnavailable:
                pass  # the store said so once already; the next check tries again
            except Exception:
                _LOGGER.exception("The %s check failed; it runs again in %s", name, interval)
            await self.clock.sleep(interval.total_seconds())

    def add_component(
        self,
        name: str,
        start: Callable[[], Awaitable[Any]],
        stop: Callable[[], Awaitable[Any]],
    ) -> None:
        self._components.append(Component(name, start, stop))

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        _LOGGER.info("Starting the appliance (data in %s)", self.data_dir)
        await asyncio.to_thread(restrict_data_dir, self.data_dir)  # 0700: the database and tokens live here
        await self.store.open()
        try:
            await self.store.restore_state(self.state)
            self.preferences = await load_preferences(self.store)
            if self.make_install_code is not None and self.identity is None:
                self.identity = await load_or_create(self.store, self.clock(), self.make_install_code)
            self.state.attach(self.bus)
            self.store.attach(self.bus)
            self.scheduler.start()
            # Retention: old messages, samples and delivered reports go once a day (UTC night).
            self.every_day(time(10, 17), self.store.purge, "retention")
            if self.store.retention.max_bytes is not None:  # and the size limit, checked hourly
                self.every(timedelta(hours=1), self.store.keep_within_size, "size-retention")
            await self.outbox.start()
            for component in self._components:
                _LOGGER.info("Starting %s", component.name)
                await component.start()
                self._started.append(component)
        except BaseException:
            await self.stop()
            raise
        self.running = True
        _LOGGER.info("Appliance started")

    async def stop(self) -> None:
        """Stop everything in reverse order; each stage is bounded so stop always ends."""
        self.running = False
        if self.control is not None and self._started:
            await self._put_devices_back(self.control)
        for component in reversed(self._started):
            _LOGGER.info("Stopping %s", component.name)
            try:
                await asyncio.wait_for(component.stop(), STOP_TIMEOUT_S)
            except TimeoutError:
                _LOGGER.error("Stopping %s took over %.0f s; going on", component.name, STOP_TIMEOUT_S)
            except Exception:
                _LOGGER.exception("Stopping %s failed; going on", component.name)
        self._started.clear()
        await self.outbox.stop()
        await self._tasks.cancel_all()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        await self.bus.drain()
        self.state.detach()
        await self.store.close()
        self._stopped.set()
        _LOGGER.info("Appliance stopped")

    async def _put_devices_back(self, control: DemandResponse) -> None:
        """Stop deciding, then put every controlled device back (bounded); a failure is logged, not raised."""
        _LOGGER.info("Putting controlled devices back before stopping")
        try:
            await asyncio.wait_for(control.cycle.stop(), STOP_TIMEOUT_S)
            await control.dispatcher.put_back_all()
        except Exception:
            _LOGGER.exception("Putting devices back failed; what is left is put back after the next start")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()
