"""The real zigpy stack, as coordinator, against a simulated SE meter through the virtual radio."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import zigpy.exceptions
import zigpy.listeners
import zigpy.types as t
import zigpy.zdo
import zigpy.zdo.types as zdo_t
from zigpy.zcl import foundation
from zigpy.zcl.clusters.smartenergy import Metering

from integrations.zigbee.controller import permit_join
from integrations.zigbee.han import VirtualHan
from integrations.zigbee.radio import RadioLinkLost, VirtualRadioApplication
from integrations.zigbee.virtual_node import CommandRequest, NodeEndpoint, VirtualNode

from .conftest import (
    BASIC,
    METER_IEEE,
    METER_NWK,
    METERING,
    METERING_DEVICE,
    SE_PROFILE,
    TIME,
    initialized_device,
    radio_config,
)


async def eventually(predicate: Any, timeout_s: float = 60.0) -> None:
    """Poll a condition the simulation will make true (it has no event to wait on); the bound only
    guards against a hang (a busy machine is slow, not broken)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if predicate():
                return
            await asyncio.sleep(0.01)


async def test_meter_joins_and_zigpy_interviews_it(
    app: VirtualRadioApplication, meter: VirtualNode
) -> None:
    device = await initialized_device(app)
    assert device.nwk == METER_NWK
    assert device.node_desc is not None and device.node_desc.manufacturer_code == 0x10DC
    endpoint = device.endpoints[1]
    assert (endpoint.profile_id, endpoint.device_type) == (SE_PROFILE, METERING_DEVICE)
    assert set(endpoint.in_clusters) == {BASIC, TIME, METERING}
    assert isinstance(endpoint.in_clusters[METERING], Metering)
    assert (device.manufacturer, device.model) == ("Premise Sim", "SE Meter")
    interview = [f.command for f in meter.log if f.src_nwk == 0x0000]
    for step in ("Node_Desc_req", "Active_EP_req", "Simple_Desc_req", "Read_Attributes"):
        assert step in interview


async def test_coordinator_reads_attributes(app: VirtualRadioApplication) -> None:
    metering = (await initialized_device(app)).endpoints[1].smartenergy_metering
    success, failure = await metering.read_attributes(
        ["current_summ_delivered", "instantaneous_demand", "current_max_demand_delivered"]
    )
    assert success == {"current_summ_delivered": 123_456, "instantaneous_demand": 1_500}
    assert failure == {"current_max_demand_delivered": foundation.Status.UNSUPPORTED_ATTRIBUTE}


async def test_configured_reporting_reaches_a_cluster_listener(
    app: VirtualRadioApplication, meter: VirtualNode
) -> None:
    metering = (await initialized_device(app)).endpoints[1].smartenergy_metering
    reports: list[Any] = []
    unsubscribe = metering.on_event("attribute_report", lambda event: reports.append(event.value))
    try:
        assert (await metering.bind())[0] == zdo_t.Status.SUCCESS
        result = await metering.configure_reporting("instantaneous_demand", 0, 3600, 100)
        assert list(result.values()) == [foundation.Status.SUCCESS]
        assert meter.reporting_config(1, METERING, "instantaneous_demand") == (0, 3600, 100)
        await eventually(lambda: reports == [1_500])  # a first report right after configuring

        meter.set_attribute(1, Metering, "instantaneous_demand", 1_550)  # below the change
        meter.set_attribute(1, Metering, "instantaneous_demand", 1_700)
        await eventually(lambda: len(reports) == 2)
        assert reports == [1_500, 1_700]
        assert metering.get("instantaneous_demand") == 1_700
    finally:
        unsubscribe()


async def test_max_interval_reports_without_change(
    app: VirtualRadioApplication, meter: VirtualNode
) -> None:
    metering = (await initialized_device(app)).endpoints[1].smartenergy_metering
    await metering.configure_reporting("current_summ_delivered", 0, 1, 10)
    await eventually(lambda: meter.counters["reports"] >= 2)


async def test_node_command_reaches_zigpy_cluster_listener(
    app: VirtualRadioApplication, meter: VirtualNode
) -> None:
    metering = (await initialized_device(app)).endpoints[1].smartenergy_metering
    received: list[tuple[int, Any]] = []

    class Listener:
        def cluster_command(self, tsn: int, command_id: int, args: Any) -> None:
            received.append((command_id, args))

    metering.add_listener(Listener())
    tsn = await meter.send_command(1, Metering, "request_mirror")
    await eventually(lambda: received)
    assert received[0][0] == Metering.ClientCommandDefs.request_mirror.id

    # With default response enabled, zigpy answers and the node logs it.
    since = len(meter.log)
    tsn = await meter.send_command(1, METERING, "request_mirror", disable_default_response=False)
    answer = await meter.wait_for("Default_Response", cluster_id=METERING, since=since)
    assert answer.tsn == tsn
    assert answer.fields["status"] == foundation.Status.SUCCESS


async def test_coordinator_command_reaches_node_handler(
    app: VirtualRadioApplication, meter: VirtualNode
) -> None:
    metering = (await initialized_device(app)).endpoints[1].smartenergy_metering
    seen: list[CommandRequest] = []

    def on_fast_poll(request: CommandRequest) -> None:
        seen.append(request)
        request.reply(
            "request_fast_poll_mode_response",
            applied_update_period=request.fields["fast_poll_update_period"],
            fast_poll_mode_end_time=1_000,
        )

    unsubscribe = meter.on_command(1, METERING, "request_fast_poll_mode", on_fast_poll)
    rsp = await metering.request_fast_poll_mode(fast_poll_update_period=2, duration=5)
    assert (rsp.applied_update_period, rsp.fast_poll_mode_end_time) == (2, 1_000)
    assert seen[0].src_nwk == 0x0000 and seen[0].fields == {
        "fast_poll_update_period": 2,
        "duration": 5,
    }
    logged = meter.received("request_fast_poll_mode", cluster_id=METERING)
    assert logged[0].fields == {"fast_poll_update_period": 2, "duration": 5}

    # Without a handler the node answers per ZCL: Default Response UNSUP_CLUSTER_COMMAND.
    unsubscribe()
    rsp = await metering.request_fast_poll_mode(fast_poll_update_period=2, duration=5)
    assert rsp.status == foundation.Status.UNSUP_CLUSTER_COMMAND


async def test_async_handler_status_becomes_default_response(
    app: VirtualRadioApplication, meter: VirtualNode
) -> None:
    metering = (await initialized_device(app)).endpoints[1].smartenergy_metering

    async def refuse(request: CommandRequest) -> foundation.Status:
        await asyncio.sleep(0)
        return foundation.Status.NOT_AUTHORIZED

    meter.on_command(1, METERING, "get_profile", refuse)
    rsp = await metering.get_profile(interval_channel=0, end_time=0, number_of_periods=1)
    assert rsp.status == foundation.Status.NOT_AUTHORIZED


async def test_match_desc_broadcast_finds_the_meter(
    app: VirtualRadioApplication, meter: VirtualNode
) -> None:
    await initialized_device(app)

    def is_match_desc_rsp(hdr: Any, command: Any) -> bool:
        return isinstance(hdr, zdo_t.ZDOHeader) and hdr.command_id == zdo_t.ZDOCmd.Match_Desc_rsp

    with app.wait_for_response(zigpy.listeners.ANY_DEVICE, [is_match_desc_rsp]) as response:
        await zigpy.zdo.broadcast(
            app,
            zdo_t.ZDOCmd.Match_Desc_req,
            0x0000,
            0,
            t.BroadcastAddress.RX_ON_WHEN_IDLE,
            SE_PROFILE,
            [METERING],
            [],
            broadcast_address=t.BroadcastAddress.RX_ON_WHEN_IDLE,
        )
        async with asyncio.timeout(60):  # guards against a hang only
            _hdr, (status, nwk, matches) = await response
    assert (status, nwk, matches) == (zdo_t.Status.SUCCESS, METER_NWK, [1])
    assert meter.received("Match_Desc_req")[-1].broadcast


async def test_bind_and_unbind(app: VirtualRadioApplication, meter: VirtualNode) -> None:
    metering = (await initialized_device(app)).endpoints[1].smartenergy_metering
    assert await metering.bind() == [zdo_t.Status.SUCCESS]
    (binding,) = meter.bindings
    assert (binding.SrcEndpoint, binding.ClusterId) == (1, METERING)
    assert binding.DstAddress.ieee == app.state.node_info.ieee
    assert await metering.unbind() == [zdo_t.Status.SUCCESS]
    assert await metering.unbind() == [zdo_t.Status.NO_ENTRY]


async def test_unknown_destination_is_a_delivery_error(app: VirtualRadioApplication) -> None:
    packet = t.ZigbeePacket(
        src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x0000),
        src_ep=0,
        dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=0x9999),
        dst_ep=0,
        cluster_id=zdo_t.ZDOCmd.Node_Desc_req,
        data=t.SerializableBytes(b"\x01\x99\x99"),
    )
    with pytest.raises(zigpy.exceptions.DeliveryError, match="0x9999: NO_ROUTE"):
        await app.send_packet(packet)


async def test_dropped_link_is_reported_and_a_new_instance_restarts(
    app: VirtualRadioApplication, han: VirtualHan, tmp_path: Path
) -> None:
    await initialized_device(app)
    lost: list[Exception] = []
    zigpy_lost: list[Exception] = []

    class ZigpyListener:
        def connection_lost(self, exc: Exception) -> None:
            zigpy_lost.append(exc)

    unsubscribe = app.on_connection_lost(lost.append)
    app.add_listener(ZigpyListener())
    await han.drop_link()
    await eventually(lambda: lost)
    unsubscribe()
    assert isinstance(lost[0], RadioLinkLost) and zigpy_lost == lost
    assert not app.is_connected
    with pytest.raises(zigpy.exceptions.DeliveryError, match="not connected"):
        await app.permit_ncp(10)
    await app.shutdown()

    second = VirtualRadioApplication(radio_config(han, tmp_path, "second.pcap"))
    await second.startup()
    try:
        metering = (await initialized_device(second)).endpoints[1].smartenergy_metering
        success, _ = await metering.read_attributes(["current_summ_delivered"])
        assert success == {"current_summ_delivered": 123_456}
    finally:
        await second.shutdown()


async def test_same_instance_restarts_after_a_drop(
    app: VirtualRadioApplication, han: VirtualHan
) -> None:
    device = await initialized_device(app)
    await han.drop_link()
    await eventually(lambda: not app.is_connected)
    await app.startup()
    assert app.is_connected
    await eventually(
        lambda: len([f for f in han.nodes[METER_NWK].log if f.command == "Read_Attributes"]) >= 1
    )
    success, _ = await device.endpoints[1].smartenergy_metering.read_attributes(
        ["instantaneous_demand"]
    )
    assert success == {"instantaneous_demand": 1_500}
    assert app.get_device(ieee=METER_IEEE) is device


async def test_second_radio_is_refused_while_one_is_connected(
    app: VirtualRadioApplication, han: VirtualHan, tmp_path: Path
) -> None:
    intruder = VirtualRadioApplication(radio_config(han, tmp_path, "intruder.pcap"))
    with pytest.raises(zigpy.exceptions.TransientConnectionError):
        await intruder.startup()
    assert app.is_connected


async def test_node_joining_on_permit(app: VirtualRadioApplication, han: VirtualHan) -> None:
    plug = VirtualNode(
        ieee="00:0d:6f:00:00:00:00:02",
        nwk=0x2222,
        endpoints=[
            NodeEndpoint(
                endpoint_id=1, profile_id=0x0104, device_type=0x0051, in_clusters=(BASIC, 0x0006)
            )
        ],
        attributes={(1, BASIC): {"manufacturer": "Premise Sim", "model": "Plug"}},
        joins_on_permit=True,
    )
    han.add_node(plug)
    await asyncio.sleep(0.05)
    assert not plug.joined
    await permit_join(app, 60)
    device = await initialized_device(app, plug.ieee)
    assert device.model == "Plug"
    assert set(device.endpoints[1].in_clusters) == {BASIC, 0x0006}
