"""The link to a meter through an EMU-2 (or RAVEn) on a serial port: fragments -> domain events.

One ``Emu2Link`` per ``emu2:`` section. It keeps the port open, routes every fragment by its
root tag (the bridge pushes at any time and answers late, §1.8 and §1.12), and publishes what the
ZigBee SE link publishes for the same data: ``MeterReading`` (demand, signed while exporting;
summations), ``IntervalReading`` (made from the summation by ``ems.meter_source``'s
``IntervalsFromSummation``, since a bridge has no interval data), ``PriceSignal``, ``MeterRate``
(tier labels, block thresholds), ``UtilityMessage`` / ``MessageCancelled``, ``MeterInfo``,
``MeterLinkChanged`` and ``FrameRejected``. A customer's confirmation (``MessageConfirmed`` in
the outbox) goes back through the bridge as ``confirm_message``.

Tolerance, as users report real units (issue 16):

* **stall**: nothing heard for ``stale_after_s`` -> the data shows as stale (``LinkStateTracker``);
  for twice that -> the port is closed and reopened, then the bridge is listened for (and asked
  with ``get_meter_list``) for a backoff that doubles up to ``max_retry_s``. Anything it says while
  listened for brings the link back at once. The outage is logged once, the recovery once.
* **reboot / junk**: a cut-off fragment or junk is counted (``FrameRejected`` "malformed") and the
  stream goes on at the next fragment; a DeviceInfo pushed unprompted is a restart: the price and
  message are asked again.
* **a field in a new format**: that value is refused (``FrameRejected`` "rejected", one log line
  per field) and the fragment's other values are kept.
* **hours of silence**: the first summation after it fills the gap with one interval spanning it
  (``IntervalsFromSummation``), logged once, never a spike of invented demand.
* **a different meter** (a move): its data is refused until the owner confirms it on the
  Commissioning page (``hub.meter_pins.admit``; its next value after the confirmation is taken).
* **the bridge losing the meter** (ConnectionStatus other than Connected): offline until it rejoins.
* **the appliance itself off**: the intervals start from the last stored summation of the same
  meter, so the downtime is one gap reading too.

Intervals are made on the bridge's TimeStamp (when it read the meter) when the meter's clock agrees
with ours within ``MAX_CLOCK_SKEW``: a cached answer to a poll is then the same sample, not a new one
with no energy since. A price keyed into the bridge by hand ("Set by User") is not the utility's
and is not published; the same price answered again is published once.

Every wait is on the hub's clock, so a test on a fixed clock lets the hours of an outage pass at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ems.clock import FollowingClock
from ems.errors import NotReady
from ems.meter_source import IntervalsFromSummation, LinkStateTracker
from ems.model import (
    FrameRejected,
    LinkState,
    MessageCancelled,
    MessageConfirmed,
    MessageImportance,
    MeterInfo,
    MeterLinkChanged,
    MeterRate,
    MeterReading,
    PriceSignal,
    UtilityMessage,
)
from integrations.rainforest import emu2_xml as xml

_LOGGER = logging.getLogger(__name__)

KIND = "emu2"
SYNC_TRIES = 3  # get_meter_list, one hub second apart, as aioraven synchronises (§1.3)
CLOCK_TOLERANCE = timedelta(seconds=2)
MAX_CLOCK_SKEW = timedelta(minutes=10)  # a summation's TimeStamp further from our clock is not used as its time
USER_PRICE = "Set by User"  # the label of a price keyed into the bridge (set_current_price), §1.7
MAX_LOGGED_KINDS = 200  # kinds of problem logged once each; past this, all at debug level
# Roots a bridge sends that carry nothing the appliance uses: read, not counted as unknown.
UNUSED_TAGS = frozenset({"CurrentPeriodUsage", "LastPeriodUsage", "ProfileData", "FastPollStatus",
                         "BillingPeriodList", "NwkTable", "ApsTable", "Information", "SimpleMeteringCluster"})


@dataclass(frozen=True, slots=True)
class Emu2Settings:
    """The validated ``emu2`` section (``integrations.rainforest.emu2.CONFIG_SCHEMA``)."""

    port: str
    meter_id: str = "main"
    stale_after_s: float = 60.0
    interval_s: int = 60
    gap_s: float = 300.0
    poll_s: float = 30.0
    first_retry_s: float = 1.0
    max_retry_s: float = 30.0

    @property
    def reopen_after_s(self) -> float:
        """Silence after which the port is reopened (stale first, then this)."""
        return 2 * self.stale_after_s


class BridgeSilent(ConnectionError):
    """The bridge said nothing for ``reopen_after_s``: the port is reopened."""


# -- translation: protocol values -> domain events (pure) -------------------------------------


@lru_cache(maxsize=64)
def currency_alpha(number: int | None) -> str:
    """ISO 4217 numeric -> alpha code (``iso4217``, aioraven's own table); unknown -> ``ISO<n>``."""
    if number is None:
        return ""
    from iso4217 import Currency

    for currency in Currency:
        if currency.number == number:
            return str(currency.code)
    return f"ISO{number:03d}"


def demand_reading(value: xml.Demand, meter_id: str, now: datetime) -> MeterReading | None:
    if value.demand_kw is None:
        return None
    return MeterReading(meter_id, read_at=now, demand_kw=value.demand_kw, meter_time=value.timestamp)


def summation_reading(value: xml.Summation, meter_id: str, now: datetime) -> MeterReading | None:
    if value.delivered_kwh is None and value.received_kwh is None:
        return None
    return MeterReading(meter_id, read_at=now, summation_delivered_kwh=value.delivered_kwh,
                        summation_received_kwh=value.received_kwh, meter_time=value.timestamp)


def price_signal(value: xml.Price, meter_id: str, now: datetime) -> PriceSignal | None:
    """The price in force; None when the bridge has none (Price 0: neither meter nor user set one)."""
    if value.price is None or value.price == 0:
        return None
    start = min(value.start or value.timestamp or now, now)
    end = None if not value.duration_min or value.duration_min == 0xFFFF else start + timedelta(
        minutes=value.duration_min)
    return PriceSignal(
        meter_id=meter_id,
        provider_id=0,
        # The bridge gives no issuer event id: the time it took the price (seconds since 2000)
        # orders them as the state needs (the newest active price wins).
        issuer_event_id=int((value.timestamp or now).timestamp()) - 946_684_800,
        rate_label=value.rate_label or value.tier_label or "",
        currency=currency_alpha(value.currency),
        price_per_kwh=float(value.price),
        start=start,
        end=end,
        tier=value.tier or 0,
        received_at=now,
        price_per_kwh_exact=Decimal(value.price),
    )


def message_event(value: xml.Message, meter_id: str, now: datetime) -> UtilityMessage | MessageCancelled | None:
    if value.message_id is None or not value.text.strip():
        return None  # the bridge's answer when it holds no message
    if value.queue == "Cancel Pending":
        return MessageCancelled(meter_id, value.message_id, now)
    return UtilityMessage(
        meter_id=meter_id,
        message_id=value.message_id,
        text=value.text.strip(),
        importance=MessageImportance.MEDIUM,  # the bridge does not pass the importance on
        start=min(value.timestamp or now, now),
        end=None,
        confirmation_required=value.confirmation_required,
        received_at=now,
    )


# -- the link ---------------------------------------------------------------------------------


class Emu2Link:
    """Owns the serial port to one EMU-2 and the meter id its data is published under."""

    def __init__(self, hub: Any, settings: Emu2Settings) -> None:
        self._hub = hub
        self.settings = settings
        self.meter_id = settings.meter_id
        self.tracker = LinkStateTracker(hub.bus, hub.clock, settings.meter_id, stale_after_s=settings.stale_after_s)
        self.intervals = self._new_intervals()
        self.port: xml.Emu2Port | None = None
        self.meter_mac: str | None = None  # the meter the bridge reads (MeterList, or a fragment's MeterMacId)
        self.admitted: str | None = None  # the meter whose data is taken (hub.meter_pins said so)
        self.bridge: xml.DeviceInfo | None = None
        self.connection: xml.Connection | None = None
        self.block_prices: xml.BlockPrices | None = None
        self.last_fragment_at: datetime | None = None
        self.last_demand: MeterReading | None = None  # what the page's test shows while this link holds the port
        self.last_price: PriceSignal | None = None
        self.reopens = 0  # times the port was opened again after a failure or silence
        self._refused_until: dict[str, datetime] = {}
        self._messages: dict[int, tuple[str, bool, str]] = {}
        self._last_price: tuple[Any, ...] | None = None
        self._has_received = False
        self._baseline_mac: str | None = None  # the meter whose summations the intervals follow
        self._bridge_lost = False
        self._logged: set[str] = set()
        self._outage_since: datetime | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._unregister: list[Callable[[], None]] = []
        self._polls = 0

    def _new_intervals(self) -> IntervalsFromSummation:
        return IntervalsFromSummation(self.meter_id, interval_s=self.settings.interval_s, gap_s=self.settings.gap_s)

    @property
    def state(self) -> LinkState:
        return self.tracker.state

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background (the bridge may be unplugged now and plugged in later)."""
        outbox = self._hub.outbox
        self._unregister = [
            outbox.register_sender(MessageConfirmed, self._send_confirmation, meter_id=self.meter_id),
            self._hub.bus.listen(MeterLinkChanged, self._on_link_changed),
        ]
        self._hub.meter_pins.listeners.append(self._on_pin)
        self._unregister.append(lambda: self._hub.meter_pins.listeners.remove(self._on_pin))
        self.tracker.set(LinkState.CONNECTING, f"opening {self.settings.port}")
        self._tasks = [self._hub.create_task(self._run(), f"emu2-link-{self.meter_id}"),
                       self._hub.create_task(self.tracker.watch(), f"emu2-stale-{self.meter_id}")]

    async def close(self) -> None:
        for unregister in self._unregister:
            unregister()
        self._unregister = []
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.port is not None:
            port, self.port = self.port, None
            await port.close()

    def _on_pin(self, pin: Any) -> None:
        """The owner confirmed a meter (or a pin changed): the next value of it is admitted at once."""
        if pin.meter_id == self.meter_id:
            self._refused_until.clear()

    async def _seed(self) -> None:
        """Start the intervals from the last summation stored, when it is this EMU-2's meter's: the
        time the appliance was off is then one gap reading, like any other silence."""
        pin = await self._hub.meter_pins.get(self.meter_id)
        meter = self._hub.state.meters.get(self.meter_id)
        if pin is None or pin.kind != KIND or meter is None:
            return
        delivered = meter.values.get("summation_delivered_kwh")
        received = meter.values.get("summation_received_kwh")
        if delivered is None:
            return
        self.intervals.seed(delivered.reported_at, delivered.value, received.value if received else None)
        self._baseline_mac = pin.hardware_id
        self._has_received = received is not None

    def _on_link_changed(self, change: MeterLinkChanged) -> None:
        if change.meter_id == self.meter_id and change.state is LinkState.ONLINE:
            self._hub.outbox.resume(self.meter_id)

    # -- the connection loop -----------------------------------------------------------------

    async def _run(self) -> None:
        clock = self._hub.clock
        wait = self.settings.first_retry_s
        try:
            await self._seed()
        except Exception as err:  # the store is down: the intervals start from the first summation
            _LOGGER.info("[%s] The last summation could not be read (%s); the intervals start afresh",
                         self.meter_id, err)
        while True:
            try:
                port = await xml.Emu2Port.open(self.settings.port)
            except OSError as err:
                self._down(f"cannot open the EMU-2's port {self.settings.port}: {err}")
                await clock.sleep(wait)
                wait = min(wait * 2, self.settings.max_retry_s)
                continue
            self.port = port
            try:
                first = await self._synchronize(port, listen_s=max(float(SYNC_TRIES), wait))
                if first is None:
                    self._down(f"the EMU-2 on {self.settings.port} does not answer")
                    wait = min(wait * 2, self.settings.max_retry_s)
                    continue
                wait = self.settings.first_retry_s
                await self._session(port, first)
            except BridgeSilent as err:
                self._down(str(err))  # reopened at once: the next attempt listens for the backoff
            except (ConnectionError, OSError) as err:
                self._down(f"the EMU-2's port {self.settings.port} failed: {err or type(err).__name__}")
                await clock.sleep(wait)  # the port itself went (unplugged): not reopened in a spin
                wait = min(wait * 2, self.settings.max_retry_s)
            finally:
                self.port = None
                await port.close()
                self.reopens += 1

    async def _next(self, port: xml.Emu2Port, timeout_s: float) -> xml.Event | None:
        """The port's next event, or None after ``timeout_s`` of the hub's clock."""
        if port.pending():
            return await port.next()
        if timeout_s <= 0:
            return None
        getter = asyncio.ensure_future(port.next())
        sleeper = asyncio.ensure_future(self._hub.clock.sleep(timeout_s))
        try:
            await asyncio.wait((getter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            if not getter.done():
                getter.cancel()
            await asyncio.gather(getter, sleeper, return_exceptions=True)
        if getter.done() and not getter.cancelled():
            return getter.result()
        return None

    async def _synchronize(self, port: xml.Emu2Port, listen_s: float) -> xml.Fragment | None:
        """Ask ``get_meter_list`` (a bridge may have stale bytes buffered, §1.3) and listen for
        ``listen_s``: the first fragment heard, or None. Junk before it is counted and passed over."""
        clock = self._hub.clock
        deadline = clock() + timedelta(seconds=listen_s)
        asked = 0
        next_ask = clock()
        while True:
            now = clock()
            if asked < SYNC_TRIES and now >= next_ask:
                port.send("get_meter_list")
                asked += 1
                next_ask = now + timedelta(seconds=1)
            until = min(deadline, next_ask) if asked < SYNC_TRIES else deadline
            left = (until - now).total_seconds()
            if now >= deadline:
                return None
            event = await self._next(port, left)
            if isinstance(event, xml.Closed):
                raise ConnectionError(f"{self.settings.port} closed" + (f": {event.error}" if event.error else ""))
            if isinstance(event, xml.Garbled):
                self._garbled(event)
            elif isinstance(event, xml.Fragment):
                return event

    async def _session(self, port: xml.Emu2Port, first: xml.Fragment) -> None:
        """Take fragments until the port closes or the bridge falls silent; poll every ``poll_s``."""
        clock = self._hub.clock
        self._up()
        await self._take(first)
        self._ask_everything(port)
        next_poll = clock() + timedelta(seconds=self.settings.poll_s)
        while True:
            now = clock()
            if now >= next_poll:
                self._poll(port)
                next_poll = now + timedelta(seconds=self.settings.poll_s)
            silent = (now - self.last_fragment_at).total_seconds() if self.last_fragment_at else 0.0
            if silent >= self.settings.reopen_after_s:
                raise BridgeSilent(f"the EMU-2 on {self.settings.port} said nothing for {silent:.0f} s; reopening the port")
            wake = min(next_poll, (self.last_fragment_at or now) + timedelta(seconds=self.settings.reopen_after_s))
            event = await self._next(port, (wake - now).total_seconds())
            if event is None:
                continue
            if isinstance(event, xml.Closed):
                raise ConnectionError(f"{self.settings.port} closed" + (f": {event.error}" if event.error else ""))
            if isinstance(event, xml.Garbled):
                self._garbled(event)
                continue
            await self._take(event)

    def _meter_arg(self) -> dict[str, str]:
        mac = self.admitted or self.meter_mac
        return {"MeterMacId": xml.mac_arg(mac)} if mac else {}

    def _ask_everything(self, port: xml.Emu2Port) -> None:
        """What the bridge knows, asked once per session (the replies come as fragments, in any order)."""
        meter = self._meter_arg()
        port.send("get_device_info")
        port.send("get_connection_status")
        for name in ("get_meter_info", "get_schedule", "get_current_price", "get_price_blocks", "get_message",
                     "get_time", "get_current_summation_delivered", "get_instantaneous_demand"):
            port.send(name, meter)

    def _poll(self, port: xml.Emu2Port) -> None:
        """Between pushes, as Home Assistant does every 30 s: summation (the intervals need it) and demand."""
        self._polls += 1
        meter = self._meter_arg()
        if not meter or (self.meter_mac is not None and self.meter_mac != self.admitted):
            port.send("get_meter_list")  # which meter, again: a refused one may be confirmed by now
        port.send("get_current_summation_delivered", meter)
        port.send("get_instantaneous_demand", meter)
        if self._polls % 10 == 0:
            port.send("get_current_price", meter)
            port.send("get_message", meter)
            port.send("get_connection_status")

    # -- one fragment ------------------------------------------------------------------------

    async def _take(self, fragment: xml.Fragment) -> None:
        now = self._hub.clock()
        self.last_fragment_at = now
        decoded = xml.decode(fragment)
        for problem in decoded.problems:
            self._reject("rejected", f"{fragment.tag}.{problem}", key=f"{fragment.tag}.{problem.field}")
        value = decoded.value
        handler = self._HANDLERS.get(type(value))
        if handler is None:
            return
        try:
            await handler(self, value, now)
        except Exception:  # a bug must not end the link: logged (with its traceback), the stream goes on
            if f"crash:{fragment.tag}" not in self._logged:
                self._logged.add(f"crash:{fragment.tag}")
                _LOGGER.exception("[%s] Handling a <%s> from the EMU-2 failed", self.meter_id, fragment.tag)

    async def _meter_data(self, value: Any) -> bool:
        """Whether ``value`` (carrying the meter's data) is from the admitted meter; asks the pins."""
        return await self._admit(getattr(value, "meter_mac", None) or self.meter_mac)

    async def _admit(self, mac: str | None) -> bool:
        """Whether the meter ``mac`` is the one pinned for this meter id (a refusal is asked again
        after ``poll_s``: the owner may have confirmed it meanwhile)."""
        if mac is None:
            self._once("no-meter", logging.INFO, "The EMU-2 has not said which meter it reads yet; its data waits")
            return False
        if self.meter_mac is None:
            self.meter_mac = mac
        if mac == self.admitted:
            return True
        now = self._hub.clock()
        if now < self._refused_until.get(mac, now):
            return False
        try:
            admitted = await self._hub.meter_pins.admit(self.meter_id, KIND, mac)
        except NotReady as err:  # the store cannot say now (disk full): the data waits, asked again later
            self._once("pins-unavailable", logging.WARNING, f"Cannot check meter {mac} against its pin now: {err}")
            return False
        if admitted:
            self._admitted(mac, now)
            return True
        if len(self._refused_until) > 16:
            self._refused_until.clear()  # only ever a few meters in range; never a growing table
        self._refused_until[mac] = now + timedelta(seconds=self.settings.poll_s)
        self.tracker.set(LinkState.OFFLINE, f"a different meter ({mac}) answered through the EMU-2; its data is "
                                            "refused until the owner confirms it on the Commissioning page")
        return False

    def _admitted(self, mac: str, now: datetime) -> None:
        if self.admitted is not None and self.admitted != mac:
            _LOGGER.info("[%s] Now reading meter %s (was %s)", self.meter_id, mac, self.admitted)
        if self._baseline_mac not in (None, mac):
            self.intervals = self._new_intervals()  # another meter's registers: a new baseline
            self._last_price: tuple[Any, ...] | None = None
        self._has_received = False
        self._baseline_mac = mac
        self.admitted = mac
        self._refused_until.pop(mac, None)
        self.tracker.set(LinkState.ONLINE, f"meter {mac} through the EMU-2 on {self.settings.port}")
        self._publish_info(now)

    def _publish_info(self, now: datetime) -> None:
        mac = self.admitted
        if mac is None:
            return
        self._hub.bus.publish(MeterInfo(
            meter_id=self.meter_id, ieee=mac, endpoint=0, unit="kWh", multiplier=1, divisor=1,
            summation_decimals=3, demand_decimals=3,
            device_type=f"electric meter via {self.bridge.model_id if self.bridge and self.bridge.model_id else 'EMU-2'}",
            discovered_at=now))

    def _heard(self) -> None:
        if not self._bridge_lost:
            self.tracker.heard()

    async def _on_demand(self, value: xml.Demand, now: datetime) -> None:
        if not await self._meter_data(value):
            return
        reading = demand_reading(value, self.meter_id, now)
        if reading is not None:
            self._heard()
            self.last_demand = reading
            self._hub.bus.publish(reading)

    async def _on_summation(self, value: xml.Summation, now: datetime) -> None:
        if not await self._meter_data(value):
            return
        reading = summation_reading(value, self.meter_id, now)
        if reading is None:
            return
        self._heard()
        self._hub.bus.publish(reading)
        if value.received_kwh is not None:
            self._has_received = True
        if value.delivered_kwh is None or (value.received_kwh is None and self._has_received):
            return  # a register refused this time: the intervals wait for a whole sample
        # The sample's time is the bridge's TimeStamp (when it read the meter: a cached answer to a
        # poll is the same sample, not a new one with no energy since), unless the meter's clock is off.
        at = value.timestamp if value.timestamp is not None and abs(value.timestamp - now) <= MAX_CLOCK_SKEW else now
        try:
            result = self.intervals.add(at, value.delivered_kwh, value.received_kwh)
        except ValueError as err:
            self._reject("rejected", f"CurrentSummationDelivered: {err}", key="summation-value")
            return
        if result.reset:
            _LOGGER.warning("[%s] The meter's summation went backwards (a new meter or a reset): the intervals "
                            "start again from %.3f kWh", self.meter_id, value.delivered_kwh)
        if result.gap is not None:
            gap = result.gap
            _LOGGER.info("[%s] %s without a reading: filled with one interval of %.3f kWh used and %.3f kWh "
                         "exported (%s to %s)", self.meter_id, gap.end - gap.start, gap.delivered_kwh,
                         gap.received_kwh, gap.start.isoformat(), gap.end.isoformat())
        for interval in result.intervals:
            self._hub.bus.publish(interval)

    async def _on_price(self, value: xml.Price, now: datetime) -> None:
        if not await self._meter_data(value):
            return
        self._heard()
        if USER_PRICE in (value.rate_label, value.tier_label):
            self._once("user-price", logging.INFO, "The EMU-2 shows a price its owner keyed in (\"Set by User\"): "
                                                   "it is not the utility's and is not used")
            return
        signal = price_signal(value, self.meter_id, now)
        key = None if signal is None else (signal.price_per_kwh_exact, signal.tier, signal.rate_label,
                                          signal.currency, signal.end)
        if signal is not None:
            self.last_price = signal
        if signal is not None and key != self._last_price:  # the same price answered again is not news
            self._last_price = key
            self._hub.bus.publish(signal)
        if value.tier_label and value.tier is not None:
            self._hub.bus.publish(MeterRate(self.meter_id, now, tier_labels=((value.tier, value.tier_label),)))

    async def _on_block_prices(self, value: xml.BlockPrices, now: datetime) -> None:
        if not await self._meter_data(value):
            return
        self._heard()
        self.block_prices = value
        bounded = tuple(t for t in value.thresholds_kwh if t is not None)
        if bounded:
            self._hub.bus.publish(MeterRate(self.meter_id, now, block_thresholds_kwh=bounded))

    async def _on_message(self, value: xml.Message, now: datetime) -> None:
        if not await self._meter_data(value):
            return
        self._heard()
        event = message_event(value, self.meter_id, now)
        if event is None:
            return
        key = (value.text, value.confirmation_required, value.queue)
        if self._messages.get(event.message_id) == key:
            return  # heard again (each poll's answer): not news
        self._messages[event.message_id] = key
        self._hub.bus.publish(event)

    async def _on_time(self, value: xml.MeterTime, now: datetime) -> None:
        if value.utc is None or not await self._meter_data(value):
            return
        self._heard()
        clock = self._hub.clock
        if isinstance(clock, FollowingClock):  # on real time the meter is the time master (SE §7.2)
            offset = clock.follow(value.utc, CLOCK_TOLERANCE)
            if offset:
                self._once("clock", logging.INFO, f"Meter clock differs from ours by {offset}; following the meter")
        elif abs(value.utc - now.replace(microsecond=0)) > CLOCK_TOLERANCE:
            self._once("clock", logging.INFO, f"Meter clock differs from ours by {value.utc - now}; the appliance's "
                                              "clock is fixed by its owner")

    async def _on_device_info(self, value: xml.DeviceInfo, now: datetime) -> None:
        restarted = self.bridge is not None
        self.bridge = value
        _LOGGER.info("[%s] %s %s firmware %s on %s", self.meter_id, value.manufacturer or "Rainforest",
                     value.model_id or "EMU-2", value.fw_version or "?", self.settings.port)
        if restarted and self.port is not None:  # pushed unprompted: the bridge started again
            self._ask_everything(self.port)
        elif not restarted:
            self._publish_info(now)  # now with the bridge's model

    async def _on_connection(self, value: xml.Connection, now: datetime) -> None:
        self.connection = value
        if value.meter_mac and self.meter_mac is None:
            self.meter_mac = value.meter_mac
        if value.status is None:
            return
        if value.status != "Connected":
            if not self._bridge_lost:
                self._bridge_lost = True
                _LOGGER.warning("[%s] The EMU-2 lost the meter: %s", self.meter_id, value.status)
            self.tracker.set(LinkState.OFFLINE, f"the EMU-2 is not connected to the meter ({value.status})")
        elif self._bridge_lost:
            self._bridge_lost = False
            _LOGGER.info("[%s] The EMU-2 is connected to the meter again", self.meter_id)
            if self.admitted is not None:
                self.tracker.set(LinkState.ONLINE, "the EMU-2 is connected to the meter again")

    async def _on_meter_list(self, value: xml.MeterList, now: datetime) -> None:
        if not value.meter_macs:
            self._once("no-meters", logging.WARNING, "The EMU-2 reads no meter (it has not joined one)")
            return
        mac = self.admitted if self.admitted in value.meter_macs else value.meter_macs[0]
        self.meter_mac = mac
        if mac != self.admitted:
            await self._admit(mac)  # ask the pins now, not at the next value

    async def _on_meter_details(self, value: xml.MeterDetails, now: datetime) -> None:
        if value.meter_type not in (None, "electric"):
            self._once("meter-type", logging.WARNING, f"The EMU-2's meter is a {value.meter_type} meter")

    async def _on_warning(self, value: xml.BridgeWarning, now: datetime) -> None:
        self._once(f"warning:{value.text}", logging.INFO, f"The EMU-2 answered a command with: {value.text}")

    async def _on_unknown(self, value: xml.Unknown, now: datetime) -> None:
        if value.tag in UNUSED_TAGS:
            return
        self._reject("unknown", f"a <{value.tag}> fragment", key=f"unknown:{value.tag}")

    async def _on_schedule(self, value: xml.Schedule, now: datetime) -> None:
        _LOGGER.debug("[%s] The EMU-2 pushes %s every %s s (%s)", self.meter_id, value.event, value.frequency_s,
                      "enabled" if value.enabled else "disabled")

    _HANDLERS: dict[type, Any] = {
        xml.Demand: _on_demand,
        xml.Summation: _on_summation,
        xml.Price: _on_price,
        xml.BlockPrices: _on_block_prices,
        xml.Message: _on_message,
        xml.MeterTime: _on_time,
        xml.DeviceInfo: _on_device_info,
        xml.Connection: _on_connection,
        xml.MeterList: _on_meter_list,
        xml.MeterDetails: _on_meter_details,
        xml.BridgeWarning: _on_warning,
        xml.Unknown: _on_unknown,
        xml.Schedule: _on_schedule,
    }

    # -- the outbox's confirmations -----------------------------------------------------------

    async def _send_confirmation(self, item: MessageConfirmed) -> None:
        port, mac = self.port, self.admitted
        if port is None or not port.is_open or mac is None or self.state is not LinkState.ONLINE:
            raise NotReady(f"the EMU-2 of meter {item.meter_id} is not linked; the confirmation waits in the outbox")
        port.send("confirm_message", {"MeterMacId": xml.mac_arg(mac), "Id": xml.hex_arg(item.message_id, 8)})
        _LOGGER.info("[%s] Message %d confirmed through the EMU-2", self.meter_id, item.message_id)

    # -- counting and logging ----------------------------------------------------------------

    def _garbled(self, event: xml.Garbled) -> None:
        self._reject("malformed", f"{event.reason} ({event.size} bytes)", key=f"garbled:{event.reason.split(':')[0]}")

    def _reject(self, kind: str, reason: str, *, key: str) -> None:
        self._hub.bus.publish(FrameRejected(self.meter_id, reason, kind, self._hub.clock()))
        self._once(key, logging.WARNING, f"{kind.capitalize()} from the EMU-2: {reason}")

    def _once(self, key: str, level: int, text: str) -> None:
        if key in self._logged or len(self._logged) >= MAX_LOGGED_KINDS:  # line noise makes endless "kinds"
            _LOGGER.debug("[%s] %s", self.meter_id, text)
            return
        self._logged.add(key)
        _LOGGER.log(level, "[%s] %s (further ones are logged at debug level)", self.meter_id, text)

    def _down(self, reason: str) -> None:
        """An attempt failed or the session ended: offline, logged once per outage."""
        now = self._hub.clock()
        if self._outage_since is None:
            self._outage_since = now
            _LOGGER.warning("[%s] %s; retrying (logged once until it is back)", self.meter_id, reason)
        else:
            _LOGGER.debug("[%s] EMU-2 still down: %s", self.meter_id, reason)
        self.tracker.set(LinkState.OFFLINE, reason)

    def _up(self) -> None:
        if self._outage_since is not None:
            _LOGGER.info("[%s] EMU-2 on %s answers again after %s", self.meter_id, self.settings.port,
                         self._hub.clock() - self._outage_since)
            self._outage_since = None
        if self.admitted is not None and not self._bridge_lost:
            self.tracker.set(LinkState.ONLINE, f"meter {self.admitted} through the EMU-2 on {self.settings.port}")
