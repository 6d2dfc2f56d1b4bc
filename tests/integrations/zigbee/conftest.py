"""Fixtures for the virtual radio and the simulated HAN; tasks must not outlive a test."""

from __future__ import annotations

import asyncio

import pytest

GRACE_S = 1.0  # cancelled tasks (zigpy's own too) need a few loop turns to finish


@pytest.fixture(autouse=True)
async def fail_on_task_leak():
    """Fail a test that leaves asyncio tasks running once its fixtures are torn down."""
    before = set(asyncio.all_tasks())
    yield
    current = asyncio.current_task()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + GRACE_S
    while True:
        leftover = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
        if not leftover or loop.time() >= deadline:
            break
        await asyncio.sleep(0.01)
    if leftover:
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)
        names = ", ".join(sorted(task.get_name() for task in leftover))
        pytest.fail(f"test left {len(leftover)} task(s) running: {names}")


# --- a simulated SE meter, the HAN hosting it, and the real zigpy stack against it --------

from collections.abc import AsyncIterator  # noqa: E402
from pathlib import Path  # noqa: E402

import zigpy.device  # noqa: E402
import zigpy.types as t  # noqa: E402
import zigpy.zdo.types as zdo_t  # noqa: E402

from integrations.zigbee.han import VirtualHan  # noqa: E402
from integrations.zigbee.radio import VirtualRadioApplication  # noqa: E402
from integrations.zigbee.virtual_node import NodeEndpoint, VirtualNode  # noqa: E402

METER_IEEE = t.EUI64.convert("00:0d:6f:00:0a:bc:de:f0")
METER_NWK = 0x1234
SE_PROFILE = 0x0109
METERING_DEVICE = 0x0501
BASIC, TIME, METERING = 0x0000, 0x000A, 0x0702


def make_meter(nwk: int = METER_NWK) -> VirtualNode:
    """An SE metering device: Basic, Time and Metering servers on endpoint 1."""
    return VirtualNode(
        ieee=METER_IEEE,
        nwk=nwk,
        logical_type=zdo_t.LogicalType.Coordinator if nwk == 0 else zdo_t.LogicalType.Router,
        name="meter",
        manufacturer_code=0x10DC,
        endpoints=[
            NodeEndpoint(
                endpoint_id=1,
                profile_id=SE_PROFILE,
                device_type=METERING_DEVICE,
                in_clusters=(BASIC, TIME, METERING),
            )
        ],
        attributes={
            (1, BASIC): {
                "zcl_version": 3,
                "manufacturer": "Premise Sim",
                "model": "SE Meter",
                "power_source": 1,
            },
            (1, TIME): {"time": 0, "time_status": 0},
            (1, METERING): {
                "current_summ_delivered": 123_456,
                "instantaneous_demand": 1_500,
                "unit_of_measure": 0,
                "multiplier": 1,
                "divisor": 1_000,
                "metering_device_type": 0,
            },
        },
    )


@pytest.fixture
def meter() -> VirtualNode:
    return make_meter()


@pytest.fixture
async def han(tmp_path: Path, meter: VirtualNode) -> AsyncIterator[VirtualHan]:
    han = VirtualHan(pcap_path=tmp_path / "han.pcap")
    han.add_node(meter)
    await han.start()
    try:
        yield han
    finally:
        await han.stop()


def radio_config(han: VirtualHan, tmp_path: Path, name: str = "radio.pcap") -> dict:
    return {"device": {"path": han.radio_path}, "pcap_path": str(tmp_path / name)}


@pytest.fixture
async def app(han: VirtualHan, tmp_path: Path) -> AsyncIterator[VirtualRadioApplication]:
    app = VirtualRadioApplication(radio_config(han, tmp_path))
    await app.startup()
    try:
        yield app
    finally:
        await app.shutdown()


async def initialized_device(
    app: VirtualRadioApplication, ieee: t.EUI64 = METER_IEEE, timeout_s: float = 5.0
) -> zigpy.device.ZigbeeDevice:
    """The zigpy device once its interview has finished."""
    async with asyncio.timeout(timeout_s):
        while True:
            device = app.devices.get(ieee)
            if (
                isinstance(device, zigpy.device.ZigbeeDevice)
                and device.is_initialized
                and device.model
            ):
                return device
            await asyncio.sleep(0.01)
