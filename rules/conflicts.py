"""Rules that can hold at the same time and ask opposite things of one device, and who wins.

Shown on the Rules page as warnings: the file is valid, and the arbiter settles the conflict
(source first, then priority, then the earlier rule), but the customer may not expect it.
The check is static and errs towards warning: two targets that may be the same device (a name
and a kind) count as the same; two triggers or conditions count as able to hold together unless
they plainly cannot (disjoint time windows or days, other season, an event active and none,
announced and active phases, temperature or demand ranges that do not meet).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ems.model import ProposalSource
from rules.ruleset import (
    Action,
    DaysCondition,
    DemandCondition,
    DemandTrigger,
    DutyCycleAction,
    EventCondition,
    EventFilter,
    EventTrigger,
    FollowEventAction,
    OffsetAction,
    ReduceLoadAction,
    Rule,
    RuleSet,
    ScheduleTrigger,
    SeasonCondition,
    SetpointAction,
    ShedToLimitAction,
    SwitchAction,
    Target,
    TargetBy,
    Temperature,
    TimeCondition,
)

_SWITCH, _THERMOSTAT = "switch", "thermostat"


@dataclass(frozen=True, slots=True)
class _Ask:
    what: str  # on, off, duty, setpoint, offset, shed, event
    value: object
    domains: frozenset[str]
    words: str

    def opposes(self, other: _Ask) -> bool:
        if not self.domains & other.domains:
            return False
        pair = {self.what, other.what}
        if self.what == other.what:
            return self.what in ("duty", "setpoint", "offset") and self.value != other.value
        if "on" in pair:
            return True  # on against off, a duty cycle, shedding or an event
        if pair <= {"off", "duty", "shed", "event"}:
            return pair == {"off", "duty"} or pair == {"duty", "shed"}
        return bool(pair & {"setpoint", "offset"})  # a thermostat asked two different things


def _asks(action: Action) -> _Ask | None:
    if isinstance(action, SwitchAction):
        return _Ask("on" if action.on else "off", None, frozenset({_SWITCH}), "turn on" if action.on else "turn off")
    if isinstance(action, DutyCycleAction):
        return _Ask("duty", action.pct, frozenset({_SWITCH}), f"duty cycle {action.pct:g} %")
    if isinstance(action, SetpointAction):
        return _Ask("setpoint", (action.cooling_c, action.heating_c), frozenset({_THERMOSTAT}), "a setpoint "
                    + ", ".join(f"{n} {v:g} °C" for n, v in (("cooling", action.cooling_c), ("heating", action.heating_c))
                                if v is not None))
    if isinstance(action, OffsetAction):
        return _Ask("offset", action.offset_c, frozenset({_THERMOSTAT}), f"an offset of {action.offset_c:+g} °C")
    if isinstance(action, ShedToLimitAction | ReduceLoadAction):
        return _Ask("shed", None, frozenset({_SWITCH, _THERMOSTAT}), "shedding")
    if isinstance(action, FollowEventAction):
        return _Ask("event", None, frozenset({_SWITCH, _THERMOSTAT}), "what the utility's event asks")
    return None


def _source(rule: Rule, ask: _Ask) -> ProposalSource:
    return ProposalSource.EVENT if ask.what == "event" else ProposalSource.RULE


def check_conflicts(ruleset: RuleSet) -> list[str]:
    """One warning per pair of rules that may fight over a device, naming the winner."""
    rules = [r for r in ruleset.rules if r.enabled]
    order = {r.name: i for i, r in enumerate(rules)}
    asks = [[x for x in map(_asks, r.actions) if x is not None] for r in rules]
    warnings: list[str] = []
    for i, a in enumerate(rules):
        asks_a = asks[i]
        if not asks_a:
            continue
        for j in range(i + 1, len(rules)):
            b, asks_b = rules[j], asks[j]
            pair = next(((x, y) for x in asks_a for y in asks_b if x.opposes(y)), None)
            if pair is None:
                continue
            shared = _shared_target(a.targets, b.targets)
            if shared is None or not _can_hold_together(a, b):
                continue
            x, y = pair
            winner, why = _winner(a, x, b, y, order)
            warnings.append(
                f"Rules '{a.name}'{_at(a)} and '{b.name}'{_at(b)} can hold at the same time and ask different "
                f"things of {shared}: {x.words} against {y.words}. '{winner.name}' wins ({why})."
            )
    return warnings


def _at(rule: Rule) -> str:
    return f" (line {rule.line})" if rule.line else ""


def _winner(a: Rule, x: _Ask, b: Rule, y: _Ask, order: dict[str, int]) -> tuple[Rule, str]:
    sa, sb = _source(a, x), _source(b, y)
    if sa != sb:
        return (a, "the utility's event comes before the customer's rules") if sa > sb else (
            b, "the utility's event comes before the customer's rules")
    if a.priority != b.priority:
        top = a if a.priority > b.priority else b
        return top, f"priority {top.priority} > {min(a.priority, b.priority)}"
    first = a if order[a.name] < order[b.name] else b
    return first, "same priority; the rule written first wins"


# --- Targets ----------------------------------------------------------------------------


def _shared_target(ta: tuple[Target, ...] | None, tb: tuple[Target, ...] | None) -> str | None:
    """A description of a device both may target, or None if they cannot share one."""
    if ta is None or tb is None:
        return _describe(tb if ta is None else ta) if (ta or tb) else "every device"
    for x in ta:
        for y in tb:
            if x.by is TargetBy.ALL:
                return y.describe()
            if y.by is TargetBy.ALL:
                return x.describe()
            if x.by is y.by:
                same = (str(x.value).casefold() == str(y.value).casefold() if x.by is not TargetBy.DEVICE_CLASS
                        else bool(int(x.value) & int(y.value)))
                if same:
                    return x.describe()
            else:
                return f"{x.describe()} if it is among {y.describe()}"
    return None


def _describe(targets: tuple[Target, ...] | None) -> str:
    return ", ".join(t.describe() for t in targets or ()) or "every device"


# --- Can two rules hold together? -------------------------------------------------------


def _can_hold_together(a: Rule, b: Rule) -> bool:
    for ta in a.triggers or (None,):
        for tb in b.triggers or (None,):
            left = [*a.conditions, *([ta] if ta is not None else [])]
            right = [*b.conditions, *([tb] if tb is not None else [])]
            if not any(_disjoint(x, y) or _disjoint(y, x) for x in left for y in right):
                return True
    return False


def _windows(x: object) -> Iterable[object]:
    if isinstance(x, TimeCondition):
        yield x.window
    elif isinstance(x, ScheduleTrigger) and x.window is not None:
        yield x.window


def _days(x: object) -> frozenset[int] | None:
    if isinstance(x, DaysCondition | ScheduleTrigger):
        return x.days
    return None


def _disjoint(x: object, y: object) -> bool:
    """True only when x and y plainly cannot both hold (checked one way; call both ways)."""
    for wx in _windows(x):
        for wy in _windows(y):
            if not wx.overlaps(wy):  # type: ignore[attr-defined]
                return True
    dx, dy = _days(x), _days(y)
    if dx is not None and dy is not None and not dx & dy:
        return True
    if isinstance(x, SeasonCondition) and isinstance(y, SeasonCondition):
        return x.summer != y.summer
    if isinstance(x, EventCondition) and isinstance(y, EventCondition):
        return x.active != y.active and (x if not x.active else y).filter == EventFilter()
    if isinstance(x, EventTrigger) and isinstance(y, EventTrigger):
        return x.phase != y.phase
    if isinstance(x, EventTrigger) and isinstance(y, EventCondition):
        return x.phase == "active" and not y.active and y.filter == EventFilter()
    if isinstance(x, Temperature) and isinstance(y, Temperature) and (x.where, x.device) == (y.where, y.device):
        return _apart(x.above_c, x.below_c, y.above_c, y.below_c)
    if isinstance(x, DemandTrigger | DemandCondition) and isinstance(y, DemandTrigger | DemandCondition):
        below_x = x.below_kw if isinstance(x, DemandCondition) else None
        below_y = y.below_kw if isinstance(y, DemandCondition) else None
        return _apart(x.above_kw, below_x, y.above_kw, below_y)
    return False


def _apart(above_x: float | None, below_x: float | None, above_y: float | None, below_y: float | None) -> bool:
    """Open ranges (above, below) that do not meet."""
    if above_x is not None and below_y is not None and above_x >= below_y:
        return True
    return above_y is not None and below_x is not None and above_y >= below_x
