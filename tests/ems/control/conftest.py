"""Fixtures of the control tests: a started hub on a real SQLite store, with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems.config import load_config
from ems.hub import Hub
from ems.model import Criticality, DeviceClass, EventStatusReport, LoadControlEvent

T0 = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)  # 13:00 in Los Angeles, a summer Wednesday


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "ems.yaml").write_text("site: {name: Test home, timezone: America/Los_Angeles}\n")
    hub = Hub(load_config(folder), tmp_path / "data")
    await hub.start()
    yield hub
    await hub.stop()


def make_event(event_id: int = 1, *, start: datetime = T0 + timedelta(minutes=10), duration_min: int = 60,
               device_class: DeviceClass = DeviceClass.HVAC, **fields: object) -> LoadControlEvent:
    return LoadControlEvent(
        meter_id="main", issuer_event_id=event_id, device_class=device_class, enrollment_group=0,
        start=start, duration_min=duration_min, criticality=Criticality.LEVEL_2, received_at=T0, **fields,
    )



@pytest.fixture
def reports(hub: Hub) -> list[EventStatusReport]:
    """Every status report the load control published, in order."""
    seen: list[EventStatusReport] = []
    hub.bus.listen(EventStatusReport, seen.append)
    return seen
