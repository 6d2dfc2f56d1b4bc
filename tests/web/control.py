"""Demand response for the web tests: a rule book with no rules, a recording device port, and a home
(thermostat and pool pump, the real rule engine following event 7) on a started hub."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import rules
from ems.dr.component import DemandResponse
from ems.dr.rulebook import RuleBook
from ems.hub import Hub
from ems.model import (
    Criticality,
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    DeviceReading,
    LoadControlEvent,
    utcnow,
)
from tests.hubs import started_hub

THERMOSTAT, PUMP = "00:0d:6f:00:00:00:00:01", "00:0d:6f:00:00:00:00:02"
RULES = """\
devices:
  Living room: {max_offset_c: 3}
rules:
  - name: Follow every event
    triggers: [{event: active}]
    action: follow_event
"""


class NoRules:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = ""
        self.ruleset: Any = None
        self.warnings: list[str] = []
        self.problems: list[str] = []

    def load(self) -> None:
        return None

    def evaluate(self, _snapshot: Any) -> list[Any]:
        return []

    def preferences(self) -> tuple[Any, ...]:
        return ()


class RecordingPort:
    """A device port that records every command (the devices' side of the web tests)."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def switch(self, device_id: str, on: bool) -> None:
        self.calls.append(("switch", device_id, on))

    async def set_setpoints(self, device_id: str, *, cooling_c: float | None, heating_c: float | None) -> None:
        self.calls.append(("setpoints", device_id, cooling_c, heating_c))

    async def relay_event(self, device_id: str, event: Any) -> None:
        self.calls.append(("relay", device_id, event.issuer_event_id))

    async def cancel_event(self, device_id: str, issuer_event_id: int) -> None:
        self.calls.append(("cancel", device_id, issuer_event_id))


@contextlib.asynccontextmanager
async def home_hub(tmp_path: Path, **event_fields: Any) -> AsyncIterator[Hub]:
    """A started hub with demand response, the two devices reporting, and event 7 running for both.

    ``hub.port`` is the RecordingPort that both devices answer through.
    """
    async with started_hub(tmp_path, files={"rules.yaml": RULES}) as hub:
        book = RuleBook(hub.config.config_dir / "rules.yaml", rules.parse_rules, rules.evaluate,
                        rules.check_conflicts)
        hub.control = DemandResponse(hub, book, {"start_randomization_min": 0, "cycle_tick_s": 0.2})
        await hub.control.start()
        port = RecordingPort()
        hub.device_ports.update({THERMOSTAT: port, PUMP: port})
        hub.port = port  # type: ignore[attr-defined]
        now = utcnow()
        hub.bus.publish(DeviceInfo(THERMOSTAT, "Living room", DeviceKind.THERMOSTAT, DeviceClass.HVAC,
                                   min_setpoint_c=7, max_setpoint_c=32))
        hub.bus.publish(DeviceInfo(PUMP, "Pool pump", DeviceKind.SWITCH, DeviceClass.POOL_PUMP, nominal_kw=1.5))
        hub.bus.publish(DeviceReading(THERMOSTAT, now, indoor_c=24.4, cooling_setpoint_c=24.0, heating_setpoint_c=20.0,
                                      system_mode="cool"))
        hub.bus.publish(DeviceReading(PUMP, now, on=True, power_kw=1.5))
        hub.bus.publish(LoadControlEvent("main", 7, DeviceClass.HVAC | DeviceClass.POOL_PUMP, 0,
                                         now - timedelta(minutes=1), 60, Criticality.LEVEL_2, now, **event_fields))
        try:
            yield hub
        finally:
            await hub.control.stop()
