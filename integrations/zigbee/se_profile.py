"""Make zigpy process ZCL frames sent with the Smart Energy profile (0x0109), with the SE clusters.

zigpy 2.4 parses ZCL only for the HA (0x0104) and ZLL profiles and hands any other profile
to `ZigbeeDevice.custom_profile_packet_received`, which drops it (`device.py`,
`_parse_packet_header`). An SE meter answers on profile 0x0109, so without this the
interview times out reading Basic and every report or command from the meter is lost.

The radio's devices also build their SE clusters (Price, DRLC, Metering, Messaging) from the SE
library's own table (`integrations.zigbee.se.clusters.cluster_class`) instead of zigpy's global
registry, which is left untouched: the SE classes exist on this application's devices only,
from the moment the radio starts.
"""

from __future__ import annotations

from typing import Any

import zigpy.device
import zigpy.endpoint
import zigpy.types as t
import zigpy.zcl
import zigpy.zdo.types as zdo_t
from zigpy.device import ResponseKey
from zigpy.zcl import foundation

from .se.clusters import cluster_class
from .se.inbound import InboundFrame, Problem

SMART_ENERGY_PROFILE_ID = 0x0109


class SmartEnergyEndpoint(zigpy.endpoint.Endpoint):
    """An endpoint whose SE clusters are the SE library's classes (others are zigpy's)."""

    def add_input_cluster(self, cluster_id: int, cluster: zigpy.zcl.Cluster | None = None) -> zigpy.zcl.Cluster:
        if cluster is None and cluster_id not in self.in_clusters and (cls := cluster_class(cluster_id)) is not None:
            cluster = cls(self, is_server=True)
        return super().add_input_cluster(cluster_id, cluster)

    def add_output_cluster(self, cluster_id: int, cluster: zigpy.zcl.Cluster | None = None) -> zigpy.zcl.Cluster:
        if cluster is None and cluster_id not in self.out_clusters and (cls := cluster_class(cluster_id)) is not None:
            cluster = cls(self, is_server=False)
        return super().add_output_cluster(cluster_id, cluster)


class SmartEnergyAwareDevice(zigpy.device.ZigbeeDevice):
    """A zigpy device that also parses ZCL frames of the Smart Energy profile.

    ``last_packet`` is the packet being processed (the SE clusters read its destination to
    tell a broadcast, which gets no Default Response, from a unicast); ``last_header`` is its
    data with the ZCL header read from it to route it, which the SE clusters' parse reuses (so
    the header is read once too).
    """

    last_packet: t.ZigbeePacket | None = None
    last_header: tuple[bytes, foundation.ZCLHeader, bytes] | None = None

    def add_endpoint(self, endpoint_id: int) -> zigpy.endpoint.Endpoint:
        endpoint = SmartEnergyEndpoint(self, endpoint_id)
        self.endpoints[endpoint_id] = endpoint
        return endpoint

    def packet_received(self, packet: t.ZigbeePacket) -> None:
        self.last_packet = packet
        try:
            super().packet_received(packet)
        finally:
            self.last_packet = None
            self.last_header = None

    def _should_filter_packet(self, packet: t.ZigbeePacket) -> bool:
        """zigpy's duplicate filter with the same key, built without copying the packet struct (its
        ``replace``, three struct copies per frame, cost as much as the report's own decoding)."""
        route = None if packet.source_route is None else tuple(packet.source_route)
        key = (packet.src, packet.src_ep, packet.dst, packet.dst_ep, route, packet.extended_timeout,
               packet.tx_options, packet.radius, packet.non_member_radius, packet.profile_id, packet.cluster_id,
               bytes(packet.data.serialize()), packet.priority)
        return bool(self._packet_debouncer.filter(obj=key, expire_in=zigpy.device.PACKET_DEBOUNCE_WINDOW))

    def _parse_packet_header(
        self, packet: t.ZigbeePacket
    ) -> tuple[zdo_t.ZDOHeader | foundation.ZCLHeader, ResponseKey] | tuple[None, None]:
        if packet.profile_id != SMART_ENERGY_PROFILE_ID or packet.src_ep == 0:
            return super()._parse_packet_header(packet)
        data = packet.data.serialize()
        try:
            hdr, payload = foundation.ZCLHeader.deserialize(data)
        except ValueError:
            # A header cut short: nothing zigpy can match or dispatch; the SE cluster's sink
            # (the meter session) still hears of it, to count it.
            self._tell_sink(packet, data)
            return None, None
        self.last_header = (data, hdr, payload)
        return hdr, ResponseKey(
            endpoint_id=packet.src_ep,
            cluster_id=packet.cluster_id,
            direction=hdr.frame_control.direction,
            tsn=hdr.tsn,
        )

    def _tell_sink(self, packet: t.ZigbeePacket, data: bytes) -> None:
        endpoint: Any = self.endpoints.get(packet.src_ep)
        if endpoint is None or not hasattr(endpoint, "in_clusters"):
            return
        cluster = endpoint.in_clusters.get(packet.cluster_id) or endpoint.out_clusters.get(packet.cluster_id)
        sink = getattr(cluster, "frame_sink", None)
        if sink is not None:
            sink.frame_received(InboundFrame(
                int(packet.cluster_id), None, "", problem=Problem.MALFORMED,
                reason=f"{type(cluster).__name__}: truncated ZCL header ({len(data)} bytes: {data.hex(' ')})"))


class SmartEnergyProfileMixin:
    """ControllerApplication mixin: devices that join are `SmartEnergyAwareDevice`s.

    Put it before the radio's class in the bases; it replaces `add_device`, which zigpy
    calls for every join, announcement and database load.
    """

    devices: dict[t.EUI64, zigpy.device.BaseDevice]

    def add_device(self, ieee: t.EUI64, nwk: t.NWK) -> zigpy.device.ZigbeeDevice:
        assert isinstance(ieee, t.EUI64)
        device = SmartEnergyAwareDevice(self, ieee, nwk)  # type: ignore[arg-type]
        self.devices[ieee] = device
        return device
