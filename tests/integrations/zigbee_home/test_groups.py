"""Shed groups on the home network: plugs join their class's group, one groupcast switches a whole group.

Over the real zigpy stack and the virtual radio: the simulated plugs keep group tables and
ignore a groupcast to a group they are not in, so each test sees what a real plug would do.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from integrations.simulator.home import default_ieee
from integrations.zigbee_home.groups import SHED_GROUP_BASE, shed_group

from .conftest import EV_CHARGER, HOME, POOL_PUMP, THERMOSTAT, WATER_HEATER, eventually

SIMPLE = SHED_GROUP_BASE + 7  # simple loads (DeviceClass 0x0080): the water heater and the extra plugs
PLUGS = tuple(default_ieee(n, "50") for n in range(1, 4))
SIMPLE_LOADS = (WATER_HEATER, *PLUGS)


@pytest.fixture
def home_spec() -> dict[str, Any]:
    return {**HOME, "extra_plugs": {"count": len(PLUGS), "nominal_kw": 1.0}}


def sim_plug(sim, device_id: str):
    return next(d for d in sim.home.devices if d.ieee == device_id)


def off_frames(sim, device_id: str) -> list[Any]:
    return sim_plug(sim, device_id).node.received("off")


def test_shed_groups_follow_the_device_classes() -> None:
    assert shed_group(0x0080) == SIMPLE
    assert shed_group(0x0008) == SHED_GROUP_BASE + 3  # pool pump
    with pytest.raises(ValueError, match="at least one class"):
        shed_group(0)


async def test_every_plug_joins_the_shed_group_of_its_class_at_set_up(network, sim) -> None:
    for device_id in SIMPLE_LOADS:
        assert network.devices[device_id].groups == {SIMPLE}
        assert sim_plug(sim, device_id).node.groups.endpoints_in(SIMPLE) == [1]  # as the plug itself says
    assert network.devices[POOL_PUMP].groups == {SHED_GROUP_BASE + 3}
    assert network.devices[EV_CHARGER].groups == {SHED_GROUP_BASE + 10}
    assert network.devices[THERMOSTAT].groups == frozenset()  # no Groups server: unicast only


async def test_a_whole_group_is_switched_by_one_groupcast_confirmed_by_each_plugs_report(network, sim) -> None:
    results = await network.port.switch_all(SIMPLE_LOADS, False)
    assert results == dict.fromkeys(SIMPLE_LOADS)
    assert network.port.fan_out.groupcasts == 1
    for device_id in SIMPLE_LOADS:
        assert not sim_plug(sim, device_id).on
        assert [f.group for f in off_frames(sim, device_id)] == [SIMPLE]  # the groupcast, no unicast
        assert network.devices[device_id].last["on"] is False  # its report confirmed it
    assert sim_plug(sim, POOL_PUMP).on  # in another group: not reached


async def test_a_member_that_missed_the_groupcast_is_switched_by_unicast(network, sim) -> None:
    missing = PLUGS[1]
    sim_plug(sim, missing).node.groups.remove(1, SIMPLE)  # reset by hand: it ignores the group now
    results = await network.port.switch_all(SIMPLE_LOADS, False)
    assert results == dict.fromkeys(SIMPLE_LOADS)
    assert not sim_plug(sim, missing).on
    assert [f.group for f in off_frames(sim, missing)] == [None]  # reached by unicast after the timeout
    assert [f.group for f in off_frames(sim, PLUGS[0])] == [SIMPLE]


async def test_a_device_left_out_is_not_switched_and_the_others_go_by_unicast(network, sim) -> None:
    kept = PLUGS[2]
    others = tuple(d for d in SIMPLE_LOADS if d != kept)
    results = await network.port.switch_all(others, False)
    assert results == dict.fromkeys(others)
    assert network.port.fan_out.groupcasts == 0  # a groupcast would have switched the one left out
    assert sim_plug(sim, kept).on and off_frames(sim, kept) == []
    for device_id in others:
        assert not sim_plug(sim, device_id).on
        assert [f.group for f in off_frames(sim, device_id)] == [None]


async def test_a_silent_member_is_reported_as_not_answering(network, sim) -> None:
    silent = PLUGS[0]
    sim_plug(sim, silent).silent = True
    results = await network.port.switch_all(SIMPLE_LOADS, False)
    assert [d for d, error in results.items() if error is not None] == [silent]
    assert "did not answer" in str(results[silent])
    await eventually(lambda: network.devices[silent].available is False)


async def test_a_stale_shed_group_is_left_when_the_device_is_set_up_again(network, sim) -> None:
    plug = sim_plug(sim, PLUGS[0]).node
    plug.groups.add(1, SHED_GROUP_BASE + 3)  # left over from when it was a pool pump's plug
    device = network.devices[PLUGS[0]]
    await device.setup(device.zdevice, device.layout)
    assert device.groups == {SIMPLE}
    assert plug.groups.groups_of(1) == {SIMPLE}


async def test_a_member_already_so_is_confirmed_by_unicast_without_waiting_for_a_report(network, sim) -> None:
    already = PLUGS[0]
    await network.port.switch(already, False)
    await eventually(lambda: network.devices[already].last.get("on") is False)
    results = await asyncio.wait_for(network.port.switch_all(SIMPLE_LOADS, False), 0.4)  # within the 0.5 s timeout
    assert results == dict.fromkeys(SIMPLE_LOADS)
    assert network.port.fan_out.groupcasts == 1
    assert [f.group for f in off_frames(sim, already)] == [None, SIMPLE, None]  # the first switch, the groupcast, its confirming unicast


async def test_no_groupcast_while_a_switch_left_out_has_not_said_its_groups(network, sim) -> None:
    kept = PLUGS[2]
    network.devices[kept].groups = None  # as after a restart, before its set-up came to the groups
    others = tuple(d for d in SIMPLE_LOADS if d != kept)
    assert await network.port.switch_all(others, False) == dict.fromkeys(others)
    assert network.port.fan_out.groupcasts == 0  # it may still be in the group: a groupcast would switch it
    assert sim_plug(sim, kept).on
