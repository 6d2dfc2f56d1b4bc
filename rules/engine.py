"""Evaluating the rules: every rule that holds turns its actions into proposals, with a reason.

A reason is a ``Text`` (a catalog msgid and its values), made once per distinct reason of a rule
and shared by the proposals that give it; its English and each reader's language are rendered
where it is shown, never here.

``evaluate`` is called on every control cycle with the current snapshot; a proposal holds only
while it is returned (the dispatcher restores a device nothing holds any more), so nothing is
remembered between calls but the rules' reasons (Texts, pure functions of their values, which
come back cycle after cycle). What many rules share (a target list's devices that may take part
in an event, an event's "until") is worked out once per call, in the ``Context``. One proposal
at most per device, source and rule: when two actions of one rule (or two events it follows) ask
for the same device, the first one stands.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache, partial

from ems.local_text import N_
from ems.model import (
    Criticality,
    DeviceKind,
    DeviceView,
    EventPhase,
    EventView,
    Proposal,
    ProposalAction,
    ProposalSource,
    Snapshot,
    Text,
)
from rules.conditions import Context, holds
from rules.ruleset import (
    Action,
    DutyCycleAction,
    EventTrigger,
    FollowEventAction,
    NotifyAction,
    OffsetAction,
    ReduceLoadAction,
    Rule,
    RuleSet,
    ScheduleTrigger,
    SetpointAction,
    ShedToLimitAction,
    SwitchAction,
    Target,
    TargetBy,
)
from rules.shedding import Candidate, ShedPlan, plan_shedding, thermostat_kw_per_c

_LOGGER = logging.getLogger(__name__)

# An event that addresses a thermostat without setpoints, offsets or a load adjustment:
# hold it this far from comfort (never beyond the customer's own limit).
DEFAULT_EVENT_OFFSET_C = 2.0
_SWITCHED = (DeviceKind.SWITCH, DeviceKind.LOAD_CONTROLLER)
_reported_unknown: set[tuple[str, str]] = set()  # logging only: say once per rule and name

# --- The reasons as catalog msgids (web.control_api renders them in the reader's language) --
# A value named ``*_phrase`` is itself a msgid, filled from the same values; see ems.model.Text.

Values = dict[str, object]
What = tuple[str, Values]  # a part of a reason: a msgid and its values, before they become a Text


RULE_REASON = N_("Rule '{rule}': {what_phrase}")
RULE_REASON_UNTIL = N_("Rule '{rule}': {what_phrase} {until_phrase}")
EVENT_REASON = N_("Event {event_id} ({level_phrase}, until {end_time}): {what_phrase} — rule '{rule}'")
NOTIFY_REASON = N_("Rule '{rule}'")
UNTIL_EVENT_STARTS = N_("until event {event_id} starts at {start_time}")
DURING_EVENT = N_("during event {event_id}, until {end_time}")
UNTIL_CLOCK = N_("until {until_clock}")
SETPOINTS = {
    (True, False): N_("cooling {cooling_c} °C"),
    (False, True): N_("heating {heating_c} °C"),
    (True, True): N_("cooling {cooling_c} °C, heating {heating_c} °C"),
}
OFFSET_WORDS = {
    (True, False): N_("{offset_c} °C warmer than comfort"),
    (True, True): N_("{offset_c} °C cooler than comfort"),
    (False, False): N_("{offset_c} °C cooler than usual"),
    (False, True): N_("{offset_c} °C warmer than usual"),
}
SWITCH_ON, SWITCH_OFF = N_("on"), N_("off")
DUTY = N_("on {duty_pct} percent of the time")
HANDED = N_("handed to the device")
SHED = {
    ("off", "limit"): N_("off to keep demand under {limit_num} kW ({plan_phrase})"),
    ("off", "cut"): N_("off to cut demand by {cut_pct} % ({plan_phrase})"),
    ("offset", "limit"): N_("{offset_c} °C from comfort to keep demand under {limit_num} kW ({plan_phrase})"),
    ("offset", "cut"): N_("{offset_c} °C from comfort to cut demand by {cut_pct} % ({plan_phrase})"),
}
PLAN_NOTHING = N_("nothing to shed")
PLAN_MET = N_("sheds about {expected_kw} kW of the {needed_kw} kW needed")
PLAN_SHORT = N_("can shed only {expected_kw} kW of the {needed_kw} kW needed ({short_kw} kW short)")
PLAN_PHRASES = {"nothing": PLAN_NOTHING, "met": PLAN_MET, "short": PLAN_SHORT}  # by ShedPlan.outcome()
LEVELS = {
    Criticality.GREEN: N_("green"),
    Criticality.LEVEL_1: N_("urgency 1 of 5"),
    Criticality.LEVEL_2: N_("urgency 2 of 5"),
    Criticality.LEVEL_3: N_("urgency 3 of 5"),
    Criticality.LEVEL_4: N_("urgency 4 of 5"),
    Criticality.LEVEL_5: N_("urgency 5 of 5"),
    Criticality.EMERGENCY: N_("emergency"),
    Criticality.PLANNED_OUTAGE: N_("planned outage"),
    Criticality.SERVICE_DISCONNECT: N_("service disconnect"),
    Criticality.UTILITY_1: N_("utility 1"),
    Criticality.UTILITY_2: N_("utility 2"),
    Criticality.UTILITY_3: N_("utility 3"),
    Criticality.UTILITY_4: N_("utility 4"),
    Criticality.UTILITY_5: N_("utility 5"),
}
OTHER_LEVEL = N_("criticality {level_num}")


def evaluate(ruleset: RuleSet, snapshot: Snapshot) -> list[Proposal]:
    """Every proposal the rules make for this snapshot (notifications have no device)."""
    ctx = Context.of(ruleset, snapshot)
    proposals: list[Proposal] = []
    for rule in ruleset.rules:
        held, events = holds(rule, ctx)
        if held:
            proposals.extend(_rule_proposals(rule, events, ctx))
    seen: set[tuple[str, ProposalSource, str]] = set()
    out = []
    for p in proposals:
        if p.device_id is not None:
            key = (p.device_id, p.source, p.rule)
            if key in seen:
                continue
            seen.add(key)
        out.append(p)
    return out


def unknown_targets(ruleset: RuleSet, devices: Iterable[DeviceView]) -> list[str]:
    """Device names the rules (or device settings) use that no device of the home has."""
    keys: set[str] = set()
    for d in devices:
        keys.update((d.info.name.casefold(), d.info.device_id.casefold()))
    found = [f"rule '{r.name}': no device named {t.value!r} (ignored until one joins)"
             for r in ruleset.rules for t in r.targets or ()
             if t.by is TargetBy.NAME and str(t.value).casefold() not in keys]
    found.extend(f"devices: no device named {p.device_id!r} (its settings wait until it joins)"
                 for p in ruleset.preferences if p.device_id.casefold() not in keys)
    return found


# --- One rule ---------------------------------------------------------------------------


def _rule_proposals(rule: Rule, events: tuple[EventView, ...], ctx: Context) -> list[Proposal]:
    out: list[Proposal] = []
    for action in rule.actions:
        if isinstance(action, FollowEventAction):
            out.extend(_follow_events(rule, events, ctx))
        elif isinstance(action, NotifyAction):
            out.append(_notify(rule, action, events, ctx))
        else:
            out.extend(_device_action(rule, action, events, ctx))
    return out


def _targets(rule: Rule, ctx: Context) -> tuple[DeviceView, ...]:
    """The devices a rule names, in the snapshot's order; no targets means every device."""
    if rule.targets is None:
        return ctx.snapshot.devices
    if len(rule.targets) == 1:
        return _resolve(rule.targets[0], rule, ctx)
    ids = {d.info.device_id for t in rule.targets for d in _resolve(t, rule, ctx)}
    return tuple(d for d in ctx.snapshot.devices if d.info.device_id in ids)


def _resolve(t: Target, rule: Rule, ctx: Context) -> tuple[DeviceView, ...]:
    """One target's devices, worked out once per evaluation for all the rules that name it."""
    key = (t.by, str(t.value).casefold() if t.by is TargetBy.NAME else t.value)
    found = ctx.target_cache.get(key)
    if found is None:
        devices = ctx.snapshot.devices
        if t.by is TargetBy.ALL:
            found = devices
        elif t.by is TargetBy.KIND:
            found = tuple(d for d in devices if d.info.kind == t.value)
        elif t.by is TargetBy.DEVICE_CLASS:
            found = tuple(d for d in devices if int(d.info.device_class) & int(t.value))
        else:
            device = ctx.by_key.get(str(key[1]))
            found = (device,) if device is not None else ()
        ctx.target_cache[key] = found
    if not found and t.by is TargetBy.NAME and (rule.name, str(t.value)) not in _reported_unknown:
        if len(_reported_unknown) < 1000:
            _reported_unknown.add((rule.name, str(t.value)))
            _LOGGER.warning("Rule '%s': no device named %r; ignored until one joins", rule.name, t.value)
    return found


# The kinds of device each action can move (absent: any kind, as shedding weighs every target).
_ACTION_KINDS: dict[type, frozenset[DeviceKind]] = {
    SetpointAction: frozenset({DeviceKind.THERMOSTAT}),
    OffsetAction: frozenset({DeviceKind.THERMOSTAT}),
    SwitchAction: frozenset(_SWITCHED),
    DutyCycleAction: frozenset(_SWITCHED),
}


def _eligible(targets: tuple[DeviceView, ...], event: EventView | None, kinds: frozenset[DeviceKind] | None,
              ctx: Context) -> tuple[DeviceView, ...]:
    """Of ``targets``, the devices of ``kinds`` (None: any) that may take part in ``event``.

    Worked out once per evaluation for all the rules that share a target list (the same tuple,
    as ``_resolve`` hands it out) and an event: many rules name the same devices. The cache
    keeps ``targets`` alive with its answer, so its ``id`` cannot be reused meanwhile.
    """
    key = (id(targets), id(event), kinds)
    cached = ctx.eligible_cache.get(key)
    if cached is not None:
        return cached[1]
    found = tuple(d for d in targets
                  if (kinds is None or d.info.kind in kinds) and _may_take_part(d, event, ctx))
    ctx.eligible_cache[key] = (targets, found)
    return found


def _device_action(rule: Rule, action: Action, events: tuple[EventView, ...], ctx: Context) -> list[Proposal]:
    event = _live(events)
    kinds = _ACTION_KINDS.get(type(action))
    devices = _eligible(_targets(rule, ctx), event, kinds, ctx)
    if not devices:
        return []
    base = partial(Proposal, source=ProposalSource.RULE, rule=rule.name, priority=rule.priority,
                   meter_id=event.event.meter_id if event else None,
                   issuer_event_id=event.event.issuer_event_id if event else None)
    until = _until(rule, events, ctx)
    until_key = None if until is None else (until[0], _items(until[1]))

    def reason(what: What) -> Text:
        # Most devices of one rule share a reason, and the next cycle gives the same one again.
        return _rule_text_of(rule.name, what[0], _items(what[1]), until_key)

    out: list[Proposal] = []
    if isinstance(action, SetpointAction):
        text = reason(_setpoints_text(action.cooling_c, action.heating_c))
        for d in devices:  # thermostats only
            saving = _setpoint_saving(d, action.cooling_c, action.heating_c)
            out.append(base(d.info.device_id, ProposalAction.SETPOINTS, reason=text,
                            cooling_setpoint_c=action.cooling_c, heating_setpoint_c=action.heating_c,
                            expected_kw_reduction=saving))
    elif isinstance(action, OffsetAction):
        for d in devices:  # thermostats only
            out.append(base(d.info.device_id, ProposalAction.OFFSET, value=action.offset_c,
                            reason=reason(_offset_text(d, action.offset_c)),
                            expected_kw_reduction=max(0.0, action.offset_c) * _kw_per_c(d)))
    elif isinstance(action, SwitchAction):
        verb = ProposalAction.ON if action.on else ProposalAction.OFF
        text = reason((SWITCH_ON if action.on else SWITCH_OFF, {}))
        for d in devices:  # switched devices only
            saving = 0.0 if action.on else _switch_kw(d)
            out.append(base(d.info.device_id, verb, reason=text, expected_kw_reduction=saving))
    elif isinstance(action, DutyCycleAction):
        text = reason((DUTY, {"duty_pct": action.pct}))
        for d in devices:  # switched devices only
            out.append(base(d.info.device_id, ProposalAction.DUTY_CYCLE, value=action.pct, reason=text,
                            expected_kw_reduction=_switch_kw(d) * (1 - action.pct / 100)))
    elif isinstance(action, ShedToLimitAction | ReduceLoadAction):
        baseline = _baseline(ctx, devices)
        if baseline is None:
            return []  # no demand reading yet: nothing to measure against
        goal_values: Values
        if isinstance(action, ShedToLimitAction):
            target, goal_kind, goal_values = baseline - action.limit_kw, "limit", {"limit_num": action.limit_kw}
        else:
            target, goal_kind, goal_values = baseline * action.pct / 100, "cut", {"cut_pct": action.pct}
        plan = plan_shedding(_candidates(devices, ctx), target)
        plan_values = _plan_values(plan)
        out.extend(_shed_proposals(plan, base, lambda shed, values: reason(
            _shed_text(shed, goal_kind, goal_values | values, plan_values))))
    return out


def _shed_proposals(plan: ShedPlan, base: Callable[..., Proposal],
                    reason: Callable[[str, Values], Text]) -> list[Proposal]:
    out = []
    off: Text | None = None  # the same for every device the plan switches off: made once
    for s in plan.sheds:
        if s.offset_c is None:
            if off is None:
                off = reason("off", {})
            out.append(base(s.device_id, ProposalAction.OFF, reason=off, expected_kw_reduction=s.kw))
        else:
            out.append(base(s.device_id, ProposalAction.OFFSET, value=s.offset_c,
                            reason=reason("offset", {"offset_c": s.offset_c}), expected_kw_reduction=s.kw))
    return out


# --- Following an event -----------------------------------------------------------------


def addresses(view: EventView, device: DeviceView) -> bool:
    """DRLC §2.12 item 1 (as ems.dr.events): a device class bit in common, and the same
    enrollment group, or group 0 on either side (0 in the event means every group)."""
    ev = view.event
    if not int(ev.device_class) & int(device.info.device_class):
        return False
    group = device.info.enrollment_group
    return ev.enrollment_group == 0 or group == 0 or ev.enrollment_group == group


def _follow_events(rule: Rule, events: tuple[EventView, ...], ctx: Context) -> list[Proposal]:
    """Each active event's own DRLC fields, for the devices it addresses that may take part."""
    has_event_trigger = any(isinstance(t, EventTrigger) for t in rule.triggers)
    pool = events if has_event_trigger else ctx.snapshot.events
    active = sorted((v for v in pool if v.phase is EventPhase.ACTIVE and not v.opted_out),
                    key=lambda v: (-int(v.event.criticality), -v.effective_start.timestamp()))
    targets = _targets(rule, ctx)
    out: list[Proposal] = []
    for view in active:
        devices = [d for d in _eligible(targets, view, None, ctx) if addresses(view, d)]
        if devices:
            out.extend(_event_proposals(rule, view, devices, ctx))
    return out


def _event_proposals(rule: Rule, view: EventView, devices: list[DeviceView], ctx: Context) -> list[Proposal]:
    ev = view.event
    base = partial(Proposal, source=ProposalSource.EVENT, rule=rule.name, priority=rule.priority,
                   meter_id=ev.meter_id, issuer_event_id=ev.issuer_event_id)
    made: dict[tuple[object, ...], Text] = {}

    def reason(what: What) -> Text:
        key = (what[0], *what[1].items())
        text = made.get(key)
        if text is None:
            text = made[key] = _event_text(rule, view, what, ctx)
        return text

    reduce = ev.average_load_adjustment_pct is not None and ev.average_load_adjustment_pct < 0
    out: list[Proposal] = []
    sheddable: list[DeviceView] = []
    relayed_kw = 0.0
    for d in devices:
        kind = d.info.kind
        if kind == DeviceKind.LOAD_CONTROLLER:
            saving = _switch_kw(d) * _event_share(ev.average_load_adjustment_pct, ev.duty_cycle_pct)
            relayed_kw += saving
            out.append(base(d.info.device_id, ProposalAction.RELAY_EVENT, reason=reason((HANDED, {})),
                            expected_kw_reduction=saving))
        elif kind == DeviceKind.THERMOSTAT:
            # Set points before offsets when an event carries both: the spec does not say
            # (spec digest §5 item 5); a set point is what the utility asked for exactly.
            if ev.cooling_setpoint_c is not None or ev.heating_setpoint_c is not None:
                out.append(base(d.info.device_id, ProposalAction.SETPOINTS,
                                reason=reason(_setpoints_text(ev.cooling_setpoint_c, ev.heating_setpoint_c)),
                                cooling_setpoint_c=ev.cooling_setpoint_c, heating_setpoint_c=ev.heating_setpoint_c,
                                expected_kw_reduction=_setpoint_saving(d, ev.cooling_setpoint_c, ev.heating_setpoint_c)))
            elif ev.cooling_offset_c is not None or ev.heating_offset_c is not None:
                heating = d.reading is not None and d.reading.system_mode == "heat"
                offset = (ev.heating_offset_c if heating else ev.cooling_offset_c)
                offset = offset if offset is not None else (ev.cooling_offset_c or ev.heating_offset_c or 0.0)
                out.append(base(d.info.device_id, ProposalAction.OFFSET, value=offset,
                                reason=reason(_offset_text(d, offset)), expected_kw_reduction=offset * _kw_per_c(d)))
            elif reduce:
                sheddable.append(d)
            elif ev.average_load_adjustment_pct is None:
                offset = min(DEFAULT_EVENT_OFFSET_C, ctx.preference(d.info.device_id).comfort.max_offset_c)
                out.append(base(d.info.device_id, ProposalAction.OFFSET, value=offset,
                                reason=reason(_offset_text(d, offset)), expected_kw_reduction=offset * _kw_per_c(d)))
        elif kind == DeviceKind.SWITCH:
            if ev.duty_cycle_pct is not None:
                out.append(base(d.info.device_id, ProposalAction.DUTY_CYCLE, value=float(ev.duty_cycle_pct),
                                reason=reason((DUTY, {"duty_pct": ev.duty_cycle_pct})),
                                expected_kw_reduction=_switch_kw(d) * (1 - ev.duty_cycle_pct / 100)))
            elif reduce:
                sheddable.append(d)
            elif ev.average_load_adjustment_pct is None:
                out.append(base(d.info.device_id, ProposalAction.OFF, reason=reason((SWITCH_OFF, {})),
                                expected_kw_reduction=_switch_kw(d)))
        # Batteries and other kinds: nothing an event field asks of them.
    if reduce and ctx.snapshot.demand_kw is not None:
        baseline = _baseline(ctx, devices) or 0.0
        pct = -float(ev.average_load_adjustment_pct or 0)
        target = baseline * pct / 100 - relayed_kw
        plan = plan_shedding(_candidates(sheddable, ctx), target)
        plan_values = _plan_values(plan)
        out.extend(_shed_proposals(plan, base, lambda shed, values: reason(
            _shed_text(shed, "cut", {"cut_pct": pct} | values, plan_values))))
    return out


def _event_share(adjust_pct: int | None, duty_pct: int | None) -> float:
    """The share of a relayed device's draw the event should take away."""
    if adjust_pct is not None:
        return max(0.0, -adjust_pct / 100)
    if duty_pct is not None:
        return 1 - duty_pct / 100
    return 1.0


# --- Notifications ----------------------------------------------------------------------


def _notify(rule: Rule, action: NotifyAction, events: tuple[EventView, ...], ctx: Context) -> Proposal:
    view = events[0] if events else None
    fields = {"rule": rule.name, "event_id": "—", "start": "—", "end": "—", "criticality": "—", "duration_min": "—"}
    if view is not None:
        fields.update(
            event_id=str(view.event.issuer_event_id),
            start=_clock(view.effective_start, ctx),
            end=_clock(view.effective_end, ctx),
            criticality=_criticality(int(view.event.criticality)),
            duration_min=str(view.event.duration_min),
        )
    text = action.text.format(**fields)
    return Proposal(None, ProposalAction.NOTIFY, ProposalSource.RULE, reason=Text.of(NOTIFY_REASON, rule=rule.name),
                    rule=rule.name, priority=rule.priority, text=text,
                    meter_id=view.event.meter_id if view else None,
                    issuer_event_id=view.event.issuer_event_id if view else None)


# --- Helpers ----------------------------------------------------------------------------


def _live(events: tuple[EventView, ...]) -> EventView | None:
    """The event a rule's device proposals belong to (so they end with it): not an ended one."""
    return next((v for v in events if v.phase is not EventPhase.ENDED), None)


def _may_take_part(d: DeviceView, event: EventView | None, ctx: Context) -> bool:
    """For anything tied to an event: not a device taken out of it, nor one kept out of DR."""
    if event is None:
        return True
    return d.info.device_id not in event.excluded_devices and ctx.preference(d.info.device_id).takes_part


def _switch_kw(d: DeviceView) -> float:
    """What switching the device off saves: its reading, else its nominal draw.

    A device the EMS holds off reads 0 kW; it counts at its nominal draw so the choice of what
    to shed does not swing back and forth from one cycle to the next.
    """
    nominal = d.info.nominal_kw or 0.0
    reading = d.reading
    if reading is None:
        return nominal
    if d.controlled_since is not None and reading.on is False:
        return nominal
    if reading.power_kw is not None:
        return max(0.0, reading.power_kw)
    return 0.0 if reading.on is False else nominal


def _kw_per_c(d: DeviceView) -> float:
    return thermostat_kw_per_c(d.info.nominal_kw)


def _setpoint_saving(d: DeviceView, cooling_c: float | None, heating_c: float | None) -> float:
    r = d.reading
    if r is None:
        return 0.0
    delta = 0.0
    if cooling_c is not None and r.cooling_setpoint_c is not None and r.system_mode != "heat":
        delta = max(delta, cooling_c - r.cooling_setpoint_c)
    if heating_c is not None and r.heating_setpoint_c is not None and r.system_mode != "cool":
        delta = max(delta, r.heating_setpoint_c - heating_c)
    return delta * _kw_per_c(d)


def _candidates(devices: Iterable[DeviceView], ctx: Context) -> list[Candidate]:
    out: list[Candidate] = []
    cache = ctx.candidate_cache
    for d in devices:
        device_id = d.info.device_id
        if device_id not in cache:
            cache[device_id] = _candidate(d, ctx)
        candidate = cache[device_id]
        if candidate is not None:
            out.append(candidate)
    return out


def _candidate(d: DeviceView, ctx: Context) -> Candidate | None:
    """What shedding the device would save and how much the customer minds (None: cannot shed)."""
    pref = ctx.preference(d.info.device_id)
    ok = pref.takes_part and d.available
    if d.info.kind in _SWITCHED:
        return Candidate(d.info.device_id, _switch_kw(d), pref.shed_priority, ok)
    if d.info.kind == DeviceKind.THERMOSTAT and (d.reading is None or d.reading.system_mode != "off"):
        per_c, most = _kw_per_c(d), pref.comfort.max_offset_c
        return Candidate(d.info.device_id, per_c * most, pref.shed_priority, ok, per_c, most)
    return None


def _baseline(ctx: Context, devices: Iterable[DeviceView]) -> float | None:
    """Present demand plus what the devices the EMS already holds off would draw."""
    demand = ctx.snapshot.demand_kw
    if demand is None:
        return None
    held = sum(d.info.nominal_kw or 0.0 for d in devices
               if d.info.kind in _SWITCHED and d.controlled_since is not None
               and d.reading is not None and d.reading.on is False)
    return demand + held


def _clock(at: datetime, ctx: Context) -> str:
    text = ctx.clock_cache.get(at)
    if text is None:
        text = ctx.clock_cache[at] = at.astimezone(ctx.snapshot.local.tzinfo).strftime("%H:%M")
    return text


def _criticality(level: int) -> str:
    try:
        return Criticality(level).name.replace("_", " ").lower()
    except ValueError:
        return f"criticality {level}"


# --- The reasons' msgids and values -----------------------------------------------------


Items = tuple[tuple[str, type, object], ...]


def _items(values: Values) -> Items:
    """Values as a cache key; with their types, as 2 and 2.0 (equal keys) are written "2" and "2.0"."""
    return tuple([(key, type(value), value) for key, value in values.items()])


@lru_cache(maxsize=4096)
def _rule_text_of(rule: str, what_msgid: str, what: Items, until: tuple[str, Items] | None) -> Text:
    """A rule's reason: a pure function of its values, kept from one evaluation to the next (a
    home's rules give the same few reasons cycle after cycle; a Text is immutable)."""
    values: Values = {"rule": rule, "what_phrase": what_msgid, **{key: value for key, _, value in what}}
    if until is None:
        return Text.of(RULE_REASON, **values)
    return Text.of(RULE_REASON_UNTIL, **(values | {"until_phrase": until[0]}
                                         | {key: value for key, _, value in until[1]}))


def _event_text(rule: Rule, view: EventView, what: What, ctx: Context) -> Text:
    level = int(view.event.criticality)
    return Text.of(EVENT_REASON, **{
        "rule": rule.name, "event_id": view.event.issuer_event_id, "end_time": _site_time(view.effective_end, ctx),
        "level_phrase": _level_phrase(level), "level_num": level, "what_phrase": what[0], **what[1],
    })


def _site_time(at: datetime, ctx: Context) -> str:
    """A ``*_time`` value: the moment in the site's zone, so its English reads the site's wall clock."""
    return at.astimezone(ctx.snapshot.local.tzinfo).isoformat()


def _level_phrase(level: int) -> str:
    try:
        return LEVELS[Criticality(level)]
    except (ValueError, KeyError):
        return OTHER_LEVEL


def _setpoints_text(cooling_c: float | None, heating_c: float | None) -> What:
    values: Values = {}
    if cooling_c is not None:
        values["cooling_c"] = cooling_c
    if heating_c is not None:
        values["heating_c"] = heating_c
    return SETPOINTS.get((cooling_c is not None, heating_c is not None), ""), values


def _offset_text(d: DeviceView, offset_c: float) -> What:
    heating = d.reading is not None and d.reading.system_mode == "heat"
    return OFFSET_WORDS[(offset_c >= 0, heating)], {"offset_c": abs(offset_c)}


def _shed_text(shed: str, goal: str, values: Values, plan_values: Values) -> What:
    return SHED[(shed, goal)], values | plan_values


def _plan_values(plan: ShedPlan) -> Values:
    """What a shed reason says of its plan: the same for every device it sheds (made once per plan)."""
    said, expected_kw, short_kw = plan.outcome()
    plan_phrase = PLAN_PHRASES[said]
    return {"plan_phrase": plan_phrase, "expected_kw": expected_kw, "needed_kw": plan.target_kw,
            "short_kw": short_kw}


def _until(rule: Rule, events: tuple[EventView, ...], ctx: Context) -> What | None:
    """Until when a rule's reason holds, as a msgid and its values (None: the reason has no "until")."""
    view = events[0] if events else None
    if view is not None and view.phase in (EventPhase.SCHEDULED, EventPhase.ACTIVE):
        found = ctx.until_cache.get(id(view))  # the snapshot's views: alive while it is evaluated
        if found is None:
            if view.phase is EventPhase.SCHEDULED:
                found = UNTIL_EVENT_STARTS, {"event_id": view.event.issuer_event_id,
                                             "start_time": _site_time(view.effective_start, ctx)}
            else:
                found = DURING_EVENT, {"event_id": view.event.issuer_event_id,
                                       "end_time": _site_time(view.effective_end, ctx)}
            ctx.until_cache[id(view)] = found
        return found
    windows = [t.window for t in rule.triggers if isinstance(t, ScheduleTrigger) and t.window is not None]
    if windows and windows[0].contains(ctx.minute):
        return UNTIL_CLOCK, {"until_clock": windows[0].describe().split("–")[1]}
    return None
