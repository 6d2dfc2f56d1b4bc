"""The fuzz target of the IEEE 2030.5 resource parsers: bytes as an HTTP body from the meter.

``ieee2030_5``
    The first byte picks one of ``integrations.ieee2030_5.resources.PARSERS`` (DeviceCapability,
    Time, the reading lists, pricing, messaging, DRLC, ...); the rest is the body. What a parser
    accepts goes on through ``translate`` as the link would take it (ReadingType classification,
    demand and energy scaling, prices, messages, load-control events). Rejection: ``BadResource``.
    Invariants: every time aware UTC, every number finite, durations and kWh not negative where
    the link relies on it, and every item of a list of the kind the list holds.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from bench.fuzz.targets import NOW, Invariant, Target, kind_of


class Ieee2030Resources(Target):
    """Every 2030.5 resource parser, then the translation the link applies."""

    name = "ieee2030_5"

    def __init__(self) -> None:
        super().__init__()
        from integrations.ieee2030_5 import resources

        self.res = resources
        self.names = list(resources.PARSERS)

    def _run(self, data: bytes) -> str:
        res = self.res
        if not data:
            return "rejected: empty input"
        name = self.names[data[0] % len(self.names)]
        try:
            parsed = res.PARSERS[name](data[1:])
        except res.BadResource as err:
            return f"rejected: {kind_of(str(err))}"
        self._check(parsed)
        return f"accepted {name}"

    def _check(self, parsed: Any) -> None:
        from integrations.ieee2030_5 import translate

        res = self.res
        items = parsed.items if isinstance(parsed, res.ListPage) else (parsed,)
        if isinstance(parsed, res.ListPage) and (parsed.all < 0 or parsed.results < 0):
            raise Invariant(f"negative list counts: {parsed}")
        kind = res.ReadingType("/rt", 72, 0, 1, 4, 12, 12, 900)
        for item in items:
            _times(item)
            if isinstance(item, res.ReadingType):
                translate.classify(item)
            elif isinstance(item, res.Reading) and item.value is not None:
                for scale in (kind, res.ReadingType("/rt", 38, item.tou_tier or 0, 19, 12)):
                    if not math.isfinite(translate.scaled_k(item.value, scale)):
                        raise Invariant(f"a reading scaled to a non-finite value: {item}")
                    translate.demand_kw(item.value, scale)
            elif isinstance(item, res.EndDeviceControl):
                event = translate.load_control_event("fuzz", item, NOW)
                if event is not None and event.duration_min < 1:
                    raise Invariant(f"an event of {event.duration_min} min from {item}")
                translate.event_cancellation("fuzz", item, NOW)
            elif isinstance(item, res.TextMessage):
                message = translate.utility_message("fuzz", item, NOW)
                if message is not None and message.end is not None and message.end < message.start:
                    raise Invariant(f"a message ending before it starts: {item}")
            elif isinstance(item, res.ConsumptionTariffInterval):
                profile = res.TariffProfile("/tp", 840, -5, "fuzz", 0, None)
                interval = res.TimeTariffInterval("/tti", res.EventFields("AB", None, 0, None, 1, NOW, 3600), 1, None)
                signal = translate.price_signal("fuzz", profile, kind, interval, [item], NOW)
                if signal is not None and not math.isfinite(signal.price_per_kwh):
                    raise Invariant(f"a price that is not finite: {item}")
            elif isinstance(item, res.TimeTariffInterval | res.TariffProfile | res.MeterReading | res.UsagePoint
                            | res.ReadingSet | res.RateComponent | res.MessagingProgram
                            | res.DemandResponseProgram | res.DeviceCapability | res.Time
                            | res.DeviceInformation | res.Reading):
                pass
            else:
                raise Invariant(f"a list item of an unexpected kind: {type(item).__name__}")

    def seeds(self) -> list[bytes]:
        """The simulated meter's every resource, each behind the byte that picks its parser."""
        from bench.fuzz.targets import REPO
        from ems.clock import FixedClock
        from integrations.simulator import load_scenario
        from integrations.simulator.ieee2030_5 import Ieee2030Meter

        clock = FixedClock(NOW)
        meter = Ieee2030Meter(load_scenario(REPO / "config" / "scenarios" / "demo.yaml"), clock)
        meter.started_at = NOW - timedelta(minutes=10)
        meter.registers.tick(NOW - timedelta(hours=1))
        meter.registers.tick(NOW)
        paths = ["/dcap", "/sdev/di", "/tm", "/upt", "/upt/1/mr", "/upt/1/mr/1/rt", "/upt/1/mr/1/r",
                 "/upt/1/mr/3/rs", "/upt/1/mr/3/rs/1/r", "/upt/1/mr/30/rs", "/tp", "/tp/1/rc", "/tp/1/rc/1/acttti",
                 "/msg", "/msg/1/txt", "/dr", "/dr/1/edc"]
        seeds = []
        for path in paths:
            body = meter._resource(path, NOW, 0, 3)
            if body is None:
                continue
            root = re.search(r"<([A-Za-z]+)[ >]", body.split("?>", 1)[-1])
            if root and root.group(1) in self.names:
                seeds.append(bytes([self.names.index(root.group(1))]) + body.encode())
        newest = int(_floor(NOW).timestamp())
        body = meter._resource(f"/upt/1/mr/30/rs/{newest}/r", NOW, 0, 3)
        if body is not None:
            seeds.append(bytes([self.names.index("ReadingList")]) + body.encode())
        return seeds

    def words(self) -> list[bytes]:
        found: set[str] = set()
        for seed in self.seeds():
            found.update(re.findall(r"</?([A-Za-z]+)", seed[1:].decode("utf-8", "replace")))
        return sorted({f"<{w}>".encode() for w in found} | {f"</{w}>".encode() for w in found}
                      | {b'xmlns="urn:ieee:std:2030.5:ns"', b'href="/', b' all="', b'pollRate="', b"<!DOCTYPE",
                         b"&amp;", b"-9", b"9223372036854775807", b"0x", b"\xc3\xa9"})


def _times(item: Any) -> None:
    for name in getattr(item, "__dataclass_fields__", {}):
        value = getattr(item, name)
        if isinstance(value, datetime) and value.tzinfo is None:
            raise Invariant(f"{type(item).__name__}.{name} is naive: {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise Invariant(f"{type(item).__name__}.{name} is not finite")
        if hasattr(value, "__dataclass_fields__"):
            _times(value)


def _floor(at: datetime) -> datetime:
    span = 12 * 3600
    return datetime.fromtimestamp(int(at.timestamp()) // span * span, at.tzinfo)
