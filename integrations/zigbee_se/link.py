"""The link to the meter: connect, find the meter, bind, configure reporting, sync, then watch.

Each attempt joins the meter's network with the appliance's identity (install code) and
publishes every commissioning stage (``CommissioningStage``: joining, joined, authenticated, keys
established; refused or waiting for registration, retried after ``join_retry_s``); the session
publishes "configured" when the utility's configuration arrives. A meter other than the one named
(``meter_ieee``) is left at once, and so is one whose MeterSerialNumber is not the meter number the
customer gave (``meter_number``, else ``commissioning.meter_number``), before any of its data is
taken (C6 1.4: never a neighbour's meter).

The shared reconnect supervisor (``integrations.zigbee.supervisor``) keeps the link up. When
the radio connection drops or a step fails, the data is shown as offline, the outage is logged
once, and the link retries with exponential backoff capped at the registration retry interval
(I1NFR3, default 15 minutes), resuming without a restart. When the meter stops reporting for
``stale_after_s`` while the radio is up, the data is shown as stale until the next report.

Recovery does not wait out that backoff: while the supervisor waits, it asks the radio's cheap
probe (``probe.radio_probe``: the virtual HAN's or a network radio's TCP port accepts, a serial
radio's device node is back) every ``PROBE_INTERVAL_S``, and runs the full attempt as soon as it
answers, so the link is back within seconds of the meter answering, whatever the outage's length
(C6: 10 s meter to display). The backoff, the probes and the stale limit are all on the hub's
clock, so a test on a simulated or fixed clock lets hours of outage pass at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import zigpy.exceptions
import zigpy.zdo.types as zdo_t

from ems.errors import NotReady
from ems.model import CommissioningStage, CommissioningStep, LinkState, MeterLinkChanged
from integrations.zigbee.controller import RadioNotReady, start_radio, stop_controller
from integrations.zigbee.radio import join_refusal
from integrations.zigbee.se.clusters import Metering
from integrations.zigbee.supervisor import Backoff, ConnectionState, ReconnectSupervisor
from integrations.zigbee.trust_center import DEVELOPMENT_IEEE, DEVELOPMENT_INSTALL_CODE, JoinRefusal
from integrations.zigbee_se import MeterLinkSettings
from integrations.zigbee_se.frames import AwaitingReports, MeterSession, RetryTsns
from integrations.zigbee_se.probe import radio_probe
from integrations.zigbee_se.upstream import UpstreamSender

_LOGGER = logging.getLogger(__name__)

SE_PROFILE = 0x0109
DISCOVERY_TIMEOUT_S = 20.0
PROBE_INTERVAL_S = 2.0  # of the hub's clock: with the attempt after it, back well within 10 s
REQUEST_TIMEOUT_S = 8.0
METER_SERIAL_NUMBER = 0x0308  # Metering cluster, octet string of at most 24 bytes (SE 1.1)
LINK_ERRORS = (
    NotReady,
    ConnectionError,
    TimeoutError,
    OSError,
    zigpy.exceptions.ZigbeeException,
)
_LINK_STATES = {
    ConnectionState.CONNECTING: LinkState.CONNECTING,
    ConnectionState.ONLINE: LinkState.ONLINE,
    ConnectionState.OFFLINE: LinkState.OFFLINE,
}


class JoinNotAdmitted(NotReady):
    """The meter did not admit us (or is not the customer's); the next try is ``retry_after_s`` away."""

    def __init__(self, text: str, retry_after_s: float) -> None:
        super().__init__(text)
        self.retry_after_s = retry_after_s


class MeterLink:
    """Owns the radio and the meter session of one meter; the shared supervisor keeps it up.

    The ``ReconnectSupervisor`` (``integrations.zigbee.supervisor``) runs the loop: it calls
    ``connect``, ``watch`` and ``teardown`` below, and each change it reports becomes a
    ``MeterLinkChanged`` on the bus (connecting, online, offline); stale and "reports resumed"
    are this link's own, seen while it watches.
    """

    def __init__(self, hub: Any, settings: MeterLinkSettings) -> None:
        self._hub = hub
        self.settings = settings
        self.app: Any = None
        self.session: MeterSession | None = None
        self._awaiting_reports: AwaitingReports = {}  # outlives a session: see MeterSession
        self.state = LinkState.CONNECTING
        self.meter_id = settings.meter_id
        self._lost = asyncio.Event()
        self._retry_tsns = RetryTsns()  # outlives the sessions: a retry after a reconnect keeps its TSN
        self._upstream = UpstreamSender(hub, self)
        self._radio_probe = radio_probe(settings.radio)
        self._radio_down = True  # the radio's transport is (or was last seen) gone: the probe may cut a wait
        self.meter_number: str | None = None  # as the meter gave it at the last connect
        self._wrong_meter_logged: tuple[str, str] | None = None  # a wrong meter is logged once, not every retry
        self._supervisor = ReconnectSupervisor(
            self,
            name=f"[{self.meter_id}] Meter link",
            task_name="meter-link",
            backoff=Backoff(settings.first_retry_s, settings.registration_retry_interval_s),
            on_state=self._on_supervisor_state,
            logger=_LOGGER,
            expected=LINK_ERRORS,
            describe=_describe,
            connecting_detail="joining the HAN",
            spawn=hub.create_task,
            sleep=hub.clock.sleep,
            probe=self._probe if self._radio_probe is not None else None,
            probe_interval_s=PROBE_INTERVAL_S,
        )

    @property
    def attempts(self) -> int:
        """Connection attempts so far."""
        return self._supervisor.attempts

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._upstream.register()
        self._publish_state(LinkState.CONNECTING, "starting")
        self._supervisor.start()

    async def close(self) -> None:
        self._upstream.unregister()
        await self._supervisor.close()  # cancels until done, then tears down

    # -- what the supervisor drives --------------------------------------------------------

    async def connect(self) -> str:
        """Start the radio, find the meter, start the session; describe what is online."""
        self._lost.clear()
        self._radio_down = True
        self._stage(CommissioningStep.JOINING, "looking for the meter's network and asking to join it")
        try:
            self.app = await start_radio(self.settings.radio, self.settings.pcap, join=self._identity())
        except RadioNotReady as err:
            refusal = join_refusal(err)
            if refusal is None:
                raise
            self._radio_down = False  # the meter answered: the next try waits the join interval
            waiting = refusal.reason is JoinRefusal.NOT_REGISTERED
            self._stage(CommissioningStep.WAITING if waiting else CommissioningStep.REFUSED, refusal.text)
            raise JoinNotAdmitted(refusal.text, self.settings.join_retry_s) from err
        self._radio_down = False
        if hasattr(self.app, "on_connection_lost"):
            self.app.on_connection_lost(self._on_connection_lost)
        joined = getattr(self.app, "joined", None)
        if joined is not None:
            self._stage(CommissioningStep.JOINED, "joined the meter's network")
            named = self.settings.meter_ieee
            if named is not None and str(joined.trust_center) != named:
                text = (f"the meter that answered ({joined.trust_center}) is not yours ({named}): this appliance"
                        " only joins the meter named in its settings")
                self._stage(CommissioningStep.WRONG_METER, text)
                raise JoinNotAdmitted(text, self.settings.join_retry_s)
            self._stage(CommissioningStep.AUTHENTICATED,
                        "the meter accepted this appliance's install code and gave it the network key")
            # The trust-center link key from the install code protects the SE frames from here on (SE
            # 1.x §5.4.6); an application link key by CBKE (§5.4.7) is not simulated.
            self._stage(CommissioningStep.KEYS_ESTABLISHED,
                        "the meter and this appliance now protect their messages with this appliance's own key")
        device, endpoint_id = await self._find_meter()
        await self._check_meter_number(device.endpoints[endpoint_id])
        self.session = MeterSession(self._hub, self.app, device, endpoint_id, self.meter_id, self._retry_tsns,
                                    awaiting_reports=self._awaiting_reports)
        await self.session.start(self.settings.report_interval_s)
        return f"meter {device.ieee} endpoint {endpoint_id}"

    def _identity(self) -> dict[str, str]:
        """Who we are to the meter: the configured identity, else the appliance's, else the development one."""
        configured = self.settings.identity
        if isinstance(configured, dict):
            return dict(configured)
        identity = getattr(self._hub, "identity", None)
        if configured == "development" or identity is None:
            return {"ieee": DEVELOPMENT_IEEE, "install_code": DEVELOPMENT_INSTALL_CODE.hex(),
                    "device_type": "energy_management_system"}
        return {"ieee": identity.ieee, "install_code": identity.install_code.hex(),
                "device_type": identity.device_type.lower().replace(" ", "_")}

    def _stage(self, stage: CommissioningStep, detail: str) -> None:
        self._hub.bus.publish(CommissioningStage(self.meter_id, stage, self._hub.clock(), detail))

    def _on_supervisor_state(self, state: ConnectionState, detail: str) -> None:
        self._publish_state(_LINK_STATES[state], detail)

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

    def _named_number(self) -> str | None:
        """The meter number the customer gave: this meter's own setting, else the Commissioning one."""
        if self.settings.meter_number is not None:
            return self.settings.meter_number
        commissioning = getattr(getattr(self._hub, "config", None), "commissioning", None)
        return getattr(commissioning, "meter_number", None)

    async def _check_meter_number(self, endpoint: Any) -> None:
        """Read the meter's MeterSerialNumber (Metering 0x0308) and take no data from another meter.

        C6 1.4: the customer names the number printed on their meter (the utility has it too); a
        meter that answers with another number is a neighbour's, left before anything it sends is
        read (``JoinNotAdmitted``: retried at the join interval, in case the customer fixes a typo).
        A meter that does not serve the attribute (it is optional, SE 1.1) cannot be checked: the
        stage says so, and the EUI-64 (``meter_ieee``) is then the customer's check.
        """
        named = self._named_number()
        success, failure = await asyncio.wait_for(
            endpoint.in_clusters[Metering.cluster_id].read_attributes([METER_SERIAL_NUMBER], allow_cache=False),
            REQUEST_TIMEOUT_S,
        )
        raw = success.get(METER_SERIAL_NUMBER)
        number = meter_number_text(raw) if raw is not None else None
        self.meter_number = number
        if number is None:
            status = failure.get(METER_SERIAL_NUMBER)
            _LOGGER.info("[%s] The meter does not give its number (status %s)", self.meter_id, status)
            text = ("the meter does not give its number, so this appliance cannot check it is yours: compare the"
                    " number on the meter with the one on your bill")
        elif named is None:
            text = (f"this meter's number is {number}: add your meter number (printed on the meter) to the"
                    " configuration (commissioning: meter_number in ems.yaml) so that this appliance only ever"
                    " takes data from your own meter")
        elif same_meter_number(number, named):
            text = f"the meter's number is {number}, the one you gave"
        else:
            text = (f"the meter that answered has number {number}, not {named}, the number you gave: it is not"
                    " your meter, so this appliance takes no data from it. Check the number printed on your"
                    " meter against the one in the configuration (meter_number in ems.yaml); if they match,"
                    " ask your utility which meter this appliance was registered with")
            self._log_wrong_meter(number, named)
            self._stage(CommissioningStep.WRONG_METER, text)
            raise JoinNotAdmitted(text, self.settings.join_retry_s)
        self._stage(CommissioningStep.METER_CHECKED, text)

    def _log_wrong_meter(self, number: str, named: str) -> None:
        if (number, named) != self._wrong_meter_logged:
            self._wrong_meter_logged = (number, named)
            _LOGGER.warning("[%s] The meter that answered has number %s, not the customer's %s: left, no data taken",
                            self.meter_id, number, named)

    async def _match_metering(self, device: Any) -> int | None:
        status, _nwk, endpoints = await asyncio.wait_for(
            device.zdo.Match_Desc_req(device.nwk, SE_PROFILE, [Metering.cluster_id], []),
            REQUEST_TIMEOUT_S,
        )
        if status != zdo_t.Status.SUCCESS or not endpoints:
            return None
        return int(endpoints[0])

    async def watch(self) -> None:
        """Run until the radio connection is lost; mark the data stale between reports.

        The data is stale exactly ``stale_after_s`` (of the hub's clock) after the last frame: the
        watch sleeps on the hub's clock until that instant rather than polling, so a frozen meter
        (connection open, no answers) never shows its last demand as current past the limit.
        A frame after a silence ends the stale state at once (the session's ``heard`` event).
        Between those moments it sleeps: nothing wakes it at rest but the stale instant, which a
        meter reporting on time keeps pushing later (once per ``stale_after_s`` at most).
        """
        session = self.session
        assert session is not None
        clock = self._hub.clock
        stale_after = timedelta(seconds=self.settings.stale_after_s)
        while not self._lost.is_set():
            session.heard.clear()
            last = session.last_frame_at
            now = clock()
            silent = last is None or now - last >= stale_after
            if silent and self.state is LinkState.ONLINE:
                self._publish_state(LinkState.STALE, f"no report for over {self.settings.stale_after_s:g} s")
            elif not silent and self.state is LinkState.STALE:
                self._publish_state(LinkState.ONLINE, "reports resumed")
            waits = [asyncio.ensure_future(self._lost.wait())]
            if silent:
                waits.append(asyncio.ensure_future(session.heard.wait()))
            else:
                assert last is not None
                waits.append(asyncio.ensure_future(clock.sleep((last + stale_after - now).total_seconds())))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
                await asyncio.gather(*waits, return_exceptions=True)

    def _on_connection_lost(self, exc: Exception | None = None) -> None:
        self._radio_down = True
        self._lost.set()

    async def _probe(self) -> bool:
        """Whether the radio is back, asked only after the radio itself was gone: a link that failed
        further on (the meter did not answer discovery) keeps its backoff (I1NFR3), since a radio
        that is there says nothing about the meter."""
        assert self._radio_probe is not None
        return self._radio_down and await self._radio_probe()

    async def teardown(self) -> None:
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


def meter_number_text(raw: Any) -> str | None:
    """The MeterSerialNumber octet string as text (ASCII as meters write it; hex when it is not)."""
    data = bytes(raw)
    text = data.rstrip(b"\x00 ").decode("ascii", errors="replace")
    if not text:
        return None
    return text if text.isprintable() and "\ufffd" not in text else data.hex().upper()


def same_meter_number(given: str, named: str) -> bool:
    """Whether two meter numbers are one, as people write them: spaces, dashes, dots, case and
    leading zeros aside (the label may read "0055 5123-45" where the meter serves "55512345")."""

    def canonical(number: str) -> str:
        return "".join(ch for ch in number if ch.isalnum()).upper().lstrip("0")

    return canonical(given) == canonical(named)


def _describe(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return f"{type(err).__name__}: {text}" if not isinstance(err, NotReady) else text

