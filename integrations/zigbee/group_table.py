"""A simulated node's group table and its Groups cluster server (ZCL §3.6, cluster 0x0004).

Which endpoints of a node belong to which groups: the virtual node delivers a groupcast
(``AirFrame.group``) only to its endpoints that are members, and ignores it when none is.
The Groups server answers as ZCL §3.6.2.3 says: Add Group, View Group and Remove Group reply
with their response command and a status (SUCCESS, DUPLICATE_EXISTS, NOT_FOUND,
INSUFFICIENT_SPACE, INVALID_VALUE for 0x0000 and 0xFFF8-0xFFFF), Get Group Membership with
the capacity left and the groups asked about (or all); Remove All Groups and Add Group If
Identifying answer with a Default Response only. These responses are sent only to a unicast
command (§3.6.2.3: "only if the command was unicast"); a groupcast or broadcast one is carried
out silently. Group names are not supported (NameSupport bit 7 clear): a name is ignored and
View Group answers an empty one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Groups, Identify

from .air import MAX_GROUP

if TYPE_CHECKING:
    from .virtual_node import CommandRequest, VirtualNode

ZclStatus = foundation.Status
GROUPS = Groups.cluster_id
DEFAULT_CAPACITY = 16  # group table entries per node (a device-specific figure; 16 is common)


class GroupTable:
    """Memberships of a node's endpoints: (endpoint, group) pairs, at most ``capacity`` of them."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._members: dict[int, set[int]] = {}

    def groups_of(self, endpoint_id: int) -> frozenset[int]:
        return frozenset(self._members.get(endpoint_id, ()))

    def endpoints_in(self, group: int) -> list[int]:
        """The node's endpoints that are members of ``group``, in order."""
        return sorted(ep for ep, groups in self._members.items() if group in groups)

    @property
    def free(self) -> int:
        return max(0, self.capacity - sum(len(g) for g in self._members.values()))

    def add(self, endpoint_id: int, group: int) -> foundation.Status:
        if not _valid(group):
            return ZclStatus.INVALID_VALUE
        groups = self._members.setdefault(endpoint_id, set())
        if group in groups:
            return ZclStatus.DUPLICATE_EXISTS
        if not self.free:
            return ZclStatus.INSUFFICIENT_SPACE
        groups.add(group)
        return ZclStatus.SUCCESS

    def remove(self, endpoint_id: int, group: int) -> foundation.Status:
        if not _valid(group):
            return ZclStatus.INVALID_VALUE
        groups = self._members.get(endpoint_id, set())
        if group not in groups:
            return ZclStatus.NOT_FOUND
        groups.discard(group)
        return ZclStatus.SUCCESS

    def remove_all(self, endpoint_id: int) -> None:
        self._members.pop(endpoint_id, None)


def _valid(group: int) -> bool:
    return 0x0001 <= int(group) <= MAX_GROUP


class GroupsServer:
    """The Groups cluster's server side on one endpoint of a virtual node, over its ``GroupTable``."""

    def __init__(self, node: VirtualNode, endpoint_id: int, table: GroupTable) -> None:
        self._node = node
        self._endpoint_id = endpoint_id
        self._table = table
        node.set_attribute(endpoint_id, Groups, "name_support", 0)  # names not supported
        for command, handler in (
            ("add", self._add),
            ("view", self._view),
            ("get_membership", self._get_membership),
            ("remove", self._remove),
            ("remove_all", self._remove_all),
            ("add_if_identifying", self._add_if_identifying),
        ):
            node.on_command(endpoint_id, GROUPS, command, handler)

    def _answer(self, request: CommandRequest, command: str, **fields: Any) -> None:
        if not request.broadcast:  # §3.6.2.3: responses only to a unicast command
            request.reply(command, **fields)

    def _add(self, request: CommandRequest) -> None:
        group = int(request.fields["group_id"])
        status = self._table.add(self._endpoint_id, group)
        self._answer(request, "add_response", status=status, group_id=group)

    def _view(self, request: CommandRequest) -> None:
        group = int(request.fields["group_id"])
        if not _valid(group):
            status = ZclStatus.INVALID_VALUE
        elif group in self._table.groups_of(self._endpoint_id):
            status = ZclStatus.SUCCESS
        else:
            status = ZclStatus.NOT_FOUND
        self._answer(request, "view_response", status=status, group_id=group, group_name="")

    def _get_membership(self, request: CommandRequest) -> None:
        asked = [int(g) for g in request.fields["groups"]]
        mine = sorted(self._table.groups_of(self._endpoint_id))
        found = mine if not asked else [g for g in asked if g in mine]
        if asked and not found and request.broadcast:
            return  # none of them: answered only to a unicast (it is not, so nothing at all)
        self._answer(request, "get_membership_response", capacity=min(self._table.free, 0xFD),
                     groups=found)

    def _remove(self, request: CommandRequest) -> None:
        group = int(request.fields["group_id"])
        status = self._table.remove(self._endpoint_id, group)
        self._answer(request, "remove_response", status=status, group_id=group)

    def _remove_all(self, request: CommandRequest) -> None:
        self._table.remove_all(self._endpoint_id)

    def _add_if_identifying(self, request: CommandRequest) -> None:
        # Only while the endpoint identifies itself (Identify cluster's IdentifyTime > 0).
        endpoint = self._node.endpoints[self._endpoint_id]
        if Identify.cluster_id not in endpoint.in_clusters:
            return
        if int(self._node.get_attribute(self._endpoint_id, Identify, "identify_time") or 0) > 0:
            self._table.add(self._endpoint_id, int(request.fields["group_id"]))
