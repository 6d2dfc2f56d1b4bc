"""The link to one IEEE 2030.5 meter: connect, find the function sets, poll them, publish domain events.

One task owns the meter (``MeterLink._run``): it reads DeviceCapability, follows its links once per
connection (``Plan``: which MeterReading is demand, which the summations, which the interval data;
where pricing, messaging and DRLC live), then polls each at the meter's ``pollRate`` bounded by
``poll_min_s``/``poll_max_s``, one request at a time through the one ``MeterClient``.

Tolerance (issue 16):

- a meter that stalls or reboots: a request that fails after its retries ends the session, the
  link is OFFLINE (logged once per outage), and it reconnects with backoff capped at
  ``retry_max_s`` (a meter whose port refused connections is probed every 2 s meanwhile, so the
  link is back within seconds of it); the data is STALE after ``stale_after_s`` without a value
  (``ems.meter_source.LinkStateTracker``);
- a function set the meter links but will not serve: left for ``poll_max_s``, logged once;
- across a restart: the pinned meter (``hub.meter_pins``) is pinned in the TLS handshake, and a
  summation-only meter's time off starts from the summation the store restored;
- a field in a new format: that value is rejected (``FrameRejected``, logged once per kind), the
  rest of the reading is kept;
- hours offline: the interval data the meter kept is read back (its IntervalBlock); a meter with
  summations only gets the gap as ONE interval from the summation delta
  (``ems.meter_source.IntervalsFromSummation``), never a spike of invented demand;
- a different meter (a move): its certificate's LFDI is not the pinned one; its data is refused
  until the owner confirms it (``hub.meter_pins.admit``, asked again at every attempt); a pin in
  the settings (``meter_lfdi``) is never overridden;
- signed demand while exporting (``translate.demand_kw``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ems.clock import FollowingClock
from ems.errors import NotReady
from ems.meter_source import IntervalsFromSummation, LinkStateTracker
from ems.model import (
    EventStatusReport,
    FrameRejected,
    IntervalReading,
    LinkState,
    MessageCancelled,
    MessageConfirmed,
    MeterInfo,
    MeterLinkChanged,
    MeterRate,
    MeterReading,
)
from integrations.ieee2030_5 import KIND, Settings, translate
from integrations.ieee2030_5 import resources as res
from integrations.ieee2030_5.client import (
    MeterClient,
    MeterError,
    MeterMismatch,
    NotRegistered,
    ResourceGone,
    tcp_accepts,
    tls_context,
)
from integrations.ieee2030_5.identity import ClientIdentity, identity_for, lfdi_grouped
from integrations.ieee2030_5.translate import Role

_LOGGER = logging.getLogger(__name__)

PAGE = 25  # list entries per request (Itron always accepts 25)
MAX_PAGES = 64  # bounded catch-up per poll
CLOCK_TOLERANCE = timedelta(seconds=2)
MAX_PLAUSIBLE_KW = 1000.0
PROBE_INTERVAL_S = 2.0  # of the hub's clock: how often a meter gone from the network is asked whether it is back  # a register step implying more than this on a home meter is not believed


class NotAdmitted(Exception):
    """The meter that answered is not the one this appliance is pinned to (the owner has not confirmed it)."""

    def __init__(self, text: str, lfdi: str) -> None:
        super().__init__(text)
        self.lfdi = lfdi


@dataclass
class Plan:
    """Where the meter keeps what the appliance reads (found by following links, per connection)."""

    time: str | None = None
    demand: tuple[str, res.ReadingType] | None = None  # the Reading that holds it, and its ReadingType
    delivered: tuple[str, res.ReadingType] | None = None  # the register's current Reading (its newest set's total)
    received: tuple[str, res.ReadingType] | None = None
    intervals_delivered: tuple[str, res.ReadingType] | None = None  # a ReadingSetList href
    intervals_received: tuple[str, res.ReadingType] | None = None
    tariffs: str | None = None
    messages: str | None = None
    programs: str | None = None

    @property
    def has_intervals(self) -> bool:
        return self.intervals_delivered is not None


@dataclass
class _Due:
    """One polled thing: when next, and how often the meter asked to be read."""

    name: str
    run: Callable[[], Awaitable[int | None]]  # returns the resource's pollRate (None: not given)
    next_at: datetime
    period_s: float = 0.0


@dataclass
class _Events:
    """What the link has published of the meter's events, so each goes out once."""

    messages: dict[int, tuple[str, str | None]] = field(default_factory=dict)  # id -> (mRID, replyTo)
    messages_shown: dict[int, bool] = field(default_factory=dict)  # id -> still active
    message_ends: dict[int, datetime | None] = field(default_factory=dict)
    controls: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    control_versions: dict[int, int | None] = field(default_factory=dict)
    withdrawn: set[int] = field(default_factory=set)
    price_key: tuple[object, ...] | None = None
    rate_key: tuple[float, ...] | None = None
    programs_read: bool = False
    messages_read: bool = False


class MeterLink:
    """Polls one 2030.5 meter and publishes what it reads (see the module docstring)."""

    def __init__(self, hub: Any, settings: Settings, identity: ClientIdentity | None = None) -> None:
        self._hub = hub
        self.settings = settings
        self.meter_id = settings.meter_id
        self.identity = identity
        self.client: MeterClient | None = None
        self.tracker = LinkStateTracker(hub.bus, hub.clock, settings.meter_id, stale_after_s=settings.stale_after_s)
        self.plan: Plan | None = None
        self.attempts = 0
        self.sessions = 0
        self.rejected = 0
        self._admitted: str | None = settings.meter_lfdi
        self._summation = IntervalsFromSummation(settings.meter_id, interval_s=settings.interval_s,
                                                 gap_s=settings.gap_s)
        self._summation_seeded = False
        self._last_interval_end: datetime | None = None
        self._meter_offset: timedelta | None = None
        self._events = _Events()
        self._logged: set[str] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._unregister: list[Callable[[], None]] = []
        self._online = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.identity is None:
            self.identity = await asyncio.to_thread(identity_for, self._hub.data_dir)
        pins = getattr(self._hub, "meter_pins", None)
        if self._admitted is None and pins is not None:
            pinned = await pins.get(self.meter_id)  # the meter read before a restart: pinned in the handshake
            if pinned is not None and pinned.kind == KIND:
                self._admitted = pinned.hardware_id.upper()
        context = await asyncio.to_thread(tls_context, self.identity.cert_path, self.identity.key_path,
                                          self._admitted)
        # Network waits are real seconds whatever the hub's clock runs at (a demo 60x faster still
        # gives a meter's 11-s handshake its time).
        self.client = MeterClient(self.settings.url, context, timeout_s=self.settings.timeout_s,
                                  idle_s=self.settings.idle_s, retries=self.settings.retries)
        self._seed_from_state()
        outbox = self._hub.outbox
        self._unregister = [
            outbox.register_sender(EventStatusReport, self._send_status, meter_id=self.meter_id),
            outbox.register_sender(MessageConfirmed, self._send_confirmation, meter_id=self.meter_id),
            self._hub.bus.listen(MeterLinkChanged, self._on_link_changed),
        ]
        self._set(LinkState.CONNECTING, f"connecting to {self.settings.url}")
        self._tasks = [self._hub.create_task(self._run(), f"ieee2030_5-{self.meter_id}"),
                       self._hub.create_task(self.tracker.watch(), f"ieee2030_5-{self.meter_id}-stale")]

    async def close(self) -> None:
        for unregister in self._unregister:
            unregister()
        self._unregister = []
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.client is not None:
            await self.client.close()

    def _seed_from_state(self) -> None:
        """Start the summation's intervals from the last summation the store kept (the time the
        appliance was off becomes one interval, as any silence does)."""
        meter = self._hub.state.meters.get(self.meter_id)
        if meter is None or meter.last_reading_at is None:
            return
        delivered = meter.value("summation_delivered_kwh")
        if delivered is None:
            return
        self._summation.seed(meter.last_reading_at, delivered, meter.value("summation_received_kwh"))
        self._summation_seeded = True

    @property
    def state(self) -> LinkState:
        """How the link stands now (online, stale, offline, connecting)."""
        return self.tracker.state

    def _set(self, state: LinkState, detail: str) -> None:
        if state is LinkState.ONLINE:
            self._online.set()
        else:
            self._online.clear()
        self.tracker.set(state, detail)

    def _on_link_changed(self, change: MeterLinkChanged) -> None:
        if change.meter_id == self.meter_id and change.state is LinkState.ONLINE:
            self._hub.outbox.resume(self.meter_id)

    # -- the loop ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Connect and poll until closed; after a failure, wait (backoff) and connect again.

        An outage is logged once (the first failure after the link was online); the backoff
        doubles from ``first_retry_s`` up to ``retry_max_s`` and starts again after a session
        that came online."""
        assert self.client is not None
        delay = self.settings.first_retry_s
        outage_logged = False
        while True:
            self.attempts += 1
            self._went_online = False
            wait = 0.0
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except MeterMismatch as err:
                wait = await self._other_meter(err.seen)
            except NotAdmitted as err:
                self._set(LinkState.OFFLINE, str(err))
                self._log_once(f"admit:{err.lfdi}", logging.WARNING, str(err))
                wait = self.settings.retry_max_s
            except NotRegistered as err:
                lfdi = self.identity.lfdi if self.identity else "?"
                text = (f"the meter does not accept this appliance yet: register its LFDI {lfdi_grouped(lfdi)} "
                        f"with the utility ({err})")
                self._set(LinkState.OFFLINE, text)
                self._log_once("registered", logging.WARNING, text)
                wait = self.settings.retry_max_s
            except ResourceGone as err:
                self._log_once(f"gone:{err}", logging.INFO, f"The meter no longer serves {err}; reading its links again")
                if not self._went_online:  # not even DeviceCapability: wait as after any failure
                    self._set(LinkState.OFFLINE, f"the meter has no {err}")
                    wait, delay = delay, min(self.settings.retry_max_s, delay * 2)
            except Exception as err:  # noqa: BLE001 - the link must outlive any failure; each is retried
                if self._went_online:
                    outage_logged, delay = False, self.settings.first_retry_s
                expected = isinstance(err, MeterError | res.BadResource | OSError | NotReady)
                if not expected and f"bug:{type(err).__name__}" not in self._logged:
                    self._logged.add(f"bug:{type(err).__name__}")
                    _LOGGER.exception("[%s] The IEEE 2030.5 link failed unexpectedly; retrying", self.meter_id)
                elif expected and not outage_logged:
                    _LOGGER.warning("[%s] IEEE 2030.5 meter at %s: %s; retrying with backoff", self.meter_id,
                                    self.settings.url, err)
                outage_logged = True
                self._unreachable = isinstance(err, MeterError) and err.unreachable
                self._set(LinkState.OFFLINE, (str(err) if expected else f"{type(err).__name__}: {err}")[:200])
                wait, delay = delay, min(self.settings.retry_max_s, delay * 2)
            if self.client is not None:
                await self.client.drop()
            if wait:
                await self._wait(wait)

    _went_online = False
    _unreachable = False

    async def _wait(self, seconds: float) -> None:
        """Wait out the backoff; while the meter's port refused connections, ask it every
        ``PROBE_INTERVAL_S`` (a TCP connect, nothing sent) and end the wait once it accepts: the
        link is back within seconds of the meter however long the backoff has grown."""
        if not self._unreachable or seconds <= PROBE_INTERVAL_S:
            await self._hub.clock.sleep(seconds)
            return
        self._unreachable = False
        left = seconds
        while left > 0:
            step = min(PROBE_INTERVAL_S, left)
            await self._hub.clock.sleep(step)
            left -= step
            if left > 0 and await tcp_accepts(self.settings.url):
                return

    async def _other_meter(self, seen: str) -> float:
        """Another meter's certificate: ask the owner (unless the settings pin one); 0 = try again now."""
        assert self.client is not None
        pinned = self.settings.meter_lfdi
        if pinned is not None:
            text = (f"a different meter answered (LFDI {lfdi_grouped(seen)}), not the one in the settings "
                    f"({lfdi_grouped(pinned)}); its data is refused")
            self._set(LinkState.OFFLINE, text)
            self._log_once(f"pin:{seen}", logging.WARNING, text)
            return self.settings.retry_max_s
        if await self._admit(seen):
            self._log_once(f"confirmed:{seen}", logging.WARNING,
                           f"The owner confirmed the new meter (LFDI {lfdi_grouped(seen)}); reading it from now on")
            self._pin(seen)
            return 0.0
        text = (f"a different meter answered (LFDI {lfdi_grouped(seen)}): its data is refused until the owner "
                "confirms it on the Commissioning page")
        self._set(LinkState.OFFLINE, text)
        self._log_once(f"admit:{seen}", logging.WARNING, text)
        return self.settings.retry_max_s

    async def _admit(self, lfdi: str) -> bool:
        pins = getattr(self._hub, "meter_pins", None)
        if pins is None:  # a hub without pins (never in the appliance): the configured pin alone decides
            return True
        return bool(await pins.admit(self.meter_id, KIND, lfdi))

    def _pin(self, lfdi: str) -> None:
        assert self.client is not None
        if self._admitted is not None and self._admitted != lfdi:
            self._summation_seeded = False  # another meter's registers start a new baseline
            self._last_interval_end = None
        self._admitted = lfdi
        self.client.context.pin = lfdi

    async def connect(self, *, admit: bool = True) -> str:
        """Read DeviceCapability, check the meter is the admitted one, follow its links (``plan``);
        the meter's LFDI. Without ``admit`` (a probe), nothing is pinned."""
        assert self.client is not None
        client = self.client
        dcap = res.parse_device_capability(await client.get(self.settings.dcap_path))
        seen = client.peer_lfdi
        assert seen is not None
        if admit and seen != self._admitted:
            if not await self._admit(seen):
                raise NotAdmitted(f"a different meter answered (LFDI {lfdi_grouped(seen)}): its data is refused "
                                  "until the owner confirms it on the Commissioning page", seen)
            self._pin(seen)
        self.plan = await self._discover(dcap)
        return seen

    async def _session(self) -> None:
        seen = await self.connect()
        plan = self.plan
        assert plan is not None
        self.sessions += 1
        self._hub.bus.publish(MeterInfo(self.meter_id, ieee=seen, endpoint=0, unit="kWh", multiplier=1,
                                        divisor=1000, summation_decimals=3, demand_decimals=3,
                                        device_type="IEEE 2030.5 electricity meter", discovered_at=self._hub.clock()))
        now = self._hub.clock()
        due = [_Due("readings", self._poll_readings, now)]
        if plan.has_intervals:
            due.append(_Due("intervals", self._poll_intervals, now))
        if plan.time:
            due.append(_Due("time", self._poll_time, now))
        if plan.tariffs:
            due.append(_Due("pricing", self._poll_pricing, now))
        if plan.messages:
            due.append(_Due("messaging", self._poll_messages, now))
        if plan.programs:
            due.append(_Due("drlc", self._poll_programs, now))
        first = True
        while True:
            now = self._hub.clock()
            for item in due:
                if item.next_at <= now:
                    rate = await self._guarded(item.name, item.run)
                    item.period_s = self._bounded(rate, self.settings.poll_min_s if item.name in ("readings", "intervals")
                                                  else self.settings.poll_max_s)
                    item.next_at = self._hub.clock() + timedelta(seconds=item.period_s)
            if first:
                first = False
                self._set(LinkState.ONLINE, f"meter {lfdi_grouped(seen)}")
                self._went_online = True
            wake = min(item.next_at for item in due)
            await self._hub.clock.sleep(max(0.0, (wake - self._hub.clock()).total_seconds()))

    def _bounded(self, poll_rate: int | None, default: float) -> float:
        """The meter's pollRate within the settings' bounds (``default`` where it gave none)."""
        rate = float(poll_rate) if poll_rate is not None else default
        return min(self.settings.poll_max_s, max(self.settings.poll_min_s, rate))

    async def _guarded(self, name: str, run: Callable[[], Awaitable[int | None]]) -> int | None:
        """Run one poll; a resource the meter serves malformed is rejected (logged once), the rest goes on.

        A function set beyond metering that the meter links but will not serve (404, an error
        status) is left for ``poll_max_s`` (logged once); the readings failing so ends the session
        (their links are read again)."""
        try:
            return await run()
        except res.BadResource as err:
            self._reject("malformed", f"{name}: {err}")
            return None
        except (ResourceGone, MeterError) as err:
            refused = isinstance(err, ResourceGone) or err.http_status is not None
            if name in ("readings", "intervals") or not refused:
                raise
            self._log_once(f"skip:{name}", logging.WARNING,
                           f"The meter links {name} but does not serve it ({err}); asking again later")
            return None

    # -- discovery -----------------------------------------------------------------------------

    async def _discover(self, dcap: res.DeviceCapability) -> Plan:
        plan = Plan()
        plan.time = _href(dcap.link("TimeLink"))
        plan.tariffs = _href(dcap.link("TariffProfileListLink"))
        plan.messages = _href(dcap.link("MessagingProgramListLink"))
        plan.programs = _href(dcap.link("DemandResponseProgramListLink"))
        usage = dcap.link("UsagePointListLink")
        if usage is None:
            self._log_once("no-upt", logging.WARNING, "The meter's DeviceCapability links no UsagePointList")
            return plan
        points = [p for p in await self._list(usage.href, res.parse_usage_point_list)
                  if isinstance(p, res.UsagePoint) and p.service_category in (None, 0)  # electricity
                  and p.meter_reading_list is not None]
        own = [p for p in points if not (p.role_flags or 0) & 0x01]  # a mirror is another device's data
        for point in own or points:
            assert point.meter_reading_list is not None
            for reading in await self._list(point.meter_reading_list.href, res.parse_meter_reading_list):
                assert isinstance(reading, res.MeterReading)
                await self._place(plan, reading)
        if plan.demand is None and plan.delivered is None:
            self._log_once("no-readings", logging.WARNING,
                           "The meter serves no demand or summation reading this appliance recognises")
        return plan

    async def _place(self, plan: Plan, reading: res.MeterReading) -> None:
        if reading.reading_type is None:
            return
        try:
            kind = res.parse_reading_type(await self._get(reading.reading_type.href))
        except res.BadResource as err:
            self._reject("malformed", f"ReadingType {reading.reading_type.href}: {err}")
            return
        role = translate.classify(kind)
        if role is None:
            return
        slot = _SLOTS[role]
        if getattr(plan, slot) is not None:
            return  # the first of each kind (Itron lists the totals first)
        if role in (Role.INTERVALS_DELIVERED, Role.INTERVALS_RECEIVED):
            if reading.reading_set_list is not None:
                setattr(plan, slot, (reading.reading_set_list.href, kind))
            return
        if reading.reading is not None:
            setattr(plan, slot, (reading.reading.href, kind))
        elif reading.reading_set_list is not None:
            href = await self._current_reading_href(reading.reading_set_list.href)
            if href is not None:
                setattr(plan, slot, (href, kind))

    async def _current_reading_href(self, sets_href: str) -> str | None:
        """The Reading a register keeps its current value in: the newest ReadingSet's total (tier 0)."""
        sets = [s for s in await self._list(sets_href, res.parse_reading_set_list, pages=1)
                if isinstance(s, res.ReadingSet) and s.reading_list is not None]
        if not sets:
            return None
        newest = max(sets, key=lambda s: s.start.timestamp() if s.start else 0)
        assert newest.reading_list is not None
        readings = [r for r in await self._list(newest.reading_list.href, res.parse_reading_list, pages=1)
                    if isinstance(r, res.Reading) and r.href]
        total = [r for r in readings if not r.tou_tier]
        chosen = (total or readings)[:1]
        return chosen[0].href if chosen else None

    # -- polls ------------------------------------------------------------------------------------

    async def read_values(self) -> tuple[MeterReading | None, int | None]:
        """Read demand and the summations once: the reading (None: no value) and the pollRate."""
        plan = self.plan
        assert plan is not None
        values: dict[str, float] = {}
        rates: list[int] = []
        for role, slot in ((Role.DEMAND, plan.demand), (Role.DELIVERED, plan.delivered),
                           (Role.RECEIVED, plan.received)):
            if slot is None:
                continue
            href, kind = slot
            reading = res.parse_reading(await self._get(href))
            rate = _poll_rate_of(self._last_body)
            if rate is not None:
                rates.append(rate)
            for problem in reading.problems:
                self._reject("rejected", problem)
            if reading.value is None:
                continue
            if role is Role.DEMAND:
                values["demand_kw"] = translate.demand_kw(reading.value, kind)
            else:
                kwh = translate.scaled_k(reading.value, kind)
                if kwh < 0:
                    self._reject("rejected", f"{role.value} is negative: {kwh}")
                    continue
                values[f"{role.value}_kwh"] = kwh
        rate = min(rates) if rates else None
        if not values:
            return None, rate
        now = self._hub.clock()
        meter_time = now + self._meter_offset if self._meter_offset is not None else None
        return MeterReading(
            self.meter_id, now, demand_kw=values.get("demand_kw"),
            summation_delivered_kwh=values.get("summation_delivered_kwh"),
            summation_received_kwh=values.get("summation_received_kwh"), meter_time=meter_time), rate

    async def _poll_readings(self) -> int | None:
        plan = self.plan
        assert plan is not None
        reading, rate = await self.read_values()
        if reading is None:
            return rate
        now = reading.read_at
        delivered = reading.summation_delivered_kwh
        if not plan.has_intervals and delivered is not None and not self._plausible(now, delivered):
            reading = MeterReading(reading.meter_id, now, demand_kw=reading.demand_kw, meter_time=reading.meter_time)
            delivered = None
        self._hub.bus.publish(reading)
        self.tracker.heard()
        if not plan.has_intervals and delivered is not None:
            self._intervals_from_summation(now, delivered, reading.summation_received_kwh or 0.0)
        return rate

    _last_body = b""
    _last_summation: tuple[datetime, float] | None = None

    def _plausible(self, now: datetime, delivered: float) -> bool:
        last = self._last_summation
        self._last_summation = (now, delivered)
        if last is None or delivered < last[1]:
            return True  # a first value, or a reset (the summation filler starts a new baseline)
        hours = max((now - last[0]).total_seconds() / 3600, 1 / 3600)
        if (delivered - last[1]) / hours > MAX_PLAUSIBLE_KW:
            self._last_summation = last
            self._reject("rejected", f"summation delivered jumped by {delivered - last[1]:.1f} kWh in "
                                     f"{hours * 3600:.0f} s (implausible)")
            return False
        return True

    def _intervals_from_summation(self, now: datetime, delivered: float, received: float) -> None:
        if not self._summation_seeded:
            self._summation.seed(now, delivered, received)
            self._summation_seeded = True
            return
        result = self._summation.add(now, delivered, received)
        if result.gap is not None:
            self._log_once(f"gap:{result.gap}", logging.INFO,
                           f"The meter was silent; the gap is one interval from the summation delta ({result.gap})")
        if result.reset:
            self._log_once(f"reset:{now.date()}", logging.WARNING,
                           "The meter's summation went backwards (a new meter or a reset); starting a new baseline")
        for interval in result.intervals:
            self._hub.bus.publish(interval)

    async def _poll_intervals(self) -> int | None:
        plan = self.plan
        assert plan is not None and plan.intervals_delivered is not None
        now = self._hub.clock()
        since = self._last_interval_end or now - timedelta(hours=self.settings.history_h)
        delivered, rate = await self._interval_readings(plan.intervals_delivered, since)
        received: dict[datetime, tuple[float, int]] = {}
        if plan.intervals_received is not None:
            received, _ = await self._interval_readings(plan.intervals_received, since)
        published = 0
        for start in sorted(delivered):
            consumed, duration = delivered[start]
            end = start + timedelta(seconds=duration)
            if end > now + timedelta(seconds=1):
                continue  # not complete yet
            generated = received.get(start, (0.0, duration))[0]
            self._hub.bus.publish(IntervalReading(self.meter_id, start, duration, consumed, generated))
            published += 1
            self._last_interval_end = max(self._last_interval_end or end, end)
        if published:
            self.tracker.heard()
        return rate

    async def _interval_readings(self, slot: tuple[str, res.ReadingType], since: datetime
                                 ) -> tuple[dict[datetime, tuple[float, int]], int | None]:
        """The intervals after ``since`` (start -> (kWh, duration)) from the newest ReadingSets."""
        sets_href, kind = slot
        found: dict[datetime, tuple[float, int]] = {}
        rate: int | None = None
        pages = 0
        offset = 0
        while pages < MAX_PAGES:
            page = res.parse_reading_set_list(await self._get(_paged(sets_href, offset, 4)))
            pages += 1
            rate = rate if rate is not None else page.poll_rate
            sets = sorted((s for s in page.items if isinstance(s, res.ReadingSet) and s.start and s.reading_list),
                          key=lambda s: s.start or since, reverse=True)
            older = False
            for reading_set in sets:
                assert reading_set.start is not None and reading_set.reading_list is not None
                span = reading_set.duration_s or 0
                if reading_set.start + timedelta(seconds=span) <= since:
                    older = True
                    break
                pages += await self._set_readings(reading_set.reading_list.href, kind, since, found)
            offset += len(page.items)
            if older or not page.items or offset >= page.all:
                break
        return found, rate

    async def _set_readings(self, href: str, kind: res.ReadingType, since: datetime,
                            found: dict[datetime, tuple[float, int]]) -> int:
        pages = 0
        offset = 0
        length = kind.interval_length_s
        while pages < MAX_PAGES:
            page = res.parse_reading_list(await self._get(_paged(href, offset, PAGE)))
            pages += 1
            reached = False
            for reading in page.items:
                assert isinstance(reading, res.Reading)
                for problem in reading.problems:
                    self._reject("rejected", problem)
                duration = reading.duration_s or length
                if reading.start is None or reading.value is None or not duration:
                    continue
                if reading.start < since:
                    reached = True
                    continue
                kwh = translate.scaled_k(reading.value, kind)
                if kwh < 0:
                    self._reject("rejected", f"interval at {reading.start.isoformat()} is negative")
                    continue
                found[reading.start] = (kwh, int(duration))
            offset += len(page.items)
            if reached or not page.items or offset >= page.all:
                break
        return pages

    async def _poll_time(self) -> int | None:
        plan = self.plan
        assert plan is not None and plan.time is not None
        time = res.parse_time(await self._get(plan.time))
        for problem in time.problems:
            self._reject("rejected", problem)
        if time.current_time is None:
            return time.poll_rate
        clock = self._hub.clock
        self._meter_offset = time.current_time - clock().replace(microsecond=0)
        if isinstance(clock, FollowingClock) and time.quality in (None, 3, 4):
            offset = clock.follow(time.current_time, CLOCK_TOLERANCE)
            if offset:
                _LOGGER.info("[%s] Meter clock differs from ours by %s; following the meter", self.meter_id, offset)
            self._meter_offset = timedelta(0)
        return time.poll_rate

    async def _poll_pricing(self) -> int | None:
        plan = self.plan
        assert plan is not None and plan.tariffs is not None
        profiles = [p for p in await self._list(plan.tariffs, res.parse_tariff_profile_list)
                    if isinstance(p, res.TariffProfile) and p.rate_component_list is not None]
        rate = _poll_rate_of(self._last_body)
        if not profiles:
            return rate
        profile = min(profiles, key=lambda p: p.primacy if p.primacy is not None else 255)
        assert profile.rate_component_list is not None
        components = [c for c in await self._list(profile.rate_component_list.href, res.parse_rate_component_list)
                      if isinstance(c, res.RateComponent)]
        now = self._hub.clock()
        for component in components[:1]:
            unit = None
            if component.reading_type is not None:
                unit = res.parse_reading_type(await self._get(component.reading_type.href))
            link = component.active_tti_list or component.tti_list
            if link is None:
                continue
            intervals = [t for t in await self._list(link.href, res.parse_time_tariff_interval_list)
                         if isinstance(t, res.TimeTariffInterval) and not translate.is_withdrawn(t.event.status)]
            rate = _poll_rate_of(self._last_body) or rate
            current = [t for t in intervals if t.event.start is not None and t.event.start <= now
                       and (t.event.duration_s is None
                            or now < t.event.start + timedelta(seconds=t.event.duration_s))]
            for interval in current[:1]:
                if interval.cti_list is None:
                    continue
                blocks = [b for b in await self._list(interval.cti_list.href,
                                                      res.parse_consumption_tariff_interval_list)
                          if isinstance(b, res.ConsumptionTariffInterval)]
                for block in blocks:
                    for problem in block.problems:
                        self._reject("rejected", problem)
                signal = translate.price_signal(self.meter_id, profile, unit, interval, blocks, now)
                if signal is None:
                    continue
                key = (signal.issuer_event_id, signal.price_per_kwh_exact, signal.start, signal.end)
                if key != self._events.price_key:
                    self._events.price_key = key
                    self._hub.bus.publish(signal)
                thresholds = translate.block_thresholds_kwh(blocks, unit)
                if thresholds != self._events.rate_key:
                    self._events.rate_key = thresholds
                    self._hub.bus.publish(MeterRate(self.meter_id, now, block_thresholds_kwh=thresholds))
        return rate

    async def _poll_messages(self) -> int | None:
        plan = self.plan
        assert plan is not None and plan.messages is not None
        programs = [p for p in await self._list(plan.messages, res.parse_messaging_program_list)
                    if isinstance(p, res.MessagingProgram)]
        rate = None
        now = self._hub.clock()
        active_now: set[int] = set()
        for program in programs[:4]:
            link = program.active_list or program.text_message_list
            if link is None:
                continue
            messages = [m for m in await self._list(link.href, res.parse_text_message_list)
                        if isinstance(m, res.TextMessage)]
            rate = _poll_rate_of(self._last_body) or rate
            for message in messages:
                for problem in message.problems:
                    self._reject("rejected", problem)
                ident = translate.event_id(message.event.mrid)
                self._events.message_ends[ident] = _end_of(message.event)
                if translate.is_withdrawn(message.event.status):
                    if self._events.messages_shown.get(ident):
                        self._events.messages_shown[ident] = False
                        self._hub.bus.publish(translate.message_cancelled(self.meter_id, message, now))
                    continue
                active_now.add(ident)
                if ident in self._events.messages:
                    continue
                domain = translate.utility_message(self.meter_id, message, now)
                if domain is None:
                    continue
                self._events.messages[ident] = (message.event.mrid, message.event.reply_to)
                self._events.messages_shown[ident] = True
                self._hub.bus.publish(domain)
                if message.event.response_required & 0x01 and message.event.reply_to:
                    try:  # the receipt the message asked for; a failure here does not end the session
                        await self._respond("TextResponse", message.event.reply_to, 1, message.event.mrid, now)
                    except NotReady as err:
                        self._log_once("receipt", logging.INFO, f"A message receipt was not taken: {err}")
        for ident, shown in list(self._events.messages_shown.items()):
            end = self._events.message_ends.get(ident)
            if shown and ident not in active_now and programs and programs[0].active_list is not None \
                    and (end is None or now < end):
                self._events.messages_shown[ident] = False  # left the active list before its end: withdrawn
                self._hub.bus.publish(MessageCancelled(self.meter_id, ident, now))
        self._events.messages_read = True
        return rate

    async def _poll_programs(self) -> int | None:
        plan = self.plan
        assert plan is not None and plan.programs is not None
        programs = [p for p in await self._list(plan.programs, res.parse_dr_program_list)
                    if isinstance(p, res.DemandResponseProgram)]
        rate = None
        now = self._hub.clock()
        for program in programs[:4]:
            link = program.edc_list or program.active_list
            if link is None:
                continue
            controls = [c for c in await self._list(link.href, res.parse_end_device_control_list)
                        if isinstance(c, res.EndDeviceControl)]
            rate = _poll_rate_of(self._last_body) or rate
            for control in controls:
                for problem in control.problems:
                    self._reject("rejected", problem)
                ident = translate.event_id(control.event.mrid)
                # Responses go where the event says, and only if it asks for them (responseRequired).
                self._events.controls[ident] = (control.event.mrid,
                                                control.event.reply_to if control.event.response_required else None)
                if translate.is_withdrawn(control.event.status):
                    if ident not in self._events.withdrawn and ident in self._events.control_versions:
                        self._events.withdrawn.add(ident)
                        self._hub.bus.publish(translate.event_cancellation(self.meter_id, control, now))
                    continue
                if ident in self._events.control_versions and self._events.control_versions[ident] == control.version:
                    continue
                event = translate.load_control_event(self.meter_id, control, now)
                if event is None:
                    self._reject("rejected", f"EndDeviceControl {control.event.mrid} has no interval")
                    continue
                self._events.control_versions[ident] = control.version
                self._hub.bus.publish(event)
        self._events.programs_read = True
        return rate

    # -- upstream -----------------------------------------------------------------------------------

    async def _send_status(self, report: EventStatusReport) -> None:
        if self.tracker.state not in (LinkState.ONLINE, LinkState.STALE):
            raise NotReady(f"meter {self.meter_id} is not linked; the report waits in the outbox")
        known = self._events.controls.get(report.issuer_event_id)
        if known is None:
            if not self._events.programs_read:
                raise NotReady("the meter's events are not read yet; the report waits")
            self._log_once(f"status-unknown:{report.issuer_event_id}", logging.INFO,
                           f"No 2030.5 event for DR status report {report.issuer_event_id}; not sent")
            return
        mrid, reply_to = known
        if reply_to is None:
            return  # the event asked for no responses
        await self._respond("DrResponse", reply_to, translate.response_status(report.status), mrid, report.at)

    async def _send_confirmation(self, item: MessageConfirmed) -> None:
        if self.tracker.state not in (LinkState.ONLINE, LinkState.STALE):
            raise NotReady(f"meter {self.meter_id} is not linked; the confirmation waits in the outbox")
        known = self._events.messages.get(item.message_id)
        if known is None and not self._events.messages_read:
            raise NotReady("the meter's messages are not read yet; the confirmation waits")
        if known is None or known[1] is None:
            return  # not a message the meter still lists, or it takes no responses
        await self._respond("TextResponse", known[1], 11, known[0], item.confirmed_at)

    async def _respond(self, kind: str, reply_to: str, status: int, mrid: str, at: datetime) -> None:
        assert self.client is not None and self.identity is not None
        body = res.response_xml(kind, created=at, lfdi=self.identity.lfdi, status=status, subject=mrid)
        try:
            await self.client.post(reply_to, body)
        except (MeterError, ResourceGone) as err:
            raise NotReady(f"the meter did not take the response: {err}") from None

    # -- helpers ---------------------------------------------------------------------------------------

    async def _get(self, href: str) -> bytes:
        assert self.client is not None
        body = await self.client.get(href)
        self._last_body = body
        return body

    async def _list(self, href: str, parse: Callable[[bytes], res.ListPage], pages: int = 8) -> list[object]:
        items: list[object] = []
        offset = 0
        for _ in range(pages):
            page = parse(await self._get(_paged(href, offset, PAGE)))
            for problem in page.problems:
                self._reject("rejected", problem)
            items.extend(page.items)
            offset += len(page.items)
            if not page.items or offset >= page.all:
                break
        return items

    def _reject(self, kind: str, reason: str) -> None:
        self.rejected += 1
        self._hub.bus.publish(FrameRejected(self.meter_id, reason[:200], kind, self._hub.clock()))
        key = kind + ":" + reason.split(":")[0][:60]
        self._log_once(key, logging.WARNING, f"{kind.capitalize()} value from the meter: {reason}")

    def _log_once(self, key: str, level: int, text: str) -> None:
        if key in self._logged:
            return
        if len(self._logged) > 256:
            self._logged.clear()
        self._logged.add(key)
        _LOGGER.log(level, "[%s] %s", self.meter_id, text)


_SLOTS = {Role.DEMAND: "demand", Role.DELIVERED: "delivered", Role.RECEIVED: "received",
          Role.INTERVALS_DELIVERED: "intervals_delivered", Role.INTERVALS_RECEIVED: "intervals_received"}


def _end_of(event: res.EventFields) -> datetime | None:
    if event.start is None or event.duration_s is None or event.duration_s >= 0xFFFFFFFF:
        return None
    return event.start + timedelta(seconds=event.duration_s)


def _href(link: res.Link | None) -> str | None:
    return link.href if link is not None else None


def _paged(href: str, start: int, limit: int) -> str:
    separator = "&" if "?" in href else "?"
    return f"{href}{separator}s={start}&l={limit}"


def _poll_rate_of(body: bytes) -> int | None:
    """The root element's pollRate, if it has one (read from the body just parsed)."""
    head = body[:400]
    marker = head.find(b'pollRate="')
    if marker < 0:
        return None
    end = head.find(b'"', marker + 10)
    text = head[marker + 10:end]
    return int(text) if text.isdigit() and len(text) < 9 else None

