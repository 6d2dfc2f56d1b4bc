"""The seams inside demand response: what the cycle, the dispatcher and the events need of each other.

Each component is typed by the Protocol of what it uses, not by the class that happens to give
it, so a test can hand in a stand-in and a second source of events or devices fits the same slot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ems.model import (
    ControlledDevice,
    DeviceCommanded,
    DeviceInfo,
    DevicePreference,
    DeviceReading,
    EventView,
    LoadControlEvent,
    LoadHistory,
    Proposal,
    Snapshot,
    Trigger,
)

if TYPE_CHECKING:
    from ems.bus import EventBus
    from ems.clock import Clock
    from ems.config import AppConfig
    from ems.dr.arbiter import Decision
    from ems.outbox import Outbox
    from ems.ports import DevicePort
    from ems.preferences import ProgramPreferences
    from ems.state import CurrentState
    from ems.store import Store


class DrHub(Protocol):
    """What demand response needs of the hub."""

    config: AppConfig
    data_dir: Path
    bus: EventBus
    state: CurrentState
    store: Store
    outbox: Outbox
    device_ports: dict[str, DevicePort]
    clock: Clock
    preferences: ProgramPreferences  # what the customer wants shown and delivered (its notices too)

    def every_day(self, at: time, job: Callable[[], Awaitable[object]], name: str) -> None: ...


class KnownDevice(Protocol):
    """One device as the registry keeps it."""

    info: DeviceInfo
    reading: DeviceReading | None
    available: bool


class DeviceDirectory(Protocol):
    """The home's devices (``ems.dr.devices.DeviceRegistry``)."""

    @property
    def devices(self) -> Mapping[str, KnownDevice]: ...

    def get(self, device_id: str) -> KnownDevice | None: ...

    def find(self, name_or_id: str) -> KnownDevice | None: ...


class EventLives(Protocol):
    """The events' lives (``ems.dr.events.LoadControl``)."""

    def views(self) -> tuple[EventView, ...]: ...

    def on_change(self, listener: Callable[[Trigger], None]) -> Callable[[], None]: ...

    async def advance(self, now: datetime | None = None) -> None: ...

    def note_achievement(self, meter_id: str, issuer_event_id: int, shed_kw: float,
                         demand_kw: float | None) -> None: ...

    async def set_participation(self, meter_id: str, issuer_event_id: int, *, opted_out: bool,
                                device_id: str | None = None, by: str = "customer") -> object: ...


class DeviceWriter(Protocol):
    """The one part that talks to devices (``ems.dr.dispatch.Dispatcher``)."""

    def record(self) -> tuple[Mapping[str, ControlledDevice], Mapping[str, LoadHistory]]: ...

    async def apply(self, decisions: Mapping[str, Decision],
                    events: Mapping[tuple[str, int], LoadControlEvent] | None = None) -> list[DeviceCommanded]: ...


class Rules(Protocol):
    """The customer's rules (``ems.dr.rulebook.RuleBook``): pure over a snapshot."""

    def evaluate(self, snapshot: Snapshot) -> list[Proposal]: ...

    def preferences(self) -> tuple[DevicePreference, ...]: ...

