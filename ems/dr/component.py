"""Demand response as one component: the devices, the events' lives, the rules, the cycle, the dispatcher.

It starts them in order (devices and events first, then the dispatcher that restores what a
crash left, then the cycle) and stops them in reverse, and tells the customer, in their own
language, when an event is announced, starts, ends or is cancelled (C6 3.3 steps 2-3).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from ems.dr.cycle import ControlCycle
from ems.dr.devices import DeviceRegistry
from ems.dr.dispatch import Dispatcher
from ems.dr.events import LoadControl, LoadControlSettings
from ems.dr.rulebook import RuleBook
from ems.errors import RejectedCommand
from ems.local_text import (
    EVENT_ANNOUNCED,
    EVENT_CANCELLED,
    EVENT_ENDED,
    EVENT_STARTED,
    local_message,
)
from ems.model import EventStatus, MessageImportance, Proposal, Trigger, TriggerKind, utcnow
from ems.notices import notice_id

_LOGGER = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "rules_file": "rules.yaml", "start_randomization_min": 30, "duration_randomization_min": 0,
    "enrollment_group": 0, "cycle_tick_s": 15.0, "telemetry_interval_s": 300.0, "device_reading_retention_days": 60,
}


class DemandResponse:
    """Owns everything between a DR event arriving and the last device put back."""

    def __init__(self, hub: Any, rulebook: RuleBook, section: dict[str, Any] | None = None) -> None:
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
        )
        self.dispatcher = Dispatcher(hub, self.registry, on_override=self._device_touched)
        self.cycle = ControlCycle(hub, self.registry, self.load_control, self.dispatcher, rulebook,
                                  tick_s=settings["cycle_tick_s"])
        self._unsubscribe: Any = None

    def _device_classes(self) -> int:
        # Before any device is known every class is accepted: devices may still be joining.
        return self.registry.device_classes() or 0x0FFF

    async def start(self) -> None:
        await self.rulebook_load()
        await self.registry.start()
        await self.load_control.start()
        await self.dispatcher.start()
        self._unsubscribe = self.load_control.on_change(self._tell_customer)
        await self.cycle.start()
        self._hub.scheduler.add_job(self.registry.purge, "cron", hour=10, minute=27, id="device-retention",
                                    replace_existing=True, misfire_grace_time=3600)

    async def rulebook_load(self) -> None:
        await asyncio.to_thread(self.rulebook.load)  # a file read and a parse: off the loop

    async def stop(self) -> None:
        await self.cycle.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self.load_control.stop()
        await self.registry.stop()

    # -- what the customer does ------------------------------------------------------------

    async def set_participation(self, meter_id: str, issuer_event_id: int, *, opted_out: bool,
                                device_id: str | None = None, by: str = "customer") -> Any:
        if device_id is not None and self.registry.get(device_id) is None:
            raise RejectedCommand(f"there is no device {device_id!r}")
        run = await self.load_control.set_participation(
            meter_id, issuer_event_id, opted_out=opted_out, device_id=device_id, by=by)
        self.cycle.request(Trigger(TriggerKind.OVERRIDE, meter_id, issuer_event_id, device_id))
        return run

    async def _device_touched(self, device_id: str, proposal: Proposal) -> None:
        """A hand change on a controlled device takes it out of the event that held it."""
        if proposal.issuer_event_id is None or proposal.meter_id is None:
            return
        run = self.load_control.run(proposal.meter_id, proposal.issuer_event_id)
        if run is None or run.outcome is not None or device_id in run.excluded:
            return
        await self.load_control.set_participation(
            proposal.meter_id, proposal.issuer_event_id, opted_out=True, device_id=device_id, by="device")

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
            TriggerKind.EVENT_ENDED: EVENT_CANCELLED if run.outcome is EventStatus.CANCELLED else EVENT_ENDED,
        }.get(trigger.kind)
        if template is None or run.outcome is EventStatus.SUPERSEDED:
            return
        view = run.view()
        now = utcnow()
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


def rules_path(config_dir: Path, section: dict[str, Any] | None) -> Path:
    name = Path((section or {}).get("rules_file", DEFAULTS["rules_file"]))
    return name if name.is_absolute() else Path(config_dir) / name
