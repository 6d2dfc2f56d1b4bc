"""A simulated Rainforest EAGLE-200 / EAGLE 3: the local API on loopback, over a simulated meter.

An aiohttp server answering ``POST /cgi-bin/post_manager`` as han-bridges.md §2 describes: HTTP
Basic auth with the Cloud ID and Install Code (401 otherwise), one XML ``Command`` per request,
``device_list`` / ``device_details`` / ``device_query`` replies laid out exactly as the digest's
examples (§2.3, same element order, indentation and ``text/html`` type), other commands answered
with an empty ``<Response>``. Its values come from a ``SimulatedMeter`` (the household model and
the rate of a scenario, the same as the ZigBee demo's meter), advanced to the clock's now in
one-minute steps on every request, so a drop of hours is caught up as a real register is.

Faults, as users report them of real units (§2.4), each a method a test or the demo calls:

* ``stall()`` / ``release()``: the local API locks up; requests are taken and never answered.
* ``go_down()`` / ``come_up()`` / ``reboot(seconds)``: connections refused for a while (a reboot,
  the smart plug that power-cycles it), then answers again on the same port; a drop for hours is
  ``go_down``, the clock moved on, ``come_up``.
* ``firmware``: ``"current"`` (plain decimals, unit in ``Units``), ``"units_in_value"`` (the 2017
  manual's ``21.499 kW``), ``"hex"`` (demand and summations as hex counts), ``"empty"`` (every value
  empty, as after a reboot), ``"zero"`` (summations read 0, the reboot quirk that wrecks totals).
* ``move(address)``: the home has a new meter; the old one stays listed first, ``Not joined``
  with ``LastContact`` 0 (Home Assistant #125281), the new one has its own registers.
* ``unjoin()``: the EAGLE has lost the meter (every value empty, ``Not joined``); ``join()`` back.
* ``freeze_meter()``: the EAGLE answers, but from its cache: ``LastContact`` stops advancing.
* ``price_absent``: ``zigbee:Price`` reads ``invalid`` (a meter that publishes no price).
* A query naming variables drops ``zigbee:CurrentSummationDelivered`` (aioeagle's finding, §2.2).

It reads and waits only through its clock (``ems.clock``), so a test on a fixed or simulated clock
decides how much time a fault lasts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

from aiohttp import web

from ems.clock import Clock, as_clock
from integrations.simulator.meter import SimulatedMeter
from integrations.simulator.scenario import Scenario

_LOGGER = logging.getLogger(__name__)

PATH = "/cgi-bin/post_manager"
STEP = timedelta(minutes=1)
DEVELOPMENT_CLOUD_ID = "0a1b2c"
DEVELOPMENT_INSTALL_CODE = "0123456789abcdef"
DEVELOPMENT_METER = "0x0013500100aa3ce7"
FIRMWARES = ("current", "units_in_value", "hex", "empty", "zero")


@dataclass(slots=True)
class ListedMeter:
    """A meter as the EAGLE lists it (one of them is the joined one)."""

    hardware_address: str
    connection_status: str = "Connected"
    network_address: str = "0x0000"
    last_contact: int = 0  # Unix seconds; 0: never
    delivered_offset_kwh: float = 0.0  # this meter's register = the simulated meter's + offset
    received_offset_kwh: float = 0.0
    name: str = "Power Meter"


@dataclass(slots=True)
class Message:
    """The utility message the EAGLE shows (its ``zigbee:Message*`` variables)."""

    message_id: int
    text: str
    priority: str = "Medium"
    start: int = 0  # Unix seconds
    duration_min: int = 0xFFFF
    confirmation_required: bool = False
    confirmed: bool = False


@dataclass(slots=True)
class Counters:
    requests: int = 0
    unauthorized: int = 0
    commands: dict[str, int] = field(default_factory=dict)


def _device_block(meter: ListedMeter, indent: str, *, details: bool) -> str:
    """One device's fields in the digest's order: a ``DeviceList`` entry names Manufacturer and
    ModelId before Protocol, a query's ``DeviceDetails`` Protocol first (§2.3, as sent)."""
    tags: tuple[tuple[str, str], ...] = (("Name", meter.name), ("HardwareAddress", meter.hardware_address))
    kinds = (("Manufacturer", "Generic"), ("ModelId", "electric_meter"))
    protocol = (("Protocol", "Zigbee"),)
    tags += protocol + kinds if details else kinds + protocol
    tags += (("LastContact", f"0x{meter.last_contact:08x}"), ("ConnectionStatus", meter.connection_status),
             ("NetworkAddress", meter.network_address))
    return "".join(f"{indent}<{tag}>{escape(value)}</{tag}>\n" for tag, value in tags)


def render_device_list(meters: list[ListedMeter]) -> bytes:
    blocks = "".join(f"  <Device>\n{_device_block(m, '    ', details=False)}  </Device>\n" for m in meters)
    return f"<DeviceList>\n{blocks}</DeviceList>\n".encode()


def render_device_query(meter: ListedMeter, variables: list[tuple[str, str, str, str]]) -> bytes:
    """A ``device_query`` reply: ``variables`` as (name, value, units, description)."""
    lines = "".join(
        f"        <Variable><Name>{escape(n)}</Name><Value>{escape(v)}</Value><Units>{escape(u)}</Units>"
        f"<Description>{escape(d)}</Description></Variable>\n" for n, v, u, d in variables)
    return (f"<Device>\n  <DeviceDetails>\n{_device_block(meter, '    ', details=True)}  </DeviceDetails>\n"
            f"  <Components>\n    <Component>\n      <Name>Main</Name>\n      <Variables>\n{lines}"
            f"      </Variables>\n    </Component>\n  </Components>\n</Device>\n").encode()


class SimulatedEagle:
    """The EAGLE's local API on ``127.0.0.1:<port>`` (``host``), over ``meter`` (or fixed values)."""

    def __init__(self, meter: SimulatedMeter | None, *, clock: Clock | None = None,
                 cloud_id: str = DEVELOPMENT_CLOUD_ID, install_code: str = DEVELOPMENT_INSTALL_CODE,
                 hardware_address: str = DEVELOPMENT_METER, port: int = 0) -> None:
        self.meter = meter
        self.clock: Clock = as_clock(clock if clock is not None else (meter.clock if meter else None))
        self.cloud_id = cloud_id
        self.install_code = install_code
        self.meters = [ListedMeter(hardware_address)]
        self.joined = hardware_address
        self.firmware = "current"
        self.price_absent = False
        self.message: Message | None = None
        self.fixed: list[tuple[str, str, str, str]] | None = None  # answer these instead of the meter's
        self.fixed_last_contact: int | None = None
        self.counters = Counters()
        self._port = port
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._answering = asyncio.Event()
        self._answering.set()
        self._meter_frozen = False
        self._last_step: datetime | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        """What the appliance's ``eagle.host`` names: ``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self._port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await self.come_up()
        _LOGGER.info("Simulated EAGLE on %s (meter %s)", self.host, self.joined)

    async def stop(self) -> None:
        self._answering.set()  # a stalled request ends (its client is gone or times out anyway)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._site = None

    async def come_up(self) -> None:
        """Listen (again) on the same port."""
        assert self._runner is not None
        if self._site is None:
            self._site = web.TCPSite(self._runner, "127.0.0.1", self._port, reuse_address=True)
            await self._site.start()
            self._port = self._site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def go_down(self) -> None:
        """Stop listening: connections are refused until ``come_up`` (a reboot, a power cycle)."""
        if self._site is not None:
            site, self._site = self._site, None
            await site.stop()
            assert self._runner is not None and self._runner.server is not None
            for connection in list(self._runner.server.connections):  # a reboot drops them all
                connection.force_close()

    async def reboot(self, seconds: float) -> None:
        """Down for ``seconds`` of the clock, then up again."""
        await self.go_down()
        try:
            await self.clock.sleep(seconds)
        finally:
            await self.come_up()

    def stall(self) -> None:
        """The local API locks up: requests are taken and not answered until ``release``."""
        self._answering.clear()

    def release(self) -> None:
        self._answering.set()

    @property
    def stalled(self) -> bool:
        return not self._answering.is_set()

    # -- the home's meter ----------------------------------------------------------------------

    def move(self, hardware_address: str, *, delivered_kwh: float = 12.5, received_kwh: float = 0.0) -> None:
        """A new meter after a move: listed after the old one, which stays ``Not joined``."""
        now_delivered, now_received = self._registers()
        for meter in self.meters:
            meter.connection_status, meter.network_address, meter.last_contact = "Not joined", "0xffff", 0
        self.meters.append(ListedMeter(hardware_address, delivered_offset_kwh=delivered_kwh - now_delivered,
                                       received_offset_kwh=received_kwh - now_received))
        self.joined = hardware_address

    def unjoin(self) -> None:
        self._listed().connection_status, self._listed().network_address = "Not joined", "0xffff"

    def join(self) -> None:
        self._listed().connection_status, self._listed().network_address = "Connected", "0x0000"

    def freeze_meter(self, frozen: bool = True) -> None:
        """The EAGLE stops hearing the meter: it answers from its cache, LastContact stands still."""
        self._meter_frozen = frozen

    def _listed(self) -> ListedMeter:
        return next(m for m in self.meters if m.hardware_address == self.joined)

    def _advance(self) -> None:
        """Move the meter to now in one-minute steps (a long silence is integrated, not a jump)."""
        if self.meter is None or self._meter_frozen:
            return
        now = self.clock()
        # From where the meter was last moved to (the demo's runner ticks it too): never backwards.
        last = getattr(self.meter, "_last_tick", None) or self._last_step
        if last is not None and now > last:
            steps = min(int((now - last) / STEP), 60 * 24 * 14)
            for index in range(1, steps + 1):
                self.meter.tick(last + STEP * index)
        if last is None or now >= last:
            self.meter.tick(now)
        self._last_step = now
        listed = self._listed()
        if listed.connection_status == "Connected":
            listed.last_contact = int(now.timestamp())

    def _registers(self) -> tuple[float, float]:
        if self.meter is None:
            return 0.0, 0.0
        listed = self._listed()
        return (self.meter.delivered_kwh + listed.delivered_offset_kwh,
                self.meter.received_kwh + listed.received_offset_kwh)

    def variables(self, now: datetime) -> list[tuple[str, str, str, str]]:
        """The meter's variables now, as this firmware writes them."""
        if self.fixed is not None:
            return list(self.fixed)
        assert self.meter is not None
        joined = self._listed().connection_status == "Connected"
        delivered, received = self._registers()
        demand = self.meter.demand_kw
        rate = self.meter.scenario.rate
        point = self.meter.current_price(now)
        price_minutes = "65535" if point.ends_at is None else str(max(1, int((point.ends_at - now).total_seconds() // 60)))
        period_start = int(self.meter.billing_period_start.timestamp())
        period_minutes = str(rate["billing_period_days"] * 1440)
        currency = {840: "USD", 124: "CAD", 978: "EUR", 36: "AUD"}.get(rate["currency"], str(rate["currency"]))
        out: list[tuple[str, str, str, str]] = [
            ("zigbee:InstantaneousDemand", self._value(demand, "kW", 1000), "kW", "Instantaneous Demand"),
            ("zigbee:CurrentSummationDelivered", self._value(delivered, "kWh", 1000), "kWh", "Summation Delivered to Home"),
            ("zigbee:CurrentSummationReceived", self._value(received, "kWh", 1000), "kWh", "Summation Received from Home"),
            ("zigbee:Multiplier", "1", "", "Multiplier"),
            ("zigbee:Divisor", "1000", "", "Divisor"),
            ("zigbee:DemandDigitsRight", "3", "", "Demand digits right"),
            ("zigbee:DemandDigitsLeft", "6", "", "Demand digits left"),
            ("zigbee:DemandSuppressLeadingZero", "Y", "", "Demand suppress leading zero"),
            ("zigbee:Price", "invalid" if self.price_absent else f"{point.price:.4f}", "", "Price of electricity"),
            ("zigbee:PriceCurrency", currency, "", "Currency of the price"),
            ("zigbee:PriceTier", str(point.tier), "", "Price tier"),
            ("zigbee:PriceTrailingDigits", str(rate["trailing_digits"]), "", "Price trailing digits"),
            ("zigbee:PriceRateLabel", point.label, "", "Rate label"),
            ("zigbee:PriceStartTime", "946684800", "", "Price start time"),
            ("zigbee:PriceDuration", price_minutes, "min", "Price duration"),
            ("zigbee:CurrentBillingPeriodStart", str(period_start), "", "Billing period start"),
            ("zigbee:CurrentBillingPeriodDuration", period_minutes, "min", "Billing period duration"),
            ("zigbee:BlockPeriodNumberOfBlocks", str(len(rate["block_prices"])), "", "Number of blocks"),
            ("zigbee:StartOfBlockPeriod", str(period_start), "", "Start of block period"),
            ("zigbee:BlockPeriodDuration", period_minutes, "min", "Block period duration"),
            ("zigbee:CurrentBlockPeriodConsumptionDelivered", f"{self.meter.block_period_kwh:.6f}", "kWh",
             "Block period consumption"),
        ]
        for index in range(1, 9):
            thresholds = rate["block_thresholds_kwh"]
            out.append((f"zigbee:Block{index}Threshold", f"{thresholds[index - 1]:.6f}" if index <= len(thresholds) else "",
                        "kWh", f"Block {index} threshold"))
        for index in range(1, 9):
            prices = rate["block_prices"]
            out.append((f"zigbee:NoTierBlock{index}Price", f"{prices[index - 1]:.4f}" if index <= len(prices) else "",
                        "", f"Block {index} price"))
        message = self.message
        out += [
            ("zigbee:Message", message.text if message else "", "", "Message"),
            ("zigbee:MessageId", str(message.message_id) if message else "", "", "Message id"),
            ("zigbee:MessagePriority", message.priority if message else "", "", "Message priority"),
            ("zigbee:MessageStartTime", str(message.start) if message else "", "", "Message start time"),
            ("zigbee:MessageDurationInMinutes", str(message.duration_min) if message else "", "min", "Message duration"),
            ("zigbee:MessageConfirmationRequired", ("true" if message.confirmation_required else "false") if message else "",
             "", "Confirmation required"),
            ("zigbee:MessageConfirmed", ("true" if message.confirmed else "false") if message else "", "", "Confirmed"),
        ]
        if not joined or self.firmware == "empty":
            out = [(n, "", u, d) for n, _v, u, d in out]
        return out

    def _value(self, value: float, unit: str, divisor: int) -> str:
        firmware = self.firmware
        if firmware == "zero" and unit == "kWh":
            return "0.000000"
        if firmware == "hex":
            return f"0x{round(value * divisor) & 0xFFFFFFFF:08x}"
        if firmware == "units_in_value":
            return f"{value:.3f} {unit}"
        return f"{value:.6f}"

    # -- the API -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.counters.requests += 1
        if not self._authorized(request.headers.get("Authorization", "")):
            self.counters.unauthorized += 1
            return web.Response(status=401, text="Unauthorized", headers={"WWW-Authenticate": 'Basic realm="EAGLE"'})
        body = await request.read()
        await self._answering.wait()
        try:
            command = ET.fromstring(body.decode("cp1252"))
        except (ET.ParseError, ValueError):
            return web.Response(status=400, text="Bad command")
        fields = {child.tag.lower(): child for child in command}
        name_element = fields.get("name")
        name = (name_element.text or "").strip().lower() if name_element is not None else ""
        self.counters.commands[name] = self.counters.commands.get(name, 0) + 1
        self._advance()
        now = self.clock()
        if name == "device_list":
            reply = render_device_list([self._shown(m) for m in self.meters])
        elif name in ("device_query", "device_details"):
            details = fields.get("devicedetails")
            address = "" if details is None else (details.findtext("HardwareAddress") or "").strip().lower()
            listed = next((m for m in self.meters if m.hardware_address.lower() == address), None)
            if listed is None:
                return web.Response(text="<Error>Device not found</Error>\n", content_type="text/html")
            variables = self.variables(now) if listed.hardware_address == self.joined else []
            components = fields.get("components")
            if components is not None and components.find("All") is None:
                # Naming variables: some firmware leaves out the summation delivered (§2.2).
                asked = {(v.findtext("Name") or "").strip() for v in components.iter("Variable")}
                variables = [v for v in variables if v[0] in asked and v[0] != "zigbee:CurrentSummationDelivered"]
            if name == "device_details":
                variables = [(n, "", u, d) for n, _v, u, d in variables]
            reply = render_device_query(self._shown(listed), variables)
        else:
            reply = b"<Response>\n  <Text>Unknown command</Text>\n</Response>\n"
        return web.Response(body=reply, content_type="text/html")

    def _shown(self, listed: ListedMeter) -> ListedMeter:
        if self.fixed_last_contact is None:
            return listed
        return ListedMeter(listed.hardware_address, listed.connection_status, listed.network_address,
                           self.fixed_last_contact, name=listed.name)

    def _authorized(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        with contextlib.suppress(ValueError, binascii.Error):
            login, _, password = base64.b64decode(encoded.strip(), validate=True).decode("latin1").partition(":")
            return login == self.cloud_id and password == self.install_code
        return False


def simulated_meter(scenario: Scenario, clock: Clock) -> SimulatedMeter:
    """A meter of ``scenario`` for an EAGLE to bridge (started at the clock's now)."""
    meter = SimulatedMeter(scenario, clock)
    meter.tick(clock())
    return meter


def with_fixed(eagle: SimulatedEagle, variables: list[tuple[str, str, str, str]], last_contact: int) -> SimulatedEagle:
    """Answer exactly ``variables`` and ``last_contact`` (the digest's example exchange)."""
    eagle.fixed = variables
    eagle.fixed_last_contact = last_contact
    return eagle




class DemoEagle:
    """The simulated EAGLE of ``ems demo --meter eagle``: it bridges the demo's own simulated meter
    (``meter_of()``, once the simulated HAN runs: the household, the rate and the home's devices'
    load, as the ZigBee demo shows them) and shows the scenario's messages at their offsets."""

    def __init__(self, meter_of: Callable[[], SimulatedMeter], clock: Clock, port: int | None = None) -> None:
        self._meter_of = meter_of
        self._clock = clock
        self.port = port if port is not None else _free_port()
        self.eagle: SimulatedEagle | None = None
        self._script: asyncio.Task[None] | None = None

    @property
    def sections(self) -> dict[str, dict[str, object]]:
        """The configuration that reads it: the ``eagle`` section on, the ZigBee meter link off."""
        return {
            "eagle": {"enabled": True, "host": f"127.0.0.1:{self.port}", "cloud_id": DEVELOPMENT_CLOUD_ID,
                      "install_code": DEVELOPMENT_INSTALL_CODE, "poll_interval_s": 10, "timeout_s": 120},
            "zigbee_se": {"enabled": False},
        }

    async def start(self) -> None:
        meter = self._meter_of()
        self.eagle = SimulatedEagle(meter, clock=self._clock, port=self.port)
        await self.eagle.start()
        self._script = asyncio.create_task(self._messages(meter.scenario), name="simulated-eagle-messages")

    async def stop(self) -> None:
        if self._script is not None:
            self._script.cancel()
            await asyncio.gather(self._script, return_exceptions=True)
            self._script = None
        if self.eagle is not None:
            await self.eagle.stop()
            self.eagle = None

    async def _messages(self, scenario: Scenario) -> None:
        started = self._clock()
        for number, spec in enumerate(sorted(scenario.messages, key=lambda m: m["at"]), start=1):
            delay = (started + spec["at"] - self._clock()).total_seconds()
            if delay > 0:
                await self._clock.sleep(delay)
            assert self.eagle is not None
            self.eagle.message = Message(
                int(spec.get("id") or number), spec["text"], str(spec["importance"]).capitalize(),
                int(self._clock().timestamp()), int(spec["duration_min"]), bool(spec["confirm"]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
