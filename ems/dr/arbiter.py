"""Merges the proposals of one control cycle into one decision per device, and says why.

The order is fixed (OpenEMS-style): the device's safety and the customer's comfort limits bound
everything; then the customer's own override, the utility's event, the customer's rules and the
defaults, each winning over the ones after it; within one source the higher priority wins, then
the first made. A proposal for an event the customer opted out of, or for a device taken out of
it, never wins. Every loser keeps the reason it lost, for the Devices page. The notes and whys are
``Text``s (a msgid and its values): the web shows them in the reader's language, the log in English.

Every customer input arrives here: an opt-out or a device taken out of an event as the event's
view in the snapshot, a change by hand or a command as an OVERRIDE proposal (``HOLD``: leave the
device as the customer set it). Nothing else decides what a device does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ems.local_text import N_
from ems.model import (
    ComfortLimits,
    DevicePreference,
    DeviceView,
    EventPhase,
    EventView,
    LoadHistory,
    Proposal,
    ProposalAction,
    ProposalSource,
    Text,
)

__all__ = ["Decision", "LoadHistory", "decide", "source_of"]

_DEVICE_ACTIONS = frozenset(ProposalAction) - {ProposalAction.NOTIFY}

# -- the notes and whys as catalog msgids (a value named *_phrase is itself a msgid; see Text) ---
NO_SUCH_DEVICE = N_("no such device")
EVENT_NOT_RUNNING = N_("event {event_id} is not running")
OPTED_OUT = N_("the customer opted out of event {event_id}")
DEVICE_TAKEN_OUT = N_("the customer took this device out of event {event_id}")
KEPT_OUT = N_("the customer keeps this device out of demand response")
CANNOT = N_("a {kind_phrase} cannot {action_phrase}")
KINDS = {"thermostat": N_("thermostat"), "switch": N_("switch"), "load_controller": N_("load controller"),
         "battery": N_("battery")}
ACTIONS = {"setpoints": N_("setpoints"), "offset": N_("offset"), "off": N_("off"), "on": N_("on"),
           "duty_cycle": N_("duty cycle"), "relay_event": N_("relay event"), "notify": N_("notify"),
           "hold": N_("hold")}
LOST = N_("lost")
LOST_TO_RULE = N_("lost to '{rule}'")
LOST_TO = {"override": N_("lost to override"), "event": N_("lost to event"), "rule": N_("lost to rule"),
           "default": N_("lost to default")}
OFFSET_HELD = N_("offset held to {offset_signed_c} °C (comfort limit)")
COOLING_HELD = N_("cooling held to {cooling_c} °C (comfort limit)")
HEATING_HELD = N_("heating held to {heating_c} °C (comfort limit)")
OUTSIDE = {"cooling": N_("cooling setpoint {asked_c} °C is outside the thermostat's {low_c}–{high_c} °C: "
                         "{used_c} °C used"),
           "heating": N_("heating setpoint {asked_c} °C is outside the thermostat's {low_c}–{high_c} °C: "
                         "{used_c} °C used")}
DEVICE_HELD = {"cooling": N_("cooling setpoint held to {used_c} °C (device limit)"),
               "heating": N_("heating setpoint held to {used_c} °C (device limit)")}
BACK_ON = N_("kept off for its longest allowed {max_off_min} min: back on")
STAYS_ON = N_("stays on at least {min_on_min} min after being off")


def source_of(p: Proposal | None) -> str:
    """Who a proposal speaks for, as kept with a command and an override: "event:main:7", "rule:x"."""
    if p is None:
        return "restore"
    if p.source is ProposalSource.OVERRIDE:
        return "override"
    if p.issuer_event_id is not None and p.source is ProposalSource.EVENT:
        return f"event:{p.meter_id}:{p.issuer_event_id}"
    if p.rule:
        return f"rule:{p.rule}" + (f"@event:{p.meter_id}:{p.issuer_event_id}" if p.issuer_event_id is not None else "")
    return p.source.name.lower()


@dataclass(frozen=True, slots=True)
class Decision:
    """The winning proposal for one device (None: nothing holds it; restore it), and the losers."""

    device_id: str
    winner: Proposal | None
    losers: tuple[tuple[Proposal, Text], ...] = ()  # each loser and why it lost
    note: tuple[Text, ...] = ()  # the limits that changed or refused what was asked (shown joined by "; ")


def _event_key(p: Proposal) -> tuple[str, int] | None:
    if p.issuer_event_id is None or p.meter_id is None:
        return None
    return (p.meter_id, p.issuer_event_id)


def _rank(p: Proposal) -> tuple[int, int]:
    return (int(p.source), p.priority)


def decide(
    proposals: Iterable[Proposal],
    devices: Iterable[DeviceView],
    events: Iterable[EventView],
    preferences: Mapping[str, DevicePreference],
    history: Mapping[str, LoadHistory],
    originals: Mapping[str, Mapping[str, object]],
    now: datetime,
) -> dict[str, Decision]:
    """One decision per known device (and per device a proposal names)."""
    by_event: dict[tuple[str, int], EventView] = {(e.event.meter_id, e.event.issuer_event_id): e for e in events}
    known = {d.info.device_id: d for d in devices}
    grouped: dict[str, list[Proposal]] = {device_id: [] for device_id in known}
    for p in proposals:
        if p.device_id is None or p.action not in _DEVICE_ACTIONS:
            continue
        grouped.setdefault(p.device_id, []).append(p)

    decisions: dict[str, Decision] = {}
    for device_id, candidates in grouped.items():
        pref = preferences.get(device_id) or DevicePreference(device_id)
        device = known.get(device_id)
        losers: list[tuple[Proposal, Text]] = []
        eligible: list[Proposal] = []
        for p in candidates:
            why = _refusal(p, device, pref, by_event)
            if why is not None:
                losers.append((p, why))
            else:
                eligible.append(p)
        # Stable: the highest (source, priority) wins; the first made among equals.
        eligible.sort(key=_rank, reverse=True)
        winner: Proposal | None = eligible[0] if eligible else None
        if eligible[1:]:
            lost = _lost(winner)
            losers.extend((p, lost) for p in eligible[1:])
        notes: list[Text] = []
        if winner is not None and device is not None:
            winner, notes = _within_limits(winner, device, pref.comfort, history.get(device_id),
                                           originals.get(device_id), now)
        decisions[device_id] = Decision(device_id, winner, tuple(losers), tuple(notes))
    return decisions


def _lost(winner: Proposal | None) -> Text:
    if winner is None:
        return Text(LOST)
    if winner.rule:
        return Text.of(LOST_TO_RULE, rule=winner.rule)
    return Text(LOST_TO.get(winner.source.name.lower(), LOST))


def _refusal(
    p: Proposal, device: DeviceView | None, pref: DevicePreference, events: Mapping[tuple[str, int], EventView]
) -> Text | None:
    """Why a proposal may not win at all (None if it may)."""
    if device is None:
        return Text(NO_SUCH_DEVICE)
    key = _event_key(p)
    if key is not None and p.source is not ProposalSource.OVERRIDE:
        view = events.get(key)
        if view is None or view.phase is EventPhase.ENDED:
            return Text.of(EVENT_NOT_RUNNING, event_id=key[1])
        if view.opted_out:
            return Text.of(OPTED_OUT, event_id=key[1])
        if p.device_id in view.excluded_devices:
            return Text.of(DEVICE_TAKEN_OUT, event_id=key[1])
        if not pref.takes_part:
            return Text(KEPT_OUT)
    if not _action_fits(p.action, device):
        kind, action = str(device.info.kind), str(p.action)
        return Text.of(CANNOT, kind_phrase=KINDS.get(kind, kind), action_phrase=ACTIONS.get(action, action))
    return None


def _action_fits(action: ProposalAction, device: DeviceView) -> bool:
    kind = device.info.kind
    if action is ProposalAction.HOLD:
        return True
    if action in (ProposalAction.SETPOINTS, ProposalAction.OFFSET):
        return kind == "thermostat"
    if action is ProposalAction.RELAY_EVENT:
        return kind == "load_controller"
    if action in (ProposalAction.ON, ProposalAction.OFF, ProposalAction.DUTY_CYCLE):
        return kind in ("switch", "load_controller")
    return False


def _within_limits(
    p: Proposal,
    device: DeviceView,
    comfort: ComfortLimits,
    history: LoadHistory | None,
    original: Mapping[str, object] | None,
    now: datetime,
) -> tuple[Proposal | None, list[Text]]:
    """Clamp a winner to the device's limits and the customer's comfort limits (and say so, in parts)."""
    if p.source is ProposalSource.OVERRIDE:
        return _device_limits(p, device)
    if p.action is ProposalAction.OFFSET and p.value is not None:
        if abs(p.value) > comfort.max_offset_c:
            clamped = comfort.max_offset_c if p.value > 0 else -comfort.max_offset_c
            return replace(p, value=clamped), [Text.of(OFFSET_HELD, offset_signed_c=clamped)]
        return p, []
    if p.action is ProposalAction.SETPOINTS:
        reading = device.reading
        base_cool = _num(original, "cooling_setpoint_c") or (reading.cooling_setpoint_c if reading else None)
        base_heat = _num(original, "heating_setpoint_c") or (reading.heating_setpoint_c if reading else None)
        cool, heat = p.cooling_setpoint_c, p.heating_setpoint_c
        notes: list[Text] = []
        if cool is not None and base_cool is not None and cool > base_cool + comfort.max_offset_c:
            cool = base_cool + comfort.max_offset_c
            notes.append(Text.of(COOLING_HELD, cooling_c=cool))
        if heat is not None and base_heat is not None and heat < base_heat - comfort.max_offset_c:
            heat = base_heat - comfort.max_offset_c
            notes.append(Text.of(HEATING_HELD, heating_c=heat))
        if comfort.max_setpoint_c is not None and cool is not None and cool > comfort.max_setpoint_c:
            cool = comfort.max_setpoint_c
            notes.append(Text.of(COOLING_HELD, cooling_c=cool))
        if comfort.min_setpoint_c is not None and heat is not None and heat < comfort.min_setpoint_c:
            heat = comfort.min_setpoint_c
            notes.append(Text.of(HEATING_HELD, heating_c=heat))
        bounded, device_notes = _device_limits(replace(p, cooling_setpoint_c=cool, heating_setpoint_c=heat), device)
        return bounded, [*notes, *device_notes]
    if p.action in (ProposalAction.OFF, ProposalAction.DUTY_CYCLE) and history is not None:
        if history.off_since is not None and now - history.off_since >= timedelta(minutes=comfort.max_off_min):
            return None, [Text.of(BACK_ON, max_off_min=comfort.max_off_min)]
        if history.on_since is not None and now - history.on_since < timedelta(minutes=comfort.min_on_min):
            return None, [Text.of(STAYS_ON, min_on_min=comfort.min_on_min)]
    return p, []


def _device_limits(p: Proposal, device: DeviceView) -> tuple[Proposal, list[Text]]:
    low, high = device.info.min_setpoint_c, device.info.max_setpoint_c
    cool, heat = p.cooling_setpoint_c, p.heating_setpoint_c
    notes: list[Text] = []
    for name, value in (("cooling", cool), ("heating", heat)):
        if value is None:
            continue
        bounded = min(max(value, low if low is not None else value), high if high is not None else value)
        if bounded != value:
            if low is not None and high is not None:
                notes.append(Text.of(OUTSIDE[name], asked_c=value, low_c=low, high_c=high, used_c=bounded))
            else:
                notes.append(Text.of(DEVICE_HELD[name], used_c=bounded))
            if name == "cooling":
                cool = bounded
            else:
                heat = bounded
    if not notes:
        return p, []
    return replace(p, cooling_setpoint_c=cool, heating_setpoint_c=heat), notes


def _num(mapping: Mapping[str, object] | None, key: str) -> float | None:
    if mapping is None:
        return None
    value = mapping.get(key)
    return float(value) if isinstance(value, int | float) else None
