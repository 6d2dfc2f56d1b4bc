"""Least-discomfort shedding: which devices to turn down to save a number of kW.

Used by the customer's shed actions and by an event's load adjustment. The customer ranks
devices by ``shed_priority`` (lower sheds first) and may keep a device out (``takes_part``
False: never chosen). The choice is greedy in that order, then every chosen device whose kW
is not needed is put back (highest priority first), so the plan uses few devices and the ones
the customer minds least. Thermostats take part by an offset rather than by going off; their
offset is cut to the smallest 0.5 °C step that still meets the target.

Thermostat estimate: an air conditioner (or heat pump) held ``n`` °C away from its setpoint runs
about 15 % less per °C while the offset lasts (the figure used by utility thermostat programs
for a first estimate), so it saves ``0.15 × running kW`` per °C; a thermostat whose running kW
is not known is taken as a 3.5 kW (3-ton) central system: 0.5 kW per °C.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

SAVING_PER_C = 0.15  # share of an air conditioner's running power saved per °C of offset
TYPICAL_HVAC_KW = 3.5  # a 3-ton central air conditioner, when the thermostat says nothing
OFFSET_STEP_C = 0.5
_EPSILON = 1e-9


def thermostat_kw_per_c(running_kw: float | None) -> float:
    """The estimated kW one °C of offset saves on a system that runs at ``running_kw``."""
    return SAVING_PER_C * (running_kw if running_kw and running_kw > 0 else TYPICAL_HVAC_KW)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A device that could be shed: what turning it down saves, and how much the customer minds."""

    device_id: str
    kw: float  # switched off: what it draws now; thermostat: saving at its largest offset
    shed_priority: int = 50  # lower sheds first
    takes_part: bool = True
    kw_per_c: float | None = None  # set for thermostats, which shed by an offset
    max_offset_c: float = 0.0


@dataclass(frozen=True, slots=True)
class Shed:
    """One device in a plan: switch it off (``offset_c`` None) or hold it ``offset_c`` away."""

    device_id: str
    kw: float
    offset_c: float | None = None


@dataclass(frozen=True, slots=True)
class ShedPlan:
    """The devices chosen, what they are expected to save, and whether that meets the target."""

    target_kw: float
    sheds: tuple[Shed, ...] = ()

    @property
    def expected_kw(self) -> float:
        return sum(s.kw for s in self.sheds)

    @property
    def met(self) -> bool:
        return self.expected_kw + _EPSILON >= self.target_kw

    @property
    def shortfall_kw(self) -> float:
        return max(0.0, self.target_kw - self.expected_kw)

    def outcome(self) -> tuple[str, float, float]:
        """``("nothing" | "met" | "short", expected_kw, shortfall_kw)``, the sheds summed once
        (what a reason says of its plan; the rule engine asks it for every plan it makes)."""
        expected = self.expected_kw
        if self.target_kw <= _EPSILON:
            said = "nothing"
        else:
            said = "met" if expected + _EPSILON >= self.target_kw else "short"
        return said, expected, max(0.0, self.target_kw - expected)

    def describe(self) -> str:
        """For the customer: '8.7 kW of the 8.0 kW needed' or what is missing."""
        if self.target_kw <= _EPSILON:
            return "nothing to shed"
        if self.met:
            return f"sheds about {self.expected_kw:.1f} kW of the {self.target_kw:.1f} kW needed"
        return (f"can shed only {self.expected_kw:.1f} kW of the {self.target_kw:.1f} kW needed "
                f"({self.shortfall_kw:.1f} kW short)")


def plan_shedding(candidates: Iterable[Candidate], target_kw: float) -> ShedPlan:
    """Choose devices that save at least ``target_kw`` with the least discomfort.

    If the target cannot be met, every device that may be shed is (the plan says how short it is).
    """
    if target_kw <= _EPSILON:
        return ShedPlan(max(target_kw, 0.0))
    usable = sorted(
        (c for c in candidates if c.takes_part and c.kw > _EPSILON),
        key=lambda c: (c.shed_priority, -c.kw, c.device_id),
    )
    chosen: list[Candidate] = []
    total = 0.0
    for c in usable:
        if total + _EPSILON >= target_kw:
            break
        chosen.append(c)
        total += c.kw
    if total + _EPSILON < target_kw:
        return ShedPlan(target_kw, tuple(_shed(c) for c in chosen))
    # Put back what is not needed, the device the customer minds most first.
    for c in sorted(chosen, key=lambda c: (-c.shed_priority, c.kw, c.device_id)):
        if total - c.kw + _EPSILON >= target_kw:
            chosen.remove(c)
            total -= c.kw
    sheds = {c.device_id: _shed(c) for c in chosen}
    # Then ease thermostats to the smallest offset that still meets the target.
    for c in sorted(chosen, key=lambda c: (-c.shed_priority, c.device_id)):
        if c.kw_per_c is None:
            continue
        others = total - c.kw
        needed_c = max(0.0, (target_kw - others) / c.kw_per_c)
        offset_c = min(c.max_offset_c, math.ceil(needed_c / OFFSET_STEP_C - _EPSILON) * OFFSET_STEP_C)
        eased = replace(sheds[c.device_id], kw=c.kw_per_c * offset_c, offset_c=offset_c)
        total = others + eased.kw
        sheds[c.device_id] = eased
    return ShedPlan(target_kw, tuple(sheds[c.device_id] for c in chosen))


def _shed(c: Candidate) -> Shed:
    if c.kw_per_c is not None:
        return Shed(c.device_id, c.kw, c.max_offset_c)
    return Shed(c.device_id, c.kw)
