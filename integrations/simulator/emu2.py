"""A simulated Rainforest EMU-2 on a pseudo-terminal pair, fed by the simulator's household.

The appliance opens ``path`` (the pty's slave end) as its serial port, as it would
``/dev/ttyACM0``; this bridge writes on the master end the XML fragments a real EMU-2 writes
(spec ``han-bridges.md`` §1.7, §1.11: pretty-printed, ``0x`` hex, UTCTime since 2000, demand in
32-bit two's complement while exporting) on its own schedule, and answers the commands the
appliance writes (§1.6), ``Warning``/``Unknown command`` to the rest. It is written from the spec,
not from the appliance's parser (the simulator imports none of the appliance's adapters), so a
test of one against the other checks both; aioraven's own client reads it too.

Its registers integrate the household's net demand (``household.py``) on the given clock, and its
price is the scenario's rate (``rate.py``), so its figures look like the ZigBee demo's. Faults, as
users report them of real units: ``stall`` (stops writing and answering), ``reboot`` (a fragment
cut off, junk, then DeviceInfo again), ``field_formats`` (a firmware that writes a field
differently), ``stall`` for hours then ``resume`` (the registers moved on: a catch-up), ``move``
(a different meter's MAC).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import html.entities
import logging
import os
import re
import tty
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ems.clock import Clock
from ems.tasks import TaskSet
from integrations.simulator.household import Household
from integrations.simulator.rate import SimulatedRate
from integrations.simulator.scenario import Scenario

_LOGGER = logging.getLogger(__name__)

ZIGBEE_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
DEVICE_MAC = "d8d5b90000001234"
METER_MAC = "00135001002a3c4d"
STEP_S = 60.0  # the registers integrate the household in steps of at most this
_COMMAND = re.compile(rb"<Command>.*?</Command>", re.S)


@dataclass(frozen=True, slots=True)
class Emu2Schedule:
    """How often the bridge pushes each fragment unprompted (seconds of the clock; 0: never)."""

    demand_s: float = 10.0  # a real EMU-2: every 8-11 s (§1.8)
    summation_s: float = 30.0
    price_s: float = 300.0  # and whenever the price changes (checked with each demand)
    time_s: float = 600.0


@dataclass(frozen=True, slots=True)
class SentMessage:
    message_id: int
    text: str
    confirmation_required: bool
    at: datetime
    confirmed: bool = False
    cancelled: bool = False


class SimulatedEmu2:
    """The EMU-2: pty, registers, schedule, command answers and faults (see the module docstring)."""

    def __init__(self, scenario: Scenario, clock: Clock, *, schedule: Emu2Schedule | None = None,
                 device_mac: str = DEVICE_MAC, meter_mac: str = METER_MAC, model_id: str = "Z105-2-EMU2",
                 extra_kw: Callable[[datetime], float] | None = None) -> None:
        self.scenario = scenario
        self.clock = clock
        self.schedule = schedule or Emu2Schedule()
        self.household = Household.from_scenario(scenario.household, scenario.timezone)
        self.rate = SimulatedRate(scenario.rate, self.household.timezone)
        self.device_mac = device_mac
        self.meter_mac = meter_mac
        self.model_id = model_id
        self.extra_kw = extra_kw  # the simulated home devices' load, when they run too
        self.delivered_kwh = float(scenario.meter["initial_delivered_kwh"])
        self.received_kwh = float(scenario.meter["initial_received_kwh"])
        self.block_kwh = 0.0
        self.demand_kw = 0.0
        self.stalled = False
        # In single-meter operation the bridge need not name the meter in each fragment (§1.3 rule 5).
        self.send_meter_mac = True
        self.field_formats: dict[str, str] = {}  # field -> "decimal" | "float" | "hex" (a firmware's change)
        self.messages: dict[int, SentMessage] = {}
        self.commands: list[tuple[datetime, str, dict[str, str]]] = []  # everything the appliance wrote
        self.command_heard = asyncio.Event()  # set at each command (a test clears it and waits)
        self.summations: list[tuple[datetime, float, float]] = []  # every summation written in the spec's format
        self.written: list[tuple[datetime, bytes]] = []  # every fragment written (kept short: the last 500)
        self.dropped_bytes = 0  # written while nobody read and the pty's buffer was full
        self.on_write: Callable[[str, bytes], None] | None = None  # a benchmark's hook: (root tag, bytes)
        self._last: datetime | None = None
        self._last_price: tuple[Any, ...] | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self.path = ""
        self._inbox = b""
        self._tasks = TaskSet(_LOGGER, "emu2")

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> str:
        """Make the pty pair (once) and return the path the appliance opens: known before ``start``."""
        if self._master is None:
            master, slave = os.openpty()
            tty.setraw(slave)  # no echo, no line discipline: bytes pass as they are, as over USB CDC-ACM
            os.set_blocking(master, False)
            self._master, self._slave = master, slave
            self.path = os.ttyname(slave)
        return self.path

    async def start(self) -> None:
        self.open()
        master = self._master
        assert master is not None
        self.advance(self.clock())
        asyncio.get_running_loop().add_reader(master, self._readable)
        self._tasks.spawn(self._push("demand", self.schedule.demand_s, self._tick_demand), "emu2-demand")
        self._tasks.spawn(self._push("summation", self.schedule.summation_s, self.write_summation), "emu2-summation")
        self._tasks.spawn(self._push("price", self.schedule.price_s, self.write_price), "emu2-price")
        self._tasks.spawn(self._push("time", self.schedule.time_s, self.write_time), "emu2-time")
        for spec in self.scenario.messages:
            self._tasks.spawn(self._message_later(spec), "emu2-message")
        _LOGGER.info("Simulated EMU-2 on %s (meter %s)", self.path, self.meter_mac)

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        if self._master is not None:
            asyncio.get_running_loop().remove_reader(self._master)
            os.close(self._master)
            self._master = None
        if self._slave is not None:
            os.close(self._slave)
            self._slave = None

    # -- registers -----------------------------------------------------------------------------

    def advance(self, now: datetime) -> None:
        """Integrate the household's net demand up to ``now`` (in steps, so hours passed are right)."""
        if self._last is None:
            self._last = now
            self.demand_kw = self._net(now)
            return
        at = self._last
        while at < now:
            step = min(STEP_S, (now - at).total_seconds())
            kw = self._net(at + timedelta(seconds=step / 2))
            energy = kw * step / 3600
            if energy >= 0:
                self.delivered_kwh += energy
                self.block_kwh += energy
            else:
                self.received_kwh -= energy
            at += timedelta(seconds=step)
        self._last = max(self._last, now)
        self.demand_kw = self._net(now)

    def _net(self, at: datetime) -> float:
        extra = self.extra_kw(at) if self.extra_kw is not None else 0.0
        return self.household.net_kw(at, extra)

    # -- what it writes ------------------------------------------------------------------------

    def _stamp(self, at: datetime | None = None) -> str:
        return f"0x{int(((at or self.clock()) - ZIGBEE_EPOCH).total_seconds()) & 0xFFFFFFFF:08x}"

    def _number(self, name: str, raw: int, digits: int, scaled: float | None = None) -> str:
        """A number as this firmware writes the field: hex (the spec), or as a changed firmware does."""
        style = self.field_formats.get(name, "hex")
        if style == "decimal":
            return str(raw)
        if style == "float":
            return f"{scaled if scaled is not None else raw:.3f}"
        return f"0x{raw & ((1 << (4 * digits)) - 1):0{digits}x}"

    def fragment(self, tag: str, fields: list[tuple[str, str]]) -> bytes:
        """A fragment pretty-printed as the bridge writes it (§1.11), the DeviceMacId first."""
        lines = [f"<{tag}>", f"  <DeviceMacId>0x{self.device_mac}</DeviceMacId>"]
        for key, value in fields:
            lines.append(f"  <{key}>{_xml(value)}</{key}>")
        lines.append(f"</{tag}>")
        return ("\r\n".join(lines) + "\r\n").encode("cp1252", "replace")

    def write(self, tag: str, fields: list[tuple[str, str]]) -> None:
        if self.stalled:
            return
        self.write_bytes(self.fragment(tag, fields), tag)

    def write_bytes(self, data: bytes, tag: str = "") -> None:
        """Put bytes on the line (what does not fit in the pty's buffer is lost, as on a real one)."""
        if self._master is None:
            return
        if self.on_write is not None:
            self.on_write(tag, data)
        self.written.append((self.clock(), data))
        del self.written[:-500]
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self._master, view)
            except BlockingIOError:
                self.dropped_bytes += len(view)
                return
            except OSError:
                return
            view = view[sent:]

    def _meter(self) -> list[tuple[str, str]]:
        return [("MeterMacId", f"0x{self.meter_mac}")] if self.send_meter_mac else []

    def _scaling(self, digits_right: int) -> list[tuple[str, str]]:
        return [("Multiplier", "0x00000001"), ("Divisor", "0x000003e8"), ("DigitsRight", f"0x{digits_right:02x}"),
                ("DigitsLeft", "0x06"), ("SuppressLeadingZero", "Y")]

    def write_demand(self) -> None:
        self.advance(self.clock())
        raw = round(self.demand_kw * 1000)
        digits = 6 if 0 <= raw < 0x800000 else 8  # exporting: 32-bit two's complement (§1.11)
        self.write("InstantaneousDemand", [*self._meter(), ("TimeStamp", self._stamp()),
                                           ("Demand", self._number("Demand", raw, digits, self.demand_kw)),
                                           *self._scaling(3)])

    def write_summation(self) -> None:
        self.advance(self.clock())
        delivered, received = round(self.delivered_kwh * 1000), round(self.received_kwh * 1000)
        if not self.stalled and not {"SummationDelivered", "SummationReceived"} & set(self.field_formats):
            # What a reader can take (a soak checks the intervals against these): kept short
            self.summations.append((self.clock(), delivered / 1000, received / 1000))
            del self.summations[:-20_000]
        self.write("CurrentSummationDelivered", [
            *self._meter(), ("TimeStamp", self._stamp()),
            ("SummationDelivered", self._number("SummationDelivered", delivered, 8, self.delivered_kwh)),
            ("SummationReceived", self._number("SummationReceived", received, 8, self.received_kwh)),
            *self._scaling(1)])

    def _price_now(self) -> tuple[int, int, int, str]:
        """(raw price, trailing digits, tier, label) in force now."""
        point = self.rate.price_at(self.clock(), self.block_kwh)
        digits = int(self.scenario.rate["trailing_digits"])
        return round(point.price * 10 ** digits), digits, point.tier, point.label

    def write_price(self, label: str | None = None) -> None:
        """The price in force; ``label`` "Set by User" plays a price the customer keyed into the EMU-2."""
        price, digits, tier, rate_label = self._price_now()
        self._last_price = (price, digits, tier, rate_label)
        label = label or rate_label
        self.write("PriceCluster", [*self._meter(), ("TimeStamp", self._stamp()),
                                    ("Price", self._number("Price", price, 8)),
                                    ("Currency", f"0x{int(self.scenario.rate['currency']):04x}"),
                                    ("TrailingDigits", f"0x{digits:02x}"), ("Tier", f"0x{tier:02x}"),
                                    ("RateLabel", label)])

    def write_block_prices(self) -> None:
        rate = self.scenario.rate
        digits = int(rate["trailing_digits"])
        thresholds = [round(kwh * 1000) for kwh in rate["block_thresholds_kwh"]] + [0xFFFFFFFF]
        fields = [*self._meter(), ("TimeStamp", self._stamp()), ("NumberOfBlocks", f"0x{len(thresholds):02x}"),
                  ("Multiplier", "0x00000001"), ("Divisor", "0x000003e8"),
                  ("Currency", f"0x{int(rate['currency']):04x}"), ("TrailingDigits", f"0x{digits:02x}")]
        for n, (threshold, price) in enumerate(zip(thresholds, rate["block_prices"], strict=False), start=1):
            fields += [(f"Threshold{n}", f"0x{threshold:08x}"), (f"Price{n}", f"0x{round(price * 10 ** digits):08x}")]
        self.write("BlockPriceDetail", fields)

    def write_time(self) -> None:
        now = self.clock()
        local = now.astimezone(self.household.timezone).replace(tzinfo=UTC)
        self.write("TimeCluster", [*self._meter(), ("UTCTime", self._stamp(now)), ("LocalTime", self._stamp(local))])

    def write_message(self, message: SentMessage | None = None) -> None:
        if message is None:  # no message: the fields empty, as the bridge answers get_message then
            self.write("MessageCluster", [*self._meter(), ("TimeStamp", ""), ("Id", ""), ("Text", ""),
                                          ("ConfirmationRequired", "N"), ("Confirmed", "N"), ("Queue", "Active")])
            return
        self.write("MessageCluster", [
            *self._meter(), ("TimeStamp", self._stamp(message.at)), ("Id", f"0x{message.message_id:08x}"),
            ("Text", _html(message.text)), ("ConfirmationRequired", "Y" if message.confirmation_required else "N"),
            ("Confirmed", "Y" if message.confirmed else "N"),
            ("Queue", "Cancel Pending" if message.cancelled else "Active")])

    def write_device_info(self) -> None:
        self.write("DeviceInfo", [("InstallCode", "0x8a6e0e1cdd3c7a21"), ("LinkKey", "0x" + "5a" * 16),
                                  ("FWVersion", "2.0.0 (7400)"), ("HWVersion", "2.7.3"), ("ImageType", "0x1301"),
                                  ("Manufacturer", "Rainforest Automation, Inc."), ("ModelId", self.model_id),
                                  ("DateCode", "2019052412345678")])

    def write_connection(self, tag: str = "ConnectionStatus", status: str = "Connected") -> None:
        fields = [*self._meter()] if tag == "ConnectionStatus" else [("CoordMacId", f"0x{self.meter_mac}")]
        description = "Successfully Joined" if status == "Connected" else status
        self.write(tag, [*fields, ("Status", status), ("Description", description),
                         ("StatusCode", "0x00"), ("ExtPanId", f"0x{self.meter_mac}"), ("Channel", "20"),
                         ("ShortAddr", "0x4c2e"), ("LinkStrength", "0x64")])

    def write_meter_list(self) -> None:
        self.write("MeterList", [("MeterMacId", f"0x{self.meter_mac}")])

    def write_meter_info(self) -> None:
        self.write("MeterInfo", [*self._meter(), ("MeterType", "electric"), ("NickName", "Home"),
                                 ("Account", ""), ("Auth", ""), ("Host", ""), ("Enabled", "Y")])

    def write_schedule(self, event: str | None) -> None:
        frequencies = {"demand": self.schedule.demand_s, "summation": self.schedule.summation_s,
                       "price": self.schedule.price_s, "time": self.schedule.time_s, "message": 0.0}
        for name, seconds in frequencies.items():
            if event in (None, name):
                self.write("ScheduleInfo", [*self._meter(), ("Event", name), ("Frequency", f"0x{int(seconds):08x}"),
                                            ("Enabled", "Y" if seconds else "N")])

    def write_warning(self, text: str = "Unknown command") -> None:
        self.write("Warning", [("Text", text)])

    # -- the schedule ----------------------------------------------------------------------------

    async def _push(self, what: str, every_s: float, write: Callable[[], None]) -> None:
        if every_s <= 0:
            return
        while True:
            await self.clock.sleep(every_s)
            write()

    def _tick_demand(self) -> None:
        self.write_demand()
        if self._last_price is not None and self._price_now() != self._last_price:
            self.write_price()

    async def _message_later(self, spec: dict[str, Any]) -> None:
        await self.clock.sleep(spec["at"].total_seconds())
        self.send_message(spec.get("id", 100 + len(self.messages)), spec["text"], bool(spec.get("confirm")))

    def send_message(self, message_id: int, text: str, confirmation_required: bool = False) -> SentMessage:
        """The utility sends a message: the bridge pushes it at once (§1.8)."""
        message = SentMessage(message_id, text, confirmation_required, self.clock())
        self.messages[message_id] = message
        self.write_message(message)
        return message

    def cancel_message(self, message_id: int) -> None:
        message = self.messages[message_id]
        self.messages[message_id] = SentMessage(message.message_id, message.text, message.confirmation_required,
                                                message.at, message.confirmed, cancelled=True)
        self.write_message(self.messages[message_id])

    # -- faults ----------------------------------------------------------------------------------

    def stall(self) -> None:
        """Stop writing and answering (a hung bridge); the registers go on with the household."""
        self.stalled = True

    def resume(self) -> None:
        """Answer again; the next scheduled fragments carry the registers as they are now."""
        self.stalled = False

    def reboot(self) -> None:
        """A fragment cut off mid-write and junk on the line, then DeviceInfo as a bridge does at start."""
        self.stalled = False
        partial = self.fragment("InstantaneousDemand", [*self._meter(), ("TimeStamp", self._stamp())])
        self.write_bytes(partial[: len(partial) // 2] + b"\x00\xff\xfe\x1b[0m", "junk")
        self.write_device_info()

    def move(self, meter_mac: str) -> None:
        """The bridge now reads another meter (the customer moved house with it)."""
        self.meter_mac = meter_mac.lower()

    # -- commands --------------------------------------------------------------------------------

    def _readable(self) -> None:
        assert self._master is not None
        try:
            data = os.read(self._master, 4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            return
        self._inbox += data
        end = 0
        for match in _COMMAND.finditer(self._inbox):
            end = match.end()
            self._command(match.group(0))
        self._inbox = self._inbox[end:][-4096:]

    def _command(self, data: bytes) -> None:
        try:
            element = ET.fromstring(data)
        except ET.ParseError:
            self.write_warning("Invalid command")
            return
        args = {child.tag: (child.text or "").strip() for child in element}
        name = args.pop("Name", "")
        self.commands.append((self.clock(), name, args))
        self.command_heard.set()
        if self.stalled:
            return
        meter = args.get("MeterMacId", "").lower().removeprefix("0x")
        if meter and meter != self.meter_mac:
            return  # not this bridge's meter: a real one answers nothing
        answers: dict[str, Callable[[], None]] = {
            "get_meter_list": self.write_meter_list,
            "get_device_info": self.write_device_info,
            "get_connection_status": self.write_connection,
            "get_network_info": lambda: self.write_connection("NetworkInfo"),
            "get_meter_info": self.write_meter_info,
            "get_instantaneous_demand": self.write_demand,
            "get_current_summation_delivered": self.write_summation,
            "get_current_price": self.write_price,
            "get_price_blocks": self.write_block_prices,
            "get_time": self.write_time,
            "get_schedule": lambda: self.write_schedule(args.get("Event") or None),
            "get_message": lambda: self.write_message(self._latest_message()),
            "confirm_message": lambda: self._confirm(args.get("Id", "")),
            "initialize": lambda: None,
        }
        answer = answers.get(name)
        if answer is None:
            self.write_warning()
        else:
            answer()

    def _latest_message(self) -> SentMessage | None:
        live = [m for m in self.messages.values() if not m.cancelled]
        return max(live, key=lambda m: m.at) if live else None

    def _confirm(self, raw_id: str) -> None:
        try:
            message_id = int(raw_id, 16)
        except ValueError:
            self.write_warning("Invalid Id")
            return
        message = self.messages.get(message_id)
        if message is not None:
            self.messages[message_id] = SentMessage(message.message_id, message.text, message.confirmation_required,
                                                    message.at, confirmed=True)

    def confirmed(self, message_id: int) -> bool:
        message = self.messages.get(message_id)
        return message is not None and message.confirmed


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _html(text: str) -> str:
    """The message text as the bridge passes it on: HTML-escaped, non-ASCII as named entities (§1.11)."""
    out = []
    for char in html.escape(text, quote=False):
        name = html.entities.codepoint2name.get(ord(char)) if ord(char) > 127 else None
        out.append(f"&{name};" if name else char if ord(char) < 128 else f"&#{ord(char)};")
    return "".join(out)


@contextlib.asynccontextmanager
async def running(emu2: SimulatedEmu2) -> Any:
    """``async with running(SimulatedEmu2(...)) as bridge:``: started, stopped on the way out."""
    await emu2.start()
    try:
        yield emu2
    finally:
        await emu2.stop()
