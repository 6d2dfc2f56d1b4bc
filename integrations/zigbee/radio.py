"""zigpy's ControllerApplication for the virtual radio: the real zigpy stack over loopback TCP.

zigpy hands `send_packet` a `ZigbeePacket`; we turn it into the over-the-air frame a radio
would transmit (`air.py`), send it to the simulated HAN (`han.py`) and wait for its
delivery status. Frames the HAN delivers come back as `ZigbeePacket`s to
`packet_received`. Network settings are fixed by the configuration; nothing is stored.

Config: `{"device": {"path": "virtual://127.0.0.1:PORT"}, "pcap_path": optional file,
"coordinator_ieee": optional EUI64 (the radio's own address), "network": {"pan_id",
"extended_pan_id", "channel"}, "join": optional {"install_code", "device_type"}}`.

Without ``join`` the radio forms the network and is its coordinator (NWK 0x0000): the home's
network. With ``join`` it joins the network of the HAN's trust center instead, as an SE device
joins the meter's (what a real radio's firmware does by itself): it gets its NWK address and the
network key, which it can read only with the link key of its own install code, and from then on
secures every frame (NWK security with the network key, the Smart Energy profile's unicasts APS
security with the link key; `security.py`); a frame from the HAN whose frame counter is not above
its sender's last is a replay, dropped and counted in ``counters["replayed"]``. A refusal raises `JoinRefused` with the trust center's
reason.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import urllib.parse
from collections.abc import Callable
from typing import Any

import zigpy.application
import zigpy.config as conf
import zigpy.device
import zigpy.endpoint
import zigpy.exceptions
import zigpy.state
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from . import security, wire
from .air import AirFrame, AirFrameError
from .install_code import InstallCode
from .nwk_lookup import NwkLookupMixin
from .pcap import PcapWriter
from .se_profile import SmartEnergyProfileMixin
from .trust_center import DEFAULT_DEVICE_TYPE, DEVICE_TYPES, REFUSAL_TEXT, JoinRefusal

LOGGER = logging.getLogger(__name__)

SCHEME = "virtual"
CONF_PCAP_PATH = "pcap_path"
CONF_COORDINATOR_IEEE = "coordinator_ieee"
CONF_JOIN = "join"
SE_PROFILE = 0x0109
DEFAULT_COORDINATOR_IEEE = "02:50:52:45:4d:00:00:01"  # locally administered
DEFAULT_PAN_ID = 0x1A62
DEFAULT_EXTENDED_PAN_ID = "50:52:45:4d:49:53:45:31"
DEFAULT_CHANNEL = 15
DEFAULT_NETWORK_KEY = t.KeyData(bytes(range(16)))
CONNECT_TIMEOUT_S = 5.0
TX_STATUS_TIMEOUT_S = 5.0
DEFAULT_RADIUS = 30

# zigpy features that need a database, a real NCP or the internet are off by default.
DEFAULT_ZIGPY_CONFIG: dict[str, Any] = {
    conf.CONF_DATABASE: None,
    conf.CONF_WATCHDOG_ENABLED: False,
    conf.CONF_TOPO_SCAN_ENABLED: False,
    conf.CONF_NWK_BACKUP_ENABLED: False,
    conf.CONF_OTA: {conf.CONF_OTA_ENABLED: False},
}

ConnectionLostCallback = Callable[[Exception], None]


class RadioConfigError(ValueError):
    """The virtual radio's configuration is wrong; retrying will not help."""


class RadioUnavailable(ConnectionError):
    """The HAN could not be reached or refused us; zigpy reports it as transient."""


class RadioLinkLost(ConnectionError):
    """The connection to the HAN broke after it was established."""


class JoinRefused(RadioUnavailable):
    """The meter's trust center did not admit us; `reason` says why (`text` in the customer's words)."""

    def __init__(self, reason: JoinRefusal) -> None:
        self.reason = reason
        self.text = REFUSAL_TEXT[reason]
        super().__init__(self.text)


def join_refusal(err: BaseException | None) -> JoinRefused | None:
    """The `JoinRefused` behind an error (zigpy and the controller wrap it), if any."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, JoinRefused):
            return err
        err, seen = err.__cause__, seen + 1
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class JoinedNetwork:
    """What joining a trust center's network gave the radio (the keys stay inside the radio)."""

    nwk: int
    trust_center: t.EUI64
    pan_id: int
    channel: int


def parse_radio_path(path: str) -> tuple[str, int]:
    """(host, port) of a `virtual://HOST:PORT` device path."""
    parsed = urllib.parse.urlsplit(path)
    if parsed.scheme != SCHEME:
        raise RadioConfigError(
            f"device.path {path!r}: expected virtual://HOST:PORT for the virtual radio"
        )
    try:
        port = parsed.port
    except ValueError:
        port = None
    if not parsed.hostname or port is None or parsed.path not in ("", "/"):
        raise RadioConfigError(
            f"device.path {path!r}: expected virtual://HOST:PORT with a numeric port"
        )
    return parsed.hostname, port


class VirtualCoordinator(zigpy.device.ZigbeeDevice):
    """The zigpy device object standing for the virtual radio itself (NWK 0x0000)."""


class VirtualRadioApplication(NwkLookupMixin, SmartEnergyProfileMixin, zigpy.application.ControllerApplication):
    """zigpy controller whose radio is a TCP link to a `VirtualHan`."""

    DISPLAY_NAME = "Virtual radio"
    DESCRIPTION = "Loopback radio to the premise EMS HAN simulator"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__({**DEFAULT_ZIGPY_CONFIG, **config})
        self._host, self._port = parse_radio_path(
            self.config[conf.CONF_DEVICE][conf.CONF_DEVICE_PATH]
        )
        pcap_path = self.config.get(CONF_PCAP_PATH)
        if pcap_path is not None and not isinstance(pcap_path, str):
            raise RadioConfigError(f"{CONF_PCAP_PATH}: expected a file path, got {pcap_path!r}")
        self._pcap_path: str | None = pcap_path
        self._network_info, self._node_info = self._configured_network()
        self._endpoint_descriptors: dict[int, zdo_t.SimpleDescriptor] = {}
        self._install_code, self._device_type = self._join_settings()
        self.joined: JoinedNetwork | None = None
        self._network_key: bytes | None = None
        self._link_key: bytes | None = None
        self._nwk_counter = 0
        self._replays = security.ReplayGuard()  # the meter's frame counters: replays are dropped
        self.counters: collections.Counter[str] = collections.Counter()  # e.g. "replayed"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._pcap: PcapWriter | None = None
        self._pending: dict[int, asyncio.Future[wire.TxStatus]] = {}
        self._tx_id = 0
        self._seq = 0
        self._lost_callbacks: list[ConnectionLostCallback] = []

    def _join_settings(self) -> tuple[InstallCode | None, str]:
        join = self.config.get(CONF_JOIN)
        if join is None:
            return None, DEFAULT_DEVICE_TYPE
        if not isinstance(join, dict) or "install_code" not in join:
            raise RadioConfigError(f"{CONF_JOIN}: expected {{install_code, device_type}}, got {join!r}")
        try:
            code = InstallCode.parse(str(join["install_code"]))
        except ValueError as err:
            raise RadioConfigError(f"{CONF_JOIN}.install_code: {err}") from err
        device_type = join.get("device_type", DEFAULT_DEVICE_TYPE)
        if device_type not in DEVICE_TYPES:
            raise RadioConfigError(f"{CONF_JOIN}.device_type: {device_type!r} is not one of {', '.join(DEVICE_TYPES)}")
        return code, device_type

    @property
    def joins(self) -> bool:
        """Whether this radio joins a trust center's network rather than forming its own."""
        return self._install_code is not None

    def _configured_network(self) -> tuple[zigpy.state.NetworkInfo, zigpy.state.NodeInfo]:
        nwk_config = self.config[conf.CONF_NWK]
        try:
            ieee = t.EUI64.convert(self.config.get(CONF_COORDINATOR_IEEE, DEFAULT_COORDINATOR_IEEE))
        except (ValueError, TypeError) as err:
            raise RadioConfigError(f"{CONF_COORDINATOR_IEEE}: not an EUI64: {err}") from err
        channel = nwk_config[conf.CONF_NWK_CHANNEL] or DEFAULT_CHANNEL
        network_info = zigpy.state.NetworkInfo(
            extended_pan_id=nwk_config[conf.CONF_NWK_EXTENDED_PAN_ID]
            or t.ExtendedPanId.convert(DEFAULT_EXTENDED_PAN_ID),
            pan_id=t.PanId(nwk_config[conf.CONF_NWK_PAN_ID] or DEFAULT_PAN_ID),
            nwk_update_id=nwk_config[conf.CONF_NWK_UPDATE_ID],
            nwk_manager_id=t.NWK(0x0000),
            channel=channel,
            channel_mask=t.Channels.from_channel_list([channel]),
            security_level=5,
            network_key=zigpy.state.Key(
                key=nwk_config[conf.CONF_NWK_KEY] or DEFAULT_NETWORK_KEY,
                seq=nwk_config[conf.CONF_NWK_KEY_SEQ],
            ),
            tc_link_key=zigpy.state.Key(
                key=nwk_config[conf.CONF_NWK_TC_LINK_KEY], partner_ieee=ieee
            ),
            stack_specific={"virtual": {"host": self._host, "port": self._port}},
            metadata={"virtual": {}},
            source="premise-ems-virtual-radio",
        )
        node_info = zigpy.state.NodeInfo(
            nwk=t.NWK(0x0000),
            ieee=ieee,
            logical_type=zdo_t.LogicalType.Coordinator,
            model="Virtual radio",
            manufacturer="premise-ems",
            version="1",
        )
        return network_info, node_info

    # --- connection ----------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True while the link to the HAN is up."""
        return self._writer is not None and not self._writer.is_closing()

    def on_connection_lost(self, callback: ConnectionLostCallback) -> Callable[[], None]:
        """Call `callback(exc)` when an established link to the HAN breaks.

        Not called for `disconnect()`/`shutdown()`. Returns an unsubscribe callable.
        zigpy listeners (`add_listener`) get `connection_lost(exc)` at the same time.
        """
        self._lost_callbacks.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._lost_callbacks.remove(callback)

        return unsubscribe

    async def connect(self) -> None:
        """Open the TCP link and introduce ourselves as the coordinator."""
        await self._close_link()
        where = f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(self._host, self._port)
        except (OSError, TimeoutError) as err:
            raise RadioUnavailable(f"virtual HAN at {where} is not reachable: {err!r}") from err
        opening: wire.Message
        if self._install_code is not None:
            opening = wire.Join(ieee=self._node_info.ieee, device_type=self._device_type)
        else:
            opening = wire.Hello(
                ieee=self._node_info.ieee,
                pan_id=self._network_info.pan_id,
                extended_pan_id=self._network_info.extended_pan_id,
                channel=self._network_info.channel,
            )
        try:
            wire.write_message(writer, opening)
            await writer.drain()
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                reply = await wire.read_message(reader)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, wire.WireError) as err:
            writer.close()
            raise RadioUnavailable(f"virtual HAN at {where} did not answer: {err!r}") from err
        if isinstance(reply, wire.Refused):
            writer.close()
            try:
                reason = JoinRefusal(reply.reason)
            except ValueError:
                raise RadioUnavailable(f"virtual HAN at {where} refused us for reason {reply.reason}") from None
            LOGGER.warning("The meter's trust center refused this appliance: %s", REFUSAL_TEXT[reason])
            raise JoinRefused(reason)
        if isinstance(reply, wire.Joined) and self._install_code is not None:
            self._take_network_key(reply, writer)
        elif not isinstance(reply, wire.Ready):
            writer.close()
            reason = (
                "already has a coordinator" if isinstance(reply, wire.Busy) else f"sent {reply!r}"
            )
            raise RadioUnavailable(f"virtual HAN at {where} {reason}")
        if self._pcap_path is not None and self._pcap is None:
            self._pcap = PcapWriter(self._pcap_path)
        if isinstance(reply, wire.Joined) and self._pcap is not None:
            self._pcap.write_bytes(reply.transport_key)
        self._reader, self._writer = reader, writer
        self._reader_task = asyncio.get_running_loop().create_task(
            self._read_loop(reader), name=f"virtual-radio-reader-{where}"
        )
        LOGGER.info("Virtual radio connected to HAN at %s", where)

    def _take_network_key(self, joined: wire.Joined, writer: asyncio.StreamWriter) -> None:
        """Read the network key from the trust center's Transport-Key with our install code's link key."""
        assert self._install_code is not None
        link_key = self._install_code.link_key
        try:
            transport = security.decode_transport_key(joined.transport_key, link_key=link_key)
        except security.SecurityError as err:
            writer.close()
            LOGGER.warning("The meter's network key did not open with this appliance's install code")
            raise JoinRefused(JoinRefusal.WRONG_INSTALL_CODE) from err
        if transport.destination != self._node_info.ieee or transport.source != joined.trust_center:
            writer.close()
            raise RadioUnavailable("the trust center's Transport-Key names another device")
        self._network_key, self._link_key = transport.network_key, link_key
        self._nwk_counter = 0
        self._replays.forget()  # a new join: the network's counters as from now
        self.joined = JoinedNetwork(joined.nwk, joined.trust_center, joined.pan_id, joined.channel)
        self._node_info = self._node_info.replace(
            nwk=t.NWK(joined.nwk), logical_type=zdo_t.LogicalType.Router
        )
        self._network_info = self._network_info.replace(
            pan_id=t.PanId(joined.pan_id),
            extended_pan_id=joined.extended_pan_id,
            channel=joined.channel,
            channel_mask=t.Channels.from_channel_list([joined.channel]),
            nwk_manager_id=t.NWK(0x0000),
            network_key=zigpy.state.Key(key=t.KeyData(transport.network_key), seq=transport.key_seq),
            tc_link_key=zigpy.state.Key(key=t.KeyData(link_key), partner_ieee=joined.trust_center),
        )
        LOGGER.info("Joined the meter's network as 0x%04X (trust center %s)", joined.nwk, joined.trust_center)

    async def disconnect(self) -> None:
        """Close the link and the capture; safe to call at any time, twice."""
        await self._close_link()
        if self._pcap is not None:
            self._pcap.close()
            self._pcap = None

    async def _close_link(self) -> None:
        task, self._reader_task = self._reader_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        writer, self._writer, self._reader = self._writer, None, None
        self._fail_pending("virtual radio disconnected")
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await writer.wait_closed()

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(zigpy.exceptions.DeliveryError(reason))

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                try:
                    message = await wire.read_message(reader)
                except wire.FramingError:
                    raise
                except wire.WireError as err:
                    LOGGER.warning("Virtual radio dropped a bad message from the HAN: %s", err)
                    continue
                match message:
                    case wire.SecuredRx():
                        self._on_secured_rx(message.data)
                        await asyncio.sleep(0)
                    case wire.Rx():
                        self._on_rx(message.frame)
                        # A burst read at once is handled frame by frame, not in one callback: the
                        # loop serves the meter link, timers and pages in between.
                        await asyncio.sleep(0)
                    case wire.TxResult():
                        future = self._pending.get(message.tx_id)
                        if future is not None and not future.done():
                            future.set_result(message.status)
                    case _:
                        LOGGER.warning("Virtual radio ignores unexpected %r", message)
        except (asyncio.IncompleteReadError, OSError, wire.FramingError) as err:
            self._link_lost(
                RadioLinkLost(f"link to virtual HAN at {self._host}:{self._port} lost: {err!r}")
            )

    def _link_lost(self, exc: RadioLinkLost) -> None:
        LOGGER.warning("%s", exc)
        self._reader_task = None  # this task is ending by itself
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
        self._fail_pending(str(exc))
        self.connection_lost(exc)
        for callback in list(self._lost_callbacks):
            try:
                callback(exc)
            except Exception:  # an owner's bug must not hide the outage from the others
                LOGGER.exception("Connection-lost callback %r failed", callback)

    # --- frames --------------------------------------------------------------------------

    def _on_secured_rx(self, data: bytes) -> None:
        if self._pcap is not None:
            self._pcap.write_bytes(data)
        if self._network_key is None or self.joined is None or self._link_key is None:
            LOGGER.warning("Virtual radio dropped a secured frame: it has not joined a secured network")
            return
        try:
            plain = security.unsecure(data, network_key=self._network_key,
                                      link_key_of={self.joined.trust_center: self._link_key})
            frame = AirFrame.decode(plain.frame)
        except (security.SecurityError, AirFrameError) as err:
            LOGGER.warning("Virtual radio dropped a frame that failed its security check: %s", err)
            return
        if not self._replays.fresh(plain.source, plain.nwk_counter):
            self.counters["replayed"] += 1
            if self._replays.first_refusal(plain.source):
                LOGGER.warning("Virtual radio dropped a frame from %s replayed or out of date (frame counter %d"
                               " not above the last one seen); later ones are counted, not logged",
                               plain.source, plain.nwk_counter)
            return
        if frame.profile_id == SE_PROFILE and not frame.broadcast and not plain.aps_secured:
            LOGGER.warning("Virtual radio dropped a Smart Energy frame without APS security")
            return
        self._on_rx(frame, captured=True)

    def _on_rx(self, frame: AirFrame, *, captured: bool = False) -> None:
        if self._pcap is not None and not captured:
            self._pcap.write(frame)
        packet = t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(frame.nwk_src)),
            src_ep=t.uint8_t(frame.src_endpoint),
            dst=t.AddrModeAddress(addr_mode=t.AddrMode.Group, address=t.Group(frame.group))
            if frame.group is not None
            else t.AddrModeAddress(
                addr_mode=t.AddrMode.Broadcast if frame.broadcast else t.AddrMode.NWK,
                address=t.NWK(frame.nwk_dst),
            ),
            dst_ep=t.uint8_t(frame.dst_endpoint),
            tsn=t.uint8_t(frame.aps_counter),
            profile_id=t.uint16_t(frame.profile_id),
            cluster_id=t.uint16_t(frame.cluster_id),
            data=t.SerializableBytes(frame.payload),
            radius=t.uint8_t(frame.radius),
            lqi=t.uint8_t(255),
            rssi=t.int8s(-40),
        )
        try:
            self.packet_received(packet)
        except Exception:  # zigpy failing on one packet must not stop the radio
            LOGGER.exception("zigpy failed to process %r", packet)

    def _frame_for(self, packet: t.ZigbeePacket) -> AirFrame:
        dst = packet.dst
        if dst is None:
            raise zigpy.exceptions.DeliveryError("packet has no destination")
        if dst.addr_mode == t.AddrMode.Group:
            # One frame on the air for every member (zigpy's Group.request): APS group delivery.
            self._seq = (self._seq + 1) & 0xFF
            return AirFrame.groupcast(
                pan_id=int(self._network_info.pan_id),
                nwk_src=int(self._node_info.nwk),
                group=int(dst.address),
                seq=self._seq,
                src_endpoint=int(packet.src_ep or 0),
                cluster_id=int(packet.cluster_id),
                profile_id=int(packet.profile_id),
                payload=packet.data.serialize(),
                radius=int(packet.radius) or DEFAULT_RADIUS,
            )
        if dst.addr_mode in (t.AddrMode.NWK, t.AddrMode.Broadcast):
            nwk_dst = int(dst.address)
        elif dst.addr_mode == t.AddrMode.IEEE:
            device = self.devices.get(dst.address)
            if not isinstance(device, zigpy.device.ZigbeeDevice):
                raise zigpy.exceptions.DeliveryError(f"no NWK address known for {dst.address}")
            nwk_dst = int(device.nwk)
        else:
            raise zigpy.exceptions.DeliveryError(
                f"{dst.addr_mode.name} addressing is not simulated by the virtual radio"
            )
        if nwk_dst == self._node_info.nwk:
            raise zigpy.exceptions.DeliveryError("the virtual radio does not send to itself")
        self._seq = (self._seq + 1) & 0xFF
        return AirFrame.single_hop(
            pan_id=int(self._network_info.pan_id),
            nwk_src=int(self._node_info.nwk),
            nwk_dst=nwk_dst,
            seq=self._seq,
            src_endpoint=int(packet.src_ep or 0),
            dst_endpoint=int(packet.dst_ep or 0),
            cluster_id=int(packet.cluster_id),
            profile_id=int(packet.profile_id),
            payload=packet.data.serialize(),
            radius=int(packet.radius) or DEFAULT_RADIUS,
            ack_request=bool(packet.tx_options & t.TransmitOptions.ACK) and nwk_dst < 0xFFF8,
        )

    def _secured(self, frame: AirFrame) -> bytes | None:
        """The frame as it goes on a secured network's air, or None on an unsecured one."""
        if self._network_key is None:
            return None
        self._nwk_counter += 1
        aps = frame.profile_id == SE_PROFILE and not frame.broadcast
        return security.secure(
            frame.encode(), source=self._node_info.ieee, network_key=self._network_key,
            key_seq=int(self._network_info.network_key.seq), nwk_counter=self._nwk_counter,
            link_key=self._link_key if aps else None, aps_counter=self._nwk_counter,
        )

    async def send_packet(self, packet: t.ZigbeePacket) -> None:
        """Transmit through the HAN; DeliveryError if the link is down or the HAN nacks."""
        writer = self._writer
        if writer is None or writer.is_closing():
            raise zigpy.exceptions.DeliveryError("virtual radio is not connected to its HAN")
        frame = self._frame_for(packet)
        self._tx_id = (self._tx_id + 1) & 0xFFFF
        tx_id = self._tx_id
        future: asyncio.Future[wire.TxStatus] = asyncio.get_running_loop().create_future()
        self._pending[tx_id] = future
        message: wire.Message = wire.Tx(tx_id=tx_id, frame=frame)
        data = self._secured(frame)
        if data is not None:
            message = wire.SecuredTx(tx_id=tx_id, data=data)
        if self._pcap is not None:
            # Captured as it goes on the air, before any answer to it can come back (a record
            # written once the delivery status returned would follow the answer); a frame the
            # HAN then fails to deliver was still transmitted.
            self._pcap.write_bytes(data if data is not None else frame.encode())
        try:
            wire.write_message(writer, message)
            await writer.drain()
            async with asyncio.timeout(TX_STATUS_TIMEOUT_S):
                status = await future
        except (OSError, ConnectionError) as err:
            raise zigpy.exceptions.DeliveryError(f"virtual radio link failed: {err!r}") from err
        except TimeoutError as err:
            raise zigpy.exceptions.DeliveryError(
                f"no delivery status from the HAN within {TX_STATUS_TIMEOUT_S} s"
            ) from err
        finally:
            self._pending.pop(tx_id, None)
        if status != wire.TxStatus.SUCCESS:
            raise zigpy.exceptions.DeliveryError(
                f"HAN could not deliver to 0x{frame.nwk_dst:04X}: {status.name}",
                status=t.MACStatus.MAC_NO_ACK,
            )

    # --- network settings (fixed, in memory) ---------------------------------------------

    async def load_network_info(self, *, load_devices: bool = False) -> None:
        # A joined radio keeps what the trust center gave it (address, network key) until it leaves.
        self.state.network_info = self._network_info.replace()
        self.state.node_info = self._node_info.replace()

    async def write_network_info(
        self, *, network_info: zigpy.state.NetworkInfo, node_info: zigpy.state.NodeInfo
    ) -> None:
        LOGGER.info("Virtual radio keeps new network settings in memory only")
        self._network_info = network_info.replace()
        self._node_info = self._node_info.replace(ieee=node_info.ieee or self._node_info.ieee)

    async def reset_network_info(self) -> None:
        self._network_info, self._node_info = self._configured_network()
        self.joined, self._network_key, self._link_key = None, None, None

    async def start_network(self) -> None:
        """Create the coordinator device and tell the HAN the network is up."""
        await self.load_network_info()
        await self.register_endpoints()
        self._install_coordinator()
        if self._writer is None:
            raise RadioLinkLost("virtual radio lost its HAN while starting the network")
        wire.write_message(self._writer, wire.NetworkUp())
        await self._writer.drain()

    def _install_coordinator(self) -> None:
        ieee = self._node_info.ieee
        coordinator = self.devices.get(ieee)
        if not isinstance(coordinator, VirtualCoordinator):
            coordinator = VirtualCoordinator(self, ieee, self._node_info.nwk)
            self.devices[ieee] = coordinator
        joined = self.joined is not None
        coordinator.node_desc = zdo_t.NodeDescriptor(
            logical_type=zdo_t.LogicalType.Router if joined else zdo_t.LogicalType.Coordinator,
            complex_descriptor_available=0,
            user_descriptor_available=0,
            reserved=0,
            aps_flags=0,
            frequency_band=zdo_t.NodeDescriptor.FrequencyBand.Freq2400MHz,
            mac_capability_flags=(
                zdo_t.MACCapabilityFlags.AlternatePanCoordinator
                | zdo_t.MACCapabilityFlags.FullFunctionDevice
                | zdo_t.MACCapabilityFlags.MainsPowered
                | zdo_t.MACCapabilityFlags.RxOnWhenIdle
                | zdo_t.MACCapabilityFlags.AllocateAddress
            ),
            manufacturer_code=0x0000,
            maximum_buffer_size=82,
            maximum_incoming_transfer_size=82,
            # A coordinator: primary trust center, network manager, rev 22; a joined router: rev 22.
            server_mask=0x2C00 if joined else 0x2C41,
            maximum_outgoing_transfer_size=82,
            descriptor_capability_field=zdo_t.NodeDescriptor.DescriptorCapability.NONE,
        )
        for descriptor in self._endpoint_descriptors.values():
            endpoint = coordinator.endpoints.get(descriptor.endpoint)
            if not isinstance(endpoint, zigpy.endpoint.Endpoint):
                endpoint = coordinator.add_endpoint(descriptor.endpoint)
            endpoint.profile_id = descriptor.profile
            endpoint.device_type = descriptor.device_type
            for cluster_id in descriptor.input_clusters:
                endpoint.add_input_cluster(cluster_id)
            for cluster_id in descriptor.output_clusters:
                endpoint.add_output_cluster(cluster_id)
            endpoint.status = zigpy.endpoint.Status.ZDO_INIT
        coordinator.model = self._node_info.model
        coordinator.manufacturer = self._node_info.manufacturer

    async def add_endpoint(self, descriptor: zdo_t.SimpleDescriptor) -> None:
        self._endpoint_descriptors[descriptor.endpoint] = descriptor

    async def force_remove(self, dev: zigpy.device.ZigbeeDevice) -> None:
        LOGGER.debug("Virtual radio has no child table to remove %s from", dev.ieee)

    async def permit_ncp(self, time_s: int = 60) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise zigpy.exceptions.DeliveryError("virtual radio is not connected to its HAN")
        wire.write_message(writer, wire.Permit(duration_s=time_s))
        await writer.drain()

    async def permit_with_link_key(
        self, node: t.EUI64, link_key: t.KeyData, time_s: int = 60
    ) -> None:
        LOGGER.info("Virtual HAN does not simulate install codes; permitting %s to join", node)
        await self.permit_ncp(time_s)

    async def _watchdog_feed(self) -> None:
        if not self.is_connected:
            raise RadioLinkLost(f"virtual radio is not connected to {self._host}:{self._port}")
