"""The ``emu2`` fuzz target: bytes as they would come off the EMU-2's serial line, through the link.

The input's first byte picks how the port hands the rest over (chunks of 1-64 bytes: a serial
read returns whatever arrived); the rest is the stream. It goes through the EMU-2 link's own path:
``emu2_xml.FragmentSplitter`` (framing), ``emu2_xml.decode`` (fields), and ``Emu2Link._take``
(the meter pins, the translation into domain events, ``IntervalsFromSummation``), publishing on a
real bus with the current state listening. Rejections: ``FrameRejected`` (malformed: junk, a cut-off
or broken fragment; rejected: a field refused; unknown: a root the link does not read).
Invariants: every published reading is finite and in range, every time aware, every interval of
positive length with energies >= 0, every price finite and >= 0.
"""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta
from typing import Any

from bench.fuzz.targets import NOW, Invariant, Target, kind_of

SEED_STREAM = (
    b"<InstantaneousDemand>\r\n  <DeviceMacId>0xd8d5b90000001234</DeviceMacId>\r\n"
    b"  <MeterMacId>0x00135001002a3c4d</MeterMacId>\r\n  <TimeStamp>0x30095aa8</TimeStamp>\r\n"
    b"  <Demand>0xfffff63c</Demand>\r\n  <Multiplier>0x00000001</Multiplier>\r\n"
    b"  <Divisor>0x000003e8</Divisor>\r\n  <DigitsRight>0x03</DigitsRight>\r\n</InstantaneousDemand>\r\n"
    b"<CurrentSummationDelivered><MeterMacId>0x00135001002a3c4d</MeterMacId><TimeStamp>0x30095aa8</TimeStamp>"
    b"<SummationDelivered>0x00bc614e</SummationDelivered><SummationReceived>0x0003d090</SummationReceived>"
    b"<Multiplier>0x00000001</Multiplier><Divisor>0x000003e8</Divisor></CurrentSummationDelivered>"
    b"<PriceCluster><MeterMacId>0x00135001002a3c4d</MeterMacId><TimeStamp>0x30095aa8</TimeStamp>"
    b"<Price>0x000004d2</Price><Currency>0x0348</Currency><TrailingDigits>0x04</TrailingDigits>"
    b"<Tier>0x02</Tier><TierLabel>Mid</TierLabel><Duration>0x003c</Duration></PriceCluster>"
    b"<MessageCluster><MeterMacId>0x00135001002a3c4d</MeterMacId><TimeStamp>0x30095ae4</TimeStamp>"
    b"<Id>0x00000007</Id><Text>Peak 3&amp;ndash;6 PM</Text><ConfirmationRequired>Y</ConfirmationRequired>"
    b"<Confirmed>N</Confirmed><Queue>Active</Queue></MessageCluster>"
    b"<TimeCluster><MeterMacId>0x00135001002a3c4d</MeterMacId><UTCTime>0x30095aa8</UTCTime>"
    b"<LocalTime>0x30090648</LocalTime></TimeCluster>"
    b"<BlockPriceDetail><MeterMacId>0x00135001002a3c4d</MeterMacId><NumberOfBlocks>0x02</NumberOfBlocks>"
    b"<Multiplier>0x1</Multiplier><Divisor>0x3e8</Divisor><Currency>0x0348</Currency>"
    b"<TrailingDigits>0x02</TrailingDigits><Threshold1>0x00055730</Threshold1><Price1>0x0000000c</Price1>"
    b"<Threshold2>0xffffffff</Threshold2><Price2>0x00000012</Price2></BlockPriceDetail>"
    b"<MeterList><MeterMacId>0x00135001002a3c4d</MeterMacId></MeterList>"
    b"<ConnectionStatus><Status>Connected</Status><Channel>20</Channel><LinkStrength>0x64</LinkStrength>"
    b"</ConnectionStatus><DeviceInfo><ModelId>Z105-2-EMU2</ModelId></DeviceInfo>"
    b"<Warning><Text>Unknown command</Text></Warning>"
)


class _Pins:
    """The hub's meter pins, admitting every meter (the pins' own refusals are tested elsewhere)."""

    async def admit(self, meter_id: str, kind: str, hardware_id: str) -> bool:
        return True


class Emu2(Target):
    """The EMU-2 link's fragment path (see the module docstring)."""

    name = "emu2"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()  # the target's own (not set as the thread's current loop)

    def _link(self) -> tuple[Any, list[Any]]:
        from ems.bus import EventBus
        from ems.clock import FixedClock
        from ems.state import CurrentState
        from integrations.rainforest.emu2_link import Emu2Link, Emu2Settings

        class Hub:  # what the link reads of the hub while it takes fragments
            clock = FixedClock(NOW)
            bus = EventBus()
            state = CurrentState()
            meter_pins = _Pins()

        Hub.state.attach(Hub.bus)
        events: list[Any] = []
        Hub.bus.listen_all(events.append)
        return Emu2Link(Hub, Emu2Settings(port="/dev/fuzz")), events

    def _run(self, data: bytes) -> str:
        from ems.model import FrameRejected
        from integrations.rainforest import emu2_xml as xml

        size = 1 + (data[0] % 64 if data else 0)
        stream = data[1:]
        link, events = self._link()
        splitter = xml.FragmentSplitter()
        clock = link._hub.clock

        async def feed() -> int:
            taken = 0
            for start in range(0, len(stream), size):
                for event in splitter.feed(stream[start:start + size]):
                    if isinstance(event, xml.Garbled):
                        link._garbled(event)
                    else:
                        await link._take(event)
                        taken += 1
                clock.advance(seconds=7)  # the summations are minutes apart by the end
            return taken

        taken = self.loop.run_until_complete(feed())
        for event in events:
            _check(event)
        rejected = [e for e in events if isinstance(e, FrameRejected)]
        if rejected and not taken:
            return f"rejected {rejected[0].kind}: {kind_of(rejected[0].reason)}"
        published = sorted({type(e).__name__ for e in events if not isinstance(e, FrameRejected)})
        return f"accepted ({'some' if taken else 'no'} fragments; {', '.join(published) or 'nothing'})"

    def seeds(self) -> list[bytes]:
        return [bytes([size]) + SEED_STREAM for size in (0, 1, 6, 63)] + [
            b"\x05" + SEED_STREAM[: len(SEED_STREAM) // 3] + b"\x00\xff" + SEED_STREAM[len(SEED_STREAM) // 2:]]

    def words(self) -> list[bytes]:
        from integrations.rainforest.emu2_xml import KNOWN_TAGS

        tags = sorted(KNOWN_TAGS | {"DeviceMacId", "MeterMacId", "TimeStamp", "Demand", "Multiplier", "Divisor",
                                    "SummationDelivered", "SummationReceived", "Price", "TrailingDigits", "Tier",
                                    "Currency", "Text", "Id", "Queue", "UTCTime", "LocalTime", "NumberOfBlocks",
                                    "Threshold1", "Price1", "Status", "Channel", "LinkStrength", "Duration",
                                    "StartTime", "ConfirmationRequired", "Confirmed"})
        return ([f"<{t}>".encode() for t in tags] + [f"</{t}>".encode() for t in tags]
                + [b"0x", b"0xffffffff", b"0x80000000", b"0x00000000", b"0xffffff", b"Y", b"N", b"&amp;", b"&ndash;",
                   b"<![CDATA[", b"]]>", b"Cancel Pending", b"Connected"])

    def close(self) -> None:
        super().close()
        self.loop.close()


def _check(event: Any) -> None:
    """What the rest of the appliance relies on in what the link publishes."""
    from ems.model import IntervalReading, MeterReading, PriceSignal

    for name in ("read_at", "at", "start", "received_at", "meter_time", "discovered_at"):
        value = getattr(event, name, None)
        if value is not None and value.tzinfo is None:
            raise Invariant(f"naive {name} in {event!r}")
    if isinstance(event, MeterReading):
        for name in ("demand_kw", "summation_delivered_kwh", "summation_received_kwh"):
            value = getattr(event, name)
            if value is not None and not (math.isfinite(value) and abs(value) <= 1e12):
                raise Invariant(f"{name} {value!r} out of range")
        for name in ("summation_delivered_kwh", "summation_received_kwh"):
            value = getattr(event, name)
            if value is not None and value < 0:
                raise Invariant(f"negative register {name} {value!r}")
    if isinstance(event, IntervalReading):
        if event.duration_s <= 0 or event.consumed_kwh < 0 or event.generated_kwh < 0:
            raise Invariant(f"interval {event!r}")
        if not (math.isfinite(event.consumed_kwh) and math.isfinite(event.generated_kwh)):
            raise Invariant(f"interval energy not finite: {event!r}")
    if isinstance(event, PriceSignal):
        if not (math.isfinite(event.price_per_kwh) and event.price_per_kwh >= 0):
            raise Invariant(f"price {event.price_per_kwh!r}")
        if event.end is not None and event.end - event.start < timedelta(0):
            raise Invariant(f"price ends before it starts: {event!r}")
