"""The simulated HAN: a loopback TCP server that plays the air between one radio and its nodes.

The connected virtual radio is the coordinator (NWK 0x0000). Frames from the radio and from
the nodes go through one queue and one router task, so delivery keeps order and a node's
answer never runs inside the sender's call. Unicasts go to the node with that NWK address,
broadcasts to every joined node they address (and to the radio). A groupcast (APS group
addressing, ``AirFrame.group``) is one such broadcast: every node hears it and only the group's
members take it (each node keeps its own group table), as on a real network.

Joining: once the radio reports its network up (`NetworkUp`, sent by `start_network`),
every node that has joined before, or that does not wait for permit-join
(`joins_on_permit=False`, the default, e.g. the meter), announces itself with Device_annce.
Nodes with `joins_on_permit=True` join when the radio permits joining. Nodes stay joined
across radio connections, so after a reconnect they announce themselves again.

The meter's network (``trust_center`` given): the meter is a hosted node at NWK 0x0000, the
coordinator and trust center; the radio joins (`wire.Join`) instead of forming the network. The
trust center admits it only with a registration (IEEE address, install code, approved device
type), gives it a NWK address and the network key in a Transport-Key under its install-code
link key (`security.py`), and from then on every frame between the radio and the HAN is
NWK-secured with the network key, the Smart Energy profile's unicasts APS-secured with the link
key too (SE 1.x §5.4.6); both ends capture those secured bytes. Both ends also drop a secured frame
whose NWK frame counter is not above the last one they took from its sender (a replay; ZigBee PRO
§4.3.1.2), counted as ``replayed`` and logged once per sender (`security.ReplayGuard`). Without a ``trust_center`` the
radio is the coordinator (NWK 0x0000) and nothing is secured: the home's own network.

Link faults (issue 11), for the fault tests and the soak: ``faults`` (a ``LinkFaults``) drops,
delays, duplicates and reorders application frames (not ZDO: joining and discovery stay clean)
at configurable rates (a unicast the radio sends that is dropped is answered NO_ACK, as a MAC
reports a unicast it could not deliver; a node's frame or a broadcast just vanishes), drawn from a seeded RNG so a run repeats; ``freeze()`` keeps the radio's
connection open while nothing is forwarded either way and no delivery status comes back (a hung
meter), until ``unfreeze()``. What each fault did is counted in ``counters`` (``fault_*``).
A meter that goes away altogether is ``stop()`` then ``start()`` (the simulator's ``away``).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import zigpy.types as t
import zigpy.zdo.types as zdo_t

from . import security, wire
from .air import AirFrame, AirFrameError, BroadcastAddress
from .pcap import PcapWriter
from .trust_center import JoinRefusal, Registration, TrustCenter
from .virtual_node import COORDINATOR_NWK, VirtualNode

LOGGER = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 2.0
ZDO_PROFILE = 0x0000
SE_PROFILE = 0x0109
REORDER_HOLD_S = 1.0  # a frame held back to be reordered goes out alone after this (real) time


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """Rates (0..1, per application frame) of what the air does wrong, and the RNG seed.

    ``drop``: the frame is lost; ``duplicate``: it arrives twice; ``delay``: it arrives
    ``delay_s`` (real seconds) late; ``reorder``: it is held back and arrives after the next
    frame (or alone after ``REORDER_HOLD_S``).
    """

    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    delay_s: float = 0.5
    reorder: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("drop", "duplicate", "delay", "reorder"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name}: expected a rate between 0 and 1, got {rate}")
        if self.delay_s < 0:
            raise ValueError(f"delay_s: expected at least 0, got {self.delay_s}")

    @property
    def any(self) -> bool:
        """Whether any fault can happen at all."""
        return any((self.drop, self.duplicate, self.delay, self.reorder))


class _RadioLink:
    """The connection of the current coordinator radio."""

    def __init__(
        self, writer: asyncio.StreamWriter, hello: wire.Hello, task: asyncio.Task[Any],
        registration: Registration | None = None,
    ) -> None:
        self.writer = writer
        self.hello = hello
        self.task = task
        self.network_up = False
        self.registration = registration  # set when the radio joined a trust center's network
        self.authenticated = False

    def send(self, message: wire.Message) -> None:
        if not self.writer.is_closing():
            wire.write_message(self.writer, message)


class VirtualHan:
    """Hosts `VirtualNode`s and accepts one virtual radio at a time on 127.0.0.1."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        pcap_path: str | os.PathLike[str] | None = None,
        faults: LinkFaults | None = None,
        trust_center: TrustCenter | None = None,
        network: tuple[int, t.ExtendedPanId, int] = (0x1A62, t.ExtendedPanId.convert("50:52:45:4d:49:53:45:31"), 15),
    ) -> None:
        self.trust_center = trust_center
        self._network_settings = network  # pan id, extended pan id, channel of a trust center's network
        # Before the radio joins a trust center's network it has no address (0xFFFE: unknown).
        self._radio_nwk = COORDINATOR_NWK if trust_center is None else 0xFFFE
        self._nwk_counters: collections.Counter[t.EUI64] = collections.Counter()
        self._replays = security.ReplayGuard()  # the radio's frame counters: replays are dropped
        self._from_radio: dict[AirFrame, bytes] = {}  # the secured bytes of a frame the radio sent
        self.clock: Callable[[], Any] | None = None  # stamps the trust center's log
        self._host = host
        self._requested_port = port
        self._pcap_path = pcap_path
        self._pcap: PcapWriter | None = None
        self._server: asyncio.Server | None = None
        self._nodes: dict[int, VirtualNode] = {}
        self._radio: _RadioLink | None = None
        self._connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._disconnected.set()
        self._queue: asyncio.Queue[AirFrame] = asyncio.Queue()
        self._router_task: asyncio.Task[None] | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._permit_until = 0.0
        self._last_hello: wire.Hello | None = None
        self.counters: collections.Counter[str] = collections.Counter()
        self._faults = LinkFaults()
        self._rng = random.Random(0)
        self.faults = faults or LinkFaults()
        self.frozen = False
        # Told of every frame a fault lost (dropped, or sent into a freeze): the strict meter
        # owes nothing for, and is owed nothing by, a frame the air ate.
        self.on_lost: Callable[[AirFrame], None] | None = None
        self._held: AirFrame | None = None
        self._held_timer: asyncio.TimerHandle | None = None

    # --- link faults ---------------------------------------------------------------------

    @property
    def faults(self) -> LinkFaults:
        """The fault rates now; setting them restarts the RNG from their seed (a run repeats)."""
        return self._faults

    @faults.setter
    def faults(self, faults: LinkFaults) -> None:
        self._faults = faults
        self._rng = random.Random(faults.seed)

    def freeze(self) -> None:
        """Hang the air: the radio stays connected, but nothing is forwarded and no Tx is answered."""
        self.frozen = True
        self.counters["fault_freezes"] += 1
        LOGGER.info("Virtual HAN frozen (connection open, nothing forwarded)")

    def unfreeze(self) -> None:
        """End a ``freeze``: frames flow again (what was sent meanwhile is lost)."""
        self.frozen = False
        LOGGER.info("Virtual HAN unfrozen")

    def _apply_faults(self, frame: AirFrame) -> list[AirFrame]:
        """What of ``frame`` (and of a frame held back for reordering) goes on now, in order."""
        if self.frozen:
            self.counters["fault_frozen"] += 1
            self._lost(frame)
            return []
        faults = self._faults
        if not faults.any or frame.profile_id == ZDO_PROFILE:
            return [frame, *self._release_held()]
        rng = self._rng
        # The radio's unicasts were dropped (or not) when it sent them: see _tx_lost.
        if not self._radio_unicast(frame) and rng.random() < faults.drop:
            self.counters["fault_dropped"] += 1
            self._lost(frame)
            return self._release_held()
        out = [frame]
        if rng.random() < faults.duplicate:
            self.counters["fault_duplicated"] += 1
            out.append(frame)
        if rng.random() < faults.delay:
            self.counters["fault_delayed"] += 1
            loop = asyncio.get_running_loop()
            for late in out:
                loop.call_later(faults.delay_s, self._route_late, late)
            return self._release_held()
        if self._held is None and rng.random() < faults.reorder:
            self.counters["fault_reordered"] += 1
            self._held = frame
            self._held_timer = asyncio.get_running_loop().call_later(REORDER_HOLD_S, self._release_held_alone)
            return out[1:]
        return out + self._release_held()

    def _tx_lost(self, frame: AirFrame) -> bool:
        """Whether the drop fault loses a unicast the radio sends: its sender hears NO_ACK, as from a
        MAC that retried in vain (a real stack reports a lost unicast; only broadcasts vanish)."""
        faults = self._faults
        if not faults.drop or frame.profile_id == ZDO_PROFILE or not self._radio_unicast(frame):
            return False
        if self._rng.random() >= faults.drop:
            return False
        self.counters["fault_dropped"] += 1
        return True

    def _radio_unicast(self, frame: AirFrame) -> bool:
        return frame.nwk_src == self._radio_nwk and not frame.broadcast

    def _lost(self, frame: AirFrame) -> None:
        self._from_radio.pop(frame, None)
        if self.on_lost is not None:
            try:
                self.on_lost(frame)
            except Exception:  # a listener's bug must not stop the air
                LOGGER.exception("Virtual HAN: the lost-frame listener failed")

    def _release_held(self) -> list[AirFrame]:
        held, self._held = self._held, None
        if self._held_timer is not None:
            self._held_timer.cancel()
            self._held_timer = None
        return [held] if held is not None else []

    def _release_held_alone(self) -> None:
        self._held_timer = None
        for frame in self._release_held():
            self._route_late(frame)

    def _route_late(self, frame: AirFrame) -> None:
        if self.frozen or self._router_task is None:
            self.counters["fault_frozen"] += 1
            self._lost(frame)
            return
        try:
            self._route(frame)
        except Exception:  # one bad frame must not stop the air
            LOGGER.exception("Virtual HAN failed to route %r", frame)

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen for the radio; starts every node's own tasks."""
        if self._server is not None:
            raise RuntimeError("VirtualHan is already started")
        if self._pcap_path is not None:
            self._pcap = PcapWriter(self._pcap_path)
        try:
            self._server = await asyncio.start_server(
                self._serve_radio, self._host, self._requested_port
            )
        except OSError:
            if self._pcap is not None:
                self._pcap.close()
            raise
        self._requested_port = self.port  # a restarted HAN comes back at the same address
        self._router_task = asyncio.get_running_loop().create_task(
            self._route_forever(), name="virtual-han-router"
        )
        for node in self._nodes.values():
            node.start()
        LOGGER.info("Virtual HAN listening on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        """Close the server and the radio link, stop the router and every node."""
        if self._server is not None:
            self._server.close()
        # Connection handlers end by themselves once their socket is gone; cancelling
        # them instead makes Python 3.11's streams log a spurious CancelledError.
        connections = dict(self._connections)
        for writer in connections.values():
            writer.transport.abort()
        if connections:
            _done, pending = await asyncio.wait(connections, timeout=STOP_TIMEOUT_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._router_task is not None:
            self._router_task.cancel()
            await asyncio.gather(self._router_task, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._router_task = None
        self._release_held()  # a frame held back for reordering is lost with the air
        for node in self._nodes.values():
            await node.stop()
        if self._pcap is not None:
            self._pcap.close()
        LOGGER.info("Virtual HAN stopped")

    async def __aenter__(self) -> VirtualHan:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (the free one chosen when constructed with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("VirtualHan is not started")
        return self._server.sockets[0].getsockname()[1]

    @property
    def radio_path(self) -> str:
        """The `device.path` a VirtualRadioApplication uses to reach this HAN."""
        return f"virtual://{self._host}:{self.port}"

    @property
    def listening(self) -> bool:
        """True while started (a radio may connect)."""
        return self._server is not None

    @property
    def connected(self) -> bool:
        """True while a radio is connected."""
        return self._radio is not None

    async def wait_connected(self, connected: bool = True, timeout_s: float = 5.0) -> None:
        """Wait until a radio is (or, with False, is no longer) connected."""
        event = self._connected if connected else self._disconnected
        async with asyncio.timeout(timeout_s):
            await event.wait()

    async def drop_link(self) -> None:
        """Abort the radio's connection, as if the radio's USB cable were pulled."""
        link = self._radio
        if link is None:
            return
        link.writer.transport.abort()
        await asyncio.gather(link.task, return_exceptions=True)

    # --- nodes ---------------------------------------------------------------------------

    @property
    def nodes(self) -> dict[int, VirtualNode]:
        """The hosted nodes by NWK address (a copy)."""
        return dict(self._nodes)

    def add_node(self, node: VirtualNode) -> VirtualNode:
        """Host a node; it joins now if the radio's network is up and it may join."""
        if node.nwk in self._nodes:
            raise ValueError(
                f"NWK address 0x{node.nwk:04X} is already used by {self._nodes[node.nwk]!r}"
            )
        if any(n.ieee == node.ieee for n in self._nodes.values()):
            raise ValueError(f"IEEE address {node.ieee} is already used in this HAN")
        self._nodes[node.nwk] = node
        node.attach(self)
        if self._server is not None:
            node.start()
            if self._radio is not None and self._radio.network_up and self._may_join(node):
                node.join()
        return node

    async def remove_node(self, node: VirtualNode) -> None:
        """Stop hosting a node (it disappears without a leave)."""
        if self._nodes.get(node.nwk) is node:
            del self._nodes[node.nwk]
            node.attach(None)
            await node.stop()

    def _may_join(self, node: VirtualNode) -> bool:
        if node.joined or not node.joins_on_permit:
            return True
        return asyncio.get_running_loop().time() < self._permit_until

    # --- NodeNetwork (what nodes see of the network) -------------------------------------

    @property
    def pan_id(self) -> int:
        if self.trust_center is not None:
            return self._network_settings[0]
        return self._last_hello.pan_id if self._last_hello else 0x0000

    @property
    def extended_pan_id(self) -> t.ExtendedPanId:
        if self.trust_center is not None:
            return self._network_settings[1]
        return self._last_hello.extended_pan_id if self._last_hello else t.ExtendedPanId.UNKNOWN

    @property
    def coordinator_ieee(self) -> t.EUI64:
        if self.trust_center is not None:
            return self.trust_center.ieee
        return self._last_hello.ieee if self._last_hello else t.EUI64.UNKNOWN

    @property
    def radio_nwk(self) -> int:
        """The radio's NWK address: 0x0000 when it is the coordinator, else the one it was given."""
        return self._radio_nwk

    def nwk_of(self, ieee: t.EUI64) -> int | None:
        if self._last_hello is not None and ieee == self._last_hello.ieee:
            return self._radio_nwk
        for node in self._nodes.values():
            if node.ieee == ieee:
                return node.nwk
        return None

    def transmit(self, frame: AirFrame) -> bool:
        """Queue a node's frame; False when its unicast destination is unreachable."""
        if not frame.broadcast and not self._reachable(frame.nwk_dst):
            self.counters["dropped"] += 1
            return False
        self._queue.put_nowait(frame)
        return True

    def _reachable(self, nwk: int) -> bool:
        if nwk == self._radio_nwk:
            return self._radio is not None
        node = self._nodes.get(nwk)
        return node is not None and node.joined

    # --- routing -------------------------------------------------------------------------

    async def _route_forever(self) -> None:
        while True:
            frame = await self._queue.get()
            try:
                for out in self._apply_faults(frame):
                    self._route(out)
            except Exception:  # one bad frame must not stop the air
                LOGGER.exception("Virtual HAN failed to route %r", frame)

    def _route(self, frame: AirFrame) -> None:
        from_radio = self._from_radio.pop(frame, None)
        to_radio = frame.nwk_dst == self._radio_nwk or (frame.broadcast and frame.nwk_src != self._radio_nwk)
        secured = None
        if from_radio is not None:
            secured = from_radio
        elif to_radio and self._radio is not None and self._radio.registration is not None:
            secured = self._secure_for_radio(frame, self._radio.registration)
        if self._pcap is not None:
            if secured is not None:
                self._pcap.write_bytes(secured)
            else:
                self._pcap.write(frame)
        self.counters["frames"] += 1
        rx: wire.Message = wire.SecuredRx(secured) if secured is not None else wire.Rx(frame)
        if frame.broadcast:
            if frame.nwk_src != self._radio_nwk and self._radio is not None:
                self._radio.send(rx)
            for node in list(self._nodes.values()):
                if node.nwk != frame.nwk_src and node.joined and _addressed(node, frame.nwk_dst):
                    node.receive(frame)
        elif frame.nwk_dst == self._radio_nwk:
            if self._radio is not None:
                self._radio.send(rx)
            else:
                self.counters["dropped"] += 1
        else:
            target = self._nodes.get(frame.nwk_dst)
            if target is not None and target.joined:
                target.receive(frame)
            else:
                self.counters["dropped"] += 1

    # --- security on a trust center's network -----------------------------------------

    def _secure_for_radio(self, frame: AirFrame, registration: Registration) -> bytes:
        """A node's frame to the radio as it goes on the air: NWK-secured, SE unicasts APS-secured."""
        assert self.trust_center is not None
        node = self._nodes.get(frame.nwk_src)
        source = node.ieee if node is not None else self.trust_center.ieee
        self._nwk_counters[source] += 1
        counter = self._nwk_counters[source]
        link_key = registration.link_key if _aps_secured(frame) else None
        return security.secure(
            frame.encode(), source=source, network_key=self.trust_center.network_key,
            key_seq=self.trust_center.key_seq, nwk_counter=counter, link_key=link_key, aps_counter=counter,
        )

    def _unsecure_from_radio(self, link: _RadioLink, data: bytes) -> AirFrame | None:
        """The radio's secured frame, checked: None (counted) if it fails or lacks the security SE asks."""
        assert self.trust_center is not None and link.registration is not None
        try:
            plain = security.unsecure(
                data, network_key=self.trust_center.network_key,
                link_key_of={link.registration.ieee: link.registration.link_key},
            )
            frame = AirFrame.decode(plain.frame)
        except (security.SecurityError, AirFrameError) as err:
            self.counters["security_failures"] += 1
            LOGGER.warning("Virtual HAN: frame from the joined radio failed its security check: %s", err)
            return None
        if plain.source != link.registration.ieee:
            self.counters["security_failures"] += 1
            LOGGER.warning("Virtual HAN: secured frame names source %s, not the joined radio", plain.source)
            return None
        if not self._replays.fresh(plain.source, plain.nwk_counter):
            self.counters["replayed"] += 1
            if self._replays.first_refusal(plain.source):
                LOGGER.warning("Virtual HAN: dropped a frame from %s replayed or out of date (frame counter %d not"
                               " above the last one seen); later ones are counted, not logged",
                               plain.source, plain.nwk_counter)
            return None
        if _aps_secured(frame) and not plain.aps_secured:
            self.counters["aps_unsecured"] += 1
            LOGGER.warning("Virtual HAN: Smart Energy frame from the radio without APS security: dropped")
            return None
        if not link.authenticated:
            link.authenticated = True
            self.trust_center.authenticated(link.registration.ieee, self._now())
            LOGGER.info("Virtual HAN: trust center: %s authenticated", link.registration.ieee)
        return frame

    def _now(self) -> Any:
        return self.clock() if self.clock is not None else None

    async def _admit(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, join: wire.Join, task: asyncio.Task[Any]
    ) -> _RadioLink | None:
        """The trust center's answer to a joining radio: a link with its registration, or refused."""
        assert self.trust_center is not None
        admitted = self.trust_center.admit(join.ieee, join.device_type, self._now())
        if isinstance(admitted, JoinRefusal):
            LOGGER.warning("Virtual HAN: trust center refused %s (%s)", join.ieee, admitted.name)
            wire.write_message(writer, wire.Refused(int(admitted)))
            await writer.drain()
            return None
        taken = set(self._nodes)
        self._replays.forget(join.ieee)  # admitted anew: it counts its frames from 1 again
        self._radio_nwk = self.trust_center.address_for(join.ieee, taken)
        pan_id, ext_pan, channel = self._network_settings
        transport_key = security.encode_transport_key(
            security.TransportKey(self.trust_center.network_key, self.trust_center.key_seq, join.ieee,
                                  self.trust_center.ieee),
            link_key=admitted.link_key, pan_id=pan_id, nwk_src=COORDINATOR_NWK, nwk_dst=self._radio_nwk,
            seq=0, counter=self._next_counter(self.trust_center.ieee),
        )
        if self._pcap is not None:
            self._pcap.write_bytes(transport_key)
        hello = wire.Hello(ieee=join.ieee, pan_id=pan_id, extended_pan_id=ext_pan, channel=channel)
        link = _RadioLink(writer, hello, task, registration=admitted)
        link.send(wire.Joined(self._radio_nwk, pan_id, ext_pan, channel, self.trust_center.ieee, transport_key))
        LOGGER.info("Virtual HAN: trust center admitted %s as 0x%04X", join.ieee, self._radio_nwk)
        return link

    def _next_counter(self, source: t.EUI64) -> int:
        self._nwk_counters[source] += 1
        return self._nwk_counters[source]

    # --- the radio connection ------------------------------------------------------------

    async def _serve_radio(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        link: _RadioLink | None = None
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                hello = await wire.read_message(reader)
            expected = wire.Join if self.trust_center is not None else wire.Hello
            if not isinstance(hello, expected):
                LOGGER.warning("Virtual HAN: radio opened with %r instead of a %s", hello, expected.__name__)
                return
            if self._radio is not None:
                LOGGER.warning("Virtual HAN refuses a second radio while one is connected")
                wire.write_message(writer, wire.Busy())
                await writer.drain()
                return
            if isinstance(hello, wire.Join):
                admitted = await self._admit(reader, writer, hello, task)
                if admitted is None:
                    return
                link = self._radio = admitted
                hello = admitted.hello
            else:
                link = self._radio = _RadioLink(writer, hello, task)
                link.send(wire.Ready())
            self._last_hello = hello
            for node in self._nodes.values():
                node.forget_duplicates()  # the new radio's APS counters start again
            LOGGER.info(
                "Virtual HAN: coordinator %s connected (PAN 0x%04X)", hello.ieee, hello.pan_id
            )
            self._disconnected.clear()
            self._connected.set()
            await self._read_radio(reader, link)
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            ConnectionError,
            wire.FramingError,
        ) as err:
            LOGGER.info("Virtual HAN: radio link closed (%s)", type(err).__name__)
        except Exception:  # asyncio would only log it, less clearly
            LOGGER.exception("Virtual HAN: radio connection handler failed")
        finally:
            self._connections.pop(task, None)
            writer.close()
            if link is not None and link.registration is not None and not link.authenticated:
                # Gone without a frame under the network key: it could not read the Transport-Key.
                assert self.trust_center is not None
                self.trust_center.refused_key(link.registration.ieee, self._now())
                LOGGER.warning("Virtual HAN: trust center: %s left without authenticating (wrong install code?)",
                               link.registration.ieee)
            if link is not None and self._radio is link:
                self._radio = None
                self._connected.clear()
                self._disconnected.set()

    async def _read_radio(self, reader: asyncio.StreamReader, link: _RadioLink) -> None:
        while True:
            try:
                message = await wire.read_message(reader)
            except wire.FramingError:
                raise
            except wire.WireError as err:
                self.counters["bad_messages"] += 1
                LOGGER.warning("Virtual HAN dropped a bad message from the radio: %s", err)
                continue
            try:
                self._on_radio_message(link, message)
            except Exception:  # a simulator bug must not look like a radio outage
                LOGGER.exception("Virtual HAN failed to process %r", message)
            await link.writer.drain()

    def _on_radio_message(self, link: _RadioLink, message: wire.Message) -> None:
        match message:
            case wire.Tx():
                if self.frozen:  # a hung meter: the frame vanishes and no status comes back
                    self.counters["fault_frozen"] += 1
                    return
                if self._tx_lost(message.frame):
                    link.send(wire.TxResult(message.tx_id, wire.TxStatus.NO_ACK))
                    return
                if link.registration is not None:  # a trust center's network: only secured frames
                    self.counters["unsecured"] += 1
                    link.send(wire.TxResult(message.tx_id, wire.TxStatus.INVALID_FRAME))
                    return
                link.send(wire.TxResult(message.tx_id, self._accept_tx(message.frame)))
            case wire.SecuredTx():
                if self.frozen:
                    self.counters["fault_frozen"] += 1
                    return
                frame = self._unsecure_from_radio(link, message.data) if link.registration is not None else None
                if frame is None:
                    link.send(wire.TxResult(message.tx_id, wire.TxStatus.INVALID_FRAME))
                    return
                if self._tx_lost(frame):
                    link.send(wire.TxResult(message.tx_id, wire.TxStatus.NO_ACK))
                    return
                status = self._accept_tx(frame)
                if status is wire.TxStatus.SUCCESS:
                    self._from_radio[frame] = message.data
                link.send(wire.TxResult(message.tx_id, status))
            case wire.NetworkUp():
                link.network_up = True
                self._announce_nodes()
            case wire.Permit():
                self._permit(message.duration_s)
            case _:
                LOGGER.warning("Virtual HAN ignores unexpected %r from the radio", message)

    def _accept_tx(self, frame: AirFrame) -> wire.TxStatus:
        if frame.nwk_src != self._radio_nwk:
            return wire.TxStatus.INVALID_FRAME
        if not frame.broadcast and not self._reachable(frame.nwk_dst):
            self.counters["no_route"] += 1
            return wire.TxStatus.NO_ROUTE
        self._queue.put_nowait(frame)
        return wire.TxStatus.SUCCESS

    def _announce_nodes(self) -> None:
        for node in self._nodes.values():
            if self._may_join(node):
                node.join()

    def _permit(self, duration_s: int) -> None:
        loop = asyncio.get_running_loop()
        self._permit_until = loop.time() + duration_s if duration_s else 0.0
        LOGGER.info("Virtual HAN: permit joining for %d s", duration_s)
        if duration_s and self._radio is not None and self._radio.network_up:
            for node in self._nodes.values():
                if not node.joined and node.joins_on_permit:
                    node.join()


def _aps_secured(frame: AirFrame) -> bool:
    """Whether SE asks APS security with the link key for a frame: its profile's unicasts (§5.4.6)."""
    return frame.profile_id == SE_PROFILE and not frame.broadcast


def _addressed(node: VirtualNode, broadcast: int) -> bool:
    """Whether a node receives a NWK broadcast (ZigBee PRO §3.6.5)."""
    if broadcast == BroadcastAddress.ALL_DEVICES:
        return True
    descriptor = node.node_descriptor
    if broadcast == BroadcastAddress.RX_ON_WHEN_IDLE:
        return bool(descriptor.mac_capability_flags & zdo_t.MACCapabilityFlags.RxOnWhenIdle)
    return descriptor.logical_type in (zdo_t.LogicalType.Coordinator, zdo_t.LogicalType.Router)
