"""The home's Zigbee network, with the EMS as its coordinator: radio up, devices adopted, watched.

The shared reconnect supervisor (``integrations.zigbee.supervisor``) keeps the radio up; each
time it connects, the network starts the controller, opens joining for ``permit_join_s``, and
adopts every device zigpy has interviewed (a device that joins, or that announces itself again
after a restart). When the radio drops, every device is shown unavailable, the outage is logged
once, and the network comes back with exponential backoff from ``first_retry_s`` up to
``max_retry_s``. While up, a watch loop marks a device unavailable after
``unavailable_after_s`` without a frame and pings unavailable devices until they answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import zigpy.exceptions

from ems.errors import NotReady
from ems.tasks import TaskSet
from integrations.zigbee.controller import permit_join, start_radio, stop_controller
from integrations.zigbee.supervisor import Backoff, ConnectionState, ReconnectSupervisor
from integrations.zigbee_home import HomeSettings
from integrations.zigbee_home.catalog import classify
from integrations.zigbee_home.device import UNANSWERED, HomeDevice
from integrations.zigbee_home.port import HomePort
from integrations.zigbee_home.provision import HomeProvisioner

_LOGGER = logging.getLogger(__name__)

LINK_ERRORS = (ConnectionError, TimeoutError, OSError, zigpy.exceptions.ZigbeeException)
SETUP_ERRORS = (*UNANSWERED, zigpy.exceptions.ZigbeeException)


class HomeNetwork:
    """Owns the home radio, the devices found on it and their port."""

    def __init__(self, hub: Any, settings: HomeSettings) -> None:
        self._hub = hub
        self.settings = settings
        self.app: Any = None
        self.devices: dict[str, HomeDevice] = {}
        self.port = HomePort(self.devices.get, self.devices, lambda: self.app)
        self.provision = HomeProvisioner(hub, self)  # joining, discovery, parameters, tests (UC134)
        self.connected = False
        self._lost = asyncio.Event()
        self._tasks = TaskSet(_LOGGER, "home")
        self._setups: dict[str, asyncio.Task[Any]] = {}
        self._pings: dict[str, asyncio.Task[Any]] = {}
        self._last_ping: dict[str, float] = {}
        self._ignored: set[str] = set()
        self._supervisor = ReconnectSupervisor(
            self,
            name="Home network",
            task_name="home-network",
            backoff=Backoff(settings.first_retry_s, settings.max_retry_s),
            on_state=self._on_supervisor_state,
            logger=_LOGGER,
            expected=LINK_ERRORS,
            spawn=hub.create_task,
        )

    @property
    def attempts(self) -> int:
        """Connection attempts so far."""
        return self._supervisor.attempts

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        provisioning = getattr(self._hub, "provisioning", None)
        if provisioning is not None:
            provisioning.attach(self.provision)
        self._supervisor.start()

    async def close(self) -> None:
        provisioning = getattr(self._hub, "provisioning", None)
        if provisioning is not None and provisioning.port is self.provision:
            provisioning.attach(None)
        await self._supervisor.close()  # cancels until done, then tears down (nothing published)
        await self.provision.close()
        for device_id, port in list(self._hub.device_ports.items()):
            if port is self.port:
                del self._hub.device_ports[device_id]

    async def permit(self, duration_s: int) -> None:
        """Let new devices join for ``duration_s`` seconds (0 closes the network)."""
        if self.app is None:
            raise NotReady("the home network is not up")
        await permit_join(self.app, duration_s)

    # -- what the supervisor drives --------------------------------------------------------

    async def connect(self) -> str:
        """Start the radio, open joining, adopt the devices zigpy knows; name the radio."""
        self._lost.clear()
        self.app = await start_radio(self.settings.radio, self.settings.pcap)
        self.provision.on_app(self.app)
        self.app.add_listener(self)
        self.connected = True
        for device in self.devices.values():
            device.connected = True
        if self.settings.permit_join_s:
            await permit_join(self.app, self.settings.permit_join_s)
        for zdevice in list(self.app.devices.values()):
            if zdevice.is_initialized:
                self.device_initialized(zdevice)
        _LOGGER.info("Home network up (%s radio)", self.settings.radio["type"])
        return f"{self.settings.radio['type']} radio"

    async def watch(self) -> None:
        """Run until the radio is lost: silent devices become unavailable, unavailable ones are pinged.

        It sleeps until the first moment something can fall due (a device silent for
        ``unavailable_after_s``, an unavailable one's next ping), never longer than
        ``report_interval_s``: a device found unavailable meanwhile (a command it did not answer)
        is pinged at the pace it is pinged anyway. At rest, with every device reporting, that is
        one wake-up per report interval rather than one a second.
        """
        settings = self.settings
        longest_s = max(0.05, min(settings.report_interval_s, settings.unavailable_after_s))
        next_s = min(1.0, longest_s)  # the first look soon after the radio is up
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                # Just past the moment, so that a device is silent for over the limit.
                await asyncio.wait_for(self._lost.wait(), max(0.01, next_s + 0.01))
            now = time.monotonic()
            next_s = longest_s
            for device in list(self.devices.values()):
                if not device.described:
                    continue
                silent_s = now - device.last_heard
                if device.available and silent_s > settings.unavailable_after_s:
                    device.set_available(False, f"no report for over {settings.unavailable_after_s:g} s")
                if device.available is False:
                    if device.device_id in self._pings:
                        continue  # its ping's end is the next moment for it: within the longest wait
                    since_ping_s = now - self._last_ping.get(device.device_id, 0.0)
                    if since_ping_s >= settings.report_interval_s:
                        self._last_ping[device.device_id] = now
                        self._pings[device.device_id] = self._tasks.spawn(
                            self._ping(device), f"home-ping-{device.device_id}")
                    else:
                        next_s = min(next_s, settings.report_interval_s - since_ping_s)
                elif device.available:
                    next_s = min(next_s, settings.unavailable_after_s - silent_s)

    async def _ping(self, device: HomeDevice) -> None:
        try:
            await device.ping()
        except Exception as err:  # noqa: BLE001 - still not answering; the next ping tries again
            _LOGGER.debug("[%s] Ping not answered: %s", device.device_id, err)
        finally:
            self._pings.pop(device.device_id, None)

    async def teardown(self) -> None:
        """Let go of the radio; the devices stay known, and commands to them fail at once."""
        self.connected = False
        for device in self.devices.values():
            device.connected = False
            device.zdevice = None  # the next controller has its own device objects
        await self._tasks.cancel_all()
        self._setups.clear()
        self._pings.clear()
        if self.app is not None:
            app, self.app = self.app, None
            with contextlib.suppress(Exception):
                app.remove_listener(self)
            with contextlib.suppress(Exception):
                await stop_controller(app)

    def _on_supervisor_state(self, state: ConnectionState, detail: str) -> None:
        """An outage (not the appliance stopping) shows every set-up device unavailable."""
        if state is ConnectionState.OFFLINE:
            for device in list(self.devices.values()):
                if device.described:
                    device.set_available(False, f"the home network is down ({detail})")

    # -- zigpy's application listener -----------------------------------------------------

    def connection_lost(self, exc: Exception | None = None) -> None:
        self.connected = False
        for device in self.devices.values():
            device.connected = False  # commands now fail at once, not by timeout
        self._lost.set()

    def device_joined(self, zdevice: Any) -> None:
        """A device joined (or announced itself again): the provisioning log says so."""
        if self.app is not None and zdevice.nwk != self.app.state.node_info.nwk:
            self.provision.joined(zdevice)

    def device_initialized(self, zdevice: Any) -> None:
        """zigpy finished interviewing a device (new, or found again): set it up."""
        if self.app is None or zdevice.nwk == self.app.state.node_info.nwk:
            return
        self.provision.initialized(zdevice)  # every device, also one the EMS does not control
        device_id = str(zdevice.ieee)
        layout = classify(
            (ep_id, ep.in_clusters, ep.out_clusters)
            for ep_id, ep in zdevice.endpoints.items() if ep_id != 0
        )
        if layout is None:
            if device_id not in self._ignored:
                self._ignored.add(device_id)
                _LOGGER.info("[%s] %s is not a thermostat, switch, load controller or battery; ignored",
                             device_id, zdevice.model or "device")
            return
        device = self.devices.get(device_id)
        if device is None:
            device = self.devices[device_id] = HomeDevice(self._hub, self.settings, device_id, layout)
        device.connected = self.connected
        self._hub.device_ports[device_id] = self.port
        previous = self._setups.pop(device_id, None)
        if previous is not None:
            previous.cancel()
        self._setups[device_id] = self._tasks.spawn(
            self._set_up(device, zdevice, layout), f"home-setup-{device_id}")

    async def _set_up(self, device: HomeDevice, zdevice: Any, layout: Any) -> None:
        delay = self.settings.first_retry_s
        try:
            while True:
                try:
                    await device.setup(zdevice, layout)
                    return
                except SETUP_ERRORS as err:
                    detail = f"set-up not answered ({type(err).__name__}: {err})" if str(err) else \
                        f"set-up not answered ({type(err).__name__})"
                    _LOGGER.warning("[%s] %s; retrying in %.0f s", device.device_id, detail, delay)
                    if device.described:
                        device.set_available(False, detail)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.settings.max_retry_s)
        finally:
            if self._setups.get(device.device_id) is asyncio.current_task():
                del self._setups[device.device_id]

    def device_left(self, zdevice: Any) -> None:
        device = self.devices.get(str(zdevice.ieee))
        if device is not None:
            device.set_available(False, "left the network")

    def device_removed(self, zdevice: Any) -> None:
        self.device_left(zdevice)

    def handle_message(self, zdevice: Any, profile: int, cluster: int, src_ep: int, dst_ep: int,
                       message: bytes) -> None:
        """zigpy's raw-frame hook: every frame from a known device, before zigpy parses it."""
        self.provision.heard(zdevice)
        device = self.devices.get(str(zdevice.ieee))
        if device is None or src_ep == 0 or dst_ep == 0:
            if device is not None:
                device.heard()  # a ZDO frame (an announcement, an answer) is a sign of life too
            return
        device.on_frame(cluster, src_ep, bytes(message))
