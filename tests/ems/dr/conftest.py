"""Fixtures of the control tests: a started hub on a real SQLite store, with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems.hub import Hub
from ems.model import Criticality, DeviceClass, EventStatusReport, LoadControlEvent
from tests.hubs import Clock, started_hub

T0 = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)  # 13:00 in Los Angeles, a summer Wednesday


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with started_hub(tmp_path) as hub:
        yield hub


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
