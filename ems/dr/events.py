"""The life of every demand-response event: when it really runs, who takes part, what is reported.

This is the one model of an event (``EventRun``; ``EventView`` is its frozen face): every page,
API and report reads it. The SE client rules (ZigBee SE 1.x DRLC, spec digest §2.12) are kept
here, apart from any device and any encoding: an event heard again is dropped (item 4), the
addressing filter, start and end randomisation, superseding of overlapping events, cancel and
cancel-all (with randomised end where asked; a cancel of an unknown event, or effective after
the event's end, is refused), the customer's opt-out and opt-in (whole event or one device).
It is the only author of status reports: RECEIVED, the REJECTED_* statuses its adapter found
(``EventRejected``) and every later status, one per change, queued in the durable outbox and
published (so the store keeps the history). What the devices do while an event runs is the
control cycle's business: it reads ``views()``.

An event or a cancel that does not address this client (§2.12 item 1: no device class in common
with its DeviceClassValue, or another enrollment group) is ignored as SiLabs' and NXP's clients
do: no report, no run, not shown as ours. Reports go out in causal order: RECEIVED first, and an
event's status times never before its arrival nor going back. STARTED waits for the control
cycle's first carrying-out of the event (``note_achievement``), so the values it reports as
applied are what the dispatcher really set (its record), not what the event asked.

Randomisation is drawn from a generator seeded by the appliance's seed and the event, so the
same event gets the same effective times after a restart. The customer's choices are written
to the store before they are acted on, so they survive a crash.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.bus import Unsubscribe
from ems.clock import Clock, as_clock, sleep_or_wake
from ems.dr.ports import DrHub
from ems.errors import Conflict, NotFound, StoreError
from ems.model import (
    ControlledDevice,
    DeviceClass,
    EventCancellation,
    EventParticipationChanged,
    EventPhase,
    EventRejected,
    EventStatus,
    EventStatusReport,
    EventView,
    LoadControlEvent,
    ScheduleListed,
    Trigger,
    TriggerKind,
)
from ems.outbox import encode
from ems.store import commands, tables
from ems.store.writer import insert
from ems.tasks import TaskSet

_LOGGER = logging.getLogger(__name__)

ALL_CLASSES = int(sum(DeviceClass))
MAX_SLEEP_S = 60.0
# How long STARTED waits for the control cycle to carry the event out (then it goes out with what is
# applied by then): a cycle that fails or hangs must not keep the utility from hearing of the start.
START_REPORT_WAIT = timedelta(seconds=30)
RESTORE_HISTORY = timedelta(days=1)  # events ended longer ago are not picked up again at start


@dataclass(frozen=True, slots=True)
class LoadControlSettings:
    """The EMS's own DRLC client attributes (SE: StartRandomizationMinutes, ...)."""

    start_randomization_min: int = 30  # SE default 0x1E
    duration_randomization_min: int = 0  # SE default 0
    enrollment_group: int = 0  # 0: every group
    seed: str = "ems"  # per appliance; makes randomisation repeatable across restarts


@dataclass(frozen=True, slots=True)
class Applied:
    """What the dispatcher carries out for one event (its record): the report's *_applied fields."""

    cooling_setpoint_c: float | None = None
    heating_setpoint_c: float | None = None
    devices: int = 0  # devices it has set for the event (0: nothing carried out)


NOTHING_APPLIED = Applied()


@dataclass(slots=True)
class EventRun:
    """One event as it is being carried out."""

    event: LoadControlEvent
    effective_start: datetime
    effective_end: datetime
    end_randomization: timedelta
    phase: EventPhase = EventPhase.SCHEDULED
    addressed: bool = True  # False: it names no device class the home has (ignored)
    superseded_at: datetime | None = None
    superseded_by: int | None = None
    cancel_at: datetime | None = None
    outcome: EventStatus | None = None  # the final status once ended
    opted_out: bool = False
    excluded: set[str] = field(default_factory=set)  # devices taken out by the customer
    took_part: bool = False  # took part at some moment while active
    acted: bool = False  # the EMS set at least one device for it while it ran (the home really took part)
    sat_out: bool = False  # was opted out at some moment while active
    device_override: bool = False  # a device was taken out while active
    ended_at: datetime | None = None
    # What the EMS achieved for it: the load it sheds (expected kW, from the winning proposals) and
    # that as a share of the demand when it acted (negative: a reduction, as SE counts it).
    shed_kw: float = 0.0
    achieved_pct: int | None = None
    applied: Applied = NOTHING_APPLIED  # the dispatcher's record for it, as last noted while it ran
    start_pending: datetime | None = None  # started then; STARTED waits for the cycle to carry it out
    last_report_at: datetime | None = None  # the time of its latest status (they never go back)

    @property
    def key(self) -> tuple[str, int]:
        return (self.event.meter_id, self.event.issuer_event_id)

    def view(self) -> EventView:
        end = self.effective_end
        for stop in (self.superseded_at, self.cancel_at):
            if stop is not None and stop < end:
                end = stop
        if self.ended_at is not None:
            end = min(end, self.ended_at)
        return EventView(
            event=self.event,
            phase=self.phase,
            effective_start=self.effective_start,
            effective_end=max(end, self.effective_start),
            opted_out=self.opted_out,
            excluded_devices=frozenset(self.excluded),
            outcome=self.outcome,
            addressed=self.addressed,
            cancelled_at=self.cancel_at,
            took_part=self.took_part,
            acted=self.acted,
            shed_kw=self.shed_kw,
            achieved_pct=self.achieved_pct,
        )


def overlaps(a: LoadControlEvent, b: LoadControlEvent) -> bool:
    """SE §2.12 item 6: two events overlap when their scheduled spans intersect."""
    return a.start < b.end and b.start < a.end


def addresses(event: LoadControlEvent | EventCancellation, device_classes: int, enrollment_group: int) -> bool:
    """SE §2.12 item 1 (for events and cancels alike): a class bit in common with the client's
    DeviceClassValue, and enrollment groups equal or either of them 0."""
    return addressed_to(int(event.device_class), event.enrollment_group, device_classes, enrollment_group)


def addressed_to(device_class: int, group: int, device_classes: int, enrollment_group: int) -> bool:
    """``addresses`` for a frame's raw DeviceClass and UtilityEnrollmentGroup."""
    if not device_class & device_classes:
        return False
    return group == 0 or enrollment_group == 0 or group == enrollment_group


class LoadControl:
    """Keeps every event's run, reports its status changes, and tells the cycle when to act."""

    def __init__(
        self,
        hub: DrHub,
        settings: LoadControlSettings | None = None,
        *,
        clock: Clock | Callable[[], datetime] | None = None,
        device_classes: Callable[[], int] | None = None,
        dispatch_record: Callable[[], Mapping[str, ControlledDevice]] | None = None,
    ) -> None:
        """``dispatch_record`` is the dispatcher's record of what it set (``Dispatcher.record``):
        with it, the applied values come from it and STARTED waits for the cycle to carry the event
        out; without it (the events alone, in tests) STARTED goes out at once with nothing applied."""
        self._hub = hub
        self.settings = settings or LoadControlSettings()
        self._clock = as_clock(clock or hub.clock)
        self._device_classes = device_classes or (lambda: ALL_CLASSES)
        self._dispatch_record = dispatch_record
        self.runs: dict[tuple[str, int], EventRun] = {}  # only events that address this client
        self._ignored: set[tuple[str, int]] = set()  # events heard that do not (logged once)
        self._listeners: list[Callable[[Trigger], None]] = []
        self._unsubscribe: list[Unsubscribe] = []
        self._wake = asyncio.Event()
        self._tasks = TaskSet(_LOGGER, "load control")
        self._lock = asyncio.Lock()
        self._advanced_to: datetime | None = None  # the instant the last advance moved the events to
        # Reports decided in a bus listener (synchronous), sent in order by the next advance.
        self._queued: list[EventStatusReport] = []
        self._cancels: list[tuple[str, int, datetime]] = []  # cancels decided, written by the next advance

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Pick up the events already known (after a restart) and the customer's choices."""
        now = self._clock()
        history = await self._reported_history()
        for stored in await self._hub.store.events(now - RESTORE_HISTORY):
            run = self._new_run(stored.event, now)
            if not run.addressed:  # stored as heard; still not ours
                self._ignored.add(run.key)
                continue
            if stored.cancelled_at is not None and stored.cancelled_at <= stored.event.end:
                run.cancel_at = stored.cancelled_at
            reported = history.get(run.key, [])
            self._restore_reported(run, reported)
            if reported and run.outcome is None and stored.event.end + timedelta(hours=1) < now:
                # Long over and reported while it ran: it ended while the appliance was away.
                run.phase, run.outcome, run.ended_at = EventPhase.ENDED, self._completion(run), stored.event.end
            self.runs[run.key] = run
        for meter_id, event_id, device_id, opted_out in await self._hub.store.read(
            "read DR participation", _participation
        ):
            known = self.runs.get((meter_id, event_id))
            if known is None:
                continue
            run = known
            if device_id == "":
                run.opted_out = opted_out
            elif opted_out:
                run.excluded.add(device_id)
            else:
                run.excluded.discard(device_id)
        self._unsubscribe = [
            self._hub.bus.listen(LoadControlEvent, self._on_event),
            self._hub.bus.listen(EventCancellation, self._on_cancellation),
            self._hub.bus.listen(EventRejected, self._on_rejected),
            self._hub.bus.listen(ScheduleListed, self._on_schedule_listed),
        ]
        await self.advance()
        self._tasks.spawn(self._run(), "load-control")

    async def stop(self) -> None:
        """Stop listening; what the listeners decided (a cancel, a report) is still written down."""
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        await self._tasks.cancel_all()
        if self._queued or self._cancels:
            try:
                async with self._lock:
                    await self._save_decided()
            except StoreError as err:  # the store went first: the ESI sends its events again after the start
                _LOGGER.warning("Load control stopped with %d report(s) and %d cancel(s) not written: %s",
                                len(self._queued), len(self._cancels), err)

    def on_change(self, listener: Callable[[Trigger], None]) -> Callable[[], None]:
        """Call ``listener`` whenever an event is announced, starts, ends or changes participation."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    # -- queries ---------------------------------------------------------------------------

    def views(self) -> tuple[EventView, ...]:
        """The events that address this client, by scheduled start (what the cycle, rules and pages see).

        An event addressed elsewhere is never kept (§2.12 item 1), so it is never shown as ours."""
        return tuple(run.view() for run in sorted(self.runs.values(), key=lambda r: (r.event.start, r.key)))

    def all_views(self) -> tuple[EventView, ...]:
        """The same as ``views``: events that address no device here are not kept."""
        return self.views()

    def view(self, meter_id: str, issuer_event_id: int) -> EventView | None:
        run = self.runs.get((meter_id, issuer_event_id))
        return run.view() if run is not None else None

    def run(self, meter_id: str, issuer_event_id: int) -> EventRun | None:
        return self.runs.get((meter_id, issuer_event_id))

    def note_achievement(self, meter_id: str, issuer_event_id: int, shed_kw: float, demand_kw: float | None) -> None:
        """The cycle carried out an active event: note what the dispatcher set for it and the load it sheds.

        The first note after the start sends STARTED with what was applied (not what was asked). The
        shed share is for the pages; the reports carry the adjustment the event asked and the EMS
        carried out, not the EMS's own measure."""
        run = self.runs.get((meter_id, issuer_event_id))
        if run is None or run.phase is not EventPhase.ACTIVE:
            return
        run.applied = self._applied_now(run)
        run.acted = run.acted or run.applied.devices > 0
        if run.start_pending is not None:
            at, run.start_pending = run.start_pending, None
            self._queued.append(self._status_report(run, EventStatus.STARTED, at))
            self._wake.set()
        run.shed_kw = shed_kw
        if demand_kw is not None and demand_kw + shed_kw > 0:
            # The meter's demand already lacks what is shed: the home would draw demand + shed without it.
            run.achieved_pct = -min(100, round(100 * shed_kw / (demand_kw + shed_kw)))

    # -- the utility's side ----------------------------------------------------------------

    def _on_event(self, event: LoadControlEvent) -> None:
        now = self._clock()
        key = (event.meter_id, event.issuer_event_id)
        if not addresses(event, self._device_classes(), self.settings.enrollment_group):
            # §2.12 item 1: not for this client. Ignored as SiLabs' and NXP's clients do: no report.
            if key not in self._ignored:
                self._ignored.add(key)
                _LOGGER.info("[%s] Event %d is for device classes 0x%04x, enrollment group %d, not this client's "
                             "(0x%04x, group %d): ignored", event.meter_id, event.issuer_event_id,
                             int(event.device_class), event.enrollment_group, self._device_classes(),
                             self.settings.enrollment_group)
            return
        known = self.runs.get(key)
        if known is not None:
            if not self._over(known, now):
                _LOGGER.debug("[%s] Event %d heard again: ignored", event.meter_id, event.issuer_event_id)
                return  # §2.12 item 4: the same event again (the ESI repeats it; after a restart too)
            # Its id names an event that has ended here: that event is over, and so is this one.
            self._refuse(known, EventStatus.REJECTED_EXPIRED,
                         f"event {event.issuer_event_id} has already ended here; its id was used again",
                         max(now, event.received_at), echo=event)
            return
        self._ignored.discard(key)
        run = self._new_run(event, now)
        self._queue(run, EventStatus.RECEIVED, now)  # §2.12 item 5: before anything else of it
        for other in self.runs.values():
            if other.event.meter_id != event.meter_id or self._over(other, now):
                continue
            if not overlaps(event, other.event):
                continue
            other.superseded_by = event.issuer_event_id
            if other.phase is EventPhase.SCHEDULED:
                other.superseded_at = now
            else:  # running: let it run until one second before the new one starts
                other.superseded_at = max(now, run.effective_start - timedelta(seconds=1))
            _LOGGER.info("[%s] Event %d supersedes event %d (from %s)", event.meter_id,
                         event.issuer_event_id, other.event.issuer_event_id, other.superseded_at)
        self.runs[run.key] = run
        self._notify(Trigger(TriggerKind.EVENT_ANNOUNCED, event.meter_id, event.issuer_event_id))
        self._wake.set()

    def _on_cancellation(self, cancel: EventCancellation) -> None:
        now = self._clock()
        if not addresses(cancel, self._device_classes(), self.settings.enrollment_group):
            # §2.12 item 1 holds for cancels too: one for other classes or another group is not ours.
            _LOGGER.info("[%s] Cancel of event %s for device classes 0x%04x, enrollment group %d: not this "
                         "client's, ignored", cancel.meter_id, cancel.issuer_event_id, int(cancel.device_class),
                         cancel.enrollment_group)
            return
        if cancel.issuer_event_id is not None:
            named = self.runs.get((cancel.meter_id, cancel.issuer_event_id))
            at = max(now, cancel.received_at)
            if named is None or self._over(named, now):
                # §2.12 item 11: unknown here, or no longer live (superseded, cancelled, completed).
                reason = f"cancel for {'unknown' if named is None else 'ended'} event {cancel.issuer_event_id}"
                if named is None:
                    self._reject_unknown(cancel.meter_id, cancel.issuer_event_id, reason, at)
                else:
                    self._refuse(named, EventStatus.REJECTED_UNDEFINED_EVENT, reason, at)
                return
            if cancel.effective_at > named.event.end:
                self._refuse(named, EventStatus.REJECTED_INVALID_CANCEL_TIME,
                             f"cancel of event {cancel.issuer_event_id} takes effect after the event ends", at)
                return
            targets = [named]
        else:  # §2.12 item 12: every live event of that meter; the ended ones are not touched
            targets = [run for run in self.runs.values()
                       if run.event.meter_id == cancel.meter_id and not self._over(run, now)]
        for run in targets:
            at = cancel.effective_at
            if cancel.randomize_end and run.event.randomize_end:
                at += run.end_randomization  # SE §2.12 item 11: keep the original end randomisation
            run.cancel_at = at
            self._cancels.append((run.event.meter_id, run.event.issuer_event_id, at))
            _LOGGER.info("[%s] Event %d cancelled from %s", run.event.meter_id, run.event.issuer_event_id, at)
        self._wake.set()

    def _on_schedule_listed(self, listed: ScheduleListed) -> None:
        """The meter listed what it still schedules (SE §2.11). A live event heard before it was asked
        and not listed was cancelled or superseded while the appliance was not listening (down, or
        the link was): it ends now as cancelled, so no device stays controlled for an event the
        utility has withdrawn, and the utility hears the status its cancel asked for."""
        now = self._clock()
        for run in list(self.runs.values()):
            event = run.event
            if event.meter_id != listed.meter_id or event.issuer_event_id in listed.issuer_event_ids \
                    or event.received_at >= listed.listening_since or self._over(run, now):
                continue
            run.cancel_at = max(now, event.received_at)
            self._cancels.append((event.meter_id, event.issuer_event_id, run.cancel_at))
            _LOGGER.warning("[%s] Event %d is no longer scheduled by the meter (cancelled while the appliance "
                            "was not listening): ended as cancelled", event.meter_id, event.issuer_event_id)
            self._wake.set()

    def _on_rejected(self, rejected: EventRejected) -> None:
        """The adapter refused a frame: report it, echoing what the refused event said."""
        if rejected.device_class is not None and not addressed_to(
                int(rejected.device_class), rejected.enrollment_group or 0, self._device_classes(),
                self.settings.enrollment_group):
            _LOGGER.debug("[%s] Event %d refused, but not for this client: ignored (%s)", rejected.meter_id,
                          rejected.issuer_event_id, rejected.reason)
            return  # §2.12 item 1: a frame not for us gets no answer, valid or not
        _LOGGER.info("[%s] Event %d refused: %s", rejected.meter_id, rejected.issuer_event_id, rejected.reason)
        known = self.runs.get((rejected.meter_id, rejected.issuer_event_id))
        if known is not None and rejected.criticality is None:
            # A refused cancel (or a refused repeat) of an event known here: that event's values.
            self._refuse(known, rejected.status, rejected.reason, rejected.at)
            return
        at = rejected.at if known is None else self._stamp(known, rejected.at)
        self._queued.append(EventStatusReport(
            rejected.meter_id, rejected.issuer_event_id, rejected.status, at,
            criticality_applied=int(rejected.criticality) if rejected.criticality is not None else 0,
            randomize_start=rejected.randomize_start, randomize_end=rejected.randomize_end,
            reason=rejected.reason))
        self._wake.set()

    def _refuse(self, run: EventRun, status: EventStatus, reason: str, now: datetime,
                echo: LoadControlEvent | None = None) -> None:
        """Report a REJECTED_* status under ``run``'s id, echoing its event's (or ``echo``'s) values."""
        _LOGGER.info("[%s] Event %d: %s", run.event.meter_id, run.event.issuer_event_id, reason)
        ev = echo or run.event
        self._queued.append(EventStatusReport(
            ev.meter_id, ev.issuer_event_id, status, self._stamp(run, now), criticality_applied=int(ev.criticality),
            randomize_start=ev.randomize_start, randomize_end=ev.randomize_end, reason=reason))
        self._wake.set()

    def _reject_unknown(self, meter_id: str, issuer_event_id: int, reason: str, now: datetime) -> None:
        _LOGGER.info("[%s] Event %d: %s", meter_id, issuer_event_id, reason)
        self._queued.append(EventStatusReport(meter_id, issuer_event_id, EventStatus.REJECTED_UNDEFINED_EVENT, now,
                                              reason=reason))
        self._wake.set()

    @staticmethod
    def _over(run: EventRun, now: datetime) -> bool:
        """Whether the event has ended here, or would have by ``now`` (the advance may not have run yet)."""
        if run.outcome is not None:
            return True
        stops = [t for t in (run.superseded_at, run.cancel_at, run.effective_end) if t is not None]
        return any(t <= now for t in stops)

    def _queue(self, run: EventRun, status: EventStatus, now: datetime) -> None:
        self._queued.append(self._status_report(run, status, now))
        self._wake.set()

    def _new_run(self, event: LoadControlEvent, now: datetime) -> EventRun:
        rng = random.Random(hashlib.sha256(
            f"{self.settings.seed}/{event.meter_id}/{event.issuer_event_id}".encode()).digest())
        start_delay = timedelta(0)
        if event.randomize_start and self.settings.start_randomization_min > 0:
            start_delay = timedelta(seconds=rng.randrange(self.settings.start_randomization_min * 60))
        end_extra = timedelta(0)
        if event.randomize_end and self.settings.duration_randomization_min > 0:
            end_extra = timedelta(seconds=rng.randrange(self.settings.duration_randomization_min * 60))
        start = event.start + start_delay
        addressed = addresses(event, self._device_classes(), self.settings.enrollment_group)
        return EventRun(event, start, event.end + end_extra, end_extra, addressed=addressed)

    # -- the customer's side ---------------------------------------------------------------

    async def set_participation(
        self, meter_id: str, issuer_event_id: int, *, opted_out: bool, device_id: str | None = None,
        by: str = "customer",
    ) -> EventRun:
        """Opt out of an event (or back in), whole or for one device; durable before it acts.

        Raises NotFound when the event is unknown here, Conflict when it is over or already so.
        """
        async with self._lock:
            await self._advance_all(self._clock())  # decide against where the event stands now
            run = self.runs.get((meter_id, issuer_event_id))
            if run is None or not run.addressed:
                raise NotFound(f"there is no event {issuer_event_id} from meter {meter_id!r} here")
            if run.outcome is not None:
                raise Conflict(f"event {issuer_event_id} is over ({_status_word(run.outcome)})")
            if device_id is None:
                if run.opted_out == opted_out:
                    raise Conflict(
                        f"event {issuer_event_id}: already opted {'out' if opted_out else 'in'}")
            elif (device_id in run.excluded) == opted_out:
                raise Conflict(f"device {device_id} is already {'out of' if opted_out else 'in'} "
                                      f"event {issuer_event_id}")
            now = self._clock()
            choice = participation_row(meter_id, issuer_event_id, device_id or "", opted_out, now, by)
            if device_id is None and run.phase is EventPhase.ACTIVE:
                # §2.12 item 9: reported at once while it runs; the choice, its history row and its
                # outbox item are one durable write, made before anything acts on it or reports it.
                await self._send_queued()
                run.opted_out = opted_out
                run.sat_out = run.sat_out or opted_out
                run.took_part = run.took_part or not opted_out
                await self._report(run, EventStatus.OPTED_OUT if opted_out else EventStatus.OPTED_IN, now,
                                   participation=choice)
            else:
                await self._hub.store.write("record DR participation", lambda conn: _save_participation(
                    conn, **choice), durable=True)
            if device_id is None:
                run.opted_out = opted_out
                # Before the start, §2.12 item 8: the choice is reported when the event starts.
            else:
                if opted_out:
                    run.excluded.add(device_id)
                    if run.phase is EventPhase.ACTIVE:
                        run.device_override = True
                else:
                    run.excluded.discard(device_id)
            _LOGGER.info("[%s] %s opted %s of event %d%s", meter_id, by, "out" if opted_out else "in",
                         issuer_event_id, f" for device {device_id}" if device_id else "")
            self._hub.bus.publish(EventParticipationChanged(meter_id, issuer_event_id, device_id, opted_out, now, by))
            self._notify(Trigger(TriggerKind.OVERRIDE, meter_id, issuer_event_id, device_id))
            return run

    # -- time ------------------------------------------------------------------------------

    async def _run(self) -> None:
        """Advance at every boundary, every wake-up and whenever the clock jumps past the next boundary.

        The wait is on the clock (``ems.clock.sleep_or_wake``): a clock set forwards (the meter's
        time followed, the wall clock stepped, a suspended process resumed) ends it, so an event
        starts and ends on time after a jump, not up to MAX_SLEEP_S late; a jump back wakes it no
        later than MAX_SLEEP_S, and it looks again. The wake-up is cleared before advancing, not
        before waiting: one set while it advances (a cancel heard meanwhile) is not lost."""
        while True:
            delay = self._next_boundary_s(self._clock())  # in the clock's seconds (simulated may run faster)
            await sleep_or_wake(self._clock, delay, self._wake)
            self._wake.clear()
            try:
                await self.advance()
            except Exception:  # noqa: BLE001 - one bad event must not stop every other
                _LOGGER.exception("Load control could not advance its events; retrying")
                await asyncio.sleep(1.0)

    def _next_boundary_s(self, now: datetime) -> float:
        times: list[datetime] = []
        for run in self.runs.values():
            if run.outcome is not None:
                continue
            times += [t for t in (run.effective_start, run.effective_end, run.superseded_at, run.cancel_at)
                      if t is not None]
            if run.start_pending is not None:
                times.append(run.start_pending + START_REPORT_WAIT)
        # Only boundaries the last advance has not reached: a live event's start is behind it, and
        # counting it would make the delay 0 and spin the loop (a whole core) until the event ends. One
        # the clock passed while that advance ran (or jumped past) is due at once, not MAX_SLEEP_S later.
        done = self._advanced_to if self._advanced_to is not None and self._advanced_to <= now else now
        future = [(t - now).total_seconds() for t in times if t > done]
        return max(0.0, min([*future, MAX_SLEEP_S]))

    async def advance(self, now: datetime | None = None) -> None:
        """Move every event to where it stands at ``now``, reporting each status change."""
        async with self._lock:
            await self._advance_all(now or self._clock())

    async def _advance_all(self, now: datetime) -> None:
        self._advanced_to = now
        await self._save_decided()
        for run in sorted(self.runs.values(), key=lambda r: r.effective_start):
            if run.outcome is not None:
                continue
            await self._advance_run(run, now)
        self._let_go(now)

    def _let_go(self, now: datetime) -> None:
        """Forget events that ended longer than RESTORE_HISTORY ago, as a restart would (the store
        keeps them): otherwise a years-long run keeps every event, and every cycle's snapshot and
        every page's events push carry them all."""
        horizon = now - RESTORE_HISTORY
        for key in [k for k, run in self.runs.items()
                    if run.outcome is not None and (run.ended_at or run.effective_end) < horizon]:
            del self.runs[key]

    async def _save_decided(self) -> None:
        """Write the cancels the listeners decided, then send their reports, in order."""
        while self._cancels:  # durable before acted on; only the addressed, live event's record changes
            meter_id, event_id, at = self._cancels[0]
            await self._hub.store.write("record DR cancel", partial(save_cancel, meter_id=meter_id,
                                                                     event_id=event_id, at=at))
            self._cancels.pop(0)
        await self._send_queued()

    async def _send_queued(self) -> None:
        """What the listeners decided goes out first, in order (before any later status)."""
        while self._queued:
            await self._send(self._queued[0])
            self._queued.pop(0)

    async def _advance_run(self, run: EventRun, now: datetime) -> None:
        ev = run.event
        if run.phase is EventPhase.SCHEDULED:
            if run.cancel_at is not None and run.cancel_at <= now:
                await self._end(run, EventStatus.CANCELLED, now, run.cancel_at)
                return
            if run.superseded_at is not None and run.superseded_at <= now:
                await self._end(run, EventStatus.SUPERSEDED, now, run.superseded_at)
                return
            if now < run.effective_start:
                return
            if now >= run.effective_end:
                # Its whole span passed while the appliance was away: nothing here took part.
                await self._end(run, EventStatus.COMPLETED_NO_PARTICIPATION, now, run.effective_end)
                return
            run.phase = EventPhase.ACTIVE
            # The devices need not wait for the report's disk write: the cycle hears first.
            self._notify(Trigger(TriggerKind.EVENT_STARTED, ev.meter_id, ev.issuer_event_id))
            _LOGGER.info("[%s] Event %d started", ev.meter_id, ev.issuer_event_id)
            if run.opted_out:
                run.sat_out = True
                await self._report(run, EventStatus.OPTED_OUT, now)  # §2.12 item 8
            else:
                run.took_part = True
                if self._dispatch_record is None:
                    await self._report(run, EventStatus.STARTED, now)
                else:  # sent once the cycle carried it out (note_achievement): with what it applied
                    run.start_pending = now
        if run.phase is EventPhase.ACTIVE:
            if run.start_pending is not None and now >= run.start_pending + START_REPORT_WAIT:
                _LOGGER.warning("[%s] Event %d: the control cycle has not carried it out yet; STARTED goes "
                                "out with what is applied now", ev.meter_id, ev.issuer_event_id)
                await self._report(run, EventStatus.STARTED, now)
            if run.superseded_at is not None and run.superseded_at <= now:
                await self._end(run, EventStatus.SUPERSEDED, now, run.superseded_at)
            elif run.cancel_at is not None and run.cancel_at <= now:
                await self._end(run, EventStatus.CANCELLED, now, run.cancel_at)
            elif now >= run.effective_end:
                await self._end(run, self._completion(run), now, run.effective_end)

    @staticmethod
    def _completion(run: EventRun) -> EventStatus:
        """§2.12 item 10: completed, not at all, or partly (ending opted out or in)."""
        if run.sat_out and not run.took_part:
            return EventStatus.COMPLETED_NO_PARTICIPATION
        if run.sat_out and run.opted_out:
            return EventStatus.PARTIALLY_COMPLETED_OPT_OUT
        if run.sat_out:
            return EventStatus.PARTIALLY_COMPLETED_OPT_IN
        if run.device_override:
            # The customer took a device out while the event ran: the utility hears of the override.
            return EventStatus.PARTIALLY_COMPLETED_OPT_OUT
        return EventStatus.COMPLETED

    async def _end(self, run: EventRun, status: EventStatus, now: datetime, due: datetime) -> None:
        """End ``run`` at ``due`` (its cancel, supersede or end time; ``now`` if that lies ahead): the
        status time is when it happened, not when the loop woke (§2.12 item 6: 0x07 at new start - 1 s)."""
        at = min(now, due)
        run.phase = EventPhase.ENDED
        run.outcome = status
        run.ended_at = at
        self._notify(Trigger(TriggerKind.EVENT_ENDED, run.event.meter_id, run.event.issuer_event_id))
        _LOGGER.info("[%s] Event %d ended: %s", run.event.meter_id, run.event.issuer_event_id, _status_word(status))
        await self._report(run, status, at)

    async def _report(self, run: EventRun, status: EventStatus, now: datetime,
                      participation: dict[str, Any] | None = None) -> None:
        """Send a status of ``run``, after every status decided before it (causal order);
        ``participation`` is the customer's choice that caused it, written in the same transaction."""
        await self._send_queued()
        if run.start_pending is not None:  # it started before this: STARTED goes first
            at, run.start_pending = run.start_pending, None
            await self._send(self._status_report(run, EventStatus.STARTED, at))
            if status is EventStatus.STARTED:
                return
        await self._send(self._status_report(run, status, now), participation)

    async def _send(self, report: EventStatusReport, participation: dict[str, Any] | None = None) -> None:
        """Record ``report`` durably, then publish it: its history row and its outbox item (and the
        customer's choice that caused it, ``participation``) are one transaction, synchronous to disk,
        so a crash keeps all of them or none, and a restart resumes the event's life from the history.
        A status already reported for (meter, event, status) is not queued again (the store judges)."""
        _kind, payload = encode(report)
        item_id = await self._hub.store.write("record a DR status", partial(
            commands.record_event_status, report=report, payload=payload, created_at=self._clock(),
            participation=participation), durable=True)
        if item_id is None:
            if participation is not None:
                self._hub.outbox.wake()
            _LOGGER.info("[%s] Event %d: %s was already reported; not again", report.meter_id,
                         report.issuer_event_id, _status_word(report.status))
            return
        self._hub.outbox.wake()  # the item is in the store: its route delivers it
        self._hub.bus.publish(report)

    def _status_report(self, run: EventRun, status: EventStatus, now: datetime) -> EventStatusReport:
        """The report of one status: what was applied is the dispatcher's record, never the request.

        STARTED and OPTED_IN carry what is set for the event now; a final status of an event the home
        took part in carries what was set while it ran; every other status nothing ("not used"). An
        adjustment or a duty cycle is reported applied when the event asked for it and the EMS carried
        the event out on some device; set points are the values the dispatcher really sent, for an
        event that asked for a set point or an offset."""
        ev = run.event
        if status in (EventStatus.STARTED, EventStatus.OPTED_IN):
            applied = run.applied = self._applied_now(run)
        elif status in _FINISHED_WITH_PARTICIPATION and run.took_part:
            applied = run.applied
        else:
            applied = NOTHING_APPLIED
        carried_out = applied.devices > 0
        # A set point answers an event that asked for one (a set point or an offset from it): one set
        # to carry out only a load adjustment or a duty cycle is how the EMS did it, not what was asked.
        asked_cooling = ev.cooling_setpoint_c is not None or ev.cooling_offset_c is not None
        asked_heating = ev.heating_setpoint_c is not None or ev.heating_offset_c is not None
        return EventStatusReport(
            meter_id=ev.meter_id,
            issuer_event_id=ev.issuer_event_id,
            status=status,
            at=self._stamp(run, now),
            criticality_applied=int(ev.criticality),
            cooling_setpoint_applied_c=applied.cooling_setpoint_c if asked_cooling else None,
            heating_setpoint_applied_c=applied.heating_setpoint_c if asked_heating else None,
            average_load_adjustment_applied_pct=ev.average_load_adjustment_pct if carried_out else None,
            duty_cycle_applied_pct=ev.duty_cycle_pct if carried_out else None,
            randomize_start=ev.randomize_start,
            randomize_end=ev.randomize_end,
        )

    def _applied_now(self, run: EventRun) -> Applied:
        """What the dispatcher's record says it set for ``run``'s event (first device by id for set points)."""
        if self._dispatch_record is None:
            return NOTHING_APPLIED
        held = [c for _, c in sorted(self._dispatch_record().items())
                if c.sent_event == run.key and c.sent_at is not None]
        return Applied(
            cooling_setpoint_c=next((c.sent_cooling_c for c in held if c.sent_cooling_c is not None), None),
            heating_setpoint_c=next((c.sent_heating_c for c in held if c.sent_heating_c is not None), None),
            devices=len(held),
        )

    @staticmethod
    def _stamp(run: EventRun, now: datetime) -> datetime:
        """A status time for ``run``: never before its arrival, never before its previous status (§2.8)."""
        at = max(now, run.event.received_at, run.last_report_at or now)
        run.last_report_at = at
        return at

    def _notify(self, trigger: Trigger) -> None:
        for listener in list(self._listeners):
            try:
                listener(trigger)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the events
                _LOGGER.exception("Load-control listener failed")

    # -- restart ---------------------------------------------------------------------------

    async def _reported_history(self) -> dict[tuple[str, int], list[tuple[EventStatus, datetime]]]:
        """Every status reported so far, with its time, per event, oldest first."""
        rows = await self._hub.store.read("read DR status history", _status_history)
        history: dict[tuple[str, int], list[tuple[EventStatus, datetime]]] = {}
        for meter_id, event_id, status, at in rows:
            history.setdefault((meter_id, event_id), []).append((EventStatus(status), at))
        return history

    @staticmethod
    def _restore_reported(run: EventRun, reported: list[tuple[EventStatus, datetime]]) -> None:
        """Where the reports left the event, so none is sent twice and none goes back in time."""
        finals = {EventStatus.COMPLETED, EventStatus.CANCELLED, EventStatus.SUPERSEDED,
                  EventStatus.PARTIALLY_COMPLETED_OPT_OUT, EventStatus.PARTIALLY_COMPLETED_OPT_IN,
                  EventStatus.COMPLETED_NO_PARTICIPATION}
        for status, at in reported:
            run.last_report_at = at if run.last_report_at is None else max(run.last_report_at, at)
            if status in finals:
                run.phase, run.outcome = EventPhase.ENDED, status
            elif status in (EventStatus.STARTED, EventStatus.OPTED_IN):
                run.phase, run.took_part = EventPhase.ACTIVE, True
            elif status is EventStatus.OPTED_OUT:
                run.phase, run.sat_out = EventPhase.ACTIVE, True


_FINISHED_WITH_PARTICIPATION = (EventStatus.COMPLETED, EventStatus.PARTIALLY_COMPLETED_OPT_IN,
                                EventStatus.PARTIALLY_COMPLETED_OPT_OUT, EventStatus.CANCELLED,
                                EventStatus.SUPERSEDED)


def _status_word(status: EventStatus) -> str:
    return status.name.lower().replace("_", " ")


async def _participation(conn: AsyncConnection) -> list[tuple[str, int, str, bool]]:
    t = tables.dr_participation
    result = await conn.execute(select(t.c.meter_id, t.c.issuer_event_id, t.c.device_id, t.c.opted_out))
    return [(r.meter_id, int(r.issuer_event_id), r.device_id, bool(r.opted_out)) for r in result]


async def _status_history(conn: AsyncConnection) -> list[tuple[str, int, int, datetime]]:
    t = tables.event_status_reports
    result = await conn.execute(select(t.c.meter_id, t.c.issuer_event_id, t.c.status, t.c.at)
                                .order_by(t.c.at, t.c.id))
    return [(r.meter_id, int(r.issuer_event_id), int(r.status), r.at) for r in result]


async def save_cancel(conn: AsyncConnection, meter_id: str, event_id: int, at: datetime) -> None:
    """Record when a cancel takes the event (``dr_events.cancelled_at``): written by the DR core for the
    addressed, live event it cancels only, never for a cancel it ignored or an event already over."""
    t = tables.dr_events
    await conn.execute(update(t).where(and_(t.c.meter_id == meter_id, t.c.issuer_event_id == event_id))
                       .values(cancelled_at=at))


def participation_row(meter_id: str, event_id: int, device_id: str, opted_out: bool, at: datetime,
                      by: str) -> dict[str, Any]:
    """The ``dr_participation`` row of one choice of the customer ('' for the whole event)."""
    return {"meter_id": meter_id, "issuer_event_id": event_id, "device_id": device_id,
            "opted_out": opted_out, "changed_at": at, "changed_by": by[:64]}


async def _save_participation(conn: AsyncConnection, **values: Any) -> None:
    t = tables.dr_participation
    stmt = insert(conn, t).on_conflict_do_update(
        index_elements=["meter_id", "issuer_event_id", "device_id"],
        set_={k: values[k] for k in ("opted_out", "changed_at", "changed_by")},
    )
    await conn.execute(stmt, values)
