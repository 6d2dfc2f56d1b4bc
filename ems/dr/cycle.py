"""The control cycle: freeze the inputs into a snapshot, ask the rules, arbitrate, dispatch.

It runs when something relevant changes (an event is announced, starts or ends, the customer
opts out, the price or demand changes, a device reports) and on a tick, one cycle at a time;
triggers that arrive during a cycle are folded into the next one. The last cycle's snapshot,
proposals and decisions are kept so the pages can show why each device is as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ems.bus import Unsubscribe
from ems.dr.arbiter import Decision, decide
from ems.model import (
    DeviceAvailability,
    DeviceInfo,
    DevicePreference,
    DeviceReading,
    DeviceView,
    EventPhase,
    MeterReading,
    PriceSignal,
    Proposal,
    ProposalAction,
    Snapshot,
    Trigger,
    TriggerKind,
    utcnow,
)
from ems.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

DEMAND_HISTORY = timedelta(hours=1)


@dataclass(slots=True)
class CycleOutcome:
    """What the last cycle saw and decided (for the pages and the tests)."""

    snapshot: Snapshot
    proposals: list[Proposal]
    decisions: dict[str, Decision]
    duration_ms: float
    notices: list[Proposal] = field(default_factory=list)


class ControlCycle:
    """Owns the cycle task; the hub starts and stops it."""

    def __init__(
        self,
        hub: Any,
        registry: Any,
        load_control: Any,
        dispatcher: Any,
        rulebook: Any,
        *,
        tick_s: float = 15.0,
        clock: Callable[[], datetime] = utcnow,
        timezone: str | None = None,
    ) -> None:
        self._hub = hub
        self._registry = registry
        self._load_control = load_control
        self._dispatcher = dispatcher
        self._rulebook = rulebook
        self._tick_s = tick_s
        self._clock = clock
        self._tz = ZoneInfo(timezone or hub.config.site.timezone)
        self._demand: deque[tuple[datetime, float]] = deque()
        self._pending: Trigger | None = None
        self._wake = asyncio.Event()
        self._tasks = TaskSet(_LOGGER, "control cycle")
        self._unsubscribe: list[Unsubscribe | Callable[[], None]] = []
        self._notified: set[tuple[str, int | None, str]] = set()
        self.last: CycleOutcome | None = None
        self.cycles = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        bus = self._hub.bus
        self._unsubscribe = [
            bus.listen(MeterReading, self._on_meter_reading),
            bus.listen(PriceSignal, lambda _p: self.request(Trigger(TriggerKind.PRICE))),
            bus.listen(DeviceReading, self._on_device_reading),
            bus.listen(DeviceInfo, lambda i: self.request(Trigger(TriggerKind.DEVICE, device_id=i.device_id))),
            bus.listen(DeviceAvailability,
                       lambda a: self.request(Trigger(TriggerKind.DEVICE, device_id=a.device_id))),
            self._load_control.on_change(self.request),
        ]
        self.request(Trigger(TriggerKind.TICK))
        self._tasks.spawn(self._loop(), "control-cycle")

    async def stop(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        await self._tasks.cancel_all()

    # -- triggers --------------------------------------------------------------------------

    def request(self, trigger: Trigger) -> None:
        """Run a cycle soon; the most telling trigger of a burst is the one the rules see."""
        if self._pending is None or _weight(trigger) >= _weight(self._pending):
            self._pending = trigger
        self._idle.clear()
        self._wake.set()

    async def settled(self, timeout_s: float = 10.0) -> None:
        """Wait until no cycle is pending or running (for tests and benchmarks)."""
        await asyncio.wait_for(self._idle.wait(), timeout_s)

    def _on_meter_reading(self, reading: MeterReading) -> None:
        if reading.demand_kw is None:
            return
        self._demand.append((reading.read_at, reading.demand_kw))
        horizon = reading.read_at - DEMAND_HISTORY
        while self._demand and self._demand[0][0] < horizon:
            self._demand.popleft()
        self.request(Trigger(TriggerKind.DEMAND, meter_id=reading.meter_id))

    def _on_device_reading(self, reading: DeviceReading) -> None:
        self._tasks.spawn(self._dispatcher.on_reading(reading), "override-check")
        self.request(Trigger(TriggerKind.DEVICE, device_id=reading.device_id))

    # -- the cycle -------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races a wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick_s):
                    await self._wake.wait()
            self._wake.clear()
            trigger, self._pending = self._pending or Trigger(TriggerKind.TICK), None
            try:
                await self.run_once(trigger)
            except Exception:  # noqa: BLE001 - the next cycle tries again; devices stay as they are
                _LOGGER.exception("Control cycle failed; devices are left as they are until the next one")
            if self._pending is None and not self._wake.is_set():
                self._idle.set()

    async def run_once(self, trigger: Trigger) -> CycleOutcome:
        began = time.perf_counter()
        if trigger.kind is TriggerKind.TICK:
            await self._load_control.advance()  # events move on their own; a tick makes sure
        snapshot = self.snapshot(trigger)
        try:
            proposals = self._rulebook.evaluate(snapshot)
        except Exception:  # noqa: BLE001 - a rule's bug must not leave devices in a wrong state
            _LOGGER.exception("The rules failed on this snapshot; keeping the previous decisions")
            proposals = self.last.proposals if self.last is not None else []
        preferences = {p.device_id: p for p in snapshot.preferences}
        decisions = decide(proposals, snapshot.devices, snapshot.events, preferences,
                           self._dispatcher.history, self._dispatcher.originals(), snapshot.at)
        await self._dispatcher.apply(decisions)
        self._note_achievements(snapshot, decisions)
        notices = [p for p in proposals if p.action is ProposalAction.NOTIFY]
        await self._notify(notices, snapshot)
        self.cycles += 1
        self.last = CycleOutcome(snapshot, proposals, decisions, (time.perf_counter() - began) * 1000, notices)
        return self.last

    def _note_achievements(self, snapshot: Snapshot, decisions: dict[str, Decision]) -> None:
        """Tell the load control what each active event's winning proposals shed (expected kW)."""
        shed: dict[tuple[str, int], float] = {}
        for decision in decisions.values():
            p = decision.winner
            if p is None or p.issuer_event_id is None or p.meter_id is None:
                continue
            if decision.device_id in self._dispatcher.controlled:
                key = (p.meter_id, p.issuer_event_id)
                shed[key] = shed.get(key, 0.0) + p.expected_kw_reduction
        for view in snapshot.events:
            if view.phase is EventPhase.ACTIVE:
                key = (view.event.meter_id, view.event.issuer_event_id)
                self._load_control.note_achievement(*key, shed.get(key, 0.0), snapshot.demand_kw)

    def snapshot(self, trigger: Trigger) -> Snapshot:
        now = self._clock()
        state = self._hub.state
        meter = max(state.meters.values(), key=lambda m: m.last_reading_at or now - timedelta(days=3650),
                    default=None)
        demand = meter.value("demand_kw") if meter is not None else None
        price = state.active_price(meter.meter_id, now) if meter is not None else None
        devices = tuple(
            DeviceView(d.info, d.reading, d.available,
                       self._dispatcher.controlled[d.info.device_id].since
                       if d.info.device_id in self._dispatcher.controlled else None)
            for d in self._registry.devices.values()
        )
        outdoor = next((d.reading.outdoor_c for d in devices if d.reading is not None and d.reading.outdoor_c is not None),
                       None)
        preferences: tuple[DevicePreference, ...] = tuple(
            _resolve(p, self._registry) for p in self._rulebook.preferences())

        return Snapshot(
            at=now,
            local=now.astimezone(self._tz),
            trigger=trigger,
            demand_kw=demand,
            demand_history=tuple(self._demand),
            price_per_kwh=price.price_per_kwh if price is not None else None,
            price_tier=price.tier if price is not None else None,
            outdoor_c=outdoor,
            devices=devices,
            events=self._load_control.views(),
            preferences=preferences,
        )

    async def _notify(self, notices: list[Proposal], snapshot: Snapshot) -> None:
        from ems.notices import publish_notice

        for p in notices:
            key = (p.rule or p.reason, p.issuer_event_id, p.text)
            if key in self._notified:
                continue
            self._notified.add(key)
            await publish_notice(self._hub, p.text or p.reason, snapshot.at, meter_id=p.meter_id)


def _resolve(pref: DevicePreference, registry: Any) -> DevicePreference:
    """Preferences may name a device by its name; the arbiter keys them by device id."""
    state = registry.find(pref.device_id)
    if state is None or state.info.device_id == pref.device_id:
        return pref
    return replace(pref, device_id=state.info.device_id)


_WEIGHTS = {
    TriggerKind.TICK: 0, TriggerKind.DEVICE: 1, TriggerKind.DEMAND: 2, TriggerKind.TEMPERATURE: 2,
    TriggerKind.PRICE: 3, TriggerKind.OVERRIDE: 4, TriggerKind.EVENT_ANNOUNCED: 5,
    TriggerKind.EVENT_STARTED: 6, TriggerKind.EVENT_ENDED: 7,
}


def _weight(trigger: Trigger) -> int:
    return _WEIGHTS.get(trigger.kind, 0)
