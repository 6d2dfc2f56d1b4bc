"""The EAGLE fuzz target: bytes as the body of an EAGLE's HTTP reply, the appliance's parse path.

``eagle``
    The first byte picks the reply asked for (even: a ``device_query``, odd: a ``device_list``);
    the rest is the body, as ``integrations.rainforest.eagle_client`` hands it on. A query reply
    goes through ``eagle_wire.parse_device_query`` and ``eagle_translate.translate`` (what the link
    publishes), a device list through ``parse_device_list`` and ``eagle_link.choose_meter``.
    Rejection: ``BadReply`` (the whole body refused). A value refused inside an accepted reply is
    counted in the outcome, not a rejection. Invariants: every number finite, demand within
    ``MAX_DEMAND_KW``, registers not negative, times aware, a price's end after now, block
    thresholds rising, a message id of 32 bits, a chosen meter one of those listed.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from bench.fuzz.targets import NOW, Invariant, Target, kind_of

_QUERY = """<Device>
  <DeviceDetails>
    <Name>Power Meter</Name>
    <HardwareAddress>0x0013500100aa3ce7</HardwareAddress>
    <Protocol>Zigbee</Protocol>
    <Manufacturer>Generic</Manufacturer>
    <ModelId>electric_meter</ModelId>
    <LastContact>0x68769e28</LastContact>
    <ConnectionStatus>Connected</ConnectionStatus>
    <NetworkAddress>0x0000</NetworkAddress>
  </DeviceDetails>
  <Components>
    <Component>
      <Name>Main</Name>
      <Variables>
{rows}      </Variables>
    </Component>
  </Components>
</Device>
"""
_LIST = (b"<DeviceList>\n  <Device>\n    <Name>Power Meter</Name>\n    <HardwareAddress>0x0013500100aa3ce7"
         b"</HardwareAddress>\n    <Manufacturer>Generic</Manufacturer>\n    <ModelId>electric_meter</ModelId>\n"
         b"    <Protocol>Zigbee</Protocol>\n    <LastContact>0x68769e28</LastContact>\n"
         b"    <ConnectionStatus>Connected</ConnectionStatus>\n    <NetworkAddress>0x0000</NetworkAddress>\n"
         b"  </Device>\n</DeviceList>\n")
_VARIABLES = [
    ("zigbee:InstantaneousDemand", "1.234000", "kW"), ("zigbee:CurrentSummationDelivered", "12345.678000", "kWh"),
    ("zigbee:CurrentSummationReceived", "250.000000", "kWh"), ("zigbee:Multiplier", "1", ""),
    ("zigbee:Divisor", "1000", ""), ("zigbee:Price", "0.1234", ""), ("zigbee:PriceCurrency", "USD", ""),
    ("zigbee:PriceTier", "2", ""), ("zigbee:PriceTrailingDigits", "4", ""), ("zigbee:PriceRateLabel", "Mid-Peak", ""),
    ("zigbee:PriceStartTime", "946684800", ""), ("zigbee:PriceDuration", "90", "min"),
    ("zigbee:CurrentBillingPeriodStart", "1781852400", ""), ("zigbee:CurrentBillingPeriodDuration", "43200", "min"),
    ("zigbee:StartOfBlockPeriod", "1781852400", ""), ("zigbee:BlockPeriodDuration", "43200", "min"),
    ("zigbee:Block1Threshold", "350.000000", "kWh"), ("zigbee:Block2Threshold", "", "kWh"),
    ("zigbee:NoTierBlock1Price", "0.0000", ""), ("zigbee:NoTierBlock2Price", "0.0700", ""),
    ("zigbee:Message", "Peak event 3&amp;ndash;6 PM today.", ""), ("zigbee:MessageId", "7", ""),
    ("zigbee:MessagePriority", "High", ""), ("zigbee:MessageStartTime", "1784142000", ""),
    ("zigbee:MessageDurationInMinutes", "120", "min"), ("zigbee:MessageConfirmationRequired", "true", ""),
    ("zigbee:DemandDigitsRight", "3", ""),
]


def _query(variables: list[tuple[str, str, str]]) -> bytes:
    rows = "".join(f"        <Variable><Name>{n}</Name><Value>{v}</Value><Units>{u}</Units>"
                   f"<Description></Description></Variable>\n" for n, v, u in variables)
    return b"\x00" + _QUERY.format(rows=rows).encode()


def _aware(value: datetime | None, what: str) -> None:
    if value is not None and value.tzinfo is None:
        raise Invariant(f"{what} is naive: {value}")


def _finite(value: float | None, what: str) -> None:
    if value is not None and not math.isfinite(value):
        raise Invariant(f"{what} is not finite: {value}")


class Eagle(Target):
    """An EAGLE reply's body through the parse and translate path (see the module docstring)."""

    name = "eagle"

    def _run(self, data: bytes) -> str:
        from integrations.rainforest.eagle_link import choose_meter
        from integrations.rainforest.eagle_translate import MAX_DEMAND_KW, translate
        from integrations.rainforest.eagle_wire import (
            BadReply,
            parse_device_list,
            parse_device_query,
        )

        if not data:
            return "rejected: empty input"
        body = data[1:]
        try:
            if data[0] & 1:
                devices = parse_device_list(body)
                chosen = choose_meter(devices)
                if chosen is not None and chosen not in devices:
                    raise Invariant(f"chose {chosen} of {devices}")
                return f"accepted device list ({'a meter' if chosen else 'no meter'})"
            reply = parse_device_query(body)
        except BadReply as err:
            return f"rejected: {kind_of(str(err))}"
        values = translate(reply, "main", NOW)
        reading = values.reading
        if reading is not None:
            for name in ("demand_kw", "summation_delivered_kwh", "summation_received_kwh"):
                _finite(getattr(reading, name), name)
            if reading.demand_kw is not None and abs(reading.demand_kw) > MAX_DEMAND_KW:
                raise Invariant(f"demand {reading.demand_kw} kW")
            for name in ("summation_delivered_kwh", "summation_received_kwh"):
                value = getattr(reading, name)
                if value is not None and value < 0:
                    raise Invariant(f"{name} negative: {value}")
        price = values.price
        if price is not None:
            _finite(price.price_per_kwh, "price")
            _aware(price.start, "price start")
            _aware(price.end, "price end")
            if price.end is not None and price.end <= NOW:
                raise Invariant(f"a price that ended at {price.end} was published")
        rate = values.rate
        if rate is not None:
            thresholds = rate.block_thresholds_kwh
            if any(not math.isfinite(t) or t <= 0 for t in thresholds) or list(thresholds) != sorted(set(thresholds)):
                raise Invariant(f"block thresholds {thresholds}")
            for name in ("block_period_start", "block_period_end", "billing_period_start", "billing_period_end"):
                _aware(getattr(rate, name), name)
        message = values.message
        if message is not None:
            if not 0 <= message.message_id <= 0xFFFFFFFF:
                raise Invariant(f"message id {message.message_id}")
            _aware(message.start, "message start")
        for value in values.block_prices:
            _finite(value, "block price")
        _aware(values.last_contact, "last contact")
        parts = [name for name, present in (("reading", reading), ("price", price), ("rate", rate),
                                            ("message", message)) if present is not None]
        return f"accepted query ({', '.join(parts) or 'nothing'}; {'some' if values.problems else 'no'} values refused)"

    def seeds(self) -> list[bytes]:
        units_inline = [(n, f"{v} {u}" if u in ("kW", "kWh") and v else v, "") for n, v, u in _VARIABLES]
        hexed = [(n, "0x000004d2" if u == "kW" else v, u) for n, v, u in _VARIABLES]
        empty = [(n, "", u) for n, _v, u in _VARIABLES]
        return [_query(_VARIABLES), _query(units_inline), _query(hexed), _query(empty),
                _query(_VARIABLES[:5]), b"\x01" + _LIST, b"\x01<DeviceList></DeviceList>",
                b"\x00<Device><DeviceDetails><HardwareAddress>0x1</HardwareAddress></DeviceDetails></Device>"]

    def words(self) -> list[bytes]:
        tags = set(re.findall(r"</?([A-Za-z]+)>", _QUERY)) | {"DeviceList", "Device", "All"}
        names = {n for n, _v, _u in _VARIABLES}
        return sorted({f"<{t}>".encode() for t in tags} | {f"</{t}>".encode() for t in tags}
                      | {n.encode() for n in names}
                      | {w.encode() for w in ("kW", "kWh", "W", "Wh", "invalid", "0x", "true", "false", "Not joined",
                                              "Connected", "electric_meter", "946684800", "65535", "4294967295",
                                              "-", "e308", "&amp;", "<![CDATA[", "]]>")})
