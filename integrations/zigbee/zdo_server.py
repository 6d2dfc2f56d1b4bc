"""The ZDO server of a simulated node: discovery, binding and minimal management requests.

Answers as ZigBee PRO §2.4.3/§2.4.4 describe: a broadcast request is answered only by the
node it concerns (or, for Match_Desc_req, only on a match); a unicast request is always
answered, with an error status when it does not apply.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

import zigpy.types as t
import zigpy.zdo.types as zdo_t

LOGGER = logging.getLogger(__name__)

Cmd = zdo_t.ZDOCmd
Status = zdo_t.Status
_BROADCAST_NWK_OF_INTEREST = (0xFFFF, 0xFFFD, 0xFFFC)


@dataclasses.dataclass(frozen=True)
class ZdoReply:
    """A ZDO response to send back to the requester."""

    command: zdo_t.ZDOCmd
    args: tuple[Any, ...]

    def payload(self, tsn: int) -> bytes:
        return serialize(self.command, tsn, self.args)


def serialize(command: zdo_t.ZDOCmd, tsn: int, args: tuple[Any, ...]) -> bytes:
    """ZDO frame bytes: TSN then the fields of `command`; trailing None fields are omitted."""
    names, types = zdo_t.CLUSTERS[command]  # zigpy keeps (names, types) per command
    if len(args) > len(types):
        raise ValueError(f"{command.name} takes {len(types)} fields, got {len(args)}")
    data = bytes([tsn])
    for name, field_type, value in zip(names, types, args, strict=False):
        if value is None:
            break
        try:
            data += (value if isinstance(value, field_type) else field_type(value)).serialize()
        except (TypeError, ValueError) as err:
            raise ValueError(f"{command.name}.{name}: cannot encode {value!r}") from err
    return data


def parse(command_id: int, data: bytes) -> tuple[zdo_t.ZDOCmd, int, dict[str, Any]]:
    """(command, tsn, fields by name) of a ZDO frame; ValueError if it does not parse."""
    command = zdo_t.ZDOCmd(command_id)
    schema = zdo_t.CLUSTERS.get(command)
    if schema is None:
        raise ValueError(f"ZDO command 0x{command_id:04X} has no known schema")
    if not data:
        raise ValueError(f"{command.name} frame is empty")
    names, types = schema
    values, _rest = t.deserialize(data[1:], types)
    return command, data[0], dict(zip(names, values, strict=True))


class ZdoServer:
    """Answers ZDO requests for one node and keeps its binding table."""

    def __init__(
        self,
        *,
        ieee: t.EUI64,
        nwk: int,
        node_descriptor: zdo_t.NodeDescriptor,
        endpoints: Mapping[int, zdo_t.SimpleDescriptor],
        neighbors: Callable[[], list[zdo_t.Neighbor]],
    ) -> None:
        self.ieee = ieee
        self.nwk = nwk
        self.node_descriptor = node_descriptor
        self._endpoints = dict(endpoints)
        self._neighbors = neighbors
        self.bindings: list[zdo_t.Binding] = []

    def bindings_for(self, endpoint_id: int, cluster_id: int) -> list[zdo_t.MultiAddress]:
        """Destinations bound to a source endpoint and cluster of this node."""
        return [
            b.DstAddress
            for b in self.bindings
            if b.SrcEndpoint == endpoint_id and b.ClusterId == cluster_id
        ]

    def handle(
        self, command: zdo_t.ZDOCmd, fields: dict[str, Any], *, broadcast: bool
    ) -> ZdoReply | None:
        """The reply to a request, or None when the node stays silent."""
        handler = getattr(self, f"_handle_{command.name.lower()}", None)
        if handler is not None:
            return handler(fields, broadcast)
        if command & 0x8000 or broadcast:
            return None  # responses are logged by the node; unknown broadcasts ignored
        rsp = zdo_t.ZDOCmd(command | 0x8000)
        if rsp not in zdo_t.CLUSTERS:
            return None
        LOGGER.debug("Node 0x%04X does not support %s", self.nwk, command.name)
        names, _types = zdo_t.CLUSTERS[rsp]
        if list(names[1:2]) == ["NWKAddrOfInterest"]:  # most responses name the node asked about
            return ZdoReply(rsp, (Status.NOT_SUPPORTED, self.nwk))
        return ZdoReply(rsp, (Status.NOT_SUPPORTED,))

    def _about_me(self, nwk_of_interest: int, broadcast: bool) -> bool:
        return nwk_of_interest == self.nwk or (
            broadcast and nwk_of_interest in _BROADCAST_NWK_OF_INTEREST
        )

    def _handle_nwk_addr_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        if f["IEEEAddr"] != self.ieee:
            if broadcast:
                return None
            return ZdoReply(Cmd.NWK_addr_rsp, (Status.DEVICE_NOT_FOUND, f["IEEEAddr"], self.nwk))
        return ZdoReply(Cmd.NWK_addr_rsp, (Status.SUCCESS, self.ieee, self.nwk))

    def _handle_ieee_addr_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        if not self._about_me(f["NWKAddrOfInterest"], broadcast):
            if broadcast:
                return None
            return ZdoReply(Cmd.IEEE_addr_rsp, (Status.DEVICE_NOT_FOUND, self.ieee, self.nwk))
        return ZdoReply(Cmd.IEEE_addr_rsp, (Status.SUCCESS, self.ieee, self.nwk))

    def _handle_node_desc_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        if not self._about_me(f["NWKAddrOfInterest"], broadcast):
            return (
                None
                if broadcast
                else ZdoReply(Cmd.Node_Desc_rsp, (Status.DEVICE_NOT_FOUND, f["NWKAddrOfInterest"]))
            )
        return ZdoReply(Cmd.Node_Desc_rsp, (Status.SUCCESS, self.nwk, self.node_descriptor))

    def _handle_active_ep_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        if not self._about_me(f["NWKAddrOfInterest"], broadcast):
            return (
                None
                if broadcast
                else ZdoReply(
                    Cmd.Active_EP_rsp, (Status.DEVICE_NOT_FOUND, f["NWKAddrOfInterest"], [])
                )
            )
        return ZdoReply(Cmd.Active_EP_rsp, (Status.SUCCESS, self.nwk, sorted(self._endpoints)))

    def _handle_simple_desc_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        if not self._about_me(f["NWKAddrOfInterest"], broadcast):
            return (
                None
                if broadcast
                else ZdoReply(
                    Cmd.Simple_Desc_rsp, (Status.DEVICE_NOT_FOUND, f["NWKAddrOfInterest"])
                )
            )
        endpoint_id = f["EndPoint"]
        if not 1 <= endpoint_id <= 240:
            return ZdoReply(Cmd.Simple_Desc_rsp, (Status.INVALID_EP, self.nwk))
        descriptor = self._endpoints.get(endpoint_id)
        if descriptor is None:
            return ZdoReply(Cmd.Simple_Desc_rsp, (Status.NOT_ACTIVE, self.nwk))
        sized = zdo_t.SizePrefixedSimpleDescriptor(**descriptor.as_dict())
        return ZdoReply(Cmd.Simple_Desc_rsp, (Status.SUCCESS, self.nwk, sized))

    def _handle_match_desc_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        if not self._about_me(f["NWKAddrOfInterest"], broadcast):
            return (
                None
                if broadcast
                else ZdoReply(
                    Cmd.Match_Desc_rsp, (Status.DEVICE_NOT_FOUND, f["NWKAddrOfInterest"], [])
                )
            )
        wanted_in, wanted_out = set(f["InClusterList"]), set(f["OutClusterList"])
        matches = [
            ep
            for ep, sd in sorted(self._endpoints.items())
            if f["ProfileID"] in (sd.profile, 0xFFFF)
            and (wanted_in & set(sd.input_clusters) or wanted_out & set(sd.output_clusters))
        ]
        if broadcast and not matches:
            return None
        return ZdoReply(Cmd.Match_Desc_rsp, (Status.SUCCESS, self.nwk, matches))

    def _bind_status(self, f: dict[str, Any]) -> zdo_t.Status | None:
        if f["SrcAddress"] != self.ieee:
            return Status.NOT_SUPPORTED  # we keep no binding cache for other nodes
        if f["SrcEndpoint"] not in self._endpoints:
            return Status.INVALID_EP
        return None

    def _handle_bind_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        status = self._bind_status(f)
        if status is None:
            binding = zdo_t.Binding(
                SrcAddress=f["SrcAddress"],
                SrcEndpoint=f["SrcEndpoint"],
                ClusterId=f["ClusterID"],
                DstAddress=f["DstAddress"],
            )
            if binding not in self.bindings:
                self.bindings.append(binding)
            status = Status.SUCCESS
        return None if broadcast else ZdoReply(Cmd.Bind_rsp, (status,))

    def _handle_unbind_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        status = self._bind_status(f)
        if status is None:
            before = len(self.bindings)
            self.bindings = [
                b
                for b in self.bindings
                if (b.SrcEndpoint, b.ClusterId, b.DstAddress)
                != (f["SrcEndpoint"], f["ClusterID"], f["DstAddress"])
            ]
            status = Status.SUCCESS if len(self.bindings) < before else Status.NO_ENTRY
        return None if broadcast else ZdoReply(Cmd.Unbind_rsp, (status,))

    def _handle_mgmt_bind_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        start = f["StartIndex"]
        return ZdoReply(
            Cmd.Mgmt_Bind_rsp,
            (Status.SUCCESS, len(self.bindings), start, self.bindings[start:]),
        )

    def _handle_mgmt_lqi_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        neighbors = self._neighbors()
        start = f["StartIndex"]
        table = zdo_t.Neighbors(
            Entries=len(neighbors), StartIndex=start, NeighborTableList=neighbors[start:]
        )
        return ZdoReply(Cmd.Mgmt_Lqi_rsp, (Status.SUCCESS, table))

    def _handle_mgmt_permit_joining_req(
        self, f: dict[str, Any], broadcast: bool
    ) -> ZdoReply | None:
        return None if broadcast else ZdoReply(Cmd.Mgmt_Permit_Joining_rsp, (Status.SUCCESS,))

    def _handle_mgmt_leave_req(self, f: dict[str, Any], broadcast: bool) -> ZdoReply | None:
        if f["DeviceAddress"] not in (self.ieee, t.EUI64.UNKNOWN):
            return None if broadcast else ZdoReply(Cmd.Mgmt_Leave_rsp, (Status.NOT_SUPPORTED,))
        return None if broadcast else ZdoReply(Cmd.Mgmt_Leave_rsp, (Status.SUCCESS,))
