"""The control cycle: freeze the inputs into a snapshot, ask the rules, arbitrate, dispatch.

It runs when something relevant changes (an event is announced, starts or ends, the customer
opts out, the price or demand changes, a device reports) and on a tick, one cycle at a time;
triggers that arrive during a cycle are folded into the next one. Routine triggers (a demand
report, a device's report, the tick) are coalesced: after a cycle, the next one for them waits
until ``routine_gap_s`` of the hub's time has passed since it began (a meter reporting every
second and a home of devices reporting do not each cost a cycle); an event, an opt-out, an
override or a price runs a cycle at once, and also ends such a wait. The snapshot freezes every
input: the meters' demand (per meter and for the premise), prices, events, devices' readings, the
dispatcher's record (what it holds, how each device was, what it did to loads lately) and the
customer's overrides; a change by hand found in it becomes an override (and takes the device
out of its event) before the rules run. The last cycle's snapshot,
proposals and decisions are kept so the pages can show why each device is as it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

from ems.bus import Unsubscribe
from ems.clock import REAL, CallableClock, FixedClock, as_clock, sleep_or_wake
from ems.dr.arbiter import Decision, decide
from ems.dr.overrides import OverrideBook, hand_changes, proposals_for
from ems.dr.ports import DeviceDirectory, DeviceWriter, DrHub, EventLives, Rules
from ems.errors import RejectedCommand
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
    ProposalSource,
    Snapshot,
    Trigger,
    TriggerKind,
)
from ems.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

DEMAND_HISTORY = timedelta(hours=1)
MIN_TICK_REAL_S = 0.05  # a tick on a clock running many times faster than real time waits at least this
URGENT = 3  # a trigger of this weight or more (price, override, event) runs a cycle without waiting


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
        hub: DrHub,
        registry: DeviceDirectory,
        load_control: EventLives,
        dispatcher: DeviceWriter,
        rulebook: Rules,
        *,
        overrides: OverrideBook | None = None,
        tick_s: float = 15.0,
        routine_gap_s: float = 0.0,
        clock: Callable[[], datetime] | None = None,
        timezone: str | None = None,
    ) -> None:
        self._hub = hub
        self._registry = registry
        self._load_control = load_control
        self._dispatcher = dispatcher
        self._rulebook = rulebook
        self.overrides = overrides or OverrideBook()
        self._tick_s = tick_s
        self._routine_gap_s = routine_gap_s
        self._clock = clock or hub.clock
        self._timer = as_clock(self._clock)  # what the tick waits on: the hub's time
        self._tz = ZoneInfo(timezone or hub.config.site.timezone)
        self._demand: deque[tuple[datetime, float]] = deque()  # the premise's: every meter's latest, summed
        self._meter_demand: dict[str, float] = {}
        self._pending: Trigger | None = None
        self._wake = asyncio.Event()
        self._urgent = asyncio.Event()  # ends a routine trigger's wait for its gap
        self._last_began = float("-inf")  # real (monotonic) time the last cycle of the loop began
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
        if _weight(trigger) >= URGENT:
            self._urgent.set()
        self._idle.clear()
        self._wake.set()

    async def settled(self, timeout_s: float = 10.0) -> None:
        """Wait until no cycle is pending or running (for tests and benchmarks)."""
        await asyncio.wait_for(self._idle.wait(), timeout_s)

    def _on_meter_reading(self, reading: MeterReading) -> None:
        if reading.demand_kw is None:
            return
        self._meter_demand[reading.meter_id] = reading.demand_kw
        self._demand.append((reading.read_at, sum(self._meter_demand.values())))
        horizon = reading.read_at - DEMAND_HISTORY
        while self._demand and self._demand[0][0] < horizon:
            self._demand.popleft()
        self.request(Trigger(TriggerKind.DEMAND, meter_id=reading.meter_id))

    def _on_device_reading(self, reading: DeviceReading) -> None:
        self.request(Trigger(TriggerKind.DEVICE, device_id=reading.device_id))

    # -- the cycle -------------------------------------------------------------------------

    async def _loop(self) -> None:
        """A cycle at every request (an event announced, started, ended or cancelled, an opt-out, a rule
        change, a device report) and, with none, every ``tick_s`` of the hub's clock (simulated
        seconds on a simulated clock, never more often than MIN_TICK_REAL_S of real time)."""
        last_tick = -MIN_TICK_REAL_S
        while True:
            woken = await sleep_or_wake(self._timer, self._tick_s, self._wake)
            if not woken and (wait_s := last_tick + MIN_TICK_REAL_S - time.monotonic()) > 0:
                await sleep_or_wake(REAL, wait_s, self._wake)  # a fast clock must not spin the cycle
            if not self._wake.is_set():
                last_tick = time.monotonic()
            self._wake.clear()
            await self._routine_wait()
            trigger, self._pending = self._pending or Trigger(TriggerKind.TICK), None
            self._urgent.clear()
            self._last_began = time.monotonic()
            try:
                await self.run_once(trigger)
            except Exception:  # noqa: BLE001 - the next cycle tries again; devices stay as they are
                _LOGGER.exception("Control cycle failed; devices are left as they are until the next one")
            if self._pending is None and not self._wake.is_set():
                self._idle.set()

    async def _routine_wait(self) -> None:
        """Hold a routine trigger until ``routine_gap_s`` of the hub's time (in real time: the clock's
        rate) after the last cycle began; an urgent trigger meanwhile ends the wait at once."""
        pending = self._pending
        if self._routine_gap_s <= 0 or (pending is not None and _weight(pending) >= URGENT):
            return
        if isinstance(self._timer, FixedClock | CallableClock):
            return  # a test's clock: its time moves when the test moves it, so no gap ever passes by itself
        gap_real_s = self._timer.real_seconds(self._routine_gap_s)
        left = self._last_began + gap_real_s - time.monotonic()
        if left > 0:
            await sleep_or_wake(REAL, left, self._urgent)
            self._wake.clear()  # what arrived meanwhile is in _pending: this cycle takes it

    async def run_once(self, trigger: Trigger) -> CycleOutcome:
        began = time.perf_counter()
        # Every cycle first moves the events to where they stand now (a cancel or an end decided since
        # the last one), whatever woke it: the rules never act on an event that has already ended.
        await self._load_control.advance()
        snapshot = self.snapshot(trigger)
        if await self._take_hand_changes(snapshot):
            snapshot = self.snapshot(trigger)  # the device is out of its event now: the rules see it so
        try:
            proposals = self._rulebook.evaluate(snapshot)
        except Exception:  # noqa: BLE001 - a rule's bug must not leave devices in a wrong state
            _LOGGER.exception("The rules failed on this snapshot; keeping the previous decisions")
            proposals = [p for p in self.last.proposals if p.source is not ProposalSource.OVERRIDE] \
                if self.last is not None else []
        self.overrides.lapse(proposals, snapshot.events, snapshot.at)
        proposals = [*proposals, *proposals_for(self.overrides.in_force())]
        preferences = {p.device_id: p for p in snapshot.preferences}
        originals = {device_id: c.original for device_id, c in snapshot.controlled.items()}
        decisions = decide(proposals, snapshot.devices, snapshot.events, preferences,
                           snapshot.load_history, originals, snapshot.at)
        await self._dispatcher.apply(decisions, {view.key: view.event for view in snapshot.events})
        self._note_achievements(snapshot, decisions)
        notices = [p for p in proposals if p.action is ProposalAction.NOTIFY]
        await self._notify(notices, snapshot)
        self.cycles += 1
        self.last = CycleOutcome(snapshot, proposals, decisions, (time.perf_counter() - began) * 1000, notices)
        return self.last

    async def _take_hand_changes(self, snapshot: Snapshot) -> bool:
        """A device changed by hand while the EMS held it: the customer's override (and out of its event)."""
        found = [o for o in hand_changes(snapshot) if self.overrides.get(o.device_id) is None]
        for override in found:
            self.overrides.add(override)
            if override.meter_id is None or override.issuer_event_id is None:
                continue
            view = next((v for v in snapshot.events if v.key == (override.meter_id, override.issuer_event_id)), None)
            if view is None or view.outcome is not None or override.device_id in view.excluded_devices:
                continue
            try:
                await self._load_control.set_participation(override.meter_id, override.issuer_event_id,
                                                           opted_out=True, device_id=override.device_id, by="device")
            except RejectedCommand as err:
                _LOGGER.info("Device %s changed by hand; its event took no note: %s", override.device_id, err)
        return bool(found)

    def _note_achievements(self, snapshot: Snapshot, decisions: dict[str, Decision]) -> None:
        """Tell the load control what each active event's winning proposals shed (expected kW)."""
        shed: dict[tuple[str, int], float] = {}
        held, _history = self._dispatcher.record()  # after this cycle's commands: who is held now
        for decision in decisions.values():
            p = decision.winner
            if p is None or p.issuer_event_id is None or p.meter_id is None:
                continue
            if p.source is not ProposalSource.OVERRIDE and decision.device_id in held:
                key = (p.meter_id, p.issuer_event_id)
                shed[key] = shed.get(key, 0.0) + p.expected_kw_reduction
        for view in snapshot.events:
            if view.phase is EventPhase.ACTIVE:
                demand = snapshot.demand_by_meter.get(view.event.meter_id, snapshot.demand_kw)
                self._load_control.note_achievement(*view.key, shed.get(view.key, 0.0), demand)

    def snapshot(self, trigger: Trigger) -> Snapshot:
        now = self._clock()
        state = self._hub.state
        meter = max(state.meters.values(), key=lambda m: m.last_reading_at or now - timedelta(days=3650),
                    default=None)
        by_meter = {m.meter_id: v for m in state.meters.values() if (v := m.value("demand_kw")) is not None}
        demand = sum(by_meter.values()) if by_meter else None  # the premise's: every meter's, summed
        price = state.active_price(meter.meter_id, now) if meter is not None else None
        controlled, load_history = self._dispatcher.record()
        devices = tuple(
            DeviceView(d.info, d.reading, d.available,
                       controlled[d.info.device_id].since if d.info.device_id in controlled else None)
            for d in self._registry.devices.values()
        )
        outdoor = next((d.reading.outdoor_c for d in devices if d.reading is not None and d.reading.outdoor_c is not None),
                       None)
        preferences: tuple[DevicePreference, ...] = tuple(
            _resolve(p, self._registry) for p in self._rulebook.preferences())

        peak = state.cycle_demand.get(meter.meter_id) if meter is not None else None
        return Snapshot(
            demand_window_min=peak.window_minutes if peak is not None else None,
            demand_peak_kw=peak.peak_kw if peak is not None else None,
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
            controlled=controlled,
            load_history=load_history,
            overrides=self.overrides.in_force(),
            demand_by_meter=MappingProxyType(by_meter),
        )

    async def _notify(self, notices: list[Proposal], snapshot: Snapshot) -> None:
        from ems.notices import publish_notice

        for p in notices:
            key = (p.rule or p.reason.english(), p.issuer_event_id, p.text)
            if key in self._notified:
                continue
            self._notified.add(key)
            await publish_notice(self._hub, p.text or p.reason.english(), snapshot.at, meter_id=p.meter_id)


def _resolve(pref: DevicePreference, registry: DeviceDirectory) -> DevicePreference:
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
