"""The dispatcher's fan-out: same-way switch commands through a port that fans out go in one request.

The port (in the appliance, the home network's groupcasts) answers per device; each device's
outcome is its own: published, logged, retried and put back as a command sent alone would be.
A device taken out of the event, or given another target, is not in the request.
"""

from __future__ import annotations

import pytest

from ems.dr.dispatch import FanOutPort
from ems.errors import DeviceError
from ems.model import (
    CommandAction,
    DeviceClass,
    DeviceCommanded,
    DeviceInfo,
    DeviceKind,
    DeviceReading,
)

from .conftest import make_event
from .test_cycle import FakePort, cycle_at, start_control

PLUGS = tuple(f"00:00:00:00:00:00:01:{n:02x}" for n in range(1, 5))


class FanOutFakePort(FakePort):
    """Records each fan-out request; a device in ``silent`` fails within it, the others confirm."""

    def __init__(self, hub) -> None:
        super().__init__(hub)
        self.fan_outs: list[tuple[tuple[str, ...], bool]] = []

    async def switch_all(self, device_ids, on):
        ids = tuple(device_ids)
        self.fan_outs.append((tuple(sorted(ids)), on))
        return {d: DeviceError(f"{d} did not answer within 5 s") if d in self.silent else None for d in ids}


@pytest.fixture
async def plugs(hub, clock):
    registry, lc, dispatcher, cycle, _port, stop = await start_control(hub, clock)
    port = FanOutFakePort(hub)
    for n, device_id in enumerate(PLUGS, start=1):
        hub.bus.publish(DeviceInfo(device_id, f"Plug {n}", DeviceKind.SWITCH, DeviceClass.SIMPLE_LOAD, nominal_kw=1.0))
        hub.bus.publish(DeviceReading(device_id, clock.now, on=True, power_kw=1.0))
        hub.device_ports[device_id] = port
    commanded: list[DeviceCommanded] = []
    hub.bus.listen(DeviceCommanded, commanded.append)
    yield lc, dispatcher, cycle, port, commanded
    await stop()


async def start_event(hub, clock, cycle) -> None:
    hub.bus.publish(make_event(device_class=DeviceClass.SIMPLE_LOAD))
    clock.advance(minutes=10)
    await cycle_at(cycle)


def test_the_home_port_is_a_fan_out_port() -> None:
    from integrations.zigbee_home.port import HomePort

    assert isinstance(HomePort(lambda _id: None), FanOutPort)


async def test_every_plug_switched_off_by_an_event_goes_in_one_request(hub, clock, plugs):
    _lc, dispatcher, cycle, port, commanded = plugs
    await start_event(hub, clock, cycle)
    assert port.fan_outs == [(PLUGS, False)]
    assert port.calls == []  # nothing one by one
    assert sorted(c.command.device_id for c in commanded if c.ok and c.command.action is CommandAction.OFF) \
        == list(PLUGS)
    assert all(dispatcher.controlled[d].target.on is False for d in PLUGS)


async def test_putting_them_back_is_one_request_too_and_forgets_them(hub, clock, plugs):
    _lc, dispatcher, cycle, port, _commanded = plugs
    await start_event(hub, clock, cycle)
    clock.advance(minutes=60)
    await cycle_at(cycle)
    assert port.fan_outs == [(PLUGS, False), (PLUGS, True)]
    assert dispatcher.controlled == {}
    assert await hub.store.read("controlled rows", _controlled_rows) == 0


async def test_a_device_that_fails_within_the_request_is_its_own_failure_and_tried_again(hub, clock, plugs):
    _lc, dispatcher, cycle, port, commanded = plugs
    port.silent.add(PLUGS[2])
    await start_event(hub, clock, cycle)
    failed = [c for c in commanded if not c.ok]
    assert [c.command.device_id for c in failed] == [PLUGS[2]]
    assert "did not answer" in failed[0].detail
    assert dispatcher.controlled[PLUGS[0]].target.on is False
    assert dispatcher.controlled[PLUGS[2]].failed_at is not None
    port.silent.clear()
    clock.advance(seconds=10)  # within RETRY_AFTER (30 s): not yet
    await cycle_at(cycle)
    assert len(port.fan_outs) == 1 and port.calls == []
    clock.advance(seconds=30)
    await cycle_at(cycle)
    assert port.calls == [("switch", PLUGS[2], False)]  # alone now: sent by itself


async def test_a_device_taken_out_of_the_event_is_left_out_of_the_request(hub, clock, plugs):
    lc, _dispatcher, cycle, port, _commanded = plugs
    hub.bus.publish(make_event(device_class=DeviceClass.SIMPLE_LOAD))
    await lc.set_participation("main", 1, opted_out=True, device_id=PLUGS[1])
    clock.advance(minutes=10)
    await cycle_at(cycle)
    assert port.fan_outs == [(tuple(d for d in PLUGS if d != PLUGS[1]), False)]
    assert port.calls == []


async def test_the_originals_are_on_disk_before_the_request_goes_out(hub, clock, plugs):
    _lc, _dispatcher, cycle, port, _commanded = plugs
    written: list[int] = []
    switch_all = port.switch_all

    async def checking(device_ids, on):
        written.append(await hub.store.read("controlled rows", _controlled_rows))
        return await switch_all(device_ids, on)

    port.switch_all = checking
    await start_event(hub, clock, cycle)
    assert written == [len(PLUGS)]


async def _controlled_rows(conn) -> int:
    from sqlalchemy import func, select

    from ems.store import tables

    return (await conn.execute(select(func.count()).select_from(tables.controlled_devices))).scalar_one()
