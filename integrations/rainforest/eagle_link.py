"""Polls one EAGLE for one meter and publishes what it reads, tolerating what real units do.

Each poll is one ``device_query`` with ``All`` (§2.2); the reply becomes domain events on the bus:
``MeterReading`` (demand, summations), ``IntervalReading`` from the summation
(``ems.meter_source.IntervalsFromSummation``), ``PriceSignal`` and ``MeterRate`` when they change,
``UtilityMessage`` / ``MessageCancelled`` as the EAGLE's message comes and goes, ``MeterInfo`` once
per connection. The link's state is a ``LinkStateTracker``: online while the meter's values
arrive, stale after ``stale_after_s`` without a new one, offline while the EAGLE does not answer.

What users report of real units (§2.4), and what the link does:

* The local API locks up (a request hangs): the request times out, the data goes stale, the link
  retries with backoff (``max_backoff_s``) starting from ``device_list`` again; logged once, the
  recovery logged once. A reboot (connection refused) shows the link offline until it answers.
* Values empty or ``invalid``: unknown, never 0. A summation that falls (the reboot's 0 kWh, a
  misread) or leaps is refused; one that stays out of line for several polls is a reset and
  restarts the baseline (nothing counted for the jump); 0 is never believed.
* A firmware that changes one field's format: that value is refused with one log line per
  variable, the rest of the reply is kept (``eagle_translate``).
* A drop of hours, then answers again: the summation's delta becomes one gap reading (logged once).
* The EAGLE answers from its cache (``LastContact`` and the values stand still): nothing new is
  published, so the data goes stale rather than looking current.
* A different meter (after a move the old one stays listed, ``Not joined``): the joined one heard
  last is chosen, and it is read only once ``hub.meter_pins`` admits it; until the owner confirms it
  on the Commissioning page the link says so and asks again every poll.
* No message confirmation exists in the local API: a confirmation the customer makes is kept by
  the appliance, and its outbox item is closed here with one log line, not retried for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from ems.meter_source import IntervalsFromSummation, LinkStateTracker
from ems.model import (
    LinkState,
    MessageCancelled,
    MessageConfirmed,
    MeterRate,
    MeterReading,
    PriceSignal,
    UtilityMessage,
)
from integrations.rainforest.eagle import KIND, EagleSettings
from integrations.rainforest.eagle_client import (
    BadAuth,
    EagleClient,
    EagleError,
    Stalled,
    Unreachable,
)
from integrations.rainforest.eagle_translate import Translated, meter_info, translate
from integrations.rainforest.eagle_wire import BadReply, DeviceEntry, QueryReply, unix_seconds

_LOGGER = logging.getLogger(__name__)

FIRST_RETRY_S = 2.0
RESET_AFTER_POLLS = 3  # a summation out of line this many polls running is a reset, not a misread
MAX_RISE_KW = 1000.0  # a register rising faster than this (a large commercial premise) is misread
RELIST_EVERY = 20  # polls: the device list is asked again now and then (a new meter joined)  # 0 kWh is the reboot quirk (§2.4): believed only when it persists


class NoMeter(EagleError):
    """The EAGLE lists no electric meter (not yet joined: the utility has to grant HAN access)."""


class NotAdmitted(EagleError):
    """The meter the EAGLE reads is not the pinned one: refused until the owner confirms it."""


def _close(a: datetime | None, b: datetime | None, within_s: float = 120.0) -> bool:
    if a is None or b is None:
        return a is b
    return abs((a - b).total_seconds()) <= within_s


def choose_meter(devices: Sequence[DeviceEntry], address: str | None = None) -> DeviceEntry | None:
    """The meter to read: the one named, else the joined one heard last (a stale one from before a
    move stays listed, ``Not joined`` with ``LastContact`` 0: Home Assistant #125281)."""
    meters = [d for d in devices if d.is_meter]
    if address is not None:
        return next((m for m in meters if m.hardware_address == address.lower()), None)

    def heard(meter: DeviceEntry) -> int:
        try:
            return unix_seconds(meter.last_contact, "LastContact") or 0
        except ValueError:
            return 0

    return max(meters, key=lambda m: (m.connected, heard(m)), default=None)


class EagleLink:
    """Owns the HTTP session, the poll task and the stale watch of one EAGLE's meter."""

    def __init__(self, hub: Any, settings: EagleSettings,
                 session_factory: Callable[[], aiohttp.ClientSession] = aiohttp.ClientSession) -> None:
        self._hub = hub
        self.settings = settings
        self.meter_id = settings.meter_id
        self._session_factory = session_factory
        self._session: aiohttp.ClientSession | None = None
        self.client: EagleClient | None = None
        self.tracker = LinkStateTracker(hub.bus, hub.clock, settings.meter_id, stale_after_s=settings.stale_after_s)
        self.intervals = IntervalsFromSummation(settings.meter_id, interval_s=settings.interval_s,
                                                gap_s=settings.gap_s)
        self.address: str | None = None  # the meter being read (None: choose again with device_list)
        self._meter_read: str | None = None  # the meter the last reply was of
        self.counters: dict[str, int] = {"polls": 0, "failures": 0, "refused_values": 0, "gaps": 0,
                                         "summation_refused": 0, "resets": 0, "not_admitted": 0}
        self.attempts = 0  # polls tried, whatever came of them (counted before each wait)
        self.next_attempt_at: datetime | None = None  # of the hub's clock: when the loop polls next
        self._tasks: list[asyncio.Task[Any]] = []
        self._unregister: list[Callable[[], None]] = []
        self._outage: str | None = None  # the kind of trouble now (logged once), None while all is well
        self._logged_values: set[str] = set()
        self._info_sent = False
        self._last_values: tuple[Any, ...] | None = None
        self._last_summation: tuple[float, float, datetime] | None = None  # delivered, received, read at
        self._odd = 0  # polls running whose summation was out of line
        self._price_key: tuple[Any, ...] | None = None
        self._price_id = 0
        self._price_end: datetime | None = None
        self._rate: MeterRate | None = None
        self._message: UtilityMessage | None = None
        self._confirm_logged = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._seed()
        settings = self.settings
        self._session = self._session_factory()
        self.client = EagleClient(self._session, settings.host, settings.cloud_id, settings.install_code,
                                  clock=self._hub.clock, timeout_s=settings.timeout_s,
                                  request_gap_s=settings.request_gap_s)
        with contextlib.suppress(ValueError):  # another source carries this meter's confirmations
            self._unregister.append(self._hub.outbox.register_sender(
                MessageConfirmed, self._confirmation, meter_id=self.meter_id))
        self.tracker.set(LinkState.CONNECTING, f"asking the EAGLE at {settings.host}")
        self._tasks = [self._hub.create_task(self._run(), f"eagle-poll[{self.meter_id}]"),
                       self._hub.create_task(self.tracker.watch(), f"eagle-stale[{self.meter_id}]")]

    def _seed(self) -> None:
        """Start the intervals from the last summation the store restored: the time the appliance was
        off becomes one gap reading like any other silence (not energy lost, not a spike)."""
        meter = self._hub.state.meters.get(self.meter_id)
        delivered = None if meter is None else meter.values.get("summation_delivered_kwh")
        if delivered is None:
            return
        received = meter.values.get("summation_received_kwh")
        self.intervals.seed(delivered.reported_at, delivered.value, None if received is None else received.value)
        self._last_summation = (delivered.value, 0.0 if received is None else received.value, delivered.reported_at)

    async def close(self) -> None:
        for unregister in self._unregister:
            unregister()
        self._unregister = []
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- the poll loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = FIRST_RETRY_S
        while True:
            try:
                await self.poll_once()
            except NotAdmitted as err:
                self._trouble(err, str(err), LinkState.OFFLINE)
                await self._wait(self.settings.poll_interval_s)
                continue
            except (BadAuth, NoMeter) as err:
                self._trouble(err, str(err), LinkState.OFFLINE)
                await self._wait(self.settings.max_backoff_s)
                continue
            except (Unreachable, Stalled, BadReply) as err:
                self.counters["failures"] += 1
                self.address = None  # re-probe with device_list once it answers (§2.4)
                # Refused or an error page: offline. A stall leaves the data to go stale on its own.
                state = LinkState.OFFLINE if not isinstance(err, Stalled) or self.tracker.state is LinkState.CONNECTING else None
                self._trouble(err, f"the EAGLE at {self.settings.host} does not answer as it should ({err}); "
                              f"retrying with backoff", state)
                await self._wait(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff_s)
                continue
            backoff = FIRST_RETRY_S
            await self._wait(self.settings.poll_interval_s)

    async def _wait(self, seconds: float) -> None:
        self.attempts += 1
        self.next_attempt_at = self._hub.clock() + timedelta(seconds=seconds)
        await self._hub.clock.sleep(seconds)

    def _trouble(self, err: Exception, detail: str, state: LinkState | None) -> None:
        """Log an outage once per kind of trouble (a stall that turns into refusals is a new kind,
        the same stall again is not), and show it when it changes the link's state."""
        kind = type(err).__name__
        if kind != self._outage:
            self._outage = kind
            _LOGGER.warning("[%s] EAGLE: %s", self.meter_id, detail)
        if state is not None:
            self.tracker.set(state, detail)

    async def poll_once(self) -> None:
        """One poll: (re)choose and admit the meter, query it, publish what is new."""
        assert self.client is not None
        if self.address is None or self.attempts % RELIST_EVERY == 0:
            devices = await self.client.device_list()
            meter = choose_meter(devices, self.settings.meter_address)
            if meter is None:
                raise NoMeter("the EAGLE lists no electric meter: the utility has to connect it to the meter "
                              "(HAN access)" if self.settings.meter_address is None
                              else f"the EAGLE does not list the meter {self.settings.meter_address}")
            if meter.hardware_address != self._meter_read:
                self._info_sent = False
            self.address = meter.hardware_address
        # Pinned by the meter's MAC as Rainforest writes it (0x + 16 hex digits, as the EMU-2 names it too).
        if not await self._hub.meter_pins.admit(self.meter_id, KIND, self.address):
            self.counters["not_admitted"] += 1
            address, self.address = self.address, None
            raise NotAdmitted(f"the EAGLE now reads meter {address}, not the one this appliance is pinned to; "
                              "its data is refused until the owner confirms it on the Commissioning page")
        address = self.address
        reply = await self.client.device_query(address)
        if reply.device.hardware_address != address:
            raise BadReply(f"asked for {address}, the reply is of {reply.device.hardware_address}")
        if not reply.device.connected:
            self.address = None  # the EAGLE lost this meter (or a new one replaced it): list again next time
        self.counters["polls"] += 1
        if self._meter_read not in (None, address):  # another meter, admitted: its own register
            self._last_summation, self._odd, self._last_values = None, 0, None
            self._restart_intervals()
        self._meter_read = address
        if self._outage is not None:
            _LOGGER.info("[%s] EAGLE: reading meter %s again", self.meter_id, address)
            self._outage = None
        self._publish(reply, address, self._hub.clock())

    # -- what a reply says -------------------------------------------------------------------

    def _publish(self, reply: QueryReply, address: str, now: datetime) -> None:
        bus = self._hub.bus
        values = translate(reply, self.meter_id, now)
        self._log_refused(values)
        if not self._info_sent:
            bus.publish(meter_info(reply, self.meter_id, now))
            self._info_sent = True
        reading = values.reading
        fresh_key = (values.last_contact, None if reading is None else
                     (reading.demand_kw, reading.summation_delivered_kwh, reading.summation_received_kwh))
        fresh = reading is not None and fresh_key != self._last_values
        self._last_values = fresh_key
        if reading is not None and fresh:
            reading = self._checked_summation(reading)
            if reading.demand_kw is None and reading.summation_delivered_kwh is None:
                return self._publish_rest(values, now)  # nothing of the meter's own is left to show
            bus.publish(reading)
            if reading.summation_delivered_kwh is not None:
                self._intervals(now, reading.summation_delivered_kwh, reading.summation_received_kwh)
            self.tracker.heard()
            if self.tracker.state is not LinkState.ONLINE:
                self.tracker.set(LinkState.ONLINE, f"reading meter {address}")
        elif not reply.device.connected and self.tracker.state is LinkState.CONNECTING:
            self.tracker.set(LinkState.OFFLINE, f"the EAGLE is not joined to meter {address} "
                                                f"({reply.device.connection_status or 'no status'})")
        self._publish_rest(values, now)

    def _publish_rest(self, values: Translated, now: datetime) -> None:
        self._publish_price(values.price, now)
        self._publish_rate(values.rate)
        self._publish_message(values.message, now)

    def _log_refused(self, values: Translated) -> None:
        for name, why in values.problems:
            self.counters["refused_values"] += 1
            if name not in self._logged_values:
                self._logged_values.add(name)
                _LOGGER.warning("[%s] EAGLE: value refused, the rest of the reply kept: %s", self.meter_id, why)

    def _checked_summation(self, reading: MeterReading) -> MeterReading:
        """Refuse a summation that fell (a reboot's 0, a misread) or rose faster than any premise
        draws (a misread, or back up after one): the registers only count up, at the meter's pace.

        A value that stays out of line for ``RESET_AFTER_POLLS`` polls running is believed (the
        meter was reset or replaced in place): the intervals restart from it, with nothing emitted
        for the jump. A 0 is never believed on the same meter (it is the reboot quirk, §2.4).
        """
        delivered, received = reading.summation_delivered_kwh, reading.summation_received_kwh
        if delivered is None:
            return reading
        now = reading.read_at
        last = self._last_summation
        value = (delivered, received if received is not None else (last[1] if last else 0.0))
        if last is not None:
            hours = (now - last[2]).total_seconds() / 3600
            fell = value[0] < last[0] - 1e-6 or value[1] < last[1] - 1e-6
            rise_kw = max(value[0] - last[0], value[1] - last[1]) / hours if hours > 0 else 0.0
            if fell or rise_kw > MAX_RISE_KW:
                self._odd += 1
                if value[0] == 0 or self._odd < RESET_AFTER_POLLS:
                    self.counters["summation_refused"] += 1
                    if "summation" not in self._logged_values:
                        self._logged_values.add("summation")
                        _LOGGER.warning("[%s] EAGLE: the summation went from %.3f to %.3f kWh; refused until "
                                        "it holds (a reboot's 0 or a misread)", self.meter_id, last[0], value[0])
                    return dataclasses.replace(reading, summation_delivered_kwh=None, summation_received_kwh=None)
                self.counters["resets"] += 1
                _LOGGER.warning("[%s] EAGLE: the summation restarted at %.3f kWh (was %.3f): a new baseline, "
                                "nothing counted for the jump", self.meter_id, value[0], last[0])
                self._restart_intervals()
        self._odd = 0
        self._last_summation = (value[0], value[1], now)
        return reading

    def _restart_intervals(self) -> None:
        settings = self.settings
        self.intervals = IntervalsFromSummation(self.meter_id, interval_s=settings.interval_s, gap_s=settings.gap_s)

    def _intervals(self, now: datetime, delivered: float, received: float | None) -> None:
        result = self.intervals.add(now, delivered, received)
        for interval in result.intervals:
            self._hub.bus.publish(interval)
        if result.gap is not None:
            self.counters["gaps"] += 1
            gap = result.gap
            _LOGGER.warning("[%s] EAGLE: %s to %s had no readings; filled with one reading of %.3f kWh in, "
                            "%.3f kWh out (no demand invented)", self.meter_id, gap.start.isoformat(),
                            gap.end.isoformat(), gap.delivered_kwh, gap.received_kwh)

    def _publish_price(self, price: PriceSignal | None, now: datetime) -> None:
        if price is None:
            return
        # The same price read again is not news. Its end moves by a minute now and then while the
        # EAGLE counts the duration down from "now" (no start time set): not news either.
        key = (price.price_per_kwh_exact, price.tier, price.rate_label, price.currency)
        if key == self._price_key and _close(price.end, self._price_end):
            return
        self._price_key, self._price_end = key, price.end
        # Each new price has a higher id than the last (a newer price ends an older one, ems.state).
        self._price_id = max(self._price_id + 1, int(now.timestamp()))
        self._hub.bus.publish(dataclasses.replace(price, issuer_event_id=self._price_id))

    def _publish_rate(self, rate: MeterRate | None) -> None:
        if rate is None:
            return
        if self._rate is not None and dataclasses.replace(self._rate, received_at=rate.received_at) == rate:
            return
        self._rate = rate
        self._hub.bus.publish(rate)

    def _publish_message(self, message: UtilityMessage | None, now: datetime) -> None:
        old = self._message
        if message is None:
            if old is not None:
                self._hub.bus.publish(MessageCancelled(self.meter_id, old.message_id, now))
                self._message = None
            return
        if old is not None and (old.message_id, old.text) == (message.message_id, message.text):
            return
        self._message = message
        self._hub.bus.publish(message)

    async def _confirmation(self, item: MessageConfirmed) -> None:
        """Delivered as far as it can go: the local API has no confirm command (§2.3)."""
        if not self._confirm_logged:
            self._confirm_logged = True
            _LOGGER.info("[%s] EAGLE: message confirmations stay in the appliance (the EAGLE's local API "
                         "cannot pass them to the utility)", self.meter_id)
