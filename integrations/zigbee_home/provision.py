"""The home network's side of provisioning (``ems.provisioning.ProvisioningPort``).

Joining with a countdown and install codes, what each device can do (read from its clusters),
program parameters sent and acknowledged, the test tool (link quality, a round trip, packet
counters, a scan) and the clock: the EMS serves the Time cluster to the home's devices with the
hub's time, which follows the meter's (SE §7.2, UC134 I1FR26). Every step goes to the
provisioning log when the hub has one.

What the virtual radio can honestly report: the network's own channel and PAN, LQI 255 and
RSSI -40 dBm on every frame (it has no air), no energy scan of other channels, and it admits a
device given an install code like any other (zigpy's ``permit_with_link_key``; the virtual HAN
does not check the key). Install codes are checked here for their CRC (ZigBee SE §5.4.8.1.1),
so a mistyped code is refused before joining opens.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import zigpy.exceptions
import zigpy.types as t
import zigpy.util
from zigpy.time import TimeSnapshot
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Basic, OnOff, PowerConfiguration, Time, TimeStatus
from zigpy.zcl.clusters.hvac import Thermostat
from zigpy.zcl.clusters.security import IasZone

from ems.errors import NotReady, RejectedCommand
from ems.provisioning import (
    GUIDANCE,
    MAX_PERMIT_S,
    Acknowledgement,
    FoundDevice,
    JoinWindow,
    LinkTest,
    NetworkScan,
    ProgramParameters,
)
from integrations.zigbee.controller import permit_join
from integrations.zigbee.se.clusters import Drlc, Metering, Price

_LOGGER = logging.getLogger(__name__)

TIME = Time.cluster_id
TEST_ATTEMPTS = 3
SCAN_TIMEOUT_S = 3.0
UTC_2000 = datetime(2000, 1, 1, tzinfo=UTC)


def capabilities(endpoints: Any) -> tuple[str, ...]:
    """What a device can do, from its endpoints' clusters (servers in, clients out)."""
    have: list[str] = []
    for endpoint_id, endpoint in endpoints.items():
        if endpoint_id == 0 or not hasattr(endpoint, "in_clusters"):
            continue
        servers, clients = set(endpoint.in_clusters), set(endpoint.out_clusters)
        for name, present in (
            ("load_control", Drlc.cluster_id in clients),
            ("price_aware", Price.cluster_id in clients),
            ("thermostat", Thermostat.cluster_id in servers),
            ("metering", Metering.cluster_id in servers or 0x0B04 in servers),
            ("battery", PowerConfiguration.cluster_id in servers and (Metering.cluster_id in servers
                                                                      or 0x0B04 in servers)),
            ("switch", OnOff.cluster_id in servers),
            ("time", TIME in clients),
            ("sensor", IasZone.cluster_id in servers),
        ):
            if present and name not in have:
                have.append(name)
    return tuple(have)


def install_code_key(code: str) -> t.KeyData:
    """The link key of an install code as printed (hex, spaces or dashes allowed); RejectedCommand if it is wrong."""
    text = "".join(c for c in code if c not in " -:").strip()
    try:
        raw = bytes.fromhex(text)
        return zigpy.util.convert_install_code(raw)
    except ValueError as err:
        raise RejectedCommand(GUIDANCE["wrong_install_code"]) from err


def device_ieee(text: str) -> t.EUI64:
    """A device ID as printed (``00:0d:6f:...``, dashes or none); RejectedCommand if it is not one."""
    digits = "".join(c for c in str(text) if c not in " :-").lower()
    if len(digits) != 16 or any(c not in "0123456789abcdef" for c in digits):
        raise RejectedCommand(f"{text!r} is not a device ID (16 hexadecimal digits, such as 00:0d:6f:00:0a:90:69:e7)")
    return t.EUI64.convert(":".join(digits[i:i + 2] for i in range(0, 16, 2)))


class HomeTime(Time):
    """The Time server the EMS is to its home's devices: the hub's time, which follows the meter's."""

    _skip_registry: Final = True  # installed on the coordinator's endpoint only, not in zigpy's registry
    clock: Any = None  # set per instance: () -> aware datetime
    synchronized: Any = None  # () -> bool: the time came from the meter
    on_served: Any = None  # (cluster, time) -> None

    def _handle_read_attributes(self, attribute_ids: list[int], *handler_args: Any) -> Any:
        now = self.clock() if self.clock is not None else datetime.now(UTC)
        snapshot = TimeSnapshot.compute(UTC, now)
        records = super(Time, self)._handle_read_attributes(attribute_ids, snapshot, *handler_args)
        if self.on_served is not None and 0x0000 in [int(a) for a in attribute_ids]:
            self.on_served(self, now)
        return records

    def handle_read_attribute_time_status(self, snapshot: TimeSnapshot) -> TimeStatus:
        status = TimeStatus.Master
        if self.synchronized is not None and self.synchronized():
            status |= TimeStatus.Synchronized
        return status


class _Counters:
    __slots__ = ("sent", "received", "retries", "failures")

    def __init__(self) -> None:
        self.sent = self.received = self.retries = self.failures = 0


class HomeProvisioner:
    """Provisioning on the home network: owned by ``HomeNetwork``, offered to ``hub.provisioning``."""

    def __init__(self, hub: Any, network: Any) -> None:
        self._hub = hub
        self._network = network
        self._until: datetime | None = None
        self._codes: dict[str, str] = {}  # IEEE -> the install code given (kept to say "install code")
        self._admitted_by_code: set[str] = set()
        self._joined_at: dict[str, datetime] = {}
        self._device_time: dict[str, datetime] = {}
        self._counters: dict[str, _Counters] = collections.defaultdict(_Counters)
        self._window_task: asyncio.Task[Any] | None = None
        self._discovered: set[str] = set()

    # -- the log ---------------------------------------------------------------------------

    def log(self, device_id: str, stage: str, message: str, result: str, detail: str = "") -> None:
        provisioning = getattr(self._hub, "provisioning", None)
        if provisioning is not None:
            provisioning.log(device_id, stage, message, result, detail)

    # -- the radio -------------------------------------------------------------------------

    def on_app(self, app: Any) -> None:
        """A controller started: count every frame sent through it, per destination."""
        send = app.send_packet

        async def counted(packet: Any) -> None:
            counters = self._counters_for_nwk(app, packet)
            if counters is not None:
                counters.sent += 1
            try:
                await send(packet)
            except zigpy.exceptions.DeliveryError:
                if counters is not None:
                    counters.failures += 1
                raise

        app.send_packet = counted

    def _counters_for_nwk(self, app: Any, packet: Any) -> _Counters | None:
        dst = getattr(packet, "dst", None)
        if dst is None or dst.addr_mode != t.AddrMode.NWK:
            return None
        try:
            device = app.get_device(nwk=dst.address)
        except KeyError:
            return None
        return self._counters[str(device.ieee)]

    def heard(self, zdevice: Any) -> None:
        self._counters[str(zdevice.ieee)].received += 1

    # -- joining ---------------------------------------------------------------------------

    def join_window(self) -> JoinWindow:
        until = self._until
        if until is not None and until <= self._hub.clock():
            until = None
        return JoinWindow(until, tuple(sorted(self._codes)) if until else ())

    async def permit(self, duration_s: int, install_codes: dict[str, str]) -> JoinWindow:
        app = self._network.app
        if app is None:
            raise NotReady("the home network is not up")
        duration_s = max(0, min(MAX_PERMIT_S, int(duration_s)))
        keys = {}
        for ieee, code in install_codes.items():
            node = device_ieee(ieee)
            try:
                keys[node] = install_code_key(code)
            except RejectedCommand:
                self.log(str(node), "joining", "install code", "failed", GUIDANCE["wrong_install_code"])
                raise
        for node, key in keys.items():
            await app.permit_with_link_key(node=node, link_key=key, time_s=duration_s)
            self._codes[str(node)] = "given"
            self.log(str(node), "joining", "install code", "ok",
                     "install code accepted (its check value is right); the device may join with it")
        await permit_join(app, duration_s)
        now = self._hub.clock()
        self._until = now + timedelta(seconds=duration_s) if duration_s else None
        self.log("", "joining", "Mgmt_Permit_Joining_req", "ok",
                 f"joining open for {duration_s} s" if duration_s else "joining closed")
        if self._window_task is not None:
            self._window_task.cancel()
        if duration_s:
            self._window_task = self._hub.create_task(self._window_ends(duration_s, list(keys)), "home-permit-window")
        return self.join_window()

    async def _window_ends(self, duration_s: int, expected: list[Any]) -> None:
        await asyncio.sleep(duration_s)
        self.log("", "joining", "Mgmt_Permit_Joining_req", "info", "joining closed (the countdown ended)")
        for node in expected:
            if str(node) not in self._joined_at:
                self.log(str(node), "joining", "Device_annce", "failed",
                         "this device did not join while joining was open. " + GUIDANCE["not_joining"])

    def joined(self, zdevice: Any) -> None:
        device_id = str(zdevice.ieee)
        self._joined_at[device_id] = self._hub.clock()
        if device_id in self._codes:
            self._admitted_by_code.add(device_id)
        self.log(device_id, "joined", "Device_annce", "ok", f"joined with address 0x{int(zdevice.nwk):04X}")

    def initialized(self, zdevice: Any) -> None:
        """zigpy read the device's descriptors: say what it is, and serve it the time."""
        device_id = str(zdevice.ieee)
        self._joined_at.setdefault(device_id, self._hub.clock())
        self._serve_time(zdevice)
        if device_id in self._discovered:
            return
        self._discovered.add(device_id)
        can = capabilities(zdevice.endpoints)
        self.log(device_id, "discovered", "Simple_Desc_rsp", "ok",
                 f"{zdevice.manufacturer or 'unknown maker'} {zdevice.model or 'device'}: "
                 + (", ".join(c.replace("_", " ") for c in can) or "no feature the appliance uses"))

    # -- the clock -------------------------------------------------------------------------

    def _serve_time(self, zdevice: Any) -> None:
        for endpoint_id, endpoint in zdevice.endpoints.items():
            if endpoint_id == 0 or not hasattr(endpoint, "out_clusters") or TIME not in endpoint.out_clusters:
                continue
            cluster = endpoint.out_clusters[TIME]
            if not isinstance(cluster, HomeTime):
                cluster = HomeTime(endpoint, is_server=False)
                endpoint.add_output_cluster(TIME, cluster)
            cluster.clock = self._hub.clock
            cluster.synchronized = self._synchronized
            cluster.on_served = self._time_served

    def _synchronized(self) -> bool:
        state = getattr(self._hub, "state", None)
        meters = getattr(state, "meters", {}) if state is not None else {}
        return any(getattr(m, "meter_time", None) is not None for m in meters.values())

    def _time_served(self, cluster: Any, now: datetime) -> None:
        device_id = str(cluster.endpoint.device.ieee)
        first = device_id not in self._device_time
        self._device_time[device_id] = now
        if first:
            source = "the meter's time" if self._synchronized() else "the appliance's clock (no meter time yet)"
            self.log(device_id, "clock", "Read Attributes rsp (Time)", "ok",
                     f"set the device's clock to {now.isoformat(timespec='seconds')} ({source})")

    # -- what was found --------------------------------------------------------------------

    def _zdevices(self) -> list[Any]:
        app = self._network.app
        if app is None:
            return []
        own = app.state.node_info.nwk
        return [d for d in app.devices.values() if d.nwk != own and d.is_initialized]

    def found(self) -> list[FoundDevice]:
        result = []
        for zdevice in self._zdevices():
            device_id = str(zdevice.ieee)
            home = self._network.devices.get(device_id)
            result.append(FoundDevice(
                device_id=device_id,
                address=f"0x{int(zdevice.nwk):04X}",
                manufacturer=str(zdevice.manufacturer or ""),
                model=str(zdevice.model or ""),
                capabilities=capabilities(zdevice.endpoints),
                credentials="install_code" if device_id in self._admitted_by_code else "network_key",
                joined_at=self._joined_at.get(device_id),
                device_time=self._device_time.get(device_id),
                answering=home.available is not False if home is not None else True,
                name=home.config.name or "" if home is not None else "",
            ))
        return sorted(result, key=lambda d: d.device_id)

    def _zdevice(self, device_id: str) -> Any:
        for zdevice in self._zdevices():
            if str(zdevice.ieee) == device_id:
                return zdevice
        return None

    # -- program parameters ----------------------------------------------------------------

    async def send_program(self, device_id: str, parameters: ProgramParameters) -> Acknowledgement:
        zdevice = self._zdevice(device_id)
        if zdevice is None:
            self.log(device_id, "provisioning", "-", "failed", GUIDANCE["not_joining"])
            return Acknowledgement(False, "not_answering", GUIDANCE["not_joining"])
        timeout_s = self._network.settings.command_timeout_s
        can = capabilities(zdevice.endpoints)
        try:
            async with asyncio.timeout(timeout_s * 4):
                if "load_control" in parameters.programs:
                    if "load_control" in can:
                        await self._send_drlc(zdevice, device_id, parameters)
                    else:  # switched by the appliance itself: its answer says it is there
                        await self._round_trip(zdevice)
                        self.log(device_id, "provisioning", "Read Attributes (Basic)", "ok",
                                 "switched by the appliance during events (enrollment group "
                                 f"{parameters.enrollment_group}); it answered")
                if "pricing" in parameters.programs:
                    await self._send_prices(zdevice, device_id, parameters)
        except (TimeoutError, zigpy.exceptions.DeliveryError) as err:
            self.log(device_id, "provisioning", "-", "failed", f"no answer ({type(err).__name__}). "
                     + GUIDANCE["out_of_range"])
            return Acknowledgement(False, "not_answering", GUIDANCE["out_of_range"])
        except RejectedCommand as err:
            return Acknowledgement(False, "refused", str(err))
        return Acknowledgement(True, "ready", "acknowledged; ready for " +
                               " and ".join(p.replace("_", " ") for p in parameters.programs))

    async def _send_drlc(self, zdevice: Any, device_id: str, parameters: ProgramParameters) -> None:
        cluster = _client(zdevice, Drlc.cluster_id)
        values = {"utility_enrollment_group": parameters.enrollment_group}
        self.log(device_id, "provisioning", "Write Attributes (DRLC)", "waiting",
                 f"enrollment group {parameters.enrollment_group}")
        result = await cluster.write_attributes(values)
        failed = [r for r in _records(result) if getattr(r, "status", foundation.Status.SUCCESS)
                  != foundation.Status.SUCCESS]
        if failed:
            status = foundation.Status(failed[0].status).name
            self.log(device_id, "provisioning", "Write Attributes rsp (DRLC)", "failed",
                     f"the device refused its enrollment group ({status}). " + GUIDANCE["refused"])
            raise RejectedCommand(GUIDANCE["refused"])
        success, _failure = await cluster.read_attributes(["utility_enrollment_group", "device_class_value"],
                                                          allow_cache=False)
        got = success.get("utility_enrollment_group")
        device_class = success.get("device_class_value")
        ok = got is not None and int(got) == parameters.enrollment_group
        self.log(device_id, "provisioning", "Read Attributes rsp (DRLC)", "ok" if ok else "failed",
                 f"enrollment group {got}, device class 0x{int(device_class or 0):04X}" if ok else
                 "the device did not keep its enrollment group. " + GUIDANCE["refused"])
        if not ok:
            raise RejectedCommand(GUIDANCE["refused"])

    async def _send_prices(self, zdevice: Any, device_id: str, parameters: ProgramParameters) -> None:
        cluster = _client(zdevice, Price.cluster_id)
        if not parameters.tiers:
            self.log(device_id, "provisioning", "Publish Price", "info",
                     "no price from the utility yet: the device gets each price as it comes")
            return
        command = Price.ClientCommandDefs.publish_price
        now = self._hub.clock()
        for tier in parameters.tiers:
            fields = _publish_price_fields(command, tier, now, len(parameters.tiers))
            result = await cluster.request(False, command.id, command.schema, expect_reply=True,
                                          disable_default_response=False, **fields)  # its answer is the ack
            status = getattr(result, "status", foundation.Status.SUCCESS)
            ok = status == foundation.Status.SUCCESS
            self.log(device_id, "provisioning", "Publish Price", "ok" if ok else "failed",
                     f"tier {tier.tier} '{tier.label}' at {tier.price_per_kwh:g} {tier.currency}/kWh"
                     + ("" if ok else f": refused ({foundation.Status(status).name})"))
            if not ok:
                raise RejectedCommand(GUIDANCE["refused"])

    # -- the test tool ---------------------------------------------------------------------

    async def _round_trip(self, zdevice: Any) -> float:
        cluster = _server(zdevice, Basic.cluster_id)
        started = time.perf_counter()
        async with asyncio.timeout(self._network.settings.command_timeout_s):
            await cluster.read_attributes(["zcl_version"], allow_cache=False)
        return (time.perf_counter() - started) * 1000

    async def test(self, device_id: str) -> LinkTest:
        zdevice = self._zdevice(device_id)
        counters = self._counters[device_id]
        if zdevice is None:
            self.log(device_id, "test", "-", "failed", GUIDANCE["not_joining"])
            return LinkTest(device_id, False, None, None, None, counters.sent, counters.received,
                            counters.retries, counters.failures, "not_joining", GUIDANCE["not_joining"])
        round_trip_ms = None
        last_error: Exception | None = None
        for attempt in range(TEST_ATTEMPTS):
            if attempt:
                counters.retries += 1
            try:
                round_trip_ms = await self._round_trip(zdevice)
                break
            except (TimeoutError, zigpy.exceptions.ZigbeeException) as err:
                last_error = err
        lqi, rssi = zdevice.lqi, zdevice.rssi
        if round_trip_ms is None:
            counters.failures += 1
            detail = f"no answer to {TEST_ATTEMPTS} tries ({type(last_error).__name__}). " + GUIDANCE["out_of_range"]
            self.log(device_id, "test", "Read Attributes (Basic)", "failed", detail)
            return LinkTest(device_id, False, lqi, rssi, None, counters.sent, counters.received, counters.retries,
                            counters.failures, "out_of_range", detail)
        detail = f"answered in {round_trip_ms:.0f} ms; link quality {lqi}, signal {rssi} dBm"
        self.log(device_id, "test", "Read Attributes (Basic)", "ok", detail)
        return LinkTest(device_id, True, lqi, rssi, round(round_trip_ms, 1), counters.sent, counters.received,
                        counters.retries, counters.failures, None, detail)

    async def scan(self) -> NetworkScan:
        app = self._network.app
        if app is None:
            raise NotReady("the home network is not up")
        info = app.state.network_info
        energy: dict[int, float] = {}
        note = ""
        cannot = "this radio cannot measure the other channels; only its own network is shown"
        if self._network.settings.radio.get("type") == "virtual":
            note = cannot  # it has no air: any energy it gave would be made up
        else:
            try:
                async with asyncio.timeout(SCAN_TIMEOUT_S):
                    energy = {int(k): float(v)
                              for k, v in (await app.energy_scan(t.Channels.ALL_CHANNELS, 2, 1)).items()}
            except Exception as err:  # noqa: BLE001 - a radio that cannot scan says so; the rest is still known
                note = cannot
                _LOGGER.debug("Energy scan not available: %s", err)
        scan = NetworkScan(
            channel=int(info.channel) if info.channel is not None else None,
            pan_id=f"0x{int(info.pan_id):04X}",
            extended_pan_id=str(info.extended_pan_id),
            permit_joining=self.join_window().until is not None,
            devices=len(self._zdevices()),
            energy_by_channel=energy,
            note=note,
        )
        self.log("", "scan", "Mgmt_NWK_Update_req", "ok" if energy else "info",
                 f"home network on channel {scan.channel}, PAN {scan.pan_id}, {scan.devices} device(s)"
                 + (f"; {note}" if note else ""))
        return scan

    def totals(self) -> dict[str, int]:
        total = {"sent": 0, "received": 0, "retries": 0, "failures": 0}
        for counters in self._counters.values():
            for key in total:
                total[key] += getattr(counters, key)
        return total

    def counters(self, device_id: str) -> dict[str, int]:
        c = self._counters[device_id]
        return {"sent": c.sent, "received": c.received, "retries": c.retries, "failures": c.failures}

    async def close(self) -> None:
        if self._window_task is not None:
            self._window_task.cancel()
            await asyncio.gather(self._window_task, return_exceptions=True)
            self._window_task = None


def _client(zdevice: Any, cluster_id: int) -> Any:
    for endpoint_id, endpoint in zdevice.endpoints.items():
        if endpoint_id and hasattr(endpoint, "out_clusters") and cluster_id in endpoint.out_clusters:
            return endpoint.out_clusters[cluster_id]
    raise RejectedCommand(GUIDANCE["not_compatible"])


def _server(zdevice: Any, cluster_id: int) -> Any:
    for endpoint_id, endpoint in zdevice.endpoints.items():
        if endpoint_id and hasattr(endpoint, "in_clusters") and cluster_id in endpoint.in_clusters:
            return endpoint.in_clusters[cluster_id]
    raise RejectedCommand(GUIDANCE["not_compatible"])


def _records(result: Any) -> list[Any]:
    if isinstance(result, list | tuple):
        return [item for part in result for item in _records(part)]
    return [result]


def _publish_price_fields(command: Any, tier: Any, now: datetime, tiers: int) -> dict[str, Any]:
    """A PublishPrice for one tier (SE §D.4.2.4.1), price in thousandths of the currency."""
    utc = max(0, int((now - UTC_2000).total_seconds()))
    return {
        "provider_id": 0, "rate_label": tier.label.encode()[:12], "issuer_event_id": utc & 0xFFFFFFFF, "current_time": utc,
        "unit_of_measure": 0, "currency": 840 if tier.currency.upper() == "USD" else 978,
        "price_trailing_digit_and_price_tier": (3 << 4) | (tier.tier & 0x0F),
        "number_of_price_tiers_and_register_tier": ((tiers & 0x0F) << 4) | (tier.tier & 0x0F),
        "start_time": 0, "duration_in_minutes": 0xFFFF, "price": round(tier.price_per_kwh * 1000),
        "price_ratio": 0xFF, "generation_price": 0xFFFFFFFF, "generation_price_ratio": 0xFF,
        "alternate_cost_delivered": 0xFFFFFFFF, "alternate_cost_unit": 0xFF,
        "alternate_cost_trailing_digit": 0xFF, "number_of_block_thresholds": 0xFF, "price_control": 0,
    }
