"""A virtual node's groups: the Groups cluster answered per ZCL §3.6, groupcasts only to members."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
from pathlib import Path

import pytest
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Basic, Groups, OnOff

from integrations.zigbee.air import AirFrame
from integrations.zigbee.virtual_node import NodeEndpoint, VirtualNode
from tests.conftest import require_tool

from .pcap_reader import read_pcap
from .test_virtual_node import FakeNetwork

TSHARK = "/usr/bin/tshark"

HA = 0x0104
Status = foundation.Status
GROUP = 0x0E07


def make_plug(nwk: int = 0x4001, ieee: str = "02:50:52:45:4d:50:00:01") -> VirtualNode:
    node = VirtualNode(ieee=ieee, nwk=nwk, name=f"plug 0x{nwk:04X}", endpoints=[
        NodeEndpoint(1, HA, 0x0051, in_clusters=(Basic.cluster_id, Groups.cluster_id, OnOff.cluster_id))],
        attributes={(1, OnOff.cluster_id): {"on_off": True}})
    node.on_command(1, OnOff.cluster_id, "off", lambda _request: node.set_attribute(1, OnOff, "on_off", False))
    return node


def is_on(node: VirtualNode) -> bool:
    return bool(node.get_attribute(1, OnOff, "on_off"))


@pytest.fixture
def network() -> FakeNetwork:
    return FakeNetwork()


@pytest.fixture
def plug(network: FakeNetwork) -> VirtualNode:
    node = make_plug()
    node.attach(network)
    node.join()
    network.sent.clear()
    return node


def groups_command(name: str, *, tsn: int = 5, **fields) -> bytes:
    command = getattr(Groups.ServerCommandDefs, name)
    hdr = foundation.ZCLHeader.cluster(tsn=tsn, command_id=command.id)
    return hdr.serialize() + command.schema(**fields).serialize()


_APS_COUNTER = itertools.count(10)  # each frame its own APS counter, or the node drops it as a copy


def unicast(payload: bytes, cluster: int = Groups.cluster_id, dst: int = 0x4001) -> AirFrame:
    return AirFrame.single_hop(pan_id=0x1A62, nwk_src=0x0000, nwk_dst=dst, seq=next(_APS_COUNTER) & 0xFF,
                               src_endpoint=1,
                               dst_endpoint=1, cluster_id=cluster, profile_id=HA, payload=payload)


def groupcast(payload: bytes, cluster: int = OnOff.cluster_id, group: int = GROUP, seq: int = 4) -> AirFrame:
    return AirFrame.groupcast(pan_id=0x1A62, nwk_src=0x0000, group=group, seq=seq, src_endpoint=1,
                              cluster_id=cluster, profile_id=HA, payload=payload)


def response(network: FakeNetwork) -> tuple[str, dict]:
    (frame,) = network.sent
    network.sent.clear()
    assert (frame.nwk_dst, frame.dst_endpoint, frame.cluster_id) == (0x0000, 1, Groups.cluster_id)
    hdr, body = foundation.ZCLHeader.deserialize(frame.payload)
    assert hdr.direction == foundation.Direction.Server_to_Client and hdr.tsn == 5
    command = Groups.client_commands[hdr.command_id]
    fields, _ = command.schema.deserialize(body)
    return command.name, fields.as_dict()


def off() -> bytes:
    hdr = foundation.ZCLHeader.cluster(tsn=9, command_id=OnOff.ServerCommandDefs.off.id)
    return hdr.serialize()


def test_add_group_answers_success_then_duplicate_exists(plug: VirtualNode, network: FakeNetwork) -> None:
    plug.receive(unicast(groups_command("add", group_id=GROUP, group_name="")))
    assert response(network) == ("add_response", {"status": Status.SUCCESS, "group_id": GROUP})
    plug.receive(unicast(groups_command("add", group_id=GROUP, group_name="")))
    assert response(network) == ("add_response", {"status": Status.DUPLICATE_EXISTS, "group_id": GROUP})
    assert plug.groups.endpoints_in(GROUP) == [1]


@pytest.mark.parametrize("command", ["add", "view", "remove"])
@pytest.mark.parametrize("group", [0x0000, 0xFFF8])
def test_a_group_id_outside_0001_fff7_is_an_invalid_value(plug: VirtualNode, network: FakeNetwork, command: str,
                                                         group: int) -> None:
    fields = {"group_id": group, "group_name": ""} if command == "add" else {"group_id": group}
    plug.receive(unicast(groups_command(command, **fields)))
    name, answer = response(network)
    assert name == f"{command}_response" and answer["status"] == Status.INVALID_VALUE


def test_view_and_remove_say_not_found_for_a_group_it_is_not_in(plug: VirtualNode, network: FakeNetwork) -> None:
    plug.receive(unicast(groups_command("view", group_id=GROUP)))
    assert response(network) == ("view_response", {"status": Status.NOT_FOUND, "group_id": GROUP, "group_name": ""})
    plug.receive(unicast(groups_command("remove", group_id=GROUP)))
    assert response(network) == ("remove_response", {"status": Status.NOT_FOUND, "group_id": GROUP})
    plug.receive(unicast(groups_command("add", group_id=GROUP, group_name="Shed")))
    response(network)
    plug.receive(unicast(groups_command("view", group_id=GROUP)))
    # Names are not supported (NameSupport 0): the view answers an empty name.
    assert response(network) == ("view_response", {"status": Status.SUCCESS, "group_id": GROUP, "group_name": ""})
    plug.receive(unicast(groups_command("remove", group_id=GROUP)))
    assert response(network) == ("remove_response", {"status": Status.SUCCESS, "group_id": GROUP})
    assert plug.groups.endpoints_in(GROUP) == []


def test_get_group_membership_lists_all_or_those_asked_and_the_capacity_left(plug: VirtualNode,
                                                                             network: FakeNetwork) -> None:
    for group in (0x0E03, GROUP):
        plug.receive(unicast(groups_command("add", group_id=group, group_name="")))
        response(network)
    plug.receive(unicast(groups_command("get_membership", groups=[])))
    assert response(network) == ("get_membership_response",
                                 {"capacity": plug.groups.capacity - 2, "groups": [0x0E03, GROUP]})
    plug.receive(unicast(groups_command("get_membership", groups=[GROUP, 0x0E0A])))
    assert response(network)[1]["groups"] == [GROUP]


def test_a_full_group_table_answers_insufficient_space(plug: VirtualNode, network: FakeNetwork) -> None:
    for group in range(1, plug.groups.capacity + 1):
        plug.receive(unicast(groups_command("add", group_id=group, group_name="")))
        assert response(network)[1]["status"] == Status.SUCCESS
    plug.receive(unicast(groups_command("add", group_id=GROUP, group_name="")))
    assert response(network)[1]["status"] == Status.INSUFFICIENT_SPACE


def test_remove_all_groups_leaves_none(plug: VirtualNode, network: FakeNetwork) -> None:
    plug.receive(unicast(groups_command("add", group_id=GROUP, group_name="")))
    response(network)
    plug.receive(unicast(groups_command("remove_all")))
    hdr, body = foundation.ZCLHeader.deserialize(network.sent.pop().payload)
    assert hdr.command_id == foundation.GeneralCommand.Default_Response
    assert foundation.DefaultResponse.deserialize(body)[0].status == Status.SUCCESS
    assert plug.groups.groups_of(1) == frozenset()


def test_a_groupcast_reaches_a_member_and_gets_no_answer(plug: VirtualNode, network: FakeNetwork) -> None:
    plug.receive(unicast(groups_command("add", group_id=GROUP, group_name="")))
    response(network)
    plug.receive(groupcast(off()))
    assert not is_on(plug)
    assert network.sent == []  # ZCL §2.5.12.2: no Default Response to a groupcast
    (entry,) = plug.received("off")
    assert (entry.group, entry.broadcast) == (GROUP, True)


def test_a_node_not_in_the_group_ignores_the_groupcast(plug: VirtualNode, network: FakeNetwork) -> None:
    plug.receive(groupcast(off()))
    assert is_on(plug)
    assert plug.received("off") == []
    assert plug.counters["rx_not_member"] == 1
    plug.receive(unicast(groups_command("add", group_id=0x0E03, group_name="")))
    response(network)
    plug.receive(groupcast(off(), seq=5))  # another group's member still ignores this one
    assert is_on(plug)


def test_groups_commands_sent_by_groupcast_are_carried_out_without_answers(plug: VirtualNode,
                                                                           network: FakeNetwork) -> None:
    plug.receive(unicast(groups_command("add", group_id=GROUP, group_name="")))
    response(network)
    plug.receive(groupcast(groups_command("add", group_id=0x0E03, group_name=""), cluster=Groups.cluster_id))
    plug.receive(groupcast(groups_command("view", group_id=GROUP), cluster=Groups.cluster_id, seq=5))
    assert network.sent == []  # §3.6.2.3: responses only to a unicast command
    assert plug.groups.groups_of(1) == {GROUP, 0x0E03}


async def test_one_groupcast_from_the_radio_reaches_every_member_and_only_them(han, app, tmp_path: Path) -> None:
    """zigpy's Group.request through the virtual radio: one APS group frame on the air, decoded by Wireshark."""
    members = [make_plug(0x4001 + n, f"02:50:52:45:4d:50:00:{n + 1:02x}") for n in range(3)]
    outsider = make_plug(0x4010, "02:50:52:45:4d:50:00:10")
    for node in (*members, outsider):
        han.add_node(node)
    for node in members:
        node.groups.add(1, GROUP)
    await app.groups.add_group(GROUP).endpoint.on_off.off()
    await asyncio.gather(*(node.wait_for("off", timeout_s=5) for node in members))
    await asyncio.sleep(0.05)  # anything more would have arrived by now
    assert [len(node.received("off")) for node in members] == [1, 1, 1]
    assert outsider.received("off") == [] and outsider.counters["rx_not_member"] == 1
    assert [is_on(node) for node in members] == [False] * 3
    assert is_on(outsider)
    await app.shutdown()
    _linktype, records = read_pcap(tmp_path / "radio.pcap")
    on_off = [frame for _s, _us, data in records if (frame := AirFrame.decode(data)).cluster_id == OnOff.cluster_id]
    assert [(f.group, f.nwk_dst, f.mac_dst) for f in on_off] == [(GROUP, 0xFFFD, 0xFFFF)]  # one frame for all

    require_tool(TSHARK, "decodes the pcap capture")
    for pcap in (tmp_path / "radio.pcap", tmp_path / "han.pcap"):
        groupcasts = _tshark(pcap, "-Y", "zbee_aps.group == 0x0e07", "-T", "fields", "-e", "_ws.col.Info")
        (info,) = groupcasts.splitlines()  # the one groupcast, in both captures
        assert "Off" in info
        assert _tshark(pcap, "-Y", "_ws.malformed") == ""
        assert _tshark(pcap, "-Y", "_ws.expert") == "", "Wireshark's expert analysis found something to warn about"


def _tshark(pcap: Path, *args: str) -> str:
    result = subprocess.run([TSHARK, "-r", str(pcap), *args], capture_output=True, text=True, check=True, timeout=60)
    return result.stdout
