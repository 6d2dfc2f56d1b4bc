"""The link to the meter: connect, find the meter, bind, configure reporting, sync, then watch.

One supervisor task keeps the link up. When the radio connection drops or a step fails, the
data is shown as stale/offline, the outage is logged once, and the link retries with
exponential backoff capped at the registration retry interval (I1NFR3, default 15 minutes),
resuming without a restart. When the meter stops reporting for ``stale_after_s`` while the
radio is up, the data is shown as stale until the next report.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import timedelta
from typing import Any

import zigpy.exceptions
import zigpy.zdo.types as zdo_t

from ems.errors import NotReady
from ems.model import LinkState, MeterLinkChanged
from integrations.zigbee.controller import start_radio, stop_controller
from integrations.zigbee.se.clusters import Metering
from integrations.zigbee_se import MeterLinkSettings
from integrations.zigbee_se.frames import MeterSession
from integrations.zigbee_se.upstream import UpstreamSender

_LOGGER = logging.getLogger(__name__)

SE_PROFILE = 0x0109
DISCOVERY_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 8.0
LINK_ERRORS = (
    NotReady,
    ConnectionError,
    TimeoutError,
    OSError,
    zigpy.exceptions.ZigbeeException,
)


class MeterLink:
    """Owns the radio, the meter session and the reconnect loop for one meter."""

    def __init__(self, hub: Any, settings: MeterLinkSettings) -> None:
        self._hub = hub
        self.settings = settings
        self.app: Any = None
        self.session: MeterSession | None = None
        self.state = LinkState.CONNECTING
        self.meter_id = settings.meter_id
        self.attempts = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        self._upstream = UpstreamSender(hub, self)
        self._outage_logged = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._upstream.register()
        self._publish_state(LinkState.CONNECTING, "starting")
        self._supervisor = self._hub.create_task(self._supervise(), "meter-link")

    async def close(self) -> None:
        self._upstream.unregister()
        if self._supervisor is not None:
            # Cancel until it is done: 3.11's wait_for (inside zigpy and the session's requests) can
            # swallow a cancel that races a reply, and the link would go on to start a session.
            while not self._supervisor.done():
                self._supervisor.cancel()
                await asyncio.wait({self._supervisor}, timeout=0.5)
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        await self._teardown()

    # -- supervision -----------------------------------------------------------------------

    async def _supervise(self) -> None:
        delay = self.settings.first_retry_s
        while True:
            self.attempts += 1
            try:
                await self._connect()
                if self._outage_logged:
                    _LOGGER.info("[%s] Meter link restored", self.meter_id)
                    self._outage_logged = False
                delay = self.settings.first_retry_s
                await self._watch()
                detail = "radio connection lost"
            except LINK_ERRORS as err:
                detail = _describe(err)
            except Exception as err:  # noqa: BLE001 - a bug must not end the link for good
                _LOGGER.exception("[%s] Unexpected error on the meter link; retrying", self.meter_id)
                detail = _describe(err)
            await self._teardown()
            if not self._outage_logged:
                _LOGGER.warning("[%s] Meter link down: %s; retrying with backoff", self.meter_id, detail)
                self._outage_logged = True
            else:
                _LOGGER.debug("[%s] Meter link still down: %s", self.meter_id, detail)
            self._publish_state(LinkState.OFFLINE, detail)
            await asyncio.sleep(delay * random.uniform(0.9, 1.1))
            delay = min(delay * 2, self.settings.registration_retry_interval_s)

    async def _connect(self) -> None:
        self._lost.clear()
        self._publish_state(LinkState.CONNECTING, "joining the HAN")
        self.app = await start_radio(self.settings.radio, self.settings.pcap)
        if hasattr(self.app, "on_connection_lost"):
            self.app.on_connection_lost(self._on_connection_lost)
        device, endpoint_id = await self._find_meter()
        self.session = MeterSession(self._hub, self.app, device, endpoint_id, self.meter_id)
        await self.session.start(self.settings.report_interval_s)
        self._publish_state(LinkState.ONLINE, f"meter {device.ieee} endpoint {endpoint_id}")

    async def _find_meter(self) -> tuple[Any, int]:
        """Find the ESI's metering endpoint by ZDO Match_Desc (SE §6.5 step 4)."""
        deadline = asyncio.get_running_loop().time() + DISCOVERY_TIMEOUT_S
        while True:
            for device in list(self.app.devices.values()):
                if device.nwk == self.app.state.node_info.nwk or not device.is_initialized:
                    continue
                endpoint_id = await self._match_metering(device)
                if endpoint_id is not None:
                    return device, endpoint_id
            if asyncio.get_running_loop().time() > deadline:
                raise NotReady("no Smart Energy meter answered on the HAN")
            await asyncio.sleep(0.1)

    async def _match_metering(self, device: Any) -> int | None:
        status, _nwk, endpoints = await asyncio.wait_for(
            device.zdo.Match_Desc_req(device.nwk, SE_PROFILE, [Metering.cluster_id], []),
            REQUEST_TIMEOUT_S,
        )
        if status != zdo_t.Status.SUCCESS or not endpoints:
            return None
        return int(endpoints[0])

    async def _watch(self) -> None:
        """Run until the radio connection is lost; mark the data stale between reports."""
        assert self.session is not None
        stale_after = timedelta(seconds=self.settings.stale_after_s)
        check_every = min(1.0, self.settings.stale_after_s / 4)
        while not self._lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), check_every)
            if self._lost.is_set():
                return
            last = self.session.last_frame_at
            silent = last is None or self._hub.clock() - last > stale_after
            if silent and self.state is LinkState.ONLINE:
                self._publish_state(LinkState.STALE, f"no report for over {self.settings.stale_after_s:g} s")
            elif not silent and self.state is LinkState.STALE:
                self._publish_state(LinkState.ONLINE, "reports resumed")
            if self.session.failed is not None:
                raise self.session.failed

    def _on_connection_lost(self, exc: Exception | None = None) -> None:
        self._lost.set()

    async def _teardown(self) -> None:
        if self.session is not None:
            await self.session.stop()
            self.session = None
        if self.app is not None:
            app, self.app = self.app, None
            with contextlib.suppress(Exception):
                await stop_controller(app)

    def _publish_state(self, state: LinkState, detail: str) -> None:
        if state is self.state and state is not LinkState.CONNECTING:
            return
        self.state = state
        self._hub.bus.publish(MeterLinkChanged(self.meter_id, state, self._hub.clock(), detail))


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}" if not isinstance(err, NotReady) else text

