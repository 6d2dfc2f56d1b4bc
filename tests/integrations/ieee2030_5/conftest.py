"""A simulated 2030.5 meter over TLS on loopback and a real hub reading it through the link."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ems.clock import FixedClock
from ems.hub import Hub
from integrations.ieee2030_5 import async_setup
from integrations.ieee2030_5.identity import ClientIdentity, identity_for
from integrations.ieee2030_5.link import MeterLink
from integrations.simulator import load_scenario
from integrations.simulator.ieee2030_5 import Ieee2030Meter
from tests.hubs import started_hub

REPO = Path(__file__).resolve().parents[3]
NOON_PDT = datetime(2026, 7, 15, 19, 0, tzinfo=UTC)  # the panels export at noon


def demo_scenario() -> Any:
    return load_scenario(REPO / "config" / "scenarios" / "demo.yaml")


@dataclass
class Rig:
    hub: Hub
    meter: Ieee2030Meter
    link: MeterLink
    clock: FixedClock
    identity: ClientIdentity
    events: list[Any] = field(default_factory=list)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, predicate: Callable[[], Any], what: str = "", guard_s: float = 20.0) -> Any:
        """Wait (real time, bounded) until ``predicate()`` is true; the clock does not move meanwhile."""
        loop = asyncio.get_running_loop()
        end = loop.time() + guard_s
        while not (value := predicate()):
            if loop.time() > end:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            await asyncio.sleep(0.01)
        return value

    async def advance(self, seconds: float, step_s: float = 5.0) -> None:
        """Move the clock in steps, letting the link answer each (its sleeps end as the clock passes them)."""
        left = seconds
        while left > 0:
            move = min(step_s, left)
            self.clock.advance(seconds=move)
            left -= move
            await asyncio.sleep(0.05)


@asynccontextmanager
async def rig(tmp_path: Path, *, register: bool = True, section: dict[str, Any] | None = None,
              clock: FixedClock | None = None, **meter_options: Any) -> AsyncIterator[Rig]:
    clock = clock or FixedClock(NOON_PDT)
    meter = Ieee2030Meter(demo_scenario(), clock, **meter_options)
    identity = identity_for(tmp_path / "data")
    if register:
        meter.register_client(identity.cert_path.read_bytes())
    await meter.start()
    try:
        async with started_hub(tmp_path, clock=clock) as hub:
            events: list[Any] = []
            hub.bus.listen_all(events.append)
            settings = {"url": meter.url, "poll_min_s": 5, "stale_after_s": 30, "timeout_s": 2, "retries": 1,
                        "first_retry_s": 1, "retry_max_s": 10, "history_h": 0.5, **(section or {})}
            link = await async_setup(hub, settings)
            try:
                yield Rig(hub, meter, link, clock, identity, events)
            finally:
                await link.close()
    finally:
        await meter.stop()
