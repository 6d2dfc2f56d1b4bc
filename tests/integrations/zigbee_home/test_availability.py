"""A device that does not answer is a DeviceError, shown unavailable, and available again later."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from ems.errors import DeviceError
from ems.model import DeviceAvailability, DeviceInfo
from integrations.zigbee_home import async_setup

from .conftest import POOL_PUMP, THERMOSTAT, home_section, wait_ready


async def test_a_silent_device_fails_the_command_within_the_timeout(hub, network, sim):
    sim.home.device("Pool pump").silent = True
    # The error says the command's own 0.5 s timeout ended it; how long that took in real time is
    # not asserted (a busy machine is slow, not broken); the outer bound only guards against a hang.
    async with asyncio.timeout(60):
        with pytest.raises(DeviceError, match=r"Plug 'Pool pump' did not answer within 0.5 s"):
            await network.port.switch(POOL_PUMP, False)


async def test_a_device_that_does_not_answer_is_published_unavailable_once(hub, network, sim):
    sim.home.device("Pool pump").silent = True
    for _ in range(2):
        with pytest.raises(DeviceError):
            await network.port.switch(POOL_PUMP, False)
    [event] = hub.of(DeviceAvailability, device_id=POOL_PUMP)
    assert (event.available, event.detail) == (False, "did not answer within 0.5 s")


async def test_a_device_that_answers_again_is_published_available(hub, network, sim):
    pump = sim.home.device("Pool pump")
    pump.silent = True
    with pytest.raises(DeviceError):
        await network.port.switch(POOL_PUMP, False)
    pump.silent = False
    back = await hub.wait_for(DeviceAvailability, lambda e: e.available, device_id=POOL_PUMP)
    assert back.detail == "answering again"
    await network.port.switch(POOL_PUMP, False)
    assert pump.on is False


# Whatever the report interval (the watch's longest sleep): it wakes when the silence reaches the limit.
@pytest.mark.parametrize("settings_overrides", [{"unavailable_after_s": 1.2},
                                                {"unavailable_after_s": 1.2, "report_interval_s": 30}])
async def test_a_device_that_stops_reporting_becomes_unavailable(hub, network, sim):
    sim.home.device("Living room").silent = True
    event = await hub.wait_for(DeviceAvailability, device_id=THERMOSTAT, timeout_s=3)
    assert (event.available, event.detail) == (False, "no report for over 1.2 s")


async def test_a_lost_radio_makes_every_device_unavailable_until_it_is_back(hub, network, sim, caplog):
    caplog.set_level(logging.INFO, logger="integrations.zigbee_home.network")
    await sim.home.han.drop_link()
    down = await hub.wait_for(DeviceAvailability, lambda e: not e.available, device_id=POOL_PUMP)
    assert down.detail == "the home network is down (radio connection lost)"
    with pytest.raises(DeviceError, match="home network is not up"):
        await network.port.switch(POOL_PUMP, False)
    await hub.wait_for(DeviceAvailability, lambda e: e.available, device_id=POOL_PUMP, timeout_s=4)
    await network.port.switch(POOL_PUMP, False)
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "integrations.zigbee_home.network"]
    assert [m for level, m in messages if level == logging.WARNING] == [
        "Home network down: radio connection lost; retrying with backoff"]
    assert [m for level, m in messages if level == logging.INFO].count("Home network restored") == 1


async def test_closing_the_network_publishes_no_unavailability(hub, network, sim):
    before = len(hub.of(DeviceAvailability))
    await network.close()
    assert len(hub.of(DeviceAvailability)) == before  # stopping the appliance is not an outage
    assert not network.connected and network.app is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_radio_that_is_not_there_yet_is_retried_until_it_is(hub, clock):
    from integrations.simulator import scenario_from_dict
    from integrations.simulator.runner import SimulatedHan

    from .conftest import HOME

    port = free_port()
    network = await async_setup(hub, home_section(port))
    try:
        await asyncio.sleep(0.3)  # a few attempts fail meanwhile
        assert network.attempts >= 2 and not network.connected
        sim = SimulatedHan(scenario_from_dict({"home": HOME}), clock=clock, home_port=port)
        await sim.start()
        try:
            await wait_ready(network, len(sim.home.devices))
            assert hub.of(DeviceInfo, device_id=THERMOSTAT)
        finally:
            await sim.stop()
    finally:
        await network.close()
