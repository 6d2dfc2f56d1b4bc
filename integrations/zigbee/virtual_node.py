"""A simulated Zigbee node: its descriptors, ZDO and ZCL server behaviour, and its traffic log.

A `VirtualNode` lives in a `VirtualHan`, which hands it every frame addressed to it and
carries what it sends. It answers ZDO (`zdo_server.py`), serves its server clusters from an
attribute table (`attributes.py`), reports configured attributes on its own, and passes
cluster-specific commands to handlers the test or simulator registers. Cluster classes are
looked up in zigpy's registry at call time, so clusters registered later are used.

Client clusters (out-clusters) can hold attributes too (e.g. a DRLC client's
DeviceClassValue, SE §2.2); they answer Read/Write Attributes sent server -> client.
A `silent` node stays joined but neither hears nor sends, like a device that hung.
Like a real stack's APS duplicate rejection table, a node drops a frame it got already (same
source, APS counter and bytes) within `APS_DUPLICATE_S`: the air's copies reach it once.

Observers (`observe`) see every ZCL frame the node receives or sends, as bytes, before it is
decoded or answered: the simulated meter's SE conformance checker watches the EMS this way.
An attribute can be computed at read time (`compute_attribute`), e.g. the Time cluster's Time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

import zigpy.types as t
import zigpy.zcl
import zigpy.zdo.types as zdo_t
from zigpy.zcl import foundation

from .air import AirFrame, BroadcastAddress
from .attributes import AttributeStore, DueReport, lookup_cluster
from .group_table import GROUPS, GroupsServer, GroupTable
from .zdo_server import ZdoServer
from .zdo_server import parse as parse_zdo
from .zdo_server import serialize as serialize_zdo

LOGGER = logging.getLogger(__name__)

COORDINATOR_NWK = 0x0000
APS_DUPLICATE_S = 10.0  # (real) seconds a node remembers a frame to drop the air's copies of it
DEFAULT_COORDINATOR_ENDPOINT = 1  # zigpy's DEFAULT_ENDPOINT_ID
GENERAL = foundation.GeneralCommand
ZclStatus = foundation.Status


class NodeNetwork(Protocol):
    """What a node needs from the HAN that hosts it."""

    @property
    def pan_id(self) -> int: ...

    @property
    def extended_pan_id(self) -> t.ExtendedPanId: ...

    @property
    def coordinator_ieee(self) -> t.EUI64: ...

    def transmit(self, frame: AirFrame) -> bool:
        """Queue a frame for delivery; False if it cannot reach its destination."""

    @property
    def radio_nwk(self) -> int: ...

    def nwk_of(self, ieee: t.EUI64) -> int | None:
        """The NWK address of a device on the network, if known."""


class NodeSendError(Exception):
    """The node could not send: it has not joined, or the destination is unreachable."""


@dataclasses.dataclass(frozen=True)
class NodeEndpoint:
    """One application endpoint as its Simple Descriptor describes it."""

    endpoint_id: int
    profile_id: int
    device_type: int
    in_clusters: tuple[int, ...] = ()
    out_clusters: tuple[int, ...] = ()
    device_version: int = 0

    def descriptor(self) -> zdo_t.SimpleDescriptor:
        return zdo_t.SimpleDescriptor(
            endpoint=self.endpoint_id,
            profile=self.profile_id,
            device_type=self.device_type,
            device_version=self.device_version,
            input_clusters=list(self.in_clusters),
            output_clusters=list(self.out_clusters),
        )


@dataclasses.dataclass(frozen=True)
class ReceivedFrame:
    """One frame the node received, decoded as far as it could be."""

    time: datetime
    src_nwk: int
    src_endpoint: int
    dst_endpoint: int
    profile_id: int
    cluster_id: int
    kind: str  # "zdo" or "zcl"
    command: str  # ZDOCmd name, ZCL general command name, or the cluster command's name
    fields: Mapping[str, Any]
    tsn: int
    broadcast: bool
    direction: foundation.Direction | None = None  # ZCL only
    group: int | None = None  # the group a groupcast was addressed to


@dataclasses.dataclass(frozen=True)
class WireFrame:
    """One ZCL frame exactly as it crossed the air to or from this node (for observers).

    ``outgoing`` frames were sent by the node (and accepted by the network); the others were
    received, before the node decoded or answered them. A conformance checker reads these
    bytes, so what it judges is what was on the wire, not what a decoder made of it.
    """

    outgoing: bool
    endpoint_id: int  # the node's endpoint
    peer_nwk: int
    peer_endpoint: int
    cluster_id: int
    profile_id: int
    payload: bytes
    broadcast: bool


FrameObserver = Callable[[WireFrame], None]


class ReadHold:
    """A test hook (``VirtualNode.hold_reads``): Read Attributes asking for any of these
    attributes are answered only once ``release()`` is called, with the values at that time."""

    def __init__(self, endpoint_id: int, cluster_id: int, attribute_ids: Iterable[int]) -> None:
        self.endpoint_id = endpoint_id
        self.cluster_id = cluster_id
        self.attribute_ids = frozenset(attribute_ids)
        self.requested = asyncio.Event()  # a held read has arrived
        self._released = asyncio.Event()

    def matches(self, endpoint_id: int, cluster_id: int, attribute_ids: Iterable[int]) -> bool:
        return (not self._released.is_set() and endpoint_id == self.endpoint_id
                and cluster_id == self.cluster_id and bool(self.attribute_ids & set(attribute_ids)))

    def release(self) -> None:
        self._released.set()

    async def released(self) -> None:
        await self._released.wait()


@dataclasses.dataclass
class _ReplyState:
    replied: bool = False


@dataclasses.dataclass(frozen=True)
class CommandRequest:
    """A cluster-specific command delivered to a registered handler."""

    node: VirtualNode
    endpoint_id: int
    cluster_id: int
    command: str
    fields: Mapping[str, Any]
    header: foundation.ZCLHeader
    src_nwk: int
    src_endpoint: int
    broadcast: bool = False  # it came in a broadcast or groupcast (some answers are for unicasts only)
    _state: _ReplyState = dataclasses.field(default_factory=_ReplyState, repr=False)

    def reply(self, command: str, **fields: Any) -> int:
        """Send a cluster command back to the sender with the request's TSN.

        A reply replaces the Default Response (ZCL §2.5.12.2). Returns the TSN.
        """
        tsn = self.node._send_cluster_command(
            self.endpoint_id,
            self.cluster_id,
            command,
            to_client=self.header.direction == foundation.Direction.Client_to_Server,
            dst_nwk=self.src_nwk,
            dst_endpoint=self.src_endpoint,
            tsn=self.header.tsn,
            disable_default_response=True,
            fields=fields,
        )
        self._state.replied = True
        return tsn

    @property
    def replied(self) -> bool:
        return self._state.replied


HandlerResult = ZclStatus | None
Handler = Callable[[CommandRequest], HandlerResult | Awaitable[HandlerResult]]


def _maybe_cluster(cluster_id: int) -> type[zigpy.zcl.Cluster] | None:
    try:
        return lookup_cluster(cluster_id)
    except KeyError:
        return None


class VirtualNode:
    """A simulated Zigbee device with endpoints, a ZDO server and ZCL server clusters."""

    def __init__(
        self,
        *,
        ieee: t.EUI64 | str,
        nwk: int,
        endpoints: Iterable[NodeEndpoint],
        manufacturer_code: int = 0x0000,
        logical_type: zdo_t.LogicalType = zdo_t.LogicalType.Router,
        attributes: Mapping[tuple[int, int], Mapping[str | int, Any]] | None = None,
        joins_on_permit: bool = False,
        name: str | None = None,
    ) -> None:
        if not 0x0000 <= nwk <= 0xFFF7 or (nwk == COORDINATOR_NWK and logical_type != zdo_t.LogicalType.Coordinator):
            raise ValueError(f"node NWK address 0x{nwk:04X} is outside 0x0001-0xFFF7 (0x0000 is the coordinator's)")
        self.ieee = t.EUI64.convert(ieee) if isinstance(ieee, str) else t.EUI64(ieee)
        self.nwk = nwk
        self.name = name or f"0x{nwk:04X}"
        self.joins_on_permit = joins_on_permit
        self.endpoints: dict[int, NodeEndpoint] = {}
        for endpoint in endpoints:
            if not 1 <= endpoint.endpoint_id <= 240:
                raise ValueError(f"endpoint {endpoint.endpoint_id} is outside 1-240")
            if endpoint.endpoint_id in self.endpoints:
                raise ValueError(f"endpoint {endpoint.endpoint_id} is defined twice")
            self.endpoints[endpoint.endpoint_id] = endpoint
        mac_flags = zdo_t.MACCapabilityFlags.AllocateAddress
        if logical_type != zdo_t.LogicalType.EndDevice:
            mac_flags |= (
                zdo_t.MACCapabilityFlags.FullFunctionDevice
                | zdo_t.MACCapabilityFlags.MainsPowered
                | zdo_t.MACCapabilityFlags.RxOnWhenIdle
            )
        self.node_descriptor = zdo_t.NodeDescriptor(
            logical_type=logical_type,
            complex_descriptor_available=0,
            user_descriptor_available=0,
            reserved=0,
            aps_flags=0,
            frequency_band=zdo_t.NodeDescriptor.FrequencyBand.Freq2400MHz,
            mac_capability_flags=mac_flags,
            manufacturer_code=manufacturer_code,
            maximum_buffer_size=82,
            maximum_incoming_transfer_size=82,
            server_mask=0x2C00,  # stack compliance revision 22
            maximum_outgoing_transfer_size=82,
            descriptor_capability_field=zdo_t.NodeDescriptor.DescriptorCapability.NONE,
        )
        self._zdo = ZdoServer(
            ieee=self.ieee,
            nwk=nwk,
            node_descriptor=self.node_descriptor,
            endpoints={ep: e.descriptor() for ep, e in self.endpoints.items()},
            neighbors=self._neighbors,
        )
        self._store = AttributeStore()
        self._client_store = AttributeStore()  # attributes of client (out-) clusters
        for endpoint in self.endpoints.values():
            for cluster_id in endpoint.in_clusters:
                self._store.add_cluster(endpoint.endpoint_id, cluster_id)
            for cluster_id in endpoint.out_clusters:
                self._client_store.add_cluster(endpoint.endpoint_id, cluster_id)
        self.silent = False  # True: frames to the node are lost and it sends nothing
        self._recent_rx: dict[tuple[int, int, int, bytes], float] = {}  # APS duplicate rejection
        self.counters: collections.Counter[str] = collections.Counter()
        self._log: list[ReceivedFrame] = []
        self._waiters: list[
            tuple[Callable[[ReceivedFrame], bool], asyncio.Future[ReceivedFrame]]
        ] = []
        self._handlers: dict[tuple[int, int, foundation.Direction, int], Handler] = {}
        self._observers: list[FrameObserver] = []
        # Called with a frame this node sent that the network could not carry (nobody listening).
        self.on_unheard: FrameObserver | None = None
        self._read_holds: list[ReadHold] = []
        self._network: NodeNetwork | None = None
        self.joined = False
        self._seq = 0
        self._tsn = 0
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reporting_task: asyncio.Task[None] | None = None
        for (endpoint_id, cluster_id), values in (attributes or {}).items():
            for attribute, value in values.items():
                self.set_attribute(endpoint_id, cluster_id, attribute, value)
        # Endpoints with a Groups server keep memberships here; a groupcast reaches only members.
        self.groups = GroupTable()
        for endpoint in self.endpoints.values():
            if GROUPS in endpoint.in_clusters:
                GroupsServer(self, endpoint.endpoint_id, self.groups)

    def __repr__(self) -> str:
        return f"<VirtualNode {self.name} nwk=0x{self.nwk:04X} ieee={self.ieee}>"

    # --- lifecycle (driven by the HAN) ---------------------------------------------------

    def start(self) -> None:
        """Start the reporting loop; needs a running event loop."""
        if self._reporting_task is None:
            self._reporting_task = self._spawn(self._reporting_loop(), "reporting")

    async def stop(self) -> None:
        """Cancel every task of the node and fail pending waiters."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._reporting_task = None
        for _, future in self._waiters:
            if not future.done():
                future.cancel()
        self._waiters.clear()

    def attach(self, network: NodeNetwork | None) -> None:
        """Connect the node to the HAN that carries its frames (None detaches it)."""
        self._network = network
        if network is None:
            self.joined = False

    def join(self) -> None:
        """Join (or rejoin) the network and announce with a Device_annce broadcast."""
        self.joined = True
        self._wake.set()
        capability = self.node_descriptor.mac_capability_flags
        payload = serialize_zdo(
            zdo_t.ZDOCmd.Device_annce, self._next_tsn(), (self.nwk, self.ieee, capability)
        )
        self._try_send(
            dst_nwk=BroadcastAddress.RX_ON_WHEN_IDLE,
            dst_endpoint=0,
            src_endpoint=0,
            cluster_id=zdo_t.ZDOCmd.Device_annce,
            profile_id=0x0000,
            payload=payload,
        )
        LOGGER.info("Node %s joined and announced itself", self.name)

    def leave(self) -> None:
        """Leave the network: the HAN stops routing to the node until it joins again."""
        self.joined = False
        LOGGER.info("Node %s left the network", self.name)

    # --- public API ----------------------------------------------------------------------

    @property
    def log(self) -> tuple[ReceivedFrame, ...]:
        """Every frame received so far, oldest first."""
        return tuple(self._log)

    @property
    def bindings(self) -> tuple[zdo_t.Binding, ...]:
        return tuple(self._zdo.bindings)

    def received(
        self, command: str | None = None, *, cluster_id: int | None = None
    ) -> list[ReceivedFrame]:
        """Logged frames matching a command name and/or a cluster ID."""
        return [f for f in self._log if _matches(f, command, cluster_id)]

    async def wait_for(
        self,
        command: str,
        *,
        cluster_id: int | None = None,
        since: int = 0,
        timeout_s: float = 5.0,
    ) -> ReceivedFrame:
        """The first logged frame at index >= `since` matching, waiting for it if needed."""
        for frame in self._log[since:]:
            if _matches(frame, command, cluster_id):
                return frame
        future: asyncio.Future[ReceivedFrame] = asyncio.get_running_loop().create_future()
        waiter = (lambda f: _matches(f, command, cluster_id), future)
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def on_command(
        self, endpoint_id: int, cluster_id: int, command: str, handler: Handler
    ) -> Callable[[], None]:
        """Handle a cluster-specific command sent to this node; returns an unsubscribe.

        The handler gets a `CommandRequest` and returns a ZCL status (None means SUCCESS),
        or a coroutine that does. It may `request.reply(...)` instead of a default response.
        """
        endpoint = self._endpoint(endpoint_id)
        cls = lookup_cluster(cluster_id)
        server_cmd = _command_by_name(cls.server_commands, command)
        client_cmd = _command_by_name(cls.client_commands, command)
        if server_cmd is not None and cluster_id in endpoint.in_clusters:
            key = (endpoint_id, cluster_id, foundation.Direction.Client_to_Server, server_cmd.id)
        elif client_cmd is not None and cluster_id in endpoint.out_clusters:
            key = (endpoint_id, cluster_id, foundation.Direction.Server_to_Client, client_cmd.id)
        else:
            raise ValueError(
                f"node {self.name} endpoint {endpoint_id} cannot receive {cls.__name__}"
                f" command {command!r}: not a server command of an in-cluster or a client"
                " command of an out-cluster"
            )
        self._handlers[key] = handler

        def unsubscribe() -> None:
            if self._handlers.get(key) is handler:
                del self._handlers[key]

        return unsubscribe

    def observe(self, observer: FrameObserver) -> Callable[[], None]:
        """Call ``observer`` with every ZCL frame the node receives or sends; returns an unsubscribe.

        An observer that raises is logged and does not disturb the node.
        """
        self._observers.append(observer)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._observers.remove(observer)

        return unsubscribe

    def hold_reads(
        self, endpoint_id: int, cluster: type[zigpy.zcl.Cluster] | int, attributes: Iterable[str | int]
    ) -> ReadHold:
        """Test hook: answer Read Attributes of ``attributes`` late, once the hold is released
        (frames the node sends before that reach the client first)."""
        cls = lookup_cluster(cluster)
        hold = ReadHold(endpoint_id, cls.cluster_id, (cls.find_attribute(a).id for a in attributes))
        self._read_holds.append(hold)
        return hold

    def _notify(self, frame: WireFrame) -> None:
        for observer in list(self._observers):
            try:
                observer(frame)
            except Exception:  # an observer bug must not kill the node
                LOGGER.exception("Node %s frame observer failed", self.name)

    def compute_attribute(
        self,
        endpoint_id: int,
        cluster: type[zigpy.zcl.Cluster] | int,
        attribute: str | int,
        compute: Callable[[], Any],
    ) -> None:
        """Serve a server attribute from ``compute()`` whenever it is read (e.g. Time, ZCL §3.12)."""
        self._endpoint(endpoint_id)
        self._store.set_computed(endpoint_id, cluster, attribute, compute)

    def set_attribute(
        self,
        endpoint_id: int,
        cluster: type[zigpy.zcl.Cluster] | int,
        attribute: str | int,
        value: Any,
        *,
        client: bool = False,
    ) -> None:
        """Set a server (or, with `client`, a client-cluster) attribute.

        Configured reporting sends a server attribute if the change is reportable.
        """
        self._endpoint(endpoint_id)
        (self._client_store if client else self._store).set(endpoint_id, cluster, attribute, value)
        self._wake.set()

    def get_attribute(
        self,
        endpoint_id: int,
        cluster: type[zigpy.zcl.Cluster] | int,
        attribute: str | int,
        *,
        client: bool = False,
    ) -> Any:
        cls = lookup_cluster(cluster)
        store = self._client_store if client else self._store
        return store.get(endpoint_id, cls.cluster_id, cls.find_attribute(attribute).id)

    def reporting_config(
        self, endpoint_id: int, cluster: type[zigpy.zcl.Cluster] | int, attribute: str | int
    ) -> tuple[int, int, Any] | None:
        """(min_interval, max_interval, reportable_change) as configured, or None."""
        cls = lookup_cluster(cluster)
        return self._store.reporting_config(
            endpoint_id, cls.cluster_id, cls.find_attribute(attribute).id
        )

    async def send_command(
        self,
        endpoint_id: int,
        cluster: type[zigpy.zcl.Cluster] | int,
        command: str,
        direction_server_to_client: bool = True,
        *,
        dst_nwk: int = COORDINATOR_NWK,
        dst_endpoint: int = DEFAULT_COORDINATOR_ENDPOINT,
        tsn: int | None = None,
        disable_default_response: bool | None = None,
        **fields: Any,
    ) -> int:
        """Send a cluster-specific command (by default server -> client, to the coordinator).

        Raises NodeSendError when the node is not joined or the frame cannot be delivered.
        Returns the TSN used.
        """
        return self._send_cluster_command(
            endpoint_id,
            lookup_cluster(cluster).cluster_id,
            command,
            to_client=direction_server_to_client,
            dst_nwk=dst_nwk,
            dst_endpoint=dst_endpoint,
            tsn=tsn,
            disable_default_response=disable_default_response,
            fields=fields,
        )

    def send_raw(
        self,
        endpoint_id: int,
        cluster_id: int,
        payload: bytes,
        *,
        dst_nwk: int = COORDINATOR_NWK,
        dst_endpoint: int = DEFAULT_COORDINATOR_ENDPOINT,
    ) -> None:
        """Send arbitrary ZCL bytes (malformed-frame tests); raises NodeSendError if undeliverable."""
        self._send(
            dst_nwk=dst_nwk,
            dst_endpoint=dst_endpoint,
            src_endpoint=endpoint_id,
            cluster_id=cluster_id,
            profile_id=self._endpoint(endpoint_id).profile_id,
            payload=bytes(payload),
        )

    async def report_attributes(
        self,
        endpoint_id: int,
        cluster: type[zigpy.zcl.Cluster] | int,
        attributes: Iterable[str | int],
        *,
        dst_nwk: int = COORDINATOR_NWK,
        dst_endpoint: int = DEFAULT_COORDINATOR_ENDPOINT,
    ) -> int:
        """Send an unsolicited Report Attributes with the current values; returns the TSN."""
        cls = lookup_cluster(cluster)
        reports = []
        for attribute in attributes:
            attr_def = cls.find_attribute(attribute)
            reports.append(
                foundation.Attribute(
                    attrid=attr_def.id,
                    value=foundation.TypeValue(
                        type=attr_def.zcl_type,
                        value=self._store.get(endpoint_id, cls.cluster_id, attr_def.id),
                    ),
                )
            )
        return self._send_report(endpoint_id, cls.cluster_id, reports, dst_nwk, dst_endpoint)

    # --- receiving -----------------------------------------------------------------------

    def forget_duplicates(self) -> None:
        """A new coordinator radio (its counters start again): forget what was received before."""
        self._recent_rx.clear()

    def _duplicate(self, frame: AirFrame) -> bool:
        """Whether ``frame`` is a copy of one received within ``APS_DUPLICATE_S`` (and note it)."""
        now = time.monotonic()
        key = (frame.nwk_src, frame.aps_counter, frame.cluster_id, frame.payload)
        seen = self._recent_rx.get(key)
        self._recent_rx[key] = now
        if len(self._recent_rx) > 256:
            self._recent_rx = {k: at for k, at in self._recent_rx.items() if now - at < APS_DUPLICATE_S}
        return seen is not None and now - seen < APS_DUPLICATE_S

    def receive(self, frame: AirFrame) -> None:
        """Process one frame the HAN delivers to this node (never raises)."""
        if self.silent:
            self.counters["rx_ignored"] += 1
            return
        if self._duplicate(frame):
            self.counters["rx_duplicate"] += 1
            return
        self.counters["rx"] += 1
        try:
            if frame.dst_endpoint == 0 and frame.profile_id == 0x0000:
                self._receive_zdo(frame)
            else:
                self._receive_zcl(frame)
        except NodeSendError as err:
            LOGGER.debug("Node %s could not answer: %s", self.name, err)

    def _receive_zdo(self, frame: AirFrame) -> None:
        self.counters["rx_zdo"] += 1
        try:
            command, tsn, fields = parse_zdo(frame.cluster_id, frame.payload)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            self.counters["rx_malformed"] += 1
            LOGGER.debug("Node %s dropped malformed ZDO frame: %s", self.name, err)
            return
        self._record(frame, "zdo", command.name, fields, tsn, None)
        reply = self._zdo.handle(command, fields, broadcast=frame.broadcast)
        if reply is not None:
            self._try_send(
                dst_nwk=frame.nwk_src,
                dst_endpoint=0,
                src_endpoint=0,
                cluster_id=reply.command,
                profile_id=0x0000,
                payload=reply.payload(tsn),
            )
        if (
            command == zdo_t.ZDOCmd.Mgmt_Leave_req
            and reply is not None
            and reply.args[0] == zdo_t.Status.SUCCESS
        ):
            self.leave()

    def _receive_zcl(self, frame: AirFrame) -> None:
        self.counters["rx_zcl"] += 1
        if self._observers:
            self._notify(
                WireFrame(
                    outgoing=False,
                    endpoint_id=frame.dst_endpoint,
                    peer_nwk=frame.nwk_src,
                    peer_endpoint=frame.src_endpoint,
                    cluster_id=frame.cluster_id,
                    profile_id=frame.profile_id,
                    payload=bytes(frame.payload),
                    broadcast=frame.broadcast,
                )
            )
        try:
            hdr, body = foundation.ZCLHeader.deserialize(frame.payload)
        except (ValueError, KeyError) as err:
            self.counters["rx_malformed"] += 1
            LOGGER.debug("Node %s dropped malformed ZCL frame: %s", self.name, err)
            return
        if frame.group is not None:
            # APS group delivery (ZigBee PRO §2.2.8.3.2): to the endpoints in the group, else nobody.
            targets = self.groups.endpoints_in(frame.group)
            if not targets:
                self.counters["rx_not_member"] += 1
                return
        elif frame.dst_endpoint == 0xFF:
            targets = [
                ep
                for ep, e in self.endpoints.items()
                if frame.cluster_id in (*e.in_clusters, *e.out_clusters)
            ]
        elif frame.dst_endpoint in self.endpoints:
            targets = [frame.dst_endpoint]
        else:
            LOGGER.debug("Node %s has no endpoint %d", self.name, frame.dst_endpoint)
            return
        for endpoint_id in targets:
            self._handle_zcl(frame, endpoint_id, hdr, body)

    def _handle_zcl(
        self, frame: AirFrame, endpoint_id: int, hdr: foundation.ZCLHeader, body: bytes
    ) -> None:
        to_server = hdr.direction == foundation.Direction.Client_to_Server
        endpoint = self.endpoints[endpoint_id]
        present = frame.cluster_id in (endpoint.in_clusters if to_server else endpoint.out_clusters)
        cls = _maybe_cluster(frame.cluster_id)
        schema: type[foundation.CommandSchema] | None = None
        if hdr.frame_control.is_general:
            if hdr.command_id in foundation.GENERAL_COMMANDS:
                general = GENERAL(hdr.command_id)
                name = general.name
                schema = foundation.GENERAL_COMMANDS[general].schema
            else:
                name = f"general_0x{hdr.command_id:02X}"
        else:
            commands = (
                {} if cls is None else (cls.server_commands if to_server else cls.client_commands)
            )
            command_def = commands.get(hdr.command_id)
            name = command_def.name if command_def else f"command_0x{hdr.command_id:02X}"
            schema = command_def.schema if command_def else None

        fields: dict[str, Any] = {}
        malformed = False
        if schema is not None:
            try:
                decoded, _ = schema.deserialize(body)
                fields = decoded.as_dict()
            except (ValueError, KeyError, TypeError, IndexError):
                malformed = True
        self._record(frame, "zcl", name, fields, hdr.tsn, hdr.direction)

        if not present:
            self._default_response(frame, endpoint_id, hdr, ZclStatus.UNSUPPORTED_CLUSTER)
        elif hdr.frame_control.is_manufacturer_specific:
            status = (
                ZclStatus.UNSUP_MANUF_GENERAL_COMMAND
                if hdr.frame_control.is_general
                else ZclStatus.UNSUP_MANUF_CLUSTER_COMMAND
            )
            self._default_response(frame, endpoint_id, hdr, status)
        elif schema is None:
            status = (
                ZclStatus.UNSUP_GENERAL_COMMAND
                if hdr.frame_control.is_general
                else ZclStatus.UNSUP_CLUSTER_COMMAND
            )
            self._default_response(frame, endpoint_id, hdr, status)
        elif malformed:
            self._default_response(frame, endpoint_id, hdr, ZclStatus.MALFORMED_COMMAND)
        elif hdr.frame_control.is_general:
            self._handle_general(
                frame, endpoint_id, hdr, GENERAL(hdr.command_id), fields, to_server
            )
        else:
            self._handle_cluster_command(frame, endpoint_id, hdr, name, fields)

    def _handle_general(
        self,
        frame: AirFrame,
        endpoint_id: int,
        hdr: foundation.ZCLHeader,
        command: foundation.GeneralCommand,
        fields: dict[str, Any],
        to_server: bool,
    ) -> None:
        cluster_id = frame.cluster_id
        client_access = (
            GENERAL.Read_Attributes,
            GENERAL.Write_Attributes,
            GENERAL.Write_Attributes_Undivided,
            GENERAL.Write_Attributes_No_Response,
        )
        if not to_server and command not in client_access:
            # Responses and reports for our client side: nothing to answer but a default
            # response where one is asked for.
            if command == GENERAL.Report_Attributes:
                self._default_response(frame, endpoint_id, hdr, ZclStatus.SUCCESS)
            return
        store = self._store if to_server else self._client_store
        reply: tuple[foundation.GeneralCommand, foundation.CommandSchema] | None = None
        rsp_schema = lambda c: foundation.GENERAL_COMMANDS[c].schema  # noqa: E731
        if command == GENERAL.Read_Attributes:
            hold = next((h for h in self._read_holds if to_server
                         and h.matches(endpoint_id, cluster_id, fields["attribute_ids"])), None)
            if hold is not None:
                hold.requested.set()
                self._spawn(self._answer_read_later(frame, endpoint_id, hdr, fields, hold), "held-read")
                return
            records = store.read(endpoint_id, cluster_id, fields["attribute_ids"])
            reply = (GENERAL.Read_Attributes_rsp, rsp_schema(GENERAL.Read_Attributes_rsp)(records))
        elif command in (
            GENERAL.Write_Attributes,
            GENERAL.Write_Attributes_Undivided,
            GENERAL.Write_Attributes_No_Response,
        ):
            results = store.write(
                endpoint_id,
                cluster_id,
                fields["attributes"],
                undivided=command == GENERAL.Write_Attributes_Undivided,
            )
            self._wake.set()
            if command != GENERAL.Write_Attributes_No_Response:
                reply = (
                    GENERAL.Write_Attributes_rsp,
                    rsp_schema(GENERAL.Write_Attributes_rsp)(
                        foundation.WriteAttributesResponse(results)
                    ),
                )
        elif command == GENERAL.Configure_Reporting:
            statuses = []
            for config in fields["config_records"]:
                status = self._store.configure(
                    endpoint_id, cluster_id, config, (frame.nwk_src, frame.src_endpoint)
                )
                statuses.append(
                    foundation.ConfigureReportingResponseRecord(
                        status=status, direction=config.direction, attrid=config.attrid
                    )
                )
            self._wake.set()
            reply = (
                GENERAL.Configure_Reporting_rsp,
                rsp_schema(GENERAL.Configure_Reporting_rsp)(
                    foundation.ConfigureReportingResponse(statuses)
                ),
            )
        elif command == GENERAL.Read_Reporting_Configuration:
            reply = (
                GENERAL.Read_Reporting_Configuration_rsp,
                rsp_schema(GENERAL.Read_Reporting_Configuration_rsp)(
                    self._read_reporting(endpoint_id, cluster_id, fields["attribute_records"])
                ),
            )
        elif command == GENERAL.Discover_Attributes:
            reply = (
                GENERAL.Discover_Attributes_rsp,
                self._discover_attributes(endpoint_id, cluster_id, fields),
            )
        elif command in (
            GENERAL.Default_Response,
            GENERAL.Report_Attributes,
        ) or command.name.endswith("_rsp"):
            if command == GENERAL.Report_Attributes:
                self._default_response(frame, endpoint_id, hdr, ZclStatus.SUCCESS)
            return
        else:
            self._default_response(frame, endpoint_id, hdr, ZclStatus.UNSUP_GENERAL_COMMAND)
            return
        if reply is not None:
            rsp_command, rsp = reply
            rsp_hdr = foundation.ZCLHeader.general(
                tsn=hdr.tsn, command_id=rsp_command, direction=hdr.direction.flip()
            )
            self._try_send(
                dst_nwk=frame.nwk_src,
                dst_endpoint=frame.src_endpoint,
                src_endpoint=endpoint_id,
                cluster_id=cluster_id,
                profile_id=self.endpoints[endpoint_id].profile_id,
                payload=rsp_hdr.serialize() + rsp.serialize(),
            )

    async def _answer_read_later(
        self,
        frame: AirFrame,
        endpoint_id: int,
        hdr: foundation.ZCLHeader,
        fields: dict[str, Any],
        hold: ReadHold,
    ) -> None:
        await hold.released()
        records = self._store.read(endpoint_id, frame.cluster_id, fields["attribute_ids"])
        schema = foundation.GENERAL_COMMANDS[GENERAL.Read_Attributes_rsp].schema
        rsp_hdr = foundation.ZCLHeader.general(
            tsn=hdr.tsn, command_id=GENERAL.Read_Attributes_rsp, direction=hdr.direction.flip()
        )
        self._try_send(
            dst_nwk=frame.nwk_src,
            dst_endpoint=frame.src_endpoint,
            src_endpoint=endpoint_id,
            cluster_id=frame.cluster_id,
            profile_id=self.endpoints[endpoint_id].profile_id,
            payload=rsp_hdr.serialize() + schema(records).serialize(),
        )

    def _read_reporting(
        self, endpoint_id: int, cluster_id: int, records: list[Any]
    ) -> list[foundation.AttributeReportingConfigWithStatus]:
        cls = _maybe_cluster(cluster_id)
        result = []
        for record in records:
            config = foundation.AttributeReportingConfig()
            config.direction = foundation.ReportingDirection(record.direction)
            config.attrid = record.attrid
            current = self._store.reporting_config(endpoint_id, cluster_id, record.attrid)
            if current is None or cls is None:
                result.append(
                    foundation.AttributeReportingConfigWithStatus(
                        status=ZclStatus.NOT_FOUND, config=config
                    )
                )
                continue
            config.datatype = cls.find_attribute(record.attrid).zcl_type
            config.min_interval, config.max_interval, config.reportable_change = current
            result.append(
                foundation.AttributeReportingConfigWithStatus(
                    status=ZclStatus.SUCCESS, config=config
                )
            )
        return result

    def _discover_attributes(
        self, endpoint_id: int, cluster_id: int, fields: dict[str, Any]
    ) -> foundation.CommandSchema:
        cls = _maybe_cluster(cluster_id)
        ids = sorted(
            a
            for a in self._store.values(endpoint_id, cluster_id)
            if a >= fields["start_attribute_id"]
        )
        chosen = ids[: fields["max_attribute_ids"]]
        schema = foundation.GENERAL_COMMANDS[GENERAL.Discover_Attributes_rsp].schema
        return schema(
            discovery_complete=t.Bool(len(chosen) == len(ids)),
            attribute_info=[
                foundation.DiscoverAttributesResponseRecord(
                    attrid=a, datatype=cls.find_attribute(a).zcl_type if cls else 0
                )
                for a in chosen
            ],
        )

    def _handle_cluster_command(
        self,
        frame: AirFrame,
        endpoint_id: int,
        hdr: foundation.ZCLHeader,
        name: str,
        fields: dict[str, Any],
    ) -> None:
        handler = self._handlers.get((endpoint_id, frame.cluster_id, hdr.direction, hdr.command_id))
        if handler is None:
            self._default_response(frame, endpoint_id, hdr, ZclStatus.UNSUP_CLUSTER_COMMAND)
            return
        request = CommandRequest(
            node=self,
            endpoint_id=endpoint_id,
            cluster_id=frame.cluster_id,
            command=name,
            fields=fields,
            header=hdr,
            src_nwk=frame.nwk_src,
            src_endpoint=frame.src_endpoint,
            broadcast=frame.broadcast,
        )
        try:
            result = handler(request)
        except Exception:  # a simulator handler bug must not kill the node
            LOGGER.exception("Node %s handler for %s failed", self.name, name)
            result = ZclStatus.FAILURE
        if inspect.isawaitable(result):
            self._spawn(self._finish_async(frame, endpoint_id, request, result), f"handler-{name}")
        else:
            self._finish(frame, endpoint_id, request, result)

    async def _finish_async(
        self,
        frame: AirFrame,
        endpoint_id: int,
        request: CommandRequest,
        pending: Awaitable[HandlerResult],
    ) -> None:
        try:
            result = await pending
        except Exception:  # a simulator handler bug must not kill the node
            LOGGER.exception("Node %s handler for %s failed", self.name, request.command)
            result = ZclStatus.FAILURE
        try:
            self._finish(frame, endpoint_id, request, result)
        except NodeSendError as err:
            LOGGER.debug("Node %s could not answer: %s", self.name, err)

    def _finish(
        self, frame: AirFrame, endpoint_id: int, request: CommandRequest, result: HandlerResult
    ) -> None:
        if request.replied:
            return
        status = ZclStatus.SUCCESS if result is None else ZclStatus(result)
        self._default_response(frame, endpoint_id, request.header, status)

    def _default_response(
        self,
        frame: AirFrame,
        endpoint_id: int,
        hdr: foundation.ZCLHeader,
        status: foundation.Status,
    ) -> None:
        """Send a Default Response when ZCL §2.5.12.2 asks for one."""
        if frame.broadcast:
            return
        if hdr.frame_control.is_general and hdr.command_id == GENERAL.Default_Response:
            return
        if hdr.frame_control.disable_default_response and status == ZclStatus.SUCCESS:
            return
        rsp_hdr = foundation.ZCLHeader.general(
            tsn=hdr.tsn, command_id=GENERAL.Default_Response, direction=hdr.direction.flip()
        )
        rsp = foundation.DefaultResponse(command_id=hdr.command_id, status=status)
        profile_id = self.endpoints[endpoint_id].profile_id
        self.counters["default_responses"] += 1
        self._try_send(
            dst_nwk=frame.nwk_src,
            dst_endpoint=frame.src_endpoint,
            src_endpoint=endpoint_id,
            cluster_id=frame.cluster_id,
            profile_id=profile_id,
            payload=rsp_hdr.serialize() + rsp.serialize(),
        )

    def _record(
        self,
        frame: AirFrame,
        kind: str,
        command: str,
        fields: Mapping[str, Any],
        tsn: int,
        direction: foundation.Direction | None,
    ) -> None:
        entry = ReceivedFrame(
            time=datetime.now(UTC),
            src_nwk=frame.nwk_src,
            src_endpoint=frame.src_endpoint,
            dst_endpoint=frame.dst_endpoint,
            profile_id=frame.profile_id,
            cluster_id=frame.cluster_id,
            kind=kind,
            command=command,
            fields=dict(fields),
            tsn=tsn,
            broadcast=frame.broadcast,
            direction=direction,
            group=frame.group,
        )
        self._log.append(entry)
        self.counters[f"rx_{command}"] += 1
        for predicate, future in list(self._waiters):
            if not future.done() and predicate(entry):
                future.set_result(entry)

    # --- sending -------------------------------------------------------------------------

    def next_tsn(self) -> int:
        """A TSN from the node's own sequence, for a frame built by hand (``send_raw``)."""
        return self._next_tsn()

    def _next_tsn(self) -> int:
        self._tsn = (self._tsn + 1) & 0xFF
        return self._tsn

    def _send(
        self,
        *,
        dst_nwk: int,
        dst_endpoint: int,
        src_endpoint: int,
        cluster_id: int,
        profile_id: int,
        payload: bytes,
    ) -> None:
        network = self._network
        if network is None or not self.joined:
            raise NodeSendError(f"node {self.name} has not joined a network")
        if self.silent:
            raise NodeSendError(f"node {self.name} is silent")
        if dst_nwk == COORDINATOR_NWK and self.nwk == COORDINATOR_NWK:
            # The meter is itself the coordinator of its network: "to the coordinator", the default
            # destination of a node's commands and reports, means to the appliance that joined it.
            dst_nwk = network.radio_nwk
        self._seq = (self._seq + 1) & 0xFF
        frame = AirFrame.single_hop(
            pan_id=network.pan_id,
            nwk_src=self.nwk,
            nwk_dst=dst_nwk,
            seq=self._seq,
            src_endpoint=src_endpoint,
            dst_endpoint=dst_endpoint,
            cluster_id=cluster_id,
            profile_id=profile_id,
            payload=payload,
        )
        if not network.transmit(frame):
            self.counters["tx_dropped"] += 1
            if self.on_unheard is not None and not (dst_endpoint == 0 and profile_id == 0x0000):
                # Sent, and heard by nobody (the network is down): a checker notes what was attempted.
                self.on_unheard(WireFrame(outgoing=True, endpoint_id=src_endpoint, peer_nwk=dst_nwk,
                                          peer_endpoint=dst_endpoint, cluster_id=cluster_id,
                                          profile_id=profile_id, payload=bytes(payload),
                                          broadcast=dst_nwk >= 0xFFF8))
            raise NodeSendError(f"node {self.name} cannot reach 0x{dst_nwk:04X}")
        self.counters["tx"] += 1
        if self._observers and not (dst_endpoint == 0 and profile_id == 0x0000):
            self._notify(
                WireFrame(
                    outgoing=True,
                    endpoint_id=src_endpoint,
                    peer_nwk=dst_nwk,
                    peer_endpoint=dst_endpoint,
                    cluster_id=cluster_id,
                    profile_id=profile_id,
                    payload=bytes(payload),
                    broadcast=dst_nwk >= 0xFFF8,
                )
            )

    def _try_send(self, **kwargs: Any) -> None:
        """Send a response; a failure is logged, as a real node would just lose it."""
        try:
            self._send(**kwargs)
        except NodeSendError as err:
            LOGGER.debug("Node %s: %s", self.name, err)

    def _send_cluster_command(
        self,
        endpoint_id: int,
        cluster_id: int,
        command: str,
        *,
        to_client: bool,
        dst_nwk: int,
        dst_endpoint: int,
        tsn: int | None,
        disable_default_response: bool | None,
        fields: Mapping[str, Any],
    ) -> int:
        endpoint = self._endpoint(endpoint_id)
        cls = lookup_cluster(cluster_id)
        commands = cls.client_commands if to_client else cls.server_commands
        command_def = _command_by_name(commands, command)
        if command_def is None:
            side = "client (server -> client)" if to_client else "server (client -> server)"
            raise ValueError(f"{cls.__name__} has no {side} command {command!r}")
        try:
            request = command_def.schema(**fields)
            body = request.serialize()
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"{cls.__name__}.{command}: cannot encode {fields!r}: {err}") from err
        direction = (
            foundation.Direction.Server_to_Client
            if to_client
            else foundation.Direction.Client_to_Server
        )
        hdr = foundation.ZCLHeader.cluster(
            tsn=self._next_tsn() if tsn is None else tsn,
            command_id=command_def.id,
            direction=direction,
        )
        if disable_default_response is not None:
            hdr.frame_control = hdr.frame_control.replace(
                disable_default_response=int(disable_default_response)
            )
        self._send(
            dst_nwk=dst_nwk,
            dst_endpoint=dst_endpoint,
            src_endpoint=endpoint_id,
            cluster_id=cls.cluster_id,
            profile_id=endpoint.profile_id,
            payload=hdr.serialize() + body,
        )
        self.counters[f"tx_{command}"] += 1
        return hdr.tsn

    def _send_report(
        self,
        endpoint_id: int,
        cluster_id: int,
        reports: list[foundation.Attribute],
        dst_nwk: int,
        dst_endpoint: int,
    ) -> int:
        hdr = foundation.ZCLHeader.general(
            tsn=self._next_tsn(),
            command_id=GENERAL.Report_Attributes,
            direction=foundation.Direction.Server_to_Client,
        )
        schema = foundation.GENERAL_COMMANDS[GENERAL.Report_Attributes].schema
        self._send(
            dst_nwk=dst_nwk,
            dst_endpoint=dst_endpoint,
            src_endpoint=endpoint_id,
            cluster_id=cluster_id,
            profile_id=self._endpoint(endpoint_id).profile_id,
            payload=hdr.serialize() + schema(attribute_reports=reports).serialize(),
        )
        self.counters["reports"] += 1
        return hdr.tsn

    # --- reporting -----------------------------------------------------------------------

    def _report_destinations(self, due: DueReport) -> list[tuple[int, int]]:
        """Bound destinations (ZCL §2.5.11: reports follow bindings), else the configurer."""
        destinations = []
        network = self._network
        for address in self._zdo.bindings_for(due.endpoint_id, due.cluster_id):
            if address.addrmode != 0x03 or network is None:
                continue  # group bindings are not simulated
            nwk = network.nwk_of(address.ieee)
            if nwk is not None:
                destinations.append((nwk, address.endpoint))
        return destinations or [due.source]

    async def _reporting_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            if not self.joined:
                await self._wake.wait()
                continue
            for due in self._store.take_due(loop.time()):
                for dst_nwk, dst_endpoint in self._report_destinations(due):
                    try:
                        self._send_report(
                            due.endpoint_id,
                            due.cluster_id,
                            list(due.attributes),
                            dst_nwk,
                            dst_endpoint,
                        )
                    except NodeSendError as err:
                        LOGGER.debug("Node %s report lost: %s", self.name, err)
            next_due = self._store.next_due()
            if next_due is None:
                await self._wake.wait()
                continue
            delay = next_due - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._wake.wait()

    # --- helpers -------------------------------------------------------------------------

    def _endpoint(self, endpoint_id: int) -> NodeEndpoint:
        try:
            return self.endpoints[endpoint_id]
        except KeyError:
            raise ValueError(f"node {self.name} has no endpoint {endpoint_id}") from None

    def _neighbors(self) -> list[zdo_t.Neighbor]:
        network = self._network
        if network is None or not self.joined:
            return []
        return [
            zdo_t.Neighbor(
                extended_pan_id=network.extended_pan_id,
                ieee=network.coordinator_ieee,
                nwk=COORDINATOR_NWK,
                device_type=zdo_t.Neighbor.DeviceType.Coordinator,
                rx_on_when_idle=zdo_t.Neighbor.RxOnWhenIdle.On,
                relationship=zdo_t.Neighbor.Relationship.Parent,
                reserved1=0,
                permit_joining=zdo_t.Neighbor.PermitJoins.Unknown,
                reserved2=0,
                depth=0,
                lqi=255,
            )
        ]

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=f"node-{self.name}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOGGER.error(
                "Node %s task %s failed", self.name, task.get_name(), exc_info=task.exception()
            )


def _command_by_name(
    commands: Mapping[int, foundation.ZCLCommandDef], name: str
) -> foundation.ZCLCommandDef | None:
    for command_def in commands.values():
        if command_def.name == name:
            return command_def
    return None


def _matches(frame: ReceivedFrame, command: str | None, cluster_id: int | None) -> bool:
    return (command is None or frame.command == command) and (
        cluster_id is None or frame.cluster_id == cluster_id
    )
