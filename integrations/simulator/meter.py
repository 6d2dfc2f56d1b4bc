"""The simulated SmartConnect meter: an Energy Service Interface on the virtual HAN.

One VirtualNode with Basic, Time, Metering, Price, Messaging and DRLC servers. Its registers
integrate the household's net demand, so summations and intervals always agree. It answers
GetCurrentPrice, GetScheduledEvents, GetLastMessage and GetProfile as an ESI does, and its
frame log keeps everything the EMS sends (ReportEventStatus, MessageConfirmation, ...).

It is strict, as a certified ESI and a test house are: ReportEventStatus, PriceAcknowledgement,
MessageConfirmation and CPPEventResponse are recorded (``answers``) and answered with a Default
Response SUCCESS only when the EMS's frame asks for one (DDR = 0, as the SiLabs drlc-, price- and
messaging-server plugins do), and its ``checker`` (``conformance.py``) judges every frame the EMS
sends against SE. The Time cluster's Time is computed from the meter's clock when it is read.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import zigpy.zdo.types as zdo_t
from zigpy.zcl import foundation

from ems.clock import Clock, as_clock
from ems.tasks import TaskSet
from integrations.simulator.conformance import ConformanceChecker
from integrations.simulator.household import Household
from integrations.simulator.rate import PricePoint, SimulatedRate
from integrations.simulator.scenario import Scenario
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc, Messaging, Metering, Price
from integrations.zigbee.virtual_node import (
    COORDINATOR_NWK,
    CommandRequest,
    NodeEndpoint,
    VirtualNode,
    WireFrame,
)

_LOGGER = logging.getLogger(__name__)

SE_PROFILE = 0x0109
ESI_DEVICE = 0x0500
ENDPOINT = 1
BASIC, TIME = 0x0000, 0x000A
MAX_PERIODS = 24  # MaxNumberOfPeriodsDelivered (§5.1 0x0500 default)
INVALID_INTERVAL = 0xFFFFFF
PROFILE_PERIOD_ENUM = {60: 1, 30: 2, 15: 3, 10: 4, 5: 6, 1: 8}
IMPORTANCE = {"low": 0, "medium": 1, "high": 2, "critical": 3}
SE_CLUSTER_IDS = frozenset({Price.cluster_id, Drlc.cluster_id, Messaging.cluster_id, Metering.cluster_id})


@dataclass(slots=True)
class Interval:
    start: datetime
    consumed_kwh: float = 0.0
    generated_kwh: float = 0.0


@dataclass(slots=True)
class SentMessage:
    message_id: int
    control: int
    start: datetime
    duration_min: int
    text: str
    start_time: int | None = None  # the StartTime sent, when not ``start`` (0 = now)
    disable_default_response: bool = True


@dataclass(slots=True)
class SentEvent:
    fields: dict[str, Any]
    start: datetime
    duration_min: int
    disable_default_response: bool = True


@dataclass(frozen=True, slots=True)
class Answer:
    """A command the EMS sent the ESI and the meter recorded (ReportEventStatus, ...)."""

    at: datetime
    cluster_id: int
    command: str
    tsn: int
    disable_default_response: bool
    fields: dict[str, Any]


class SimulatedMeter:
    """The ESI: registers, rate, and the SE server side of every cluster the EMS uses."""

    def __init__(self, scenario: Scenario, clock: Clock | Callable[[], datetime] | None = None) -> None:
        self.scenario = scenario
        self.clock: Clock = as_clock(clock)
        self.household = Household.from_scenario(scenario.household, scenario.timezone)
        self.rate = SimulatedRate(scenario.rate, self.household.timezone)
        meter = scenario.meter
        self.multiplier = meter["multiplier"]
        self.divisor = meter["divisor"]
        self.period = timedelta(minutes=meter["profile_interval_min"])
        self.delivered_kwh = meter["initial_delivered_kwh"]
        self.received_kwh = meter["initial_received_kwh"]
        self.extra_kw = 0.0  # load of the simulated home devices (set by the runner)
        self.household_hvac = True  # False when a simulated thermostat runs the HVAC
        # The home devices' kW over past time, step by step (loads.HomeLoadModel.series): the
        # backfilled day shows them as the live meter will. The runner sets it.
        self.past_load: Callable[[datetime, datetime, timedelta], list[float]] | None = None
        self.demand_kw = 0.0  # net demand at the last tick (what InstantaneousDemand shows)
        self.intervals: collections.deque[Interval] = collections.deque(maxlen=2000)
        self.current: Interval | None = None
        self.day_delivered_kwh = 0.0
        self.day_received_kwh = 0.0
        self.messages: list[SentMessage] = []
        self.events: dict[int, SentEvent] = {}
        self.price: PricePoint | None = None
        self.price_event_id = 1000
        self.price_override: tuple[PricePoint, datetime] | None = None
        self.price_override_fields: dict[str, Any] | None = None  # the override exactly as sent
        self.answers: list[Answer] = []
        self.block_period_kwh = 0.0
        self.billing_period_start: datetime = datetime.min.replace(tzinfo=UTC)  # set by backfill
        self._last_tick: datetime | None = None
        self._day: Any = None
        self._pending = TaskSet(_LOGGER, "meter")
        self.node = VirtualNode(
            ieee=meter["ieee"],
            nwk=COORDINATOR_NWK,  # the coordinator and trust center of its network (SE 1.x §5.4)
            logical_type=zdo_t.LogicalType.Coordinator,
            name="esi-meter",
            endpoints=[
                NodeEndpoint(
                    ENDPOINT,
                    SE_PROFILE,
                    ESI_DEVICE,
                    in_clusters=(BASIC, TIME, Metering.cluster_id, Price.cluster_id,
                                 Messaging.cluster_id, Drlc.cluster_id),
                )
            ],
            attributes={
                (ENDPOINT, BASIC): {
                    "manufacturer": "Premise EMS simulator",
                    "model": "SmartConnect ESI",
                    "zcl_version": 1,
                    "power_source": 1,
                },
                (ENDPOINT, Metering.cluster_id): {
                    "unit_of_measure": 0,
                    "multiplier": self.multiplier,
                    "divisor": self.divisor,
                    "summation_formatting": 0x2B,
                    "demand_formatting": 0x2B,
                    "metering_device_type": 0,
                    "status": 0,
                    "profile_interval_period": PROFILE_PERIOD_ENUM[meter["profile_interval_min"]],
                    "max_number_of_periods_delivered": MAX_PERIODS,
                    "meter_serial_number": meter["number"].encode("ascii"),
                },
            },
        )
        conformance = scenario.conformance
        self.checker = ConformanceChecker(
            self.clock,
            device_class_value=conformance.get("device_class_value"),
            utility_enrollment_group=conformance.get("utility_enrollment_group"),
            grace_s=conformance["grace"].total_seconds(),
        )
        self.node.observe(self.checker.observe)
        self.node.on_unheard = self._unheard
        self.client_heard = asyncio.Event()  # the EMS has sent the meter an SE cluster frame
        self.joined_heard = asyncio.Event()  # ... since the runner last cleared it (at a join)
        self.test_message_id: int | None = None  # the utility's test message (C6 3.1 step 15), once sent
        self.configuration_log: list[tuple[datetime, str]] = []  # what the utility sent and heard back
        self.node.observe(self._heard)
        # Time (ZCL §3.12) is right only when computed at the moment it is read.
        self.node.compute_attribute(ENDPOINT, TIME, "time", lambda: codec.datetime_to_utc_time(self.clock()))
        self._register_handlers()

    def _heard(self, frame: WireFrame) -> None:
        if not frame.outgoing and frame.cluster_id in SE_CLUSTER_IDS:
            self.client_heard.set()
            self.joined_heard.set()

    # -- conversions -------------------------------------------------------------------------

    def raw(self, kwh: float) -> int:
        return max(0, round(kwh * self.divisor / self.multiplier))

    def raw_signed(self, kw: float) -> int:
        value = round(kw * self.divisor / self.multiplier)
        return max(-0x800000, min(0x7FFFFF, value))

    # -- time ----------------------------------------------------------------------------------

    def backfill(self, now: datetime) -> None:
        """Fill the interval log for the last day so GetProfile has history at once, and the
        billing period's energy so far, from the household and ``past_load`` (the home devices as
        they ran by themselves: what the runner sets; none without a home)."""
        start = _floor(now - timedelta(days=1), self.period)
        step = timedelta(minutes=1) if self.period >= timedelta(minutes=1) else self.period
        end = _floor(now, self.period)
        steps = int((end - start) / step)
        past = self.past_load(start, start + step * steps, step) if self.past_load else [0.0] * steps
        hours = step.total_seconds() / 3600
        per_interval = max(1, round(self.period / step))
        for index in range(0, steps - per_interval + 1, per_interval):
            interval = Interval(start + step * index)
            for i in range(index, index + per_interval):
                net = self.household.net_kw(start + step * i, past[i], include_hvac=self.household_hvac)
                if net >= 0:
                    interval.consumed_kwh += net * hours
                else:
                    interval.generated_kwh += -net * hours
            self.intervals.append(interval)
        # Energy used so far in the billing period (5-minute steps are plenty for a block). The period
        # starts at local midnight ``days`` ago, as a utility's billing day does (0: it starts now).
        days = self.scenario.rate["billing_period_start_days_ago"]
        self.billing_period_start = now
        if days:
            local = (now - timedelta(days=days)).astimezone(self.household.timezone)
            self.billing_period_start = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
        t = self.billing_period_start
        five = timedelta(minutes=5)
        count = int((now - t) / five)
        past = self.past_load(t, t + five * count, five) if self.past_load else [0.0] * count
        for i in range(count):
            self.block_period_kwh += max(0.0, self.household.net_kw(t + five * i, past[i],
                                                                    include_hvac=self.household_hvac)) * 5 / 60
        self.current = Interval(_floor(now, self.period))
        self._last_tick = now
        self._day = now.astimezone(self.household.timezone).date()
        self._publish_rate_attributes(self.billing_period_start)

    def _roll_billing_period(self, now: datetime) -> None:
        """A new billing (and block) period once the current one has run its days: the block's
        energy starts again from zero and the Price attributes say when it began."""
        length = timedelta(days=self.scenario.rate["billing_period_days"])
        while now >= self.billing_period_start + length:
            self.billing_period_start += length
            self.block_period_kwh = 0.0
            self._publish_rate_attributes(self.billing_period_start)
            _LOGGER.info("Simulated meter: a new billing period from %s", self.billing_period_start.isoformat())

    def _publish_rate_attributes(self, period_start: datetime) -> None:
        """Price server attributes (§3.7): tier labels, block thresholds, block and billing period."""
        rate = self.scenario.rate
        set_attr = self.node.set_attribute
        labels = {p["tier"]: p["name"] for p in rate["tou"]} or {
            i + 1: f"Block {i + 1}" for i in range(len(rate["block_prices"]))
        }
        for tier, label in sorted(labels.items())[:15]:
            set_attr(ENDPOINT, Price, f"tier{tier}_price_label", label.encode("ascii", "replace")[:12])
        for index, threshold in enumerate(rate["block_thresholds_kwh"][:15]):
            set_attr(ENDPOINT, Price, f"block{index + 1}_threshold", self.raw(threshold))
        start = codec.datetime_to_utc_time(period_start)
        minutes = rate["billing_period_days"] * 1440
        set_attr(ENDPOINT, Price, "start_of_block_period", start)
        set_attr(ENDPOINT, Price, "block_period_duration", minutes)
        set_attr(ENDPOINT, Price, "threshold_multiplier", self.multiplier)
        set_attr(ENDPOINT, Price, "threshold_divisor", self.divisor)
        set_attr(ENDPOINT, Price, "current_billing_period_start", start)
        set_attr(ENDPOINT, Price, "current_billing_period_duration", minutes)
        set_attr(ENDPOINT, Price, "commodity_type", 0)  # electric

    def tick(self, now: datetime) -> None:
        """Advance the registers to ``now`` and refresh the reported attributes."""
        if self._last_tick is None:
            self.backfill(now)
        assert self._last_tick is not None and self.current is not None
        net = self.household.net_kw(now, include_hvac=self.household_hvac) + self.extra_kw
        self.demand_kw = net
        self._roll_billing_period(now)
        since, self._last_tick = self._last_tick, now
        day = now.astimezone(self.household.timezone).date()
        if day != self._day:
            self._day, self.day_delivered_kwh, self.day_received_kwh = day, 0.0, 0.0
        # A long step (the process was stopped, the clock jumped) is split at each interval boundary:
        # every interval it spans gets its share, and closes, as a real meter's would.
        while since < now and self.current.start + self.period <= now:
            end = self.current.start + self.period
            self._accumulate(net, max(0.0, (end - since).total_seconds() / 3600))
            self.intervals.append(self.current)
            self.current, since = Interval(end), max(since, end)
        self._accumulate(net, max(0.0, (now - since).total_seconds() / 3600))
        boundary = _floor(now, self.period)
        if boundary > self.current.start:  # the clock went back, or came in between periods
            self.intervals.append(self.current)
            self.current = Interval(boundary)
        set_attr = self.node.set_attribute
        set_attr(ENDPOINT, Metering, "instantaneous_demand", self.raw_signed(net))
        set_attr(ENDPOINT, Metering, "current_summ_delivered", self.raw(self.delivered_kwh))
        set_attr(ENDPOINT, Metering, "current_summ_received", self.raw(self.received_kwh))
        set_attr(ENDPOINT, Metering, "currentday_consumption_delivered", self.raw(self.day_delivered_kwh) & 0xFFFFFF)
        set_attr(ENDPOINT, Metering, "currentday_consumption_received", self.raw(self.day_received_kwh) & 0xFFFFFF)
        set_attr(ENDPOINT, Metering, "current_block_period_consumption_delivered", self.raw(self.block_period_kwh))
        set_attr(ENDPOINT, TIME, "time_status", 0x03)  # Master | Synchronized

    def _accumulate(self, net: float, hours: float) -> None:
        """``net`` kW for ``hours``: on the registers and the current interval."""
        if net >= 0:
            energy = net * hours
            self.delivered_kwh += energy
            self.day_delivered_kwh += energy
            self.block_period_kwh += energy
            self.current.consumed_kwh += energy
        else:
            energy = -net * hours
            self.received_kwh += energy
            self.day_received_kwh += energy
            self.current.generated_kwh += energy

    # -- price -----------------------------------------------------------------------------------

    def current_price(self, now: datetime) -> PricePoint:
        if self.price_override is not None:
            point, until = self.price_override
            if now < until:
                return point
            self.price_override = None
        return self.rate.price_at(now, self.block_period_kwh)

    def price_fields(self, point: PricePoint, now: datetime) -> dict[str, Any]:
        if (self.price_override is not None and self.price_override_fields is not None
                and point is self.price_override[0]):
            return {**self.price_override_fields, "current_time": codec.datetime_to_utc_time(now)}
        rate = self.scenario.rate
        digits = rate["trailing_digits"]
        duration = 0xFFFF
        if point.ends_at is not None:
            duration = max(1, min(0xFFFE, math.ceil((point.ends_at - now).total_seconds() / 60)))
        generation = rate["generation_price"]
        return {
            "provider_id": rate["provider_id"],
            "rate_label": point.label.encode("ascii", "replace")[:11],
            "issuer_event_id": self.price_event_id,
            "current_time": codec.datetime_to_utc_time(now),
            "unit_of_measure": 0,
            "currency": rate["currency"],
            "price_trailing_digit_and_price_tier": (digits << 4) | (point.tier & 0x0F),
            # A published tier is one of the tiers it counts (§3.2.1.2.1.9): a CPP tier 4 on a rate of three
            # makes four, never "tier 4 of 3".
            "number_of_price_tiers_and_register_tier": (min(15, max(self.rate.number_of_tiers, point.tier)) << 4)
            | (point.tier & 0x0F),
            "start_time": 0,
            "duration_in_minutes": duration,
            "price": _scaled(point.price, digits),
            "price_ratio": 0xFF,
            "generation_price": 0xFFFFFFFF if generation is None else _scaled(generation, digits),
            "generation_price_ratio": 0xFF,
            "alternate_cost_delivered": 0xFFFFFFFF,
            "alternate_cost_unit": 0xFF,
            "alternate_cost_trailing_digit": 0xFF,
            "number_of_block_thresholds": len(rate["block_thresholds_kwh"]),
            "price_control": 0x01 if rate["price_ack_required"] else 0x00,
        }

    def price_changed(self, now: datetime) -> bool:
        """True (and a new issuer event id) when the price in force differs from the last."""
        point = self.current_price(now)
        if self.price is not None and (point.price, point.tier, point.label) == (
            self.price.price, self.price.tier, self.price.label
        ):
            return False
        self.price = point
        self.price_event_id += 1
        return True

    # -- handlers: what the EMS asks -----------------------------------------------------------

    def _register_handlers(self) -> None:
        on = self.node.on_command
        on(ENDPOINT, Price.cluster_id, "get_current_price", self._get_current_price)
        on(ENDPOINT, Price.cluster_id, "get_scheduled_prices", self._get_current_price)
        on(ENDPOINT, Drlc.cluster_id, "get_scheduled_events", self._get_scheduled_events)
        on(ENDPOINT, Messaging.cluster_id, "get_last_message", self._get_last_message)
        on(ENDPOINT, Metering.cluster_id, "get_profile", self._get_profile)
        # What the EMS reports: recorded; SUCCESS only when asked for (DDR = 0), as SiLabs' servers.
        on(ENDPOINT, Drlc.cluster_id, "report_event_status", self._record)
        on(ENDPOINT, Price.cluster_id, "price_acknowledgement", self._record)
        on(ENDPOINT, Price.cluster_id, "cpp_event_response", self._record)
        on(ENDPOINT, Messaging.cluster_id, "message_confirmation", self._record)

    def _record(self, request: CommandRequest) -> Any:
        self.answers.append(Answer(
            self.clock(), request.cluster_id, request.command, int(request.header.tsn),
            bool(request.header.frame_control.disable_default_response), dict(request.fields),
        ))
        if request.command == "message_confirmation" and int(request.fields["message_id"]) == self.test_message_id:
            self._configuration_note("the appliance confirmed receipt of the test message")

    def _configuration_note(self, text: str) -> None:
        self.configuration_log.append((self.clock(), text))
        _LOGGER.info("Simulated meter (the utility): %s", text)

    async def send_configuration(self) -> None:
        """Write the utility's configuration into the appliance's DRLC and Price clients, then send the
        test message asking for a confirmation (C6 3.1 steps 14-15; the answers are steps 16-17)."""
        config = self.scenario.meter["configuration"]
        drlc = [(attr, config[name]) for attr, name in ((0x0000, "enrollment_group"), (0x0001, "start_randomization_min"),
                                                       (0x0002, "duration_randomization_min")) if name in config]
        price = [(attr, config[name]) for attr, name in ((0x0000, "price_increase_randomize_min"),
                                                        (0x0001, "price_decrease_randomize_min")) if name in config]
        if not drlc and not price and not config["test_message"]:
            return
        for cluster_id, records in ((Drlc.cluster_id, drlc), (Price.cluster_id, price)):
            if records:
                self.node.send_raw(ENDPOINT, cluster_id, _write_attributes(self.node.next_tsn(), records))
        if drlc or price:
            self._configuration_note("sent the program group and randomisation, and the pricing configuration")
        if config["test_message"]:
            self.test_message_id = 0x7E57_0000 + len(self.configuration_log)
            await self.send_message(SentMessage(self.test_message_id, message_control("low", True), self.clock(), 5,
                                                config["test_message"]))
            self._configuration_note(f"sent the test message {config['test_message']!r}")

        return None  # SUCCESS: the node sends it only when DDR = 0 (ZCL §2.5.12.2)

    def _get_current_price(self, request: CommandRequest) -> Any:
        now = self.clock()
        if self.price is None:
            self.price_changed(now)
        assert self.price is not None
        request.reply("publish_price", **self.price_fields(self.price, now))
        return None

    def _get_scheduled_events(self, request: CommandRequest) -> Any:
        now = self.clock()
        live = [e for e in self.events.values() if e.start + timedelta(minutes=e.duration_min) > now]
        if not live:
            return foundation.Status.NOT_FOUND
        limit = int(request.fields.get("number_of_events", 0)) or len(live)
        for event in sorted(live, key=lambda e: e.start)[:limit]:
            # A resend names the event's real start, not the "now" (0) it may first have had.
            again = SentEvent({**event.fields, "start_time": event.fields["start_time"] or
                               codec.datetime_to_utc_time(event.start)},
                              event.start, event.duration_min, event.disable_default_response)
            self.send_later(self.send_event(again))
        return None

    def _get_last_message(self, request: CommandRequest) -> Any:
        if not self.messages:
            return foundation.Status.NOT_FOUND
        message = self.messages[-1]
        request.reply("display_message", **self._message_fields(message))
        return None

    def _get_profile(self, request: CommandRequest) -> Any:
        fields = request.fields
        channel = int(fields["interval_channel"])
        periods = int(fields["number_of_periods"])
        end_raw = int(fields["end_time"])
        period_enum = PROFILE_PERIOD_ENUM[int(self.period.total_seconds() // 60)]
        if channel not in (0, 1):
            request.reply("get_profile_response", end_time=0, status=0x02,
                          profile_interval_period=period_enum, number_of_periods_delivered=0, intervals=[])
            return None
        history = list(self.intervals)
        if end_raw != 0:
            end_at = codec.utc_time_to_datetime(end_raw)
            history = [i for i in history if end_at is not None and i.start + self.period <= end_at]
        if not history:
            request.reply("get_profile_response", end_time=end_raw, status=0x05,
                          profile_interval_period=period_enum, number_of_periods_delivered=0, intervals=[])
            return None
        chosen = history[-min(periods, MAX_PERIODS):][::-1]  # most recent first (§5.7)
        values = [self.raw(i.consumed_kwh if channel == 0 else i.generated_kwh) & 0xFFFFFF for i in chosen]
        end = chosen[0].start + self.period
        request.reply(
            "get_profile_response",
            end_time=codec.datetime_to_utc_time(end),
            status=0x00 if periods <= MAX_PERIODS else 0x04,
            profile_interval_period=period_enum,
            number_of_periods_delivered=len(values),
            intervals=values,
        )
        return None

    # -- what the utility sends ----------------------------------------------------------------

    def send_later(self, coro: Any) -> None:
        """Send after the current handler returns (an ESI answers a Get with several frames)."""
        self._pending.spawn(coro, "meter-send")

    async def cancel_pending(self) -> None:
        await self._pending.cancel_all()

    def _message_fields(self, message: SentMessage) -> dict[str, Any]:
        start_time = message.start_time
        return {
            "message_id": message.message_id,
            "message_control": message.control,
            "start_time": codec.datetime_to_utc_time(message.start) if start_time is None else start_time,
            "duration_in_minutes": message.duration_min,
            "message": message.text,
        }

    async def send_price(self, now: datetime, *, disable_default_response: bool | None = None,
                         fields: dict[str, Any] | None = None) -> None:
        """PublishPrice of the price in force (or exactly ``fields``); DDR None: zigpy's default, 1."""
        assert self.price is not None or fields is not None
        if fields is None:
            assert self.price is not None
            fields = self.price_fields(self.price, now)
        await self.node.send_command(ENDPOINT, Price, "publish_price",
                                     disable_default_response=disable_default_response, **fields)

    async def send_message(self, message: SentMessage) -> None:
        self.messages.append(message)
        await self.node.send_command(ENDPOINT, Messaging, "display_message",
                                     disable_default_response=message.disable_default_response,
                                     **self._message_fields(message))

    def _unheard(self, frame: WireFrame) -> None:
        """The ESI sent a frame while no client was there (its HAN down): the checker knows it was
        sent (a cancel was, say), and that the client owes it nothing."""
        self.checker.observe(frame)
        self.checker.lost_on_air(frame.cluster_id, frame.payload)

    async def send_event(self, event: SentEvent) -> None:
        """Send an event and schedule it: the ones it supersedes (overlapping it in time for a device
        class in common, §2.12) are no longer scheduled, so GetScheduledEvents does not send them."""
        issuer = int(event.fields["issuer_event_id"])
        if event.duration_min <= 1440 and int(event.fields["start_time"]) != 0xFFFFFFFF:
            end = event.start + timedelta(minutes=event.duration_min)
            for other_id, other in list(self.events.items()):
                other_end = other.start + timedelta(minutes=other.duration_min)
                if other_id != issuer and other.start < end and event.start < other_end \
                        and int(other.fields["device_class"]) & int(event.fields["device_class"]):
                    del self.events[other_id]
        self.events[issuer] = event
        await self.node.send_command(ENDPOINT, Drlc, "load_control_event",
                                     disable_default_response=event.disable_default_response, **event.fields)

    async def send_raw(self, cluster: Any, command: str, *, disable_default_response: bool | None = None,
                       **fields: Any) -> None:
        """Send any server -> client command by name (DDR None: zigpy's default, 1). A cancel
        unschedules what it cancels: GetScheduledEvents no longer sends it."""
        if cluster is Drlc and command == "cancel_load_control_event":
            self.events.pop(int(fields["issuer_event_id"]), None)
        elif cluster is Drlc and command == "cancel_all_load_control_events":
            self.events.clear()
        await self.node.send_command(ENDPOINT, cluster, command,
                                     disable_default_response=disable_default_response, **fields)

    def send_raw_frame(self, cluster_id: int, payload: bytes) -> None:
        """Send ZCL bytes exactly as given (malformed, truncated, unknown, manufacturer-specific)."""
        self.node.send_raw(ENDPOINT, cluster_id, payload)


def _write_attributes(tsn: int, records: list[tuple[int, int]]) -> bytes:
    """A ZCL Write Attributes, server -> client, of uint8 attributes (ZCL 2.5.3)."""
    frame_control = 0x00 | 0x08  # global command, server to client, a response is wanted
    body = b"".join(attr.to_bytes(2, "little") + bytes([0x20, value]) for attr, value in records)
    return bytes([frame_control, tsn, 0x02]) + body


def message_control(importance: str, confirm: bool, public: bool = False) -> int:
    """MessageControl (D.5.2.3.1.1.1): a public broadcast goes out by normal transmission and by
    anonymous Inter-PAN too (transmission 1), as a utility relays a public energy alert."""
    return (IMPORTANCE[importance] << 2) | (0x80 if confirm else 0) | (0x01 if public else 0)


def _scaled(price: float | Decimal, digits: int) -> int:
    """A price in currency units -> the raw Price with ``digits`` trailing digits, from its decimal text."""
    return int((Decimal(str(price)).scaleb(digits)).to_integral_value())


def event_fields(spec: dict[str, Any], start: datetime, start_time: int | None = None) -> dict[str, Any]:
    """A scenario's event entry -> LoadControlEvent fields (§2.3 encodings and sentinels).

    ``start_time`` overrides the StartTime sent (0 = now, 0xFFFFFFFF = invalid).
    """

    def scaled(key: str, scale: int, not_used: int) -> int:
        value = spec.get(key)
        return not_used if value is None else round(value * scale)

    return {
        "issuer_event_id": spec["id"],
        "device_class": spec["device_class"],
        "utility_enrollment_group": spec["enrollment_group"],
        "start_time": codec.datetime_to_utc_time(start) if start_time is None else start_time,
        "duration_in_minutes": spec["duration_min"],
        "criticality_level": spec["criticality"],
        "cooling_temperature_offset": scaled("cooling_offset_c", 10, 0xFF),
        "heating_temperature_offset": scaled("heating_offset_c", 10, 0xFF),
        "cooling_temperature_set_point": scaled("cooling_setpoint_c", 100, -0x8000),
        "heating_temperature_set_point": scaled("heating_setpoint_c", 100, -0x8000),
        "average_load_adjustment_percentage": -128 if spec.get("average_load_adjustment_pct") is None else spec["average_load_adjustment_pct"],
        "duty_cycle": 0xFF if spec.get("duty_cycle_pct") is None else spec["duty_cycle_pct"],
        "event_control": (0x01 if spec["randomize_start"] else 0) | (0x02 if spec["randomize_end"] else 0),
    }


def _floor(at: datetime, period: timedelta) -> datetime:
    seconds = period.total_seconds()
    return datetime.fromtimestamp(math.floor(at.timestamp() / seconds) * seconds, UTC)
