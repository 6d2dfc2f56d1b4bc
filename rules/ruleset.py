"""The customer's rules as validated values: triggers, conditions, targets and actions.

A rule holds while any of its triggers holds (or always, without triggers) and all of its
conditions hold; while it holds, its actions become proposals for its target devices. These
types are what ``rules.schema`` builds from YAML and what ``rules.engine`` evaluates.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ems.model import DevicePreference

MINUTES_PER_DAY = 24 * 60
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
ALL_DAYS = frozenset(range(7))
DEFAULT_SUMMER_MONTHS = frozenset(range(5, 11))  # May to October, as most utilities' summer season


# --- Building blocks --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """From ``start_min`` to ``end_min`` (minutes after local midnight); may cross midnight."""

    start_min: int
    end_min: int

    def contains(self, minute: int) -> bool:
        if self.start_min == self.end_min:
            return True  # "from 00:00 to 00:00": the whole day
        if self.start_min < self.end_min:
            return self.start_min <= minute < self.end_min
        return minute >= self.start_min or minute < self.end_min

    def overlaps(self, other: TimeWindow) -> bool:
        # Each window is one arc of the day: two arcs meet iff one holds the other's start.
        return other.contains(self.start_min) or self.contains(other.start_min)

    def describe(self) -> str:
        return f"{_hhmm(self.start_min)}–{_hhmm(self.end_min)}"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which DR events count: criticality range, device class bits (0: any), enrollment group."""

    min_criticality: int = 1
    max_criticality: int = 15
    device_class: int = 0
    enrollment_group: int | None = None  # None: any; an event for group 0 addresses every group


class Phase(enum.StrEnum):
    ANNOUNCED = "announced"  # scheduled, not started yet
    ACTIVE = "active"
    ENDED = "ended"  # an edge: only in the cycle the event ended


class Where(enum.StrEnum):
    INDOOR = "indoor"
    OUTDOOR = "outdoor"


# --- Triggers (any one holding makes the rule hold) -------------------------------------


@dataclass(frozen=True, slots=True)
class EventTrigger:
    phase: Phase
    filter: EventFilter = EventFilter()
    within_min: float | None = None  # announced: only this close to the event's effective start


@dataclass(frozen=True, slots=True)
class PriceTrigger:
    at_least_per_kwh: float


@dataclass(frozen=True, slots=True)
class TierTrigger:
    at_least: int


@dataclass(frozen=True, slots=True)
class DemandTrigger:
    above_kw: float
    for_min: float = 0.0


@dataclass(frozen=True, slots=True)
class Temperature:
    """Indoor (a thermostat's reading) or outdoor temperature above and/or below a value."""

    where: Where
    above_c: float | None = None
    below_c: float | None = None
    device: str | None = None  # indoor: this thermostat only (None: any thermostat)


@dataclass(frozen=True, slots=True)
class ScheduleTrigger:
    window: TimeWindow | None = None
    days: frozenset[int] = ALL_DAYS


Trigger = EventTrigger | PriceTrigger | TierTrigger | DemandTrigger | Temperature | ScheduleTrigger


# --- Conditions (all must hold) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeCondition:
    window: TimeWindow


@dataclass(frozen=True, slots=True)
class DaysCondition:
    days: frozenset[int]


@dataclass(frozen=True, slots=True)
class SeasonCondition:
    summer: bool  # False: winter


@dataclass(frozen=True, slots=True)
class DemandCondition:
    above_kw: float | None = None
    below_kw: float | None = None


@dataclass(frozen=True, slots=True)
class DemandWindowCondition:
    """The current demand window's projected average is above a kW cap and/or the cycle's peak so far."""

    above_kw: float | None = None
    above_peak: bool = False


@dataclass(frozen=True, slots=True)
class EventCondition:
    active: bool  # True: an event (matching the filter) is active; False: none is
    filter: EventFilter = EventFilter()


Condition = (TimeCondition | DaysCondition | SeasonCondition | Temperature | DemandCondition | DemandWindowCondition
             | EventCondition)


# --- Targets ----------------------------------------------------------------------------


class TargetBy(enum.StrEnum):
    ALL = "all"
    NAME = "name"  # a device's name or id (case does not matter)
    KIND = "kind"  # DeviceKind value
    DEVICE_CLASS = "device_class"  # DRLC device class bits


@dataclass(frozen=True, slots=True)
class Target:
    by: TargetBy
    value: str | int = ""
    line: int | None = None  # where it was written (for warnings)

    def describe(self) -> str:
        if self.by is TargetBy.ALL:
            return "every device"
        if self.by is TargetBy.NAME:
            return str(self.value)
        if self.by is TargetBy.KIND:
            return f"every {self.value}"
        return f"every device of class 0x{int(self.value):04x}"


# --- Actions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetpointAction:
    cooling_c: float | None = None
    heating_c: float | None = None


@dataclass(frozen=True, slots=True)
class OffsetAction:
    offset_c: float  # away from comfort: positive lets it get warmer (cooling) / cooler (heating)


@dataclass(frozen=True, slots=True)
class SwitchAction:
    on: bool


@dataclass(frozen=True, slots=True)
class DutyCycleAction:
    pct: float


@dataclass(frozen=True, slots=True)
class ShedToLimitAction:
    limit_kw: float


@dataclass(frozen=True, slots=True)
class ReduceLoadAction:
    pct: float


@dataclass(frozen=True, slots=True)
class FollowEventAction:
    """Apply each active event's own DRLC fields to the devices it addresses."""


@dataclass(frozen=True, slots=True)
class NotifyAction:
    text: str


Action = (
    SetpointAction
    | OffsetAction
    | SwitchAction
    | DutyCycleAction
    | ShedToLimitAction
    | ReduceLoadAction
    | FollowEventAction
    | NotifyAction
)


# --- Rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    actions: tuple[Action, ...]
    triggers: tuple[Trigger, ...] = ()
    conditions: tuple[Condition, ...] = ()
    targets: tuple[Target, ...] | None = None  # None: the action's own default
    priority: int = 50  # within its source, the higher wins
    enabled: bool = True
    line: int | None = None  # where the rule starts in its file


@dataclass(frozen=True, slots=True)
class RuleSet:
    """Every rule of one file, the customer's device preferences and the season months."""

    rules: tuple[Rule, ...] = ()
    preferences: tuple[DevicePreference, ...] = ()
    source: str = "rules.yaml"
    summer_months: frozenset[int] = field(default=DEFAULT_SUMMER_MONTHS)
