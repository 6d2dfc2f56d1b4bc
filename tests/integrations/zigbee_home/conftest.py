"""A simulated home on its own virtual HAN, and the EMS's home network joined to it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ems.bus import EventBus
from ems.clock import REAL
from ems.tasks import TaskSet
from integrations.simulator import scenario_from_dict
from integrations.zigbee_home import CONFIG_SCHEMA, async_setup
from tests.hubs import Clock

NOON = datetime(2026, 7, 1, 19, 0, tzinfo=UTC)  # 12:00 in Los Angeles

THERMOSTAT = "02:50:52:45:4d:48:00:01"
POOL_PUMP = "02:50:52:45:4d:48:00:02"
WATER_HEATER = "02:50:52:45:4d:48:00:03"
EV_CHARGER = "02:50:52:45:4d:48:00:04"
BATTERY = "02:50:52:45:4d:48:00:05"
SPA = "02:50:52:45:4d:48:00:06"
ALL = (THERMOSTAT, POOL_PUMP, WATER_HEATER, EV_CHARGER, BATTERY, SPA)

HOME = {
    "house": {"indoor_c": 26.0},
    "devices": [
        {"kind": "thermostat", "name": "Living room", "ieee": THERMOSTAT, "cooling_setpoint_c": 24,
         "heating_setpoint_c": 19, "system_mode": "cool", "min_cool_c": 18, "max_cool_c": 32,
         "min_heat_c": 7, "max_heat_c": 26, "deadband_c": 2},
        {"kind": "plug", "name": "Pool pump", "ieee": POOL_PUMP, "nominal_kw": 1.5},
        {"kind": "plug", "name": "Water heater", "ieee": WATER_HEATER, "nominal_kw": 4.5},
        {"kind": "plug", "name": "EV charger", "ieee": EV_CHARGER, "nominal_kw": 7.2},
        {"kind": "battery", "name": "Home battery", "ieee": BATTERY, "capacity_kwh": 13.5, "soc_pct": 60},
        {"kind": "load_controller", "name": "Spa heater", "ieee": SPA, "nominal_kw": 2.0,
         "device_class": 0x0010},
    ],
}

# The EMS's configuration: names and classes for some devices, the rest read from the device.
DEVICES = {
    THERMOSTAT: {"name": "Living room", "device_class": "hvac"},
    POOL_PUMP: {"name": "Pool pump", "device_class": "pool_pump", "nominal_kw": 1.5},
    EV_CHARGER: {"name": "EV charger", "device_class": "electric_vehicle"},
    BATTERY: {"name": "Home battery", "capacity_kwh": 13.5},
}


@dataclass
class FakeHub:
    """What an integration needs of the hub: a real bus, the ports, owned tasks."""

    bus: EventBus = field(default_factory=EventBus)
    device_ports: dict[str, Any] = field(default_factory=dict)
    config: Any = None
    tasks: TaskSet = field(default_factory=lambda: TaskSet(logging.getLogger("test-hub")))
    events: list[Any] = field(default_factory=list)
    clock: Any = REAL  # the hub's clock (ems.clock); the integration reads time through it

    def __post_init__(self) -> None:
        self.bus.listen_all(self.events.append)

    def create_task(self, coro: Any, name: str) -> asyncio.Task[Any]:
        return self.tasks.spawn(coro, name)

    def of(self, event_type: type, **match: Any) -> list[Any]:
        return [e for e in self.events if isinstance(e, event_type)
                and all(getattr(e, k) == v for k, v in match.items())]

    async def wait_for(self, event_type: type, predicate: Callable[[Any], bool] = lambda e: True,
                       *, since: int = 0, timeout_s: float = 30.0, **match: Any) -> Any:
        """The first event of a type (from index ``since``) that matches, waiting if needed."""
        async with asyncio.timeout(timeout_s):
            while True:
                for event in self.events[since:]:
                    if isinstance(event, event_type) and predicate(event) and all(
                            getattr(event, k) == v for k, v in match.items()):
                        return event
                await asyncio.sleep(0.01)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


@pytest.fixture
def home_spec() -> dict[str, Any]:
    return HOME


@pytest.fixture
async def sim(clock: Clock, home_spec: dict[str, Any]) -> AsyncIterator[Any]:
    from integrations.simulator.runner import SimulatedHan

    scenario = scenario_from_dict({"meter": {"report_interval": "10m", "profile_interval_min": 15},
                                   "home": home_spec})
    simulator = SimulatedHan(scenario, clock=clock)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def home_section(port: int, **overrides: Any) -> dict[str, Any]:
    return CONFIG_SCHEMA({
        "radio": {"path": f"virtual://127.0.0.1:{port}"},
        "devices": DEVICES,
        "report_interval_s": 1,
        "min_report_interval_s": 0,
        "command_timeout_s": 0.5,
        "unavailable_after_s": 5,
        "first_retry_s": 0.1,
        "max_retry_s": 0.5,
        **overrides,
    })


@pytest.fixture
async def hub() -> AsyncIterator[FakeHub]:
    hub = FakeHub()
    yield hub
    await hub.tasks.cancel_all()
    await hub.bus.close()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def network(hub: FakeHub, sim: Any, settings_overrides: dict[str, Any]) -> AsyncIterator[Any]:
    """The EMS's home network, once every simulated device is set up."""
    network = await async_setup(hub, home_section(sim.home_port, **settings_overrides))
    try:
        await wait_ready(network, len(sim.home.devices))
        yield network
    finally:
        await network.close()


async def eventually(predicate: Callable[[], bool], timeout_s: float = 3.0) -> None:
    """Wait until ``predicate()`` holds (TimeoutError after ``timeout_s``)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)


async def wait_ready(network: Any, count: int, timeout_s: float = 4.0) -> None:
    await eventually(
        lambda: sum(1 for d in network.devices.values() if d.ready and d.available) >= count, timeout_s)
