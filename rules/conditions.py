"""Whether a rule holds now: its triggers (any) and conditions (all), over one snapshot.

Triggers are levels ("while"), except an event's ``ended`` phase, which holds only in the cycle
whose trigger is that event ending. A trigger on events also says which events made it hold,
so actions can name them (notifications, proposals tied to the event). Events the customer
opted out of never make a rule hold before they end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ems.model import (
    DeviceKind,
    DevicePreference,
    DeviceView,
    EventPhase,
    EventView,
    Snapshot,
    TriggerKind,
)
from rules.ruleset import (
    DaysCondition,
    DemandCondition,
    DemandTrigger,
    DemandWindowCondition,
    EventCondition,
    EventFilter,
    EventTrigger,
    Phase,
    PriceTrigger,
    Rule,
    RuleSet,
    ScheduleTrigger,
    SeasonCondition,
    Temperature,
    TierTrigger,
    TimeCondition,
    Where,
)
from rules.shedding import Candidate

# The demand history must reach back to within this of a "for N minutes" window's start.
HISTORY_SLACK = timedelta(minutes=1)


@dataclass(slots=True)
class Context:
    """What every rule looks at, worked out once per evaluation (lookups by name, local time)."""

    snapshot: Snapshot
    summer_months: frozenset[int]
    minute: int
    weekday: int
    month: int
    by_key: dict[str, DeviceView]  # casefolded name and id
    preferences: dict[str, DevicePreference]  # by device id
    target_cache: dict[object, tuple[DeviceView, ...]] = field(default_factory=dict)
    candidate_cache: dict[str, Candidate | None] = field(default_factory=dict)  # by device id
    clock_cache: dict[datetime, str] = field(default_factory=dict)
    # rules.engine's: (id of a target tuple, id of an event view, kinds) -> (that tuple, its eligible devices)
    eligible_cache: dict[tuple[int, int, object], tuple[tuple[DeviceView, ...], tuple[DeviceView, ...]]] = field(
        default_factory=dict)
    until_cache: dict[int, tuple[str, dict[str, object]]] = field(default_factory=dict)  # by id of an event view

    @classmethod
    def of(cls, ruleset: RuleSet, snapshot: Snapshot) -> Context:
        local = snapshot.local
        by_key: dict[str, DeviceView] = {}
        for d in snapshot.devices:
            by_key.setdefault(d.info.name.casefold(), d)
            by_key[d.info.device_id.casefold()] = d
        preferences: dict[str, DevicePreference] = {}
        for p in ruleset.preferences:  # the rules file names devices; the snapshot's are resolved
            device = by_key.get(p.device_id.casefold())
            if device is not None:
                preferences[device.info.device_id] = p
        preferences.update((p.device_id, p) for p in snapshot.preferences)
        for d in snapshot.devices:  # the defaults made once, not on every lookup
            device_id = d.info.device_id
            if device_id not in preferences:
                preferences[device_id] = DevicePreference(device_id)
        return cls(snapshot, ruleset.summer_months, local.hour * 60 + local.minute, local.weekday(),
                   local.month, by_key, preferences)

    def preference(self, device_id: str) -> DevicePreference:
        return self.preferences.get(device_id) or DevicePreference(device_id)


def matches(view: EventView, f: EventFilter) -> bool:
    """The event's criticality, device classes and enrollment group are what the filter asks."""
    ev = view.event
    if not f.min_criticality <= int(ev.criticality) <= f.max_criticality:
        return False
    if f.device_class and not int(ev.device_class) & f.device_class:
        return False
    return f.enrollment_group is None or ev.enrollment_group in (0, f.enrollment_group)


def holds(rule: Rule, ctx: Context) -> tuple[bool, tuple[EventView, ...]]:
    """Whether the rule holds, and the events that made it hold (most critical first)."""
    if not rule.enabled:
        return False, ()
    for condition in rule.conditions:
        if not _condition(condition, ctx):
            return False, ()
    if not rule.triggers:
        return True, ()
    held = False
    events: list[EventView] = []
    for trigger in rule.triggers:
        if isinstance(trigger, EventTrigger):
            found = _event_trigger(trigger, ctx)
            if found:
                held = True
                events.extend(e for e in found if e not in events)
        elif not held and _trigger(trigger, ctx):
            held = True
    events.sort(key=lambda v: (-int(v.event.criticality), -v.effective_start.timestamp()))
    return held, tuple(events)


def _event_trigger(t: EventTrigger, ctx: Context) -> list[EventView]:
    snap = ctx.snapshot
    found = []
    for view in snap.events:
        if not matches(view, t.filter):
            continue
        if t.phase is Phase.ENDED:
            trig = snap.trigger
            if (trig.kind is TriggerKind.EVENT_ENDED and trig.issuer_event_id == view.event.issuer_event_id
                    and trig.meter_id in (None, view.event.meter_id)):
                found.append(view)
            continue
        if view.opted_out:
            continue
        if t.phase is Phase.ACTIVE and view.phase is EventPhase.ACTIVE:
            found.append(view)
        elif t.phase is Phase.ANNOUNCED and view.phase is EventPhase.SCHEDULED:
            lead = view.effective_start - snap.at
            if t.within_min is None or timedelta(0) <= lead <= timedelta(minutes=t.within_min):
                found.append(view)
    return found


def _trigger(t: object, ctx: Context) -> bool:
    check = _TRIGGERS.get(type(t))
    if check is None:
        raise TypeError(f"unknown trigger {t!r}")
    return check(t, ctx)


def _price(t: PriceTrigger, ctx: Context) -> bool:
    price = ctx.snapshot.price_per_kwh
    return price is not None and price >= t.at_least_per_kwh


def _tier(t: TierTrigger, ctx: Context) -> bool:
    tier = ctx.snapshot.price_tier
    return tier is not None and tier >= t.at_least


def _demand_trigger(t: DemandTrigger, ctx: Context) -> bool:
    return demand_above_for(ctx.snapshot, t.above_kw, t.for_min)


def _schedule(t: ScheduleTrigger, ctx: Context) -> bool:
    return ctx.weekday in t.days and (t.window is None or t.window.contains(ctx.minute))


def demand_above_for(snap: Snapshot, above_kw: float, for_min: float) -> bool:
    """Demand now, and in every reading of the last ``for_min`` minutes, is above ``above_kw``."""
    if snap.demand_kw is None or snap.demand_kw <= above_kw:
        return False
    if for_min <= 0:
        return True
    start = snap.at - timedelta(minutes=for_min)
    history = snap.demand_history
    if not history or history[0][0] > start + HISTORY_SLACK:
        return False  # not enough history to say it has been high that long
    level_at_start: float | None = None
    for at, kw in history:
        if at <= start:
            level_at_start = kw
        elif kw <= above_kw:
            return False
    return level_at_start is None or level_at_start > above_kw


def _temperature(t: Temperature, ctx: Context) -> bool:
    if t.where is Where.OUTDOOR:
        return _in_range(ctx.snapshot.outdoor_c, t)
    wanted = t.device.casefold() if t.device else None
    for d in ctx.snapshot.devices:
        if d.info.kind != DeviceKind.THERMOSTAT or d.reading is None:
            continue
        if wanted is not None and wanted not in (d.info.name.casefold(), d.info.device_id.casefold()):
            continue
        if _in_range(d.reading.indoor_c, t):
            return True
    return False


def _in_range(value: float | None, t: Temperature) -> bool:
    if value is None:
        return False
    return (t.above_c is None or value > t.above_c) and (t.below_c is None or value < t.below_c)


def _condition(c: object, ctx: Context) -> bool:
    check = _CONDITIONS.get(type(c))
    if check is None:
        raise TypeError(f"unknown condition {c!r}")
    return check(c, ctx)


def _time(c: TimeCondition, ctx: Context) -> bool:
    return c.window.contains(ctx.minute)


def _days(c: DaysCondition, ctx: Context) -> bool:
    return ctx.weekday in c.days


def _season(c: SeasonCondition, ctx: Context) -> bool:
    return (ctx.month in ctx.summer_months) == c.summer


def _demand_condition(c: DemandCondition, ctx: Context) -> bool:
    demand = ctx.snapshot.demand_kw
    if demand is None:
        return False
    return (c.above_kw is None or demand > c.above_kw) and (c.below_kw is None or demand < c.below_kw)


def projected_window_kw(snap: Snapshot, window_min: int) -> float | None:
    """The current demand window's average if demand stays as it is now to the window's end.

    Windows are on the clock (the quarter or half hour); what was used since the window began is
    the demand history held as steps (each reading until the next), the rest is today's demand.
    """
    if snap.demand_kw is None:
        return None
    window_s = window_min * 60
    now_s = snap.at.timestamp()
    offset = snap.local.utcoffset()
    local_s = now_s + (offset.total_seconds() if offset is not None else 0.0)
    start_s = now_s - local_s % window_s
    kwh = 0.0
    level: float | None = None
    since = start_s
    for at, kw in snap.demand_history:
        t = at.timestamp()
        if t <= start_s:
            level = kw
            continue
        if t > now_s:
            break
        if level is not None:
            kwh += level * (t - since) / 3600
        level, since = kw, t
    if level is None:  # no reading from the window's start: today's demand stands for the part unseen
        level = snap.demand_kw
    kwh += level * (now_s - since) / 3600
    kwh += snap.demand_kw * (start_s + window_s - now_s) / 3600
    return kwh / (window_s / 3600)


def _demand_window(c: DemandWindowCondition, ctx: Context) -> bool:
    snap = ctx.snapshot
    window = snap.demand_window_min or 15
    projected = projected_window_kw(snap, window)
    if projected is None:
        return False
    limits = [c.above_kw] if c.above_kw is not None else []
    if c.above_peak and snap.demand_peak_kw is not None:
        limits.append(snap.demand_peak_kw)
    return bool(limits) and projected > min(limits)


def _event_condition(c: EventCondition, ctx: Context) -> bool:
    active = any(v.phase is EventPhase.ACTIVE and not v.opted_out and matches(v, c.filter)
                 for v in ctx.snapshot.events)
    return active == c.active


# By the exact type (the rule types are final dataclasses): one lookup, not a chain of isinstance.
_TRIGGERS: dict[type, Callable[[Any, Context], bool]] = {
    PriceTrigger: _price,
    TierTrigger: _tier,
    DemandTrigger: _demand_trigger,
    Temperature: _temperature,
    ScheduleTrigger: _schedule,
}
_CONDITIONS: dict[type, Callable[[Any, Context], bool]] = {
    TimeCondition: _time,
    DaysCondition: _days,
    SeasonCondition: _season,
    Temperature: _temperature,
    DemandCondition: _demand_condition,
    DemandWindowCondition: _demand_window,
    EventCondition: _event_condition,
}
