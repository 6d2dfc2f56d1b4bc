"""Merges the proposals of one control cycle into one decision per device, and says why.

The order is fixed (OpenEMS-style): the device's safety and the customer's comfort limits bound
everything; then the customer's own override, the utility's event, the customer's rules and the
defaults, each winning over the ones after it; within one source the higher priority wins, then
the first made. A proposal for an event the customer opted out of, or for a device taken out of
it, never wins. Every loser keeps the reason it lost, for the Devices page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ems.model import (
    ComfortLimits,
    DevicePreference,
    DeviceView,
    EventPhase,
    EventView,
    Proposal,
    ProposalAction,
    ProposalSource,
)

_DEVICE_ACTIONS = frozenset(ProposalAction) - {ProposalAction.NOTIFY}


@dataclass(frozen=True, slots=True)
class LoadHistory:
    """What the dispatcher did to a device lately (comfort limits on time off and on)."""

    off_since: datetime | None = None  # kept off by the EMS since
    on_since: datetime | None = None  # back on since (after the EMS had it off)


@dataclass(frozen=True, slots=True)
class Decision:
    """The winning proposal for one device (None: nothing holds it; restore it), and the losers."""

    device_id: str
    winner: Proposal | None
    losers: tuple[tuple[Proposal, str], ...] = ()
    note: str = ""  # a limit that changed or refused what was asked


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
        losers: list[tuple[Proposal, str]] = []
        eligible: list[Proposal] = []
        for p in candidates:
            why = _refusal(p, device, pref, by_event)
            if why:
                losers.append((p, why))
            else:
                eligible.append(p)
        # Stable: the highest (source, priority) wins; the first made among equals.
        eligible.sort(key=_rank, reverse=True)
        winner: Proposal | None = eligible[0] if eligible else None
        for p in eligible[1:]:
            losers.append((p, f"lost to {_describe_source(winner)}" if winner else "lost"))
        note = ""
        if winner is not None and device is not None:
            winner, note = _within_limits(winner, device, pref.comfort, history.get(device_id), originals.get(device_id), now)
        decisions[device_id] = Decision(device_id, winner, tuple(losers), note)
    return decisions


def _describe_source(p: Proposal | None) -> str:
    if p is None:
        return "nothing"
    return f"'{p.rule}'" if p.rule else p.source.name.lower()


def _refusal(
    p: Proposal, device: DeviceView | None, pref: DevicePreference, events: Mapping[tuple[str, int], EventView]
) -> str:
    """Why a proposal may not win at all ('' if it may)."""
    if device is None:
        return "no such device"
    key = _event_key(p)
    if key is not None and p.source is not ProposalSource.OVERRIDE:
        view = events.get(key)
        if view is None or view.phase is EventPhase.ENDED:
            return f"event {key[1]} is not running"
        if view.opted_out:
            return f"the customer opted out of event {key[1]}"
        if p.device_id in view.excluded_devices:
            return f"the customer took this device out of event {key[1]}"
        if not pref.takes_part:
            return "the customer keeps this device out of demand response"
    kind_ok = _action_fits(p.action, device)
    if not kind_ok:
        return f"a {device.info.kind} cannot {p.action.replace('_', ' ')}"
    return ""


def _action_fits(action: ProposalAction, device: DeviceView) -> bool:
    kind = device.info.kind
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
) -> tuple[Proposal | None, str]:
    """Clamp a winner to the device's limits and the customer's comfort limits."""
    if p.source is ProposalSource.OVERRIDE:
        return _device_limits(p, device)
    if p.action is ProposalAction.OFFSET and p.value is not None:
        if abs(p.value) > comfort.max_offset_c:
            clamped = comfort.max_offset_c if p.value > 0 else -comfort.max_offset_c
            return replace(p, value=clamped), f"offset held to {clamped:+.1f} °C (comfort limit)"
        return p, ""
    if p.action is ProposalAction.SETPOINTS:
        reading = device.reading
        base_cool = _num(original, "cooling_setpoint_c") or (reading.cooling_setpoint_c if reading else None)
        base_heat = _num(original, "heating_setpoint_c") or (reading.heating_setpoint_c if reading else None)
        cool, heat, notes = p.cooling_setpoint_c, p.heating_setpoint_c, []
        if cool is not None and base_cool is not None and cool > base_cool + comfort.max_offset_c:
            cool = base_cool + comfort.max_offset_c
            notes.append(f"cooling held to {cool:.1f} °C (comfort limit)")
        if heat is not None and base_heat is not None and heat < base_heat - comfort.max_offset_c:
            heat = base_heat - comfort.max_offset_c
            notes.append(f"heating held to {heat:.1f} °C (comfort limit)")
        if comfort.max_setpoint_c is not None and cool is not None and cool > comfort.max_setpoint_c:
            cool = comfort.max_setpoint_c
            notes.append(f"cooling held to {cool:.1f} °C (comfort limit)")
        if comfort.min_setpoint_c is not None and heat is not None and heat < comfort.min_setpoint_c:
            heat = comfort.min_setpoint_c
            notes.append(f"heating held to {heat:.1f} °C (comfort limit)")
        bounded, device_note = _device_limits(replace(p, cooling_setpoint_c=cool, heating_setpoint_c=heat), device)
        return bounded, "; ".join([*notes, device_note] if device_note else notes)
    if p.action in (ProposalAction.OFF, ProposalAction.DUTY_CYCLE) and history is not None:
        if history.off_since is not None and now - history.off_since >= timedelta(minutes=comfort.max_off_min):
            return None, f"kept off for its longest allowed {comfort.max_off_min:g} min: back on"
        if history.on_since is not None and now - history.on_since < timedelta(minutes=comfort.min_on_min):
            return None, f"stays on at least {comfort.min_on_min:g} min after being off"
    return p, ""


def _device_limits(p: Proposal, device: DeviceView) -> tuple[Proposal, str]:
    low, high = device.info.min_setpoint_c, device.info.max_setpoint_c
    cool, heat, notes = p.cooling_setpoint_c, p.heating_setpoint_c, []
    for name, value in (("cooling", cool), ("heating", heat)):
        if value is None:
            continue
        bounded = min(max(value, low if low is not None else value), high if high is not None else value)
        if bounded != value:
            notes.append(f"{name} setpoint {value:.1f} °C is outside the thermostat's "
                         f"{low:.1f}–{high:.1f} °C: {bounded:.1f} °C used" if low is not None and high is not None
                         else f"{name} setpoint held to {bounded:.1f} °C (device limit)")
            if name == "cooling":
                cool = bounded
            else:
                heat = bounded
    if not notes:
        return p, ""
    return replace(p, cooling_setpoint_c=cool, heating_setpoint_c=heat), "; ".join(notes)


def _num(mapping: Mapping[str, object] | None, key: str) -> float | None:
    if mapping is None:
        return None
    value = mapping.get(key)
    return float(value) if isinstance(value, int | float) else None
