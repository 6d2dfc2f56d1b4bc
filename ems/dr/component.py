"""Demand response as one component, and the facade the web and the integrations use.

It owns the devices, the events' lives, the rules, the cycle, the dispatcher and the customer's
overrides. Callers read it through typed queries (``events``, ``event``, ``device_statuses``,
``device``, ``event_actions``) that return frozen values, and act through ``set_participation``,
``replace_rules`` and ``override_device``; what they ask becomes a snapshot input or an OVERRIDE
proposal for the arbiter, never a device command.

It starts them in order (devices and events first, then the dispatcher that restores what a
crash left, then the cycle) and stops them in reverse, and tells the customer, in their own
language, when an event is announced, starts, ends or is cancelled (C6 3.3 steps 2-3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ems.dr.arbiter import Decision
from ems.dr.cycle import ControlCycle
from ems.dr.devices import DeviceRegistry, DeviceState
from ems.dr.dispatch import REASON_PARAMS, REASON_TEMPLATE, Dispatcher
from ems.dr.events import LoadControl, LoadControlSettings
from ems.dr.overrides import OverrideBook
from ems.dr.ports import DrHub
from ems.dr.rulebook import RuleBook
from ems.errors import Conflict, NotFound, RejectedCommand
from ems.local_text import (
    EVENT_ANNOUNCED,
    EVENT_CANCELLED,
    EVENT_ENDED,
    EVENT_ENDED_WITHOUT_YOU,
    EVENT_STARTED,
    local_message,
    render,
)
from ems.model import (
    ControlledDevice,
    DeviceInfo,
    DeviceOverride,
    DeviceReading,
    EventStatus,
    EventView,
    MessageImportance,
    ProposalAction,
    Text,
    Trigger,
    TriggerKind,
    UtilityConfiguration,
)
from ems.notices import notice_id
from ems.store import queries
from ems.tasks import TaskSet

if TYPE_CHECKING:  # numpy: imported when a load change is first measured, not at start
    from ems.dr.loadchange import LoadChange

_LOGGER = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "rules_file": "rules.yaml", "start_randomization_min": 30, "duration_randomization_min": 0,
    "enrollment_group": 0, "cycle_tick_s": 15.0, "telemetry_interval_s": 300.0, "device_reading_retention_days": 60,
    # A demand or device report within this many seconds (hub time) of the last cycle waits for it to pass.
    "cycle_min_gap_s": 2.0,
}


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device as the pages show it: what it is and says, what holds it and why."""

    info: DeviceInfo
    reading: DeviceReading | None
    available: bool
    detail: str
    last_seen: datetime | None
    decision: Decision | None  # the last cycle's: the winner, the losers and why
    controlled: ControlledDevice | None  # the dispatcher's record while it holds the device
    override: DeviceOverride | None  # the customer's, while in force


@dataclass(frozen=True, slots=True)
class EventAction:
    """A device command sent for an event (or the restore after it), as logged."""

    at: datetime
    device_id: str
    action: str
    detail: dict[str, Any]  # setpoints, the relayed event
    source: str
    reason: Text  # a row logged before reasons kept their msgid: its stored English as the msgid
    ok: bool
    error: str | None


class DemandResponse:
    """Owns everything between a DR event arriving and the last device put back."""

    def __init__(self, hub: DrHub, rulebook: RuleBook, section: dict[str, Any] | None = None) -> None:
        settings = {**DEFAULTS, **(section or {})}
        self._hub = hub
        self.rulebook = rulebook
        self.registry = DeviceRegistry(
            hub, telemetry_interval_s=settings["telemetry_interval_s"],
            reading_retention=timedelta(days=settings["device_reading_retention_days"]))
        self.load_control = LoadControl(
            hub,
            LoadControlSettings(
                start_randomization_min=settings["start_randomization_min"],
                duration_randomization_min=settings["duration_randomization_min"],
                enrollment_group=settings["enrollment_group"],
                seed=str(hub.data_dir.resolve()),
            ),
            device_classes=self._device_classes,
            clock=hub.clock,
            # What is reported as applied is what the dispatcher set (its record), not what was asked.
            dispatch_record=lambda: self.dispatcher.record()[0],
        )
        self.dispatcher = Dispatcher(hub, self.registry, clock=hub.clock)
        self.overrides = OverrideBook()
        self.cycle = ControlCycle(hub, self.registry, self.load_control, self.dispatcher, rulebook,
                                  overrides=self.overrides, tick_s=settings["cycle_tick_s"],
                                  routine_gap_s=settings["cycle_min_gap_s"], clock=hub.clock)
        self._unsubscribe: Any = None
        self._unsubscribe_configuration: Any = None
        self._tasks = TaskSet(_LOGGER, "demand response")

    def _device_classes(self) -> int:
        # Before any device is known every class is accepted: devices may still be joining.
        return self.registry.device_classes() or 0x0FFF

    async def start(self) -> None:
        await self.rulebook_load()
        await self.registry.start()
        await self.load_control.start()
        await self.dispatcher.start()
        self._unsubscribe = self.load_control.on_change(self._tell_customer)
        self._unsubscribe_configuration = self._hub.bus.listen(UtilityConfiguration, self._configured)
        await self.cycle.start()
        self._hub.every_day(time(10, 27), self.registry.purge, "device-retention")
        # The first event notice loads Babel's locale and calendar data (about 30 ms of CPU on the
        # loop as an event started, bench/loop.py): loaded in a thread in the background, at start.
        self._tasks.spawn(asyncio.to_thread(_warm_notice_text, self._hub.config.site.timezone), "warm-notice-text")

    async def rulebook_load(self) -> None:
        await asyncio.to_thread(self.rulebook.load)  # a file read and a parse: off the loop

    async def stop(self) -> None:
        await self._tasks.cancel_all()
        await self.cycle.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._unsubscribe_configuration is not None:
            self._unsubscribe_configuration()
        await self.load_control.stop()
        await self.registry.stop()

    def _configured(self, event: UtilityConfiguration) -> None:
        """The utility's program settings for this appliance (C6 3.1 step 15) replace the configured ones."""
        changes = {name: value for name in ("enrollment_group", "start_randomization_min", "duration_randomization_min")
                   if (value := getattr(event, name)) is not None}
        if changes:
            self.load_control.settings = dataclasses.replace(self.load_control.settings, **changes)
            _LOGGER.info("[%s] DR program settings from the utility: %s", event.meter_id,
                         ", ".join(f"{k}={v}" for k, v in sorted(changes.items())))

    # -- queries (frozen values) -----------------------------------------------------------

    def events(self) -> tuple[EventView, ...]:
        """The events that address this client, by scheduled start (one addressed elsewhere is not ours)."""
        return self.load_control.views()

    def event(self, meter_id: str, issuer_event_id: int) -> EventView:
        view = self.load_control.view(meter_id, issuer_event_id)
        if view is None:
            raise NotFound(f"no event {issuer_event_id} from meter {meter_id!r}")
        return view

    def device_statuses(self) -> tuple[DeviceStatus, ...]:
        """Every device, by name."""
        controlled, _history = self.dispatcher.record()
        return tuple(self._status(d, controlled)
                     for d in sorted(self.registry.devices.values(), key=lambda d: d.info.name.casefold()))

    def device(self, device_id: str) -> DeviceStatus:
        state = self.registry.get(device_id)
        if state is None:
            raise NotFound(f"no device {device_id!r}")
        return self._status(state, self.dispatcher.record()[0])

    def _status(self, d: DeviceState, controlled: Mapping[str, ControlledDevice]) -> DeviceStatus:
        device_id = d.info.device_id
        return DeviceStatus(d.info, d.reading, d.available, d.detail, d.last_seen,
                            self.dispatcher.decisions.get(device_id), controlled.get(device_id),
                            self.overrides.get(device_id))

    def device_names(self) -> dict[str, str]:
        return {d.info.device_id: d.info.name for d in self.registry.devices.values()}

    async def device_history(self, device_id: str, start: datetime, end: datetime) -> list[DeviceReading]:
        self.device(device_id)  # NotFound for an unknown one
        return await self.registry.history(device_id, start, end)

    async def event_actions(self, meter_id: str, issuer_event_id: int) -> list[EventAction]:
        """Every device command sent for the event (its own and its rules'), oldest first."""
        self.event(meter_id, issuer_event_id)  # NotFound for an unknown one
        rows = await self._hub.store.read("read event actions", queries.event_commands, meter_id, issuer_event_id)
        return [_action(r) for r in rows]

    async def load_change(self, meter_id: str, issuer_event_id: int, now: datetime) -> LoadChange:
        """The event's measured load change (live while it runs, final after); UnknownEvent if none."""
        from ems.dr.loadchange import measure_event

        view = self.load_control.view(meter_id, issuer_event_id)
        window = (view.effective_start, view.effective_end) if view is not None else None
        return await measure_event(self._hub, meter_id, issuer_event_id, now, window=window, views=self.events())

    # -- what the customer does ------------------------------------------------------------

    async def replace_rules(self, text: str, known_devices: list[str] | None = None) -> list[str]:
        """Put a new rules file in force (validated first; ConfigError lists its problems)."""
        warnings = await self.rulebook.replace(text, known_devices)
        self.cycle.request(Trigger(TriggerKind.TICK))
        return warnings

    def known_devices(self) -> list[str] | None:
        """The names and ids a rules file may name (None before any device is known)."""
        ids = list(self.registry.devices)
        return [*(d.info.name for d in self.registry.devices.values()), *ids] if ids else None

    def override_device(self, device_id: str, action: ProposalAction, *, by: str, until: datetime | None = None,
                        cooling_setpoint_c: float | None = None,
                        heating_setpoint_c: float | None = None) -> DeviceOverride:
        """The customer's command for one device (the web; later MQTT, OpenADR): an OVERRIDE proposal.

        It holds above the utility's event and the rules (the device's own limits still bound it)
        until ``until`` or ``end_override``; the arbiter decides and the dispatcher carries it out.
        """
        self.device(device_id)  # NotFound for an unknown one
        if action not in (ProposalAction.ON, ProposalAction.OFF, ProposalAction.SETPOINTS, ProposalAction.HOLD):
            raise RejectedCommand(f"a customer's command is on, off, setpoints or hold, not {action}")
        if action is ProposalAction.SETPOINTS and cooling_setpoint_c is None and heating_setpoint_c is None:
            raise RejectedCommand("setpoints: give a cooling or a heating setpoint")
        override = DeviceOverride(device_id, self._hub.clock(), by, action=action, until=until,
                                  cooling_setpoint_c=cooling_setpoint_c, heating_setpoint_c=heating_setpoint_c)
        self.overrides.add(override)
        self.cycle.request(Trigger(TriggerKind.OVERRIDE, device_id=device_id))
        return override

    def end_override(self, device_id: str) -> None:
        """End the customer's override of a device: the event and the rules decide again."""
        if not self.overrides.drop(device_id):
            raise Conflict(f"device {device_id!r} has no override of the customer's")
        self.cycle.request(Trigger(TriggerKind.OVERRIDE, device_id=device_id))

    async def set_participation(self, meter_id: str, issuer_event_id: int, *, opted_out: bool,
                                device_id: str | None = None, by: str = "customer") -> Any:
        if device_id is not None and self.registry.get(device_id) is None:
            raise NotFound(f"there is no device {device_id!r}")
        run = await self.load_control.set_participation(
            meter_id, issuer_event_id, opted_out=opted_out, device_id=device_id, by=by)
        if device_id is not None and not opted_out:
            # Put back into the event: a hand change made over it no longer holds the device.
            self.overrides.drop(device_id, event=(meter_id, issuer_event_id))
        self.cycle.request(Trigger(TriggerKind.OVERRIDE, meter_id, issuer_event_id, device_id))
        return run

    # -- telling the customer --------------------------------------------------------------

    def _tell_customer(self, trigger: Trigger) -> None:
        if trigger.meter_id is None or trigger.issuer_event_id is None:
            return
        run = self.load_control.run(trigger.meter_id, trigger.issuer_event_id)
        if run is None:
            return
        template = {
            TriggerKind.EVENT_ANNOUNCED: EVENT_ANNOUNCED,
            TriggerKind.EVENT_STARTED: EVENT_STARTED,
            TriggerKind.EVENT_ENDED: EVENT_CANCELLED if run.outcome is EventStatus.CANCELLED
            else EVENT_ENDED if run.acted and run.outcome is not EventStatus.COMPLETED_NO_PARTICIPATION
            else EVENT_ENDED_WITHOUT_YOU,
        }.get(trigger.kind)
        if template is None or run.outcome is EventStatus.SUPERSEDED:
            return
        if not self._hub.preferences.wants_notice(template):
            return  # the customer switched DR events off (program preferences): no notice either
        view = run.view()
        now = self._hub.clock()
        ending = trigger.kind is TriggerKind.EVENT_ENDED
        message = local_message(
            trigger.meter_id,
            notice_id("event", trigger.meter_id, trigger.issuer_event_id),  # one message per event, updated
            template,
            {"event_id": str(trigger.issuer_event_id), "start": view.effective_start.isoformat(),
             "end": view.effective_end.isoformat()},
            # The event has its own banner on the IHD: its notice must not push the utility's messages aside.
            importance=MessageImportance.LOW if ending else MessageImportance.MEDIUM,
            start=now,
            end=(view.effective_end if not ending else now) + timedelta(hours=12),
            received_at=now,
            timezone=self._hub.config.site.timezone,
        )
        self._hub.bus.publish(message)


def _warm_notice_text(timezone: str) -> None:
    """Render an event notice once, for nothing: what it loads stays loaded for the real ones."""
    at = datetime(2026, 7, 15, 16, 0, tzinfo=UTC).isoformat()
    render(EVENT_STARTED, {"event_id": "1", "start": at, "end": at}, timezone=timezone)


def rules_path(config_dir: Path, section: dict[str, Any] | None) -> Path:
    name = Path((section or {}).get("rules_file", DEFAULTS["rules_file"]))
    return name if name.is_absolute() else Path(config_dir) / name


def _action(row: Any) -> EventAction:
    """A logged command: its reason back as the Text the dispatcher logged (msgid and values)."""
    detail = {k: v for k, v in dict(row.detail or {}).items() if v is not None}
    template, params = detail.pop(REASON_TEMPLATE, None), detail.pop(REASON_PARAMS, None)
    if isinstance(template, str) and template and isinstance(params, dict):
        reason = Text(template, tuple((str(k), str(v)) for k, v in params.items()))
    else:
        reason = Text(str(row.reason))
    return EventAction(row.at, row.device_id, row.action, detail, row.source, reason, bool(row.ok), row.error)
