"""The current state: the latest of everything, as the dashboard and the rules see it now.

It is fed only by bus events. Each meter value keeps when it last changed apart from when it
was last reported (a meter that reports the same value is alive, not changed).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ems.bus import EventBus, Unsubscribe
from ems.model import (
    MESSAGE_IDENTITY,
    CommissioningStage,
    CriticalPeakEvent,
    CycleDemand,
    FrameRejected,
    IntervalReading,
    LinkState,
    MessageCancelled,
    MessageConfirmed,
    MessageRead,
    MeterInfo,
    MeterLinkChanged,
    MeterRate,
    MeterReading,
    PriceSignal,
    SelfTestReport,
    UtilityMessage,
)

COMMISSIONING_KEPT = 20  # stages kept per meter (a refused join retried all night adds one each time)

_METER_FIELDS = (
    "demand_kw",
    "summation_delivered_kwh",
    "summation_received_kwh",
    "current_day_delivered_kwh",
    "current_day_received_kwh",
)


@dataclass(frozen=True, slots=True)
class TrackedValue:
    """A value with the time it last changed and the time it was last reported."""

    value: float
    changed_at: datetime
    reported_at: datetime


@dataclass(slots=True)
class MeterState:
    meter_id: str
    link: LinkState = LinkState.CONNECTING
    link_since: datetime | None = None
    link_detail: str = ""
    info: MeterInfo | None = None
    values: dict[str, TrackedValue] = field(default_factory=dict)
    last_reading_at: datetime | None = None
    last_interval: IntervalReading | None = None
    meter_time: datetime | None = None

    def value(self, name: str) -> float | None:
        tracked = self.values.get(name)
        return None if tracked is None else tracked.value


def is_repeat(old: UtilityMessage, new: UtilityMessage) -> bool:
    """``new`` is ``old`` heard again (the meter re-sending it, its answer to GetLastMessage at each
    reconnect): the same id with the same text and asks. Its times may differ (a StartTime of 0 means
    "now"), so they are not compared. Anything else under the id is a new message that replaces it."""
    return (old.meter_id, old.message_id, old.params) == (new.meter_id, new.message_id, new.params) and all(
        getattr(old, name) == getattr(new, name) for name in MESSAGE_IDENTITY)


@dataclass(slots=True)
class MessageState:
    message: UtilityMessage
    cancelled_at: datetime | None = None
    confirmed_at: datetime | None = None
    read: bool = False


class CurrentState:
    """The latest view of every meter, price, message and event, kept from bus events."""

    def __init__(self, message_retention: timedelta = timedelta(days=30)) -> None:
        self.meters: dict[str, MeterState] = {}
        self.prices: dict[str, list[PriceSignal]] = {}
        self.meter_rates: dict[str, MeterRate] = {}
        self.critical_peaks: dict[tuple[str, int], CriticalPeakEvent] = {}
        self.messages: dict[tuple[str, int], MessageState] = {}
        self.counters: Counter[str] = Counter()
        self.cycle_demand: dict[str, CycleDemand] = {}
        # meter id -> its commissioning stages, oldest first (the last COMMISSIONING_KEPT)
        self.commissioning: dict[str, list[CommissioningStage]] = {}
        self.selftest: SelfTestReport | None = None  # the latest self-test (at start, or asked for)
        self.message_retention = message_retention
        self._unsubscribe: list[Unsubscribe] = []

    def _handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            MeterLinkChanged: self._on_link,
            MeterInfo: self._on_info,
            MeterReading: self._on_reading,
            IntervalReading: self._on_interval,
            PriceSignal: self._on_price,
            MeterRate: self._on_meter_rate,
            CriticalPeakEvent: self._on_critical_peak,
            UtilityMessage: self._on_message,
            MessageCancelled: self._on_message_cancelled,
            MessageConfirmed: self._on_message_confirmed,
            MessageRead: self._on_message_read,
            FrameRejected: self._on_rejected,
            CycleDemand: self._on_cycle_demand,
            CommissioningStage: self._on_commissioning,
            SelfTestReport: self._on_selftest,
        }

    def apply(self, event: object) -> None:
        """Apply one domain event directly (used to restore the state from the store)."""
        handler = self._handlers().get(type(event))
        if handler is not None:
            handler(event)

    def attach(self, bus: EventBus) -> None:
        for event_type, handler in self._handlers().items():
            self._unsubscribe.append(bus.listen(event_type, handler))

    def detach(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    # -- queries ---------------------------------------------------------------------------

    def meter(self, meter_id: str) -> MeterState:
        if meter_id not in self.meters:
            self.meters[meter_id] = MeterState(meter_id)
        return self.meters[meter_id]

    def active_price(self, meter_id: str, at: datetime) -> PriceSignal | None:
        """The price in force at ``at``: of the prices covering it, the newest issued wins."""
        active = [p for p in self.prices.get(meter_id, ()) if p.is_active(at)]
        return max(active, key=lambda p: p.issuer_event_id, default=None)

    def upcoming_prices(self, meter_id: str, at: datetime) -> list[PriceSignal]:
        return sorted(
            (p for p in self.prices.get(meter_id, ()) if p.start > at), key=lambda p: p.start
        )

    def recent_messages(self, at: datetime) -> list[MessageState]:
        """Messages received within the retention window, newest first."""
        horizon = at - self.message_retention
        kept = [m for m in self.messages.values() if m.message.received_at >= horizon]
        return sorted(kept, key=lambda m: m.message.received_at, reverse=True)

    def latest_stage(self, meter_id: str) -> CommissioningStage | None:
        stages = self.commissioning.get(meter_id)
        return stages[-1] if stages else None

    def _on_commissioning(self, event: CommissioningStage) -> None:
        stages = self.commissioning.setdefault(event.meter_id, [])
        stages.append(event)
        del stages[:-COMMISSIONING_KEPT]

    def _on_selftest(self, event: SelfTestReport) -> None:
        self.selftest = event

    def _on_cycle_demand(self, event: CycleDemand) -> None:
        self.cycle_demand[event.meter_id] = event

    def _on_link(self, event: MeterLinkChanged) -> None:
        meter = self.meter(event.meter_id)
        meter.link, meter.link_since, meter.link_detail = event.state, event.at, event.detail

    def _on_info(self, event: MeterInfo) -> None:
        self.meter(event.meter_id).info = event

    def _on_reading(self, event: MeterReading) -> None:
        meter = self.meter(event.meter_id)
        self.counters["readings"] += 1
        for name in _METER_FIELDS:
            value = getattr(event, name)
            if value is None:
                continue
            old = meter.values.get(name)
            changed_at = old.changed_at if old is not None and old.value == value else event.read_at
            meter.values[name] = TrackedValue(value, changed_at, event.read_at)
        meter.last_reading_at = event.read_at
        if event.meter_time is not None:
            meter.meter_time = event.meter_time

    def _on_interval(self, event: IntervalReading) -> None:
        meter = self.meter(event.meter_id)
        if meter.last_interval is None or event.start >= meter.last_interval.start:
            meter.last_interval = event

    def _on_price(self, event: PriceSignal) -> None:
        prices = self.prices.setdefault(event.meter_id, [])
        prices[:] = [p for p in prices if p.issuer_event_id != event.issuer_event_id]
        # A newer price starting later cuts the tail of an older one (SE price client rule).
        for index, old in enumerate(prices):
            if old.issuer_event_id < event.issuer_event_id and old.start < event.start and (
                old.end is None or old.end > event.start
            ):
                prices[index] = dataclasses.replace(old, end=event.start)
        prices.append(event)
        # Keep what is current or future, plus a little history for display.
        horizon = event.received_at - timedelta(days=1)
        prices[:] = [p for p in prices if p.end is None or p.end >= horizon]

    def _on_meter_rate(self, event: MeterRate) -> None:
        self.meter_rates[event.meter_id] = event

    def _on_critical_peak(self, event: CriticalPeakEvent) -> None:
        self.critical_peaks[(event.meter_id, event.issuer_event_id)] = event

    def _on_message(self, event: UtilityMessage) -> None:
        old = self.messages.get((event.meter_id, event.message_id))
        if old is not None and is_repeat(old.message, event):
            return  # the same message again: it keeps when it came and its marks (confirmed, read)
        self.messages[(event.meter_id, event.message_id)] = MessageState(event)
        horizon = event.received_at - self.message_retention
        for key in [k for k, m in self.messages.items() if m.message.received_at < horizon]:
            del self.messages[key]

    def _on_message_cancelled(self, event: MessageCancelled) -> None:
        state = self.messages.get((event.meter_id, event.message_id))
        if state is not None:
            state.cancelled_at = event.at

    def _on_message_confirmed(self, event: MessageConfirmed) -> None:
        state = self.messages.get((event.meter_id, event.message_id))
        if state is not None:
            state.confirmed_at = event.confirmed_at
            state.read = True

    def _on_message_read(self, event: MessageRead) -> None:
        state = self.messages.get((event.meter_id, event.message_id))
        if state is not None:
            state.read = True

    def _on_rejected(self, event: FrameRejected) -> None:
        self.counters[f"frames_{event.kind}"] += 1
