"""VirtualNode on its own: ZDO answers and ZCL rules, checked on the frames it sends back."""

from __future__ import annotations

from typing import Any

import pytest
import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Basic
from zigpy.zcl.clusters.smartenergy import Metering

from integrations.zigbee.air import AirFrame
from integrations.zigbee.virtual_node import NodeSendError, VirtualNode
from integrations.zigbee.zdo_server import parse as parse_zdo
from integrations.zigbee.zdo_server import serialize as serialize_zdo

from .conftest import METER_IEEE, METER_NWK, METERING, SE_PROFILE, make_meter

COORDINATOR_IEEE = t.EUI64.convert("02:50:52:45:4d:00:00:01")
GENERAL = foundation.GeneralCommand
Status = foundation.Status


class FakeNetwork:
    """Collects what the node transmits, in place of a VirtualHan."""

    pan_id = 0x1A62
    extended_pan_id = t.ExtendedPanId.convert("50:52:45:4d:49:53:45:31")
    coordinator_ieee = COORDINATOR_IEEE

    def __init__(self) -> None:
        self.sent: list[AirFrame] = []
        self.reachable = True

    def transmit(self, frame: AirFrame) -> bool:
        if self.reachable or frame.broadcast:
            self.sent.append(frame)
        return self.reachable or frame.broadcast

    def nwk_of(self, ieee: t.EUI64) -> int | None:
        return 0x0000 if ieee == COORDINATOR_IEEE else None


@pytest.fixture
def network() -> FakeNetwork:
    return FakeNetwork()


@pytest.fixture
def node(network: FakeNetwork) -> VirtualNode:
    node = make_meter()
    node.attach(network)
    node.join()
    network.sent.clear()
    return node


def to_node(
    payload: bytes, *, cluster: int, profile: int = SE_PROFILE, dst: int = METER_NWK, ep: int = 1
) -> AirFrame:
    return AirFrame.single_hop(
        pan_id=0x1A62,
        nwk_src=0x0000,
        nwk_dst=dst,
        seq=1,
        src_endpoint=ep if ep else 0,
        dst_endpoint=ep,
        cluster_id=cluster,
        profile_id=profile,
        payload=payload,
    )


def zcl(
    command: int, body: bytes = b"", *, general: bool = True, ddr: bool = False, tsn: int = 7
) -> bytes:
    make = foundation.ZCLHeader.general if general else foundation.ZCLHeader.cluster
    hdr = make(tsn=tsn, command_id=command)
    hdr.frame_control = hdr.frame_control.replace(disable_default_response=int(ddr))
    return hdr.serialize() + body


def zcl_reply(network: FakeNetwork) -> tuple[foundation.ZCLHeader, bytes]:
    (frame,) = network.sent
    network.sent.clear()
    assert (frame.nwk_dst, frame.dst_endpoint, frame.profile_id) == (0x0000, 1, SE_PROFILE)
    return foundation.ZCLHeader.deserialize(frame.payload)


def zdo_reply(network: FakeNetwork) -> tuple[zdo_t.ZDOCmd, dict[str, Any]]:
    (frame,) = network.sent
    network.sent.clear()
    command, _tsn, fields = parse_zdo(frame.cluster_id, frame.payload)
    return command, fields


def zdo_request(command: zdo_t.ZDOCmd, *args: Any, dst: int = METER_NWK) -> AirFrame:
    return to_node(serialize_zdo(command, 3, args), cluster=command, profile=0, dst=dst, ep=0)


def default_response(network: FakeNetwork) -> foundation.DefaultResponse:
    hdr, body = zcl_reply(network)
    assert hdr.command_id == GENERAL.Default_Response
    return foundation.DefaultResponse.deserialize(body)[0]


def test_join_announces_with_device_annce(network: FakeNetwork) -> None:
    node = make_meter()
    with pytest.raises(NodeSendError, match="has not joined"):
        node._send(
            dst_nwk=0, dst_endpoint=0, src_endpoint=0, cluster_id=0, profile_id=0, payload=b""
        )
    node.attach(network)
    node.join()
    command, fields = zdo_reply(network)
    assert command == zdo_t.ZDOCmd.Device_annce
    assert (fields["NWKAddr"], fields["IEEEAddr"], fields["Capability"]) == (
        METER_NWK,
        METER_IEEE,
        0x8E,
    )


def test_unicast_zdo_about_another_node_is_an_error(
    node: VirtualNode, network: FakeNetwork
) -> None:
    node.receive(zdo_request(zdo_t.ZDOCmd.Node_Desc_req, 0x4444))
    assert zdo_reply(network) == (
        zdo_t.ZDOCmd.Node_Desc_rsp,
        {
            "Status": zdo_t.Status.DEVICE_NOT_FOUND,
            "NWKAddrOfInterest": 0x4444,
            "NodeDescriptor": None,
        },
    )
    node.receive(zdo_request(zdo_t.ZDOCmd.Simple_Desc_req, METER_NWK, 9))
    assert zdo_reply(network)[1]["Status"] == zdo_t.Status.NOT_ACTIVE


def test_address_requests(node: VirtualNode, network: FakeNetwork) -> None:
    node.receive(zdo_request(zdo_t.ZDOCmd.IEEE_addr_req, METER_NWK, 0, 0, dst=0xFFFD))
    command, fields = zdo_reply(network)
    assert command == zdo_t.ZDOCmd.IEEE_addr_rsp and fields["IEEEAddr"] == METER_IEEE
    node.receive(zdo_request(zdo_t.ZDOCmd.NWK_addr_req, COORDINATOR_IEEE, 0, 0, dst=0xFFFD))
    assert network.sent == []  # a broadcast about someone else stays unanswered
    node.receive(zdo_request(zdo_t.ZDOCmd.NWK_addr_req, METER_IEEE, 0, 0, dst=0xFFFD))
    assert zdo_reply(network)[1]["NWKAddr"] == METER_NWK


def test_mgmt_lqi_lists_the_coordinator_as_parent(node: VirtualNode, network: FakeNetwork) -> None:
    node.receive(zdo_request(zdo_t.ZDOCmd.Mgmt_Lqi_req, 0))
    command, fields = zdo_reply(network)
    (neighbor,) = fields["Neighbors"].NeighborTableList
    assert (
        neighbor.ieee == COORDINATOR_IEEE
        and neighbor.relationship == zdo_t.Neighbor.Relationship.Parent
    )


def test_unsupported_zdo_request_gets_not_supported(
    node: VirtualNode, network: FakeNetwork
) -> None:
    node.receive(zdo_request(zdo_t.ZDOCmd.Power_Desc_req, METER_NWK))
    assert zdo_reply(network) == (
        zdo_t.ZDOCmd.Power_Desc_rsp,
        {
            "Status": zdo_t.Status.NOT_SUPPORTED,
            "NWKAddrOfInterest": METER_NWK,
            "PowerDescriptor": None,
        },
    )


def test_write_attributes_checks_access_and_type(node: VirtualNode, network: FakeNetwork) -> None:
    records = [
        foundation.Attribute(
            attrid=0x0004, value=foundation.TypeValue(type=0x42, value=t.CharacterString("X"))
        ),
        foundation.Attribute(
            attrid=0x0010, value=foundation.TypeValue(type=0x42, value=t.CharacterString("hall"))
        ),
        foundation.Attribute(
            attrid=0x0012, value=foundation.TypeValue(type=0x20, value=t.uint8_t(1))
        ),
    ]
    node.set_attribute(1, Basic, "location_desc", "cellar")
    body = t.List[foundation.Attribute](records).serialize()
    node.receive(to_node(zcl(GENERAL.Write_Attributes, body), cluster=0x0000))
    hdr, rsp = zcl_reply(network)
    assert hdr.command_id == GENERAL.Write_Attributes_rsp
    results, _ = foundation.WriteAttributesResponse.deserialize(rsp)
    assert [(r.status, r.attrid) for r in results] == [
        (Status.READ_ONLY, 0x0004),
        (Status.UNSUPPORTED_ATTRIBUTE, 0x0012),
    ]
    assert node.get_attribute(1, Basic, "location_desc") == "hall"


def test_default_response_rules(node: VirtualNode, network: FakeNetwork) -> None:
    # Unknown cluster command: an error is reported even with default response disabled.
    node.receive(to_node(zcl(0x3F, general=False, ddr=True), cluster=METERING))
    assert default_response(network).status == Status.UNSUP_CLUSTER_COMMAND
    # A known command without a registered handler.
    node.receive(to_node(zcl(0x05, b"\x00\x00\x00\x00", general=False), cluster=METERING))
    assert default_response(network).status == Status.UNSUP_CLUSTER_COMMAND
    # A cluster the endpoint does not serve.
    node.receive(to_node(zcl(GENERAL.Read_Attributes, b"\x00\x00"), cluster=0x0006))
    assert default_response(network).status == Status.UNSUPPORTED_CLUSTER
    # An unknown general command.
    node.receive(to_node(zcl(0x40), cluster=METERING))
    assert default_response(network).status == Status.UNSUP_GENERAL_COMMAND
    # A malformed command.
    node.receive(to_node(zcl(GENERAL.Configure_Reporting, b"\x00\x00"), cluster=METERING))
    assert default_response(network).status == Status.MALFORMED_COMMAND
    # Success with default response disabled, and anything broadcast: no answer.
    node.on_command(1, METERING, "take_snapshot", lambda request: None)
    node.receive(to_node(zcl(0x05, b"\x00\x00\x00\x00", general=False, ddr=True), cluster=METERING))
    node.receive(to_node(zcl(0x3F, general=False), cluster=METERING, dst=0xFFFF, ep=0xFF))
    assert network.sent == []
    assert node.received("take_snapshot")[-1].fields == {"snapshot_cause": 0}


def test_reporting_follows_reportable_change(node: VirtualNode, network: FakeNetwork) -> None:
    config = foundation.AttributeReportingConfig()
    config.direction, config.attrid = foundation.ReportingDirection.SendReports, 0x0400
    config.datatype, config.min_interval, config.max_interval = 0x2A, 0, 0
    config.reportable_change = 50
    body = t.List[foundation.AttributeReportingConfig]([config]).serialize()
    node.receive(to_node(zcl(GENERAL.Configure_Reporting, body), cluster=METERING))
    hdr, rsp = zcl_reply(network)
    assert hdr.command_id == GENERAL.Configure_Reporting_rsp and rsp == b"\x00"
    assert node.reporting_config(1, Metering, 0x0400) == (0, 0, 50)

    node.receive(
        to_node(zcl(GENERAL.Read_Reporting_Configuration, b"\x00\x00\x04"), cluster=METERING)
    )
    hdr, rsp = zcl_reply(network)
    (record,), _ = t.List[foundation.AttributeReportingConfigWithStatus].deserialize(rsp)
    assert (record.status, record.config.reportable_change) == (Status.SUCCESS, 50)


async def test_report_attributes_and_unreachable_destination(
    node: VirtualNode, network: FakeNetwork
) -> None:
    tsn = await node.report_attributes(1, Metering, ["current_summ_delivered"])
    hdr, body = zcl_reply(network)
    assert (hdr.tsn, hdr.command_id) == (tsn, GENERAL.Report_Attributes)
    (report,), _ = t.List[foundation.Attribute].deserialize(body)
    assert (report.attrid, report.value.value) == (0x0000, 123_456)
    network.reachable = False
    with pytest.raises(NodeSendError, match="cannot reach 0x0000"):
        await node.send_command(1, Metering, "request_mirror")
    assert node.counters["tx_dropped"] == 1


def test_bad_definitions_are_rejected(node: VirtualNode) -> None:
    with pytest.raises(KeyError, match="has no attribute 'no_such'"):
        node.set_attribute(1, Metering, "no_such", 1)
    with pytest.raises(ValueError, match="does not fit attribute instantaneous_demand"):
        node.set_attribute(1, Metering, "instantaneous_demand", "lots")
    with pytest.raises(ValueError, match="cannot receive Metering command 'request_mirror'"):
        node.on_command(1, METERING, "request_mirror", lambda request: None)
    with pytest.raises(ValueError, match="no endpoint 2"):
        node.set_attribute(2, Metering, "instantaneous_demand", 1)


def test_observers_see_every_zcl_frame_both_ways_as_bytes(node: VirtualNode, network: FakeNetwork) -> None:
    from integrations.zigbee.virtual_node import WireFrame

    seen: list[WireFrame] = []
    unsubscribe = node.observe(seen.append)
    request = zcl(GENERAL.Read_Attributes, b"\x00\x00", tsn=9)
    node.receive(to_node(request, cluster=METERING))
    assert [(f.outgoing, f.cluster_id, f.payload[1]) for f in seen] == [(False, METERING, 9), (True, METERING, 9)]
    assert seen[0].payload == request
    assert seen[1].payload == network.sent[-1].payload
    unsubscribe()
    node.receive(to_node(request, cluster=METERING))
    assert len(seen) == 2


def test_a_failing_observer_does_not_stop_the_node(node: VirtualNode, network: FakeNetwork) -> None:
    def broken(frame: Any) -> None:
        raise RuntimeError("observer bug")

    node.observe(broken)
    node.receive(to_node(zcl(GENERAL.Read_Attributes, b"\x00\x00"), cluster=METERING))
    hdr, _ = zcl_reply(network)
    assert hdr.command_id == GENERAL.Read_Attributes_rsp


def test_a_computed_attribute_is_computed_when_read(node: VirtualNode, network: FakeNetwork) -> None:
    values = iter([100, 200, 300])
    node.compute_attribute(1, METERING, "current_summ_delivered", lambda: next(values))
    node.receive(to_node(zcl(GENERAL.Read_Attributes, b"\x00\x00"), cluster=METERING))
    _, body = zcl_reply(network)
    (records,), _ = foundation.GENERAL_COMMANDS[GENERAL.Read_Attributes_rsp].schema.deserialize(body)
    assert records[0].value.value == 200  # 100 when it was declared, 200 at the read
    assert node.get_attribute(1, METERING, "current_summ_delivered") == 300
