"""The customer's overrides of single devices: seen in the snapshot, kept, turned into proposals.

A change by hand on a device the EMS holds (a setpoint or a switch that differs from what was
sent, once the device has had time to report the command) is the customer taking it in hand
(C6 3.3 step 4, per device). ``hand_changes`` finds them in a frozen snapshot (pure); the
``OverrideBook`` keeps them, and each cycle turns the ones in force into OVERRIDE proposals the
arbiter ranks above the event and the rules. An override lasts while what it overrode still asks
something of the device (the event runs, the rule still proposes), or until its ``until``; the
customer putting the device back ends it at once. Commands the customer gives (the web, later
MQTT and OpenADR) go into the same book.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from ems.dr.arbiter import source_of
from ems.local_text import N_
from ems.model import (
    DeviceOverride,
    EventPhase,
    EventView,
    Proposal,
    ProposalAction,
    ProposalSource,
    Snapshot,
    Text,
)

_LOGGER = logging.getLogger(__name__)

SETPOINT_TOLERANCE_C = 0.25
REPORT_GRACE = timedelta(seconds=5)  # a report this soon after a command may predate it

HELD_BY_HAND = Text(N_("Changed by hand: left as the customer set it"))
CUSTOMER_COMMAND = Text(N_("The customer's command"))


def hand_changes(snapshot: Snapshot) -> list[DeviceOverride]:
    """Devices whose latest report contradicts what the dispatcher last sent them (after it settled)."""
    found: list[DeviceOverride] = []
    for device in snapshot.devices:
        reading = device.reading
        held = snapshot.controlled.get(device.info.device_id)
        if reading is None or held is None or held.sent_at is None or not held.sent_source:
            continue
        if reading.at < held.sent_at + REPORT_GRACE:
            continue
        touched = (
            (held.sent_on is not None and reading.on is not None and reading.on != held.sent_on)
            or (held.sent_cooling_c is not None and reading.cooling_setpoint_c is not None
                and abs(reading.cooling_setpoint_c - held.sent_cooling_c) > SETPOINT_TOLERANCE_C)
            or (held.sent_heating_c is not None and reading.heating_setpoint_c is not None
                and abs(reading.heating_setpoint_c - held.sent_heating_c) > SETPOINT_TOLERANCE_C)
        )
        if touched:
            meter_id, event_id = held.sent_event if held.sent_event is not None else (None, None)
            found.append(DeviceOverride(device.info.device_id, reading.at, "device", overrides=held.sent_source,
                                        meter_id=meter_id, issuer_event_id=event_id))
    return found


class OverrideBook:
    """The overrides in force, one per device (the newest wins)."""

    def __init__(self) -> None:
        self._by_device: dict[str, DeviceOverride] = {}

    def add(self, override: DeviceOverride) -> None:
        _LOGGER.info("Device %s taken in hand (%s) over %s", override.device_id, override.by,
                     override.overrides or "nothing")
        self._by_device[override.device_id] = override

    def drop(self, device_id: str, *, event: tuple[str, int] | None = None) -> bool:
        """End a device's override (only one made over ``event``, when given); True if one ended."""
        held = self._by_device.get(device_id)
        if held is None or (event is not None and (held.meter_id, held.issuer_event_id) != event):
            return False
        del self._by_device[device_id]
        return True

    def get(self, device_id: str) -> DeviceOverride | None:
        return self._by_device.get(device_id)

    def in_force(self) -> tuple[DeviceOverride, ...]:
        return tuple(self._by_device.values())

    def lapse(self, proposals: Iterable[Proposal], events: Iterable[EventView], now: datetime) -> list[DeviceOverride]:
        """Drop the overrides whose time is up, whose event is over, or whose rule asks nothing any more."""
        asking: set[tuple[str | None, str]] = {(p.device_id, source_of(p)) for p in proposals if p.device_id is not None}
        running = {view.key for view in events if view.phase is not EventPhase.ENDED}
        ended = [o for o in self._by_device.values() if (o.until is not None and o.until <= now) or _over(o, running, asking)]
        for o in ended:
            del self._by_device[o.device_id]
            _LOGGER.info("Device %s: the customer's override ended (%s no longer asks)", o.device_id,
                         o.overrides or "its time is up")
        return ended


def _over(o: DeviceOverride, running: set[tuple[str, int]], asking: set[tuple[str | None, str]]) -> bool:
    if o.meter_id is not None and o.issuer_event_id is not None:
        return (o.meter_id, o.issuer_event_id) not in running  # taken out of it: held until it ends
    return bool(o.overrides) and (o.device_id, o.overrides) not in asking


def proposals_for(overrides: Iterable[DeviceOverride]) -> list[Proposal]:
    """The OVERRIDE proposals of the overrides in force (the arbiter ranks them first)."""
    out: list[Proposal] = []
    for o in overrides:
        if o.action is ProposalAction.HOLD:
            why = HELD_BY_HAND if o.by == "device" else CUSTOMER_COMMAND  # a hold asked for is a command
            out.append(Proposal(o.device_id, ProposalAction.HOLD, ProposalSource.OVERRIDE, why,
                                meter_id=o.meter_id, issuer_event_id=o.issuer_event_id))
        else:
            out.append(Proposal(o.device_id, o.action, ProposalSource.OVERRIDE, CUSTOMER_COMMAND,
                                cooling_setpoint_c=o.cooling_setpoint_c, heating_setpoint_c=o.heating_setpoint_c,
                                meter_id=o.meter_id, issuer_event_id=o.issuer_event_id))
    return out
