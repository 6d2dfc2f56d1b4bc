"""A rule book with no rules, for web tests that need the demand-response component but no rule engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
