"""IEEE 2030.5 resources as the meter serves them (``application/sep+xml``), parsed defensively.

Protocol only (no ems import): each ``parse_*`` takes an HTTP body (bytes) and returns a frozen
dataclass of wire values (integers as served, times as aware UTC, links as hrefs), or raises
``BadResource`` when the body is not that resource at all (not XML, a DTD, another root element).
A single field that is malformed (a firmware that starts writing ``12.5`` where the schema says an
integer) does not sink the resource: that field is None and the reason is in ``problems``, so the
caller rejects that value with a log line and keeps the rest.

XML is read with the standard library's parser, after refusing any document that declares a DTD
or an entity (2030.5 resources never carry one; this rules out entity expansion of any kind) and
any body over ``MAX_BODY`` bytes. Both schema namespaces are accepted (2018
``urn:ieee:std:2030.5:ns``, which Itron meters serve, and 2013 ``http://ieee.org/2030.5``), and
elements without a namespace too.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

NS = "urn:ieee:std:2030.5:ns"
NS_2013 = "http://ieee.org/2030.5"
MEDIA_TYPE = "application/sep+xml"
MAX_BODY = 1 << 20  # a page of 25 readings is a few kB; 1 MiB is far past any real resource
_MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z
_INT48 = 1 << 47
_ENCODING = re.compile(r"""\ufeff?\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")

T = TypeVar("T")


class BadResource(ValueError):
    """The body is not the resource asked for (the whole resource is refused)."""


@dataclass(frozen=True, slots=True)
class Link:
    href: str
    all: int | None = None  # for list links: how many the list holds


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a list resource: its items (parsed by the item's parser), ``all`` and ``results``."""

    href: str
    all: int
    results: int
    items: tuple[object, ...]
    poll_rate: int | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceCapability:
    href: str
    poll_rate: int | None
    links: dict[str, Link]  # by element name: "TimeLink", "UsagePointListLink", ...

    def link(self, name: str) -> Link | None:
        return self.links.get(name)


@dataclass(frozen=True, slots=True)
class Time:
    href: str
    current_time: datetime | None
    tz_offset_s: int | None = None
    dst_offset_s: int | None = None
    quality: int | None = None
    poll_rate: int | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DeviceInformation:
    href: str
    lfdi: str | None
    mf_model: str | None = None
    sw_ver: str | None = None
    mf_id: int | None = None


@dataclass(frozen=True, slots=True)
class UsagePoint:
    href: str
    role_flags: int | None
    service_category: int | None
    status: int | None
    meter_reading_list: Link | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MeterReading:
    href: str
    description: str | None
    reading_type: Link | None
    reading: Link | None  # a single current value
    reading_set_list: Link | None  # interval blocks / register sets
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReadingType:
    href: str
    uom: int | None
    power_of_ten: int = 0
    flow_direction: int | None = None
    accumulation: int | None = None
    kind: int | None = None
    data_qualifier: int | None = None
    interval_length_s: int | None = None
    number_of_tou_tiers: int | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Reading:
    href: str
    value: int | None  # in ReadingType units x 10^powerOfTenMultiplier
    start: datetime | None = None
    duration_s: int | None = None
    tou_tier: int | None = None
    quality_flags: int | None = None
    local_id: str | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReadingSet:
    href: str
    start: datetime | None
    duration_s: int | None
    reading_list: Link | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TariffProfile:
    href: str
    currency: int | None  # ISO 4217 numeric
    price_power_of_ten: int
    rate_code: str | None
    primacy: int | None
    rate_component_list: Link | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RateComponent:
    href: str
    reading_type: Link | None
    active_tti_list: Link | None
    tti_list: Link | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EventFields:
    """What every 2030.5 event carries (RespondableSubscribableIdentifiedObject + Event)."""

    mrid: str
    reply_to: str | None
    response_required: int
    creation_time: datetime | None
    status: int | None  # EventStatus.currentStatus: 0 scheduled, 1 active, 2/3 cancelled, 4 superseded
    start: datetime | None
    duration_s: int | None


@dataclass(frozen=True, slots=True)
class TimeTariffInterval:
    href: str
    event: EventFields
    tou_tier: int | None
    cti_list: Link | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConsumptionTariffInterval:
    href: str
    consumption_block: int | None
    price: int | None
    start_value: int | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MessagingProgram:
    href: str
    locale: str | None
    primacy: int | None
    active_list: Link | None
    text_message_list: Link | None


@dataclass(frozen=True, slots=True)
class TextMessage:
    href: str
    event: EventFields
    originator: str | None
    priority: int | None  # 0 low ... 3 critical
    text: str | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DemandResponseProgram:
    href: str
    primacy: int | None
    active_list: Link | None
    edc_list: Link | None


@dataclass(frozen=True, slots=True)
class EndDeviceControl:
    href: str
    event: EventFields
    description: str | None = None
    version: int | None = None
    randomize_start_s: int | None = None
    randomize_duration_s: int | None = None
    device_category: int | None = None
    mandatory: bool | None = None
    load_shift_forward: bool | None = None
    override_duration_s: int | None = None
    cooling_offset: int | None = None  # 0.1 °C units (UInt8)
    heating_offset: int | None = None
    load_adjustment_pct: int | None = None  # in 0.01 % (SignedPercent)
    cooling_setpoint: int | None = None  # 0.01 °C
    heating_setpoint: int | None = None
    duty_cycle_pct: int | None = None
    problems: tuple[str, ...] = field(default=())


# --- the parse machinery ------------------------------------------------------------------


def root_of(body: bytes, expected: str | tuple[str, ...]) -> ET.Element:
    """The document's root element, checked to be ``expected`` (local name)."""
    if not isinstance(body, bytes | bytearray):
        raise BadResource("the body is not bytes")
    if len(body) > MAX_BODY:
        raise BadResource(f"the body is {len(body)} bytes, over the {MAX_BODY} accepted")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise BadResource("the body is not UTF-8 (2030.5 XML is)") from None
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise BadResource("the body declares a DTD or an entity (2030.5 resources never do)")
    declared = _ENCODING.match(text)
    if declared is not None and declared.group(1).lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise BadResource(f"the body declares the encoding {declared.group(1)[:20]!r}, not UTF-8")
    try:
        root = ET.fromstring(bytes(body))
    except ET.ParseError as err:
        raise BadResource(f"not well-formed XML: {err}") from None
    except (ValueError, LookupError, RecursionError) as err:  # an encoding the parser refuses, absurd nesting
        raise BadResource(f"unreadable XML: {type(err).__name__}") from None
    names = (expected,) if isinstance(expected, str) else expected
    if _local(root.tag) not in names:
        raise BadResource(f"expected {' or '.join(names)}, got {_local(root.tag)[:40]}")
    return root


def _local(tag: object) -> str:
    text = tag if isinstance(tag, str) else ""
    if text.startswith("{"):
        namespace, _, name = text[1:].partition("}")
        return name if namespace in (NS, NS_2013) else "{" + namespace[:40] + "}" + name
    return text


class _Fields:
    """Reads the children of one element; a malformed value is noted in ``problems`` and read as None."""

    def __init__(self, element: ET.Element, what: str) -> None:
        self.element = element
        self.what = what
        self.problems: list[str] = []
        self._children: dict[str, ET.Element] = {}
        for child in element:
            self._children.setdefault(_local(child.tag), child)

    def child(self, name: str) -> _Fields | None:
        found = self._children.get(name)
        return None if found is None else _Fields(found, f"{self.what}.{name}")

    def children(self, name: str) -> list[ET.Element]:
        return [c for c in self.element if _local(c.tag) == name]

    def text(self, name: str, limit: int = 4096) -> str | None:
        found = self._children.get(name)
        if found is None:
            return None
        text = (found.text or "").strip()
        if len(text) > limit:
            self.problems.append(f"{self.what}.{name} is longer than {limit} characters")
            return text[:limit]
        return text

    def integer(self, name: str, low: int = -(1 << 63), high: int = (1 << 63) - 1) -> int | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            value = int(text, 10) if text.isascii() and text.lstrip("+-").isdigit() else None
        except ValueError:
            value = None
        if value is None:
            self.problems.append(f"{self.what}.{name} is not an integer: {text[:24]!r}")
            return None
        if not low <= value <= high:
            self.problems.append(f"{self.what}.{name} is out of range: {value}")
            return None
        return value

    def hex_bits(self, name: str, digits: int = 16) -> int | None:
        text = self.text(name)
        if text is None:
            return None
        if not text or len(text) > digits or any(ch not in "0123456789abcdefABCDEF" for ch in text):
            self.problems.append(f"{self.what}.{name} is not a hex bitmap: {text[:24]!r}")
            return None
        return int(text, 16)

    def boolean(self, name: str) -> bool | None:
        text = self.text(name)
        if text is None:
            return None
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        self.problems.append(f"{self.what}.{name} is not a boolean: {text[:24]!r}")
        return None

    def time(self, name: str) -> datetime | None:
        seconds = self.integer(name)
        if seconds is None:
            return None
        if not 0 <= seconds <= _MAX_TIME:
            self.problems.append(f"{self.what}.{name} is not a time: {seconds}")
            return None
        return datetime.fromtimestamp(seconds, UTC)

    def link(self, name: str) -> Link | None:
        found = self._children.get(name)
        if found is None:
            return None
        href = found.get("href")
        if not href or len(href) > 512 or not href.startswith("/") or any(ord(ch) < 0x21 for ch in href):
            self.problems.append(f"{self.what}.{name} has no usable href: {str(href)[:40]!r}")
            return None
        total = found.get("all")
        count = int(total) if total is not None and total.isascii() and total.isdigit() and len(total) < 10 else None
        return Link(href, count)

    def attribute_int(self, name: str) -> int | None:
        text = self.element.get(name)
        if text is None:
            return None
        if not (text.isascii() and text.isdigit()) or len(text) > 10:
            self.problems.append(f"{self.what}@{name} is not a count: {text[:24]!r}")
            return None
        return int(text)

    @property
    def href(self) -> str:
        return str(self.element.get("href") or "")[:512]

    def done(self) -> tuple[str, ...]:
        return tuple(self.problems)


def _period(fields: _Fields, name: str) -> tuple[datetime | None, int | None]:
    period = fields.child(name)
    if period is None:
        return None, None
    start = period.time("start")
    duration = period.integer("duration", 0, (1 << 32) - 1)
    fields.problems.extend(period.problems)
    return start, duration


# --- the resources ------------------------------------------------------------------------


def parse_device_capability(body: bytes) -> DeviceCapability:
    fields = _Fields(root_of(body, "DeviceCapability"), "DeviceCapability")
    links = {}
    for child in fields.element:
        name = _local(child.tag)
        if name.endswith("Link"):
            link = fields.link(name)
            if link is not None:
                links[name] = link
    return DeviceCapability(fields.href, fields.attribute_int("pollRate"), links)


def parse_time(body: bytes) -> Time:
    fields = _Fields(root_of(body, "Time"), "Time")
    return Time(fields.href, fields.time("currentTime"), fields.integer("tzOffset", -86400, 86400),
                fields.integer("dstOffset", -86400, 86400), fields.integer("quality", 0, 255),
                fields.attribute_int("pollRate"), fields.done())


def parse_device_information(body: bytes) -> DeviceInformation:
    fields = _Fields(root_of(body, "DeviceInformation"), "DeviceInformation")
    lfdi = fields.text("lFDI", 80)
    if lfdi is not None and (len(lfdi) != 40 or any(ch not in "0123456789abcdefABCDEF" for ch in lfdi)):
        lfdi = None
    return DeviceInformation(fields.href, lfdi.upper() if lfdi else None, fields.text("mfModel", 64),
                             fields.text("swVer", 64), fields.integer("mfID", 0, (1 << 32) - 1))


def _usage_point(element: ET.Element) -> UsagePoint:
    fields = _Fields(element, "UsagePoint")
    return UsagePoint(fields.href, fields.hex_bits("roleFlags", 4), fields.integer("serviceCategoryKind", 0, 255),
                      fields.integer("status", 0, 255), fields.link("MeterReadingListLink"), fields.done())


def _meter_reading(element: ET.Element) -> MeterReading:
    fields = _Fields(element, "MeterReading")
    return MeterReading(fields.href, fields.text("description", 256), fields.link("ReadingTypeLink"),
                        fields.link("ReadingLink"), fields.link("ReadingSetListLink"), fields.done())


def parse_reading_type(body: bytes) -> ReadingType:
    fields = _Fields(root_of(body, "ReadingType"), "ReadingType")
    return ReadingType(
        fields.href, fields.integer("uom", 0, 255), fields.integer("powerOfTenMultiplier", -9, 9) or 0,
        fields.integer("flowDirection", 0, 255), fields.integer("accumulationBehaviour", 0, 255),
        fields.integer("kind", 0, 255), fields.integer("dataQualifier", 0, 255),
        fields.integer("intervalLength", 0, (1 << 32) - 1), fields.integer("numberOfTouTiers", 0, 255),
        fields.done())


def _reading(element: ET.Element) -> Reading:
    fields = _Fields(element, "Reading")
    start, duration = _period(fields, "timePeriod")
    return Reading(fields.href, fields.integer("value", -_INT48, _INT48 - 1), start, duration,
                   fields.integer("touTier", 0, 255), fields.hex_bits("qualityFlags", 4),
                   fields.text("localID", 16), fields.done())


def parse_reading(body: bytes) -> Reading:
    return _reading(root_of(body, "Reading"))


def _reading_set(element: ET.Element) -> ReadingSet:
    fields = _Fields(element, "ReadingSet")
    start, duration = _period(fields, "timePeriod")
    return ReadingSet(fields.href, start, duration, fields.link("ReadingListLink"), fields.done())


def _tariff_profile(element: ET.Element) -> TariffProfile:
    fields = _Fields(element, "TariffProfile")
    return TariffProfile(fields.href, fields.integer("currency", 0, 999),
                         fields.integer("pricePowerOfTenMultiplier", -9, 9) or 0, fields.text("rateCode", 64),
                         fields.integer("primacy", 0, 255), fields.link("RateComponentListLink"), fields.done())


def _rate_component(element: ET.Element) -> RateComponent:
    fields = _Fields(element, "RateComponent")
    return RateComponent(fields.href, fields.link("ReadingTypeLink"),
                         fields.link("ActiveTimeTariffIntervalListLink"), fields.link("TimeTariffIntervalListLink"),
                         fields.done())


def _event(fields: _Fields) -> EventFields:
    mrid = fields.text("mRID", 64) or ""
    if not mrid or len(mrid) > 32 or any(ch not in "0123456789abcdefABCDEF" for ch in mrid):
        raise BadResource(f"{fields.what} has no usable mRID: {mrid[:40]!r}")
    status = fields.child("EventStatus")
    current = None
    if status is not None:
        current = status.integer("currentStatus", 0, 255)
        fields.problems.extend(status.problems)
    start, duration = _period(fields, "interval")
    reply = fields.element.get("replyTo")
    reply_to = reply if reply and reply.startswith("/") and len(reply) <= 512 else None
    required_text = fields.element.get("responseRequired") or "0"
    try:
        required = int(required_text, 16) if len(required_text) <= 2 else 0
    except ValueError:
        fields.problems.append(f"{fields.what}@responseRequired is not a hex bitmap: {required_text[:8]!r}")
        required = 0
    return EventFields(mrid.upper(), reply_to, required, fields.time("creationTime"), current, start, duration)


def _time_tariff_interval(element: ET.Element) -> TimeTariffInterval:
    fields = _Fields(element, "TimeTariffInterval")
    event = _event(fields)
    return TimeTariffInterval(fields.href, event, fields.integer("touTier", 0, 255),
                              fields.link("ConsumptionTariffIntervalListLink"), fields.done())


def _consumption_tariff_interval(element: ET.Element) -> ConsumptionTariffInterval:
    fields = _Fields(element, "ConsumptionTariffInterval")
    return ConsumptionTariffInterval(fields.href, fields.integer("consumptionBlock", 0, 255),
                                     fields.integer("price", -(1 << 31), (1 << 31) - 1),
                                     fields.integer("startValue", 0, (1 << 48) - 1), fields.done())


def _messaging_program(element: ET.Element) -> MessagingProgram:
    fields = _Fields(element, "MessagingProgram")
    return MessagingProgram(fields.href, fields.text("locale", 42), fields.integer("primacy", 0, 255),
                            fields.link("ActiveTextMessageListLink"), fields.link("TextMessageListLink"))


def _text_message(element: ET.Element) -> TextMessage:
    fields = _Fields(element, "TextMessage")
    event = _event(fields)
    return TextMessage(fields.href, event, fields.text("originator", 64), fields.integer("priority", 0, 3),
                       fields.text("textMessage", 2048), fields.done())


def _dr_program(element: ET.Element) -> DemandResponseProgram:
    fields = _Fields(element, "DemandResponseProgram")
    return DemandResponseProgram(fields.href, fields.integer("primacy", 0, 255),
                                 fields.link("ActiveEndDeviceControlListLink"), fields.link("EndDeviceControlListLink"))


def _end_device_control(element: ET.Element) -> EndDeviceControl:
    fields = _Fields(element, "EndDeviceControl")
    event = _event(fields)
    offset = fields.child("Offset")
    setpoint = fields.child("SetPoint")
    duty = fields.child("DutyCycle")
    values = {
        "cooling_offset": offset.integer("coolingOffset", 0, 255) if offset else None,
        "heating_offset": offset.integer("heatingOffset", 0, 255) if offset else None,
        "load_adjustment_pct": offset.integer("loadAdjustmentPercentageOffset", -10000, 10000) if offset else None,
        "cooling_setpoint": setpoint.integer("coolingSetpoint", -32768, 32767) if setpoint else None,
        "heating_setpoint": setpoint.integer("heatingSetpoint", -32768, 32767) if setpoint else None,
        "duty_cycle_pct": duty.integer("normalValue", 0, 100) if duty else None,
    }
    for part in (offset, setpoint, duty):
        if part is not None:
            fields.problems.extend(part.problems)
    return EndDeviceControl(
        fields.href, event, fields.text("description", 64), fields.integer("version", 0, 65535),
        fields.integer("randomizeStart", -3600, 3600), fields.integer("randomizeDuration", -3600, 3600),
        fields.hex_bits("deviceCategory", 8), fields.boolean("drProgramMandatory"),
        fields.boolean("loadShiftForward"), fields.integer("overrideDuration", 0, 65535),
        problems=fields.done(), **values)


def _list(body: bytes, root: str, item: str, parse: Callable[[ET.Element], object]) -> ListPage:
    fields = _Fields(root_of(body, root), root)
    items: list[object] = []
    problems: list[str] = []
    for element in fields.children(item)[:256]:
        try:
            items.append(parse(element))
        except BadResource as err:  # one unusable entry (no mRID) is left out, the others kept
            problems.append(str(err))
    total = fields.attribute_int("all")
    results = fields.attribute_int("results")
    return ListPage(fields.href, len(items) if total is None else total, len(items) if results is None else results,
                    tuple(items), fields.attribute_int("pollRate"), tuple(problems) + fields.done())


def parse_usage_point_list(body: bytes) -> ListPage:
    return _list(body, "UsagePointList", "UsagePoint", _usage_point)


def parse_meter_reading_list(body: bytes) -> ListPage:
    return _list(body, "MeterReadingList", "MeterReading", _meter_reading)


def parse_reading_set_list(body: bytes) -> ListPage:
    return _list(body, "ReadingSetList", "ReadingSet", _reading_set)


def parse_reading_list(body: bytes) -> ListPage:
    return _list(body, "ReadingList", "Reading", _reading)


def parse_tariff_profile_list(body: bytes) -> ListPage:
    return _list(body, "TariffProfileList", "TariffProfile", _tariff_profile)


def parse_rate_component_list(body: bytes) -> ListPage:
    return _list(body, "RateComponentList", "RateComponent", _rate_component)


def parse_time_tariff_interval_list(body: bytes) -> ListPage:
    return _list(body, "TimeTariffIntervalList", "TimeTariffInterval", _time_tariff_interval)


def parse_consumption_tariff_interval_list(body: bytes) -> ListPage:
    return _list(body, "ConsumptionTariffIntervalList", "ConsumptionTariffInterval", _consumption_tariff_interval)


def parse_messaging_program_list(body: bytes) -> ListPage:
    return _list(body, "MessagingProgramList", "MessagingProgram", _messaging_program)


def parse_text_message_list(body: bytes) -> ListPage:
    return _list(body, "TextMessageList", "TextMessage", _text_message)


def parse_dr_program_list(body: bytes) -> ListPage:
    return _list(body, "DemandResponseProgramList", "DemandResponseProgram", _dr_program)


def parse_end_device_control_list(body: bytes) -> ListPage:
    return _list(body, "EndDeviceControlList", "EndDeviceControl", _end_device_control)


PARSERS: dict[str, Callable[[bytes], object]] = {
    "DeviceCapability": parse_device_capability,
    "Time": parse_time,
    "DeviceInformation": parse_device_information,
    "UsagePointList": parse_usage_point_list,
    "MeterReadingList": parse_meter_reading_list,
    "ReadingType": parse_reading_type,
    "Reading": parse_reading,
    "ReadingSetList": parse_reading_set_list,
    "ReadingList": parse_reading_list,
    "TariffProfileList": parse_tariff_profile_list,
    "RateComponentList": parse_rate_component_list,
    "TimeTariffIntervalList": parse_time_tariff_interval_list,
    "ConsumptionTariffIntervalList": parse_consumption_tariff_interval_list,
    "MessagingProgramList": parse_messaging_program_list,
    "TextMessageList": parse_text_message_list,
    "DemandResponseProgramList": parse_dr_program_list,
    "EndDeviceControlList": parse_end_device_control_list,
}
"""Every parser by the root element it reads (the fuzz target drives them all)."""


# --- what the client sends ------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def response_xml(kind: str, *, created: datetime, lfdi: str, status: int, subject: str) -> bytes:
    """A Response (``DrResponse``, ``TextResponse``, ``PriceResponse``) to POST to an event's replyTo."""
    if kind not in ("DrResponse", "TextResponse", "PriceResponse", "Response"):
        raise ValueError(f"not a 2030.5 response: {kind}")
    return (f'<{kind} xmlns="{NS}"><createdDateTime>{int(created.timestamp())}</createdDateTime>'
            f"<endDeviceLFDI>{_escape(lfdi)}</endDeviceLFDI><status>{int(status)}</status>"
            f"<subject>{_escape(subject)}</subject></{kind}>").encode()
