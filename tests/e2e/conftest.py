"""The whole appliance in one process against the simulated meter, on free ports.

Every appliance runs against the strict meter: after a test that passed, ``running_appliance``
settles the meter's conformance checker and fails the test on any SE violation it recorded.

The appliance and the simulator share one clock (``clock=``, such as ``local_clock("14:00")``:
simulated time from a chosen local time of day; by default the test's own, ``e2e_clock``, which
starts at ``TEST_CLOCK_START`` on ``DAY``: never the real date or time of day).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from ems.accounts import Accounts, Role
from ems.cli import compose, read_config
from ems.clock import REAL, Clock, SimulatedClock
from ems.hub import Hub
from integrations.simulator import SimulatedHan, scenario_from_dict

FAST_SCENARIO: dict[str, Any] = {
    "name": "e2e",
    "meter": {"report_interval": 0.2, "profile_interval_min": 1},
    "rate": {
        "label": "TOU-TEST",
        "block_thresholds_kwh": [350],
        "block_prices": [0.0, 0.07],
        "tou": [{"name": "all-day", "start": "00:00", "end": "24:00", "price": 0.29, "tier": 2}],
    },
    "messages": [
        {"at": 0.3, "text": "Grid reliability alert: reduce use 4-9 PM.", "importance": "high", "confirm": True,
         "kind": "public"},
    ],
    "events": [
        {"at": 0.4, "id": 4101, "starts_in": "2m", "duration_min": 30, "criticality": 3,
         "device_class": 1, "cooling_offset_c": 2.0},
    ],
}

RATES = Path(__file__).resolve().parents[2] / "config" / "rates.yaml"
CONFIG = f"""
site: {{name: Test home, timezone: America/Los_Angeles}}
tariff: {{plan: TOU-D-T, climate_zone: "10", rates_file: "{RATES}"}}
web: {{host: 127.0.0.1, port: 0}}
zigbee_se:
  report_interval_s: 0.5
  stale_after_s: 1.5
  first_retry_s: 0.2
  registration_retry_interval_min: 0.02
"""

# A home on its own Zigbee network: a thermostat, the pool pump and a DRLC load controller,
# and an event for all three that starts two seconds after it is announced.
HOME_IEEE = {"thermostat": "02:50:52:45:4d:48:00:01", "pump": "02:50:52:45:4d:48:00:02",
             "spa": "02:50:52:45:4d:48:00:06"}
HOME_SCENARIO: dict[str, Any] = {
    **FAST_SCENARIO,
    "messages": [],
    "events": [
        {"at": 1.0, "id": 5101, "starts_in": "2s", "duration_min": 1, "criticality": 3,
         "device_class": 0x0019, "cooling_offset_c": 2.0},
    ],
    "home": {
        "devices": [
            {"kind": "thermostat", "name": "Living room", "ieee": HOME_IEEE["thermostat"],
             "cooling_setpoint_c": 24, "heating_setpoint_c": 19, "system_mode": "cool"},
            {"kind": "plug", "name": "Pool pump", "ieee": HOME_IEEE["pump"], "nominal_kw": 1.5},
            {"kind": "load_controller", "name": "Spa heater", "ieee": HOME_IEEE["spa"], "nominal_kw": 2.0,
             "device_class": 0x0010},
        ],
    },
}
HOME_CONFIG = CONFIG + f"""
zigbee_home:
  permit_join_s: 60
  report_interval_s: 1
  command_timeout_s: 3
  devices:
    "{HOME_IEEE['thermostat']}": {{name: Living room, device_class: hvac}}
    "{HOME_IEEE['pump']}": {{name: Pool pump, device_class: pool_pump, nominal_kw: 1.5}}
    "{HOME_IEEE['spa']}": {{name: Spa heater, device_class: smart_appliance, nominal_kw: 2.0}}
demand_response:
  start_randomization_min: 0
  cycle_tick_s: 0.5
"""
HOME_RULES = """devices:
  Living room: {max_offset_c: 3}
rules:
  - name: Follow every event
    triggers: [{event: active}]
    action: follow_event
"""


SITE_TZ = ZoneInfo("America/Los_Angeles")  # CONFIG's site and the scenarios' time zone
DAY = date(2026, 7, 15)  # a summer Wednesday


def local_clock(hhmm: str, day: date = DAY, speed: float = 1.0) -> SimulatedClock:
    """Simulated time from ``hhmm`` on ``day`` in the site's time zone, ``speed`` times real time."""
    return SimulatedClock(datetime.combine(day, time.fromisoformat(hhmm), SITE_TZ), speed)


# The clock a test's appliances run on unless it gives one: a summer evening (the home draws from
# the grid, the on-peak price is on), one per test so an appliance started again in the same test
# finds time gone on, not back. Tests own the clock: none depends on the real date or time of day.
TEST_CLOCK_START = "20:00"
_TEST_CLOCK: list[Clock] = [REAL]


@pytest.fixture(autouse=True)
def e2e_clock() -> Any:
    _TEST_CLOCK[0] = local_clock(TEST_CLOCK_START)
    yield _TEST_CLOCK[0]
    _TEST_CLOCK[0] = REAL


# The least a wait for a condition allows (the suite's timeout, pytest-timeout, is the last guard).
HANG_GUARD_S = 60.0

OWNER = "owner"
OWNER_PASSWORD = "owner-password"


@dataclass
class Appliance:
    hub: Hub
    web: Any
    simulator: SimulatedHan
    http: aiohttp.ClientSession  # sends the owner's API token (Authorization: Bearer)
    token: str

    @property
    def url(self) -> str:
        return self.web.url

    async def sign_in(self, page: Any, username: str = OWNER, password: str = OWNER_PASSWORD) -> None:
        """Sign a browser page in as the owner through the sign-in form."""
        await page.goto(self.url + "/login")
        await page.fill("#username", username)
        await page.fill("#password", password)
        await page.click("button[type=submit]")
        await page.wait_for_url(self.url + "/")

    async def get(self, path: str) -> Any:
        async with self.http.get(self.url + path) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def meter(self) -> dict[str, Any]:
        return (await self.get("/api/v1/meter"))["meters"][0]

    async def wait_until(self, predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
        """Wait until ``predicate`` holds. The bound only guards against a hang: never under
        HANG_GUARD_S, whatever a test asks, as a busy machine is slow, not broken."""
        deadline = asyncio.get_running_loop().time() + max(timeout_s, HANG_GUARD_S)
        while True:
            result = predicate()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            await asyncio.sleep(0.05)

    async def online(self) -> dict[str, Any]:
        async def check() -> Any:
            meters = (await self.get("/api/v1/meter"))["meters"]
            return meters and meters[0]["link"] == "online" and meters[0]["demand_kw"] is not None
        await self.wait_until(check, what="the meter link to come online")
        return await self.meter()


def write_config(folder: Path, text: str = CONFIG) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ems.yaml").write_text(text)
    return folder


@contextlib.asynccontextmanager
async def running_appliance(tmp_path: Path, scenario: dict[str, Any] | None = None,
                            pcap: Path | None = None, data_dir: Path | None = None,
                            owner: bool = True, config_text: str = CONFIG,
                            rules_text: str | None = None, clock: Clock | None = None) -> AsyncIterator[Appliance]:
    """The appliance, started; with ``owner`` its owner exists and ``http`` sends the owner's token.

    The appliance and the simulated HAN run on ``clock``: by default the test's own (``e2e_clock``),
    never the real date and time of day.
    """
    clock = _TEST_CLOCK[0] if clock is None else clock
    folder = write_config(tmp_path / "config", config_text)
    if rules_text is not None:
        (folder / "rules.yaml").write_text(rules_text)
    config = read_config(folder)
    simulator = SimulatedHan(scenario_from_dict(scenario or FAST_SCENARIO), clock=clock)
    hub, web = compose(config, data_dir or tmp_path / "data", pcap=pcap, simulator=simulator, clock=clock)
    await hub.start()
    token = await owner_token(hub) if owner else ""
    http = aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"} if owner else None)
    try:
        yield Appliance(hub, web, simulator, http, token)
        # Only when the test itself passed: the strict meter must have seen no SE violation.
        await assert_conformant(simulator)
    finally:
        await http.close()
        await hub.stop()


async def assert_conformant(simulator: SimulatedHan, timeout_s: float | None = None) -> None:
    """Settle the strict meter's owed answers and fail on every SE rule the appliance broke."""
    violations = await simulator.meter.checker.settled(timeout_s)
    if violations:
        listing = "\n".join(f"  {i + 1}. {v}" for i, v in enumerate(violations))
        pytest.fail(f"the strict meter recorded {len(violations)} SE violation(s):\n{listing}", pytrace=False)


async def owner_token(hub: Hub) -> str:
    """The owner's account (created on the first start) and a new API token with every scope."""
    accounts = Accounts(hub.store)
    owner = await accounts.user(OWNER)
    if owner is None:
        owner = await accounts.create_user(OWNER, OWNER_PASSWORD, Role.OWNER)
    return (await accounts.create_token(owner, "tests", owner.scopes)).secret


@pytest.fixture
async def appliance(tmp_path: Path) -> AsyncIterator[Appliance]:
    """The whole appliance and its simulated meter on simulated time from a fixed evening: what the
    tests see (the TOU period, the tier, whether the simulated solar exports) never depends on the
    real date or time of day."""
    async with running_appliance(tmp_path, clock=local_clock("20:00")) as running:
        await running.online()
        yield running
