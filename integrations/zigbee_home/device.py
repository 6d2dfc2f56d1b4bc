"""One home device on the EMS's network: set up, heard, and commanded.

Setup reads what the device's kind needs (setpoint limits, power scales, its DRLC client's
device class), publishes a ``DeviceInfo``, binds and configures reporting (``catalog.REPORTS``)
and reads the current values. Every report or read response it sends becomes a
``DeviceReading`` carrying only what that frame said. A command that the device does not
answer within ``command_timeout_s`` raises ``DeviceError`` and marks it unavailable; any frame
from it marks it available again (each change published once).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import zigpy.exceptions
import zigpy.zcl
from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Basic, OnOff
from zigpy.zcl.clusters.hvac import Thermostat
from zigpy.zcl.helpers import ReportingConfig

from ems.errors import DeviceError
from ems.model import (
    DeviceAvailability,
    DeviceClass,
    DeviceInfo,
    DeviceKind,
    DeviceReading,
    LoadControlEvent,
)
from integrations.zigbee.attributes import lookup_cluster
from integrations.zigbee.se.clusters import Drlc, install
from integrations.zigbee.se.clusters.drlc import event_control
from integrations.zigbee_home import DeviceSettings, HomeSettings
from integrations.zigbee_home.catalog import (
    DRLC,
    DRLC_CLIENT_READS,
    ELECTRICAL,
    METERING,
    ON_OFF,
    REPORTS,
    SETUP_READS,
    THERMOSTAT,
    VALUE_READS,
    Layout,
    PowerScale,
    centi_c,
    reading_fields,
)
from integrations.zigbee_home.groups import GROUPS, join_shed_group, shed_group

_LOGGER = logging.getLogger(__name__)

LABELS = {"thermostat": "Thermostat", "switch": "Plug", "load_controller": "Load controller",
          "battery": "Battery"}
DEFAULT_CLASSES = {"thermostat": DeviceClass.HVAC, "switch": DeviceClass.SIMPLE_LOAD,
                   "load_controller": DeviceClass.SMART_APPLIANCE, "battery": DeviceClass.GENERATION}
UNANSWERED = (TimeoutError, zigpy.exceptions.DeliveryError)
LEARN_STEP_KW = 0.05  # a learnt nominal power is republished when it grows by this much
UTC_2000 = datetime(2000, 1, 1, tzinfo=UTC)
STATUS = Drlc.EventStatus
RELAY_OK = {STATUS.Load_Control_Event_Command_Received, STATUS.Event_Started}
CANCEL_OK = {STATUS.Event_Cancelled, STATUS.Event_Completed,
             STATUS.Rejected_Invalid_Cancel_Command_Undefined_Event, STATUS.Event_Not_Found}


@dataclass(frozen=True, slots=True)
class SetpointLimits:
    """The thermostat's own limits (ZCL §6.3.2.2.2: Min/Max Cool/Heat SetpointLimit, deadband)."""

    min_cool_c: float = 16.0
    max_cool_c: float = 32.0
    min_heat_c: float = 7.0
    max_heat_c: float = 30.0
    deadband_c: float = 2.5


class HomeDevice:
    """The EMS's side of one device: its description, its last values, its commands."""

    def __init__(self, hub: Any, settings: HomeSettings, device_id: str, layout: Layout) -> None:
        self._hub = hub
        self._settings = settings
        self.device_id = device_id
        self.config: DeviceSettings = settings.device(device_id)
        self.layout = layout
        self.zdevice: Any = None
        self.info: DeviceInfo | None = None
        self.scales: dict[int, PowerScale] = {}
        self.limits: SetpointLimits | None = None
        self.drlc_class: int | None = None
        self.drlc_group: int | None = None
        self.last: dict[str, Any] = {}
        self.last_active_mode = Thermostat.SystemMode.Cool  # what "switch on" restores
        self.learnt_kw: float | None = None
        self.available: bool | None = None  # None until said
        self.described = False  # its DeviceInfo is out: readings and availability may follow
        self.ready = False  # set up completely: commands may be sent
        self.last_heard = time.monotonic()
        self.event_statuses: dict[int, int] = {}  # issuer event id -> the device's last EventStatus
        self.connected = False  # set by the network while its radio is up
        # The groups it said it is in at this session's set-up (shed groups: groups.py); None until then.
        self.groups: frozenset[int] | None = None
        self._on_waiters: list[tuple[bool, asyncio.Future[None]]] = []

    # -- naming ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        if self.info is not None:
            return self.info.name
        return self.config.name or (self.zdevice.model if self.zdevice is not None else None) or self.device_id

    @property
    def label(self) -> str:
        return f"{LABELS[self.layout.kind]} '{self.name}'"

    # -- setup -----------------------------------------------------------------------------

    async def setup(self, zdevice: Any, layout: Layout) -> None:
        """Read limits and scales, describe the device, set up reporting, read its values."""
        self.zdevice, self.layout, self.ready = zdevice, layout, False
        install(zdevice)  # its DRLC client and Metering are the SE library's classes (quirks v2 style)
        for cluster_id, names in SETUP_READS.items():
            if layout.endpoint_of(cluster_id) is not None:
                self._take_setup_values(cluster_id, await self._read(cluster_id, names))
        if layout.drlc_endpoint is not None:
            values = await self._read(DRLC, DRLC_CLIENT_READS, client=True)
            self.drlc_class = _int_or_none(values.get("device_class_value"))
            self.drlc_group = _int_or_none(values.get("utility_enrollment_group"))
        self.info = self._describe()
        self._hub.bus.publish(self.info)
        self.described = True
        self.heard()
        await self._configure_reporting()
        await self._join_shed_group()
        for cluster_id, names in VALUE_READS.items():
            if layout.endpoint_of(cluster_id) is not None:
                await self._read(cluster_id, names)  # the responses become readings
        self.ready = True
        _LOGGER.info("[%s] %s set up (%s)", self.device_id, self.label, self.info.device_class.name)

    @property
    def groupable(self) -> bool:
        """A switch whose On/Off endpoint has a Groups server: it may be in a shed group."""
        endpoint_id = self.layout.endpoint_of(ON_OFF)
        return (self.layout.kind == "switch" and endpoint_id is not None
                and self.layout.endpoint_of(GROUPS) == endpoint_id)

    async def _join_shed_group(self) -> None:
        """A switch whose On/Off endpoint has a Groups server joins its class's shed group."""
        endpoint_id = self.layout.endpoint_of(ON_OFF)
        if not self.groupable or endpoint_id is None or self.info is None:
            self.groups = frozenset()
            return
        endpoint = self._reachable().endpoints[endpoint_id]
        self.groups = await join_shed_group(self, endpoint, shed_group(self.info.device_class), self._bounded)

    @property
    def command_timeout_s(self) -> float:
        return self._settings.command_timeout_s

    def expect_on(self, on: bool) -> asyncio.Future[None]:
        """A future done when the device next reports its switch ``on`` (a groupcast's confirmation)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._on_waiters.append((on, future))
        future.add_done_callback(self._forget_waiter)
        return future

    def _forget_waiter(self, future: asyncio.Future[None]) -> None:
        self._on_waiters = [(on, f) for on, f in self._on_waiters if f is not future]

    def _take_setup_values(self, cluster_id: int, values: dict[str, Any]) -> None:
        if cluster_id == THERMOSTAT:
            default = SetpointLimits()

            def degrees(name: str, fallback: float) -> float:
                raw = values.get(name)
                return fallback if raw is None or int(raw) == -0x8000 else int(raw) / 100

            band = values.get("min_setpoint_dead_band")
            self.limits = SetpointLimits(
                min_cool_c=degrees("min_cool_setpoint_limit", default.min_cool_c),
                max_cool_c=degrees("max_cool_setpoint_limit", default.max_cool_c),
                min_heat_c=degrees("min_heat_setpoint_limit", default.min_heat_c),
                max_heat_c=degrees("max_heat_setpoint_limit", default.max_heat_c),
                deadband_c=default.deadband_c if band is None else int(band) / 10,
            )
        elif cluster_id == ELECTRICAL:
            self.scales[ELECTRICAL] = PowerScale(int(values.get("ac_power_multiplier") or 1),
                                                 int(values.get("ac_power_divisor") or 1), watts=True)
        elif cluster_id == METERING:
            self.scales[METERING] = PowerScale(int(values.get("multiplier") or 1),
                                               int(values.get("divisor") or 1), watts=False)

    def _describe(self) -> DeviceInfo:
        config, kind = self.config, self.layout.kind
        if config.device_class is not None:
            device_class = DeviceClass[config.device_class.upper()]
        elif kind == "load_controller" and self.drlc_class:
            device_class = DeviceClass(self.drlc_class & 0x0FFF)
        else:
            device_class = DEFAULT_CLASSES[kind]
        group = config.enrollment_group
        if group is None:
            group = self.drlc_group or 0
        limits = self.limits
        return DeviceInfo(
            device_id=self.device_id,
            name=config.name or (self.zdevice.model if self.zdevice is not None else None) or self.device_id,
            kind=DeviceKind(kind),
            device_class=device_class,
            enrollment_group=group,
            nominal_kw=config.nominal_kw if config.nominal_kw is not None else self.learnt_kw,
            min_setpoint_c=None if limits is None else min(limits.min_cool_c, limits.min_heat_c),
            max_setpoint_c=None if limits is None else max(limits.max_cool_c, limits.max_heat_c),
            capacity_kwh=config.capacity_kwh,
            model=str(self.zdevice.model or "") if self.zdevice is not None else "",
        )

    async def _configure_reporting(self) -> None:
        settings = self._settings
        max_s = max(1, math.ceil(settings.report_interval_s))
        min_s = min(max_s, int(settings.min_report_interval_s))
        by_cluster: dict[int, list[Any]] = {}
        for report in REPORTS:
            if self.layout.endpoint_of(report.cluster_id) is not None:
                by_cluster.setdefault(report.cluster_id, []).append(report)
        for cluster_id, reports in by_cluster.items():
            cluster = self._cluster(cluster_id)
            try:
                await self._bounded(cluster.bind())
                await self._bounded(cluster.configure_reporting_multiple({
                    cluster.find_attribute(r.attribute): ReportingConfig(
                        0 if r.at_once else min_s, max_s, r.reportable_change or 0)
                    for r in reports}))
            except UNANSWERED:
                raise
            except (zigpy.exceptions.ZigbeeException, KeyError, ValueError) as err:
                # A device may refuse a binding or a report (ZCL: UNREPORTABLE_ATTRIBUTE); the
                # value is then read when asked and the availability ping still watches it.
                _LOGGER.info("[%s] %s: reporting of cluster 0x%04X not set up: %s",
                             self.device_id, self.label, cluster_id, err)

    # -- frames from the device ------------------------------------------------------------

    def heard(self) -> None:
        """The device sent something: it is alive (and available again if it was not)."""
        self.last_heard = time.monotonic()
        if self.described and self.connected and self.zdevice is not None:
            self.set_available(True, "answering again")

    def on_frame(self, cluster_id: int, src_endpoint: int, data: bytes) -> None:
        """Every frame the device sends, before zigpy handles it (never raises)."""
        self.heard()
        try:
            hdr, body = foundation.ZCLHeader.deserialize(data)
        except (ValueError, KeyError):
            return
        try:
            if hdr.frame_control.is_general:
                if hdr.direction == foundation.Direction.Server_to_Client:
                    self._on_values(cluster_id, hdr.command_id, body)
            elif cluster_id == DRLC and hdr.direction == foundation.Direction.Client_to_Server:
                self._on_event_status(hdr.command_id, body)
        except (ValueError, KeyError, TypeError, IndexError) as err:
            _LOGGER.debug("[%s] Malformed frame on cluster 0x%04X: %s", self.device_id, cluster_id, err)

    def _on_values(self, cluster_id: int, command_id: int, body: bytes) -> None:
        general = foundation.GeneralCommand
        if command_id == general.Report_Attributes:
            schema = foundation.GENERAL_COMMANDS[general.Report_Attributes].schema
            report, _ = schema.deserialize(body)
            values = [(r.attrid, r.value.value) for r in report.attribute_reports]
        elif command_id == general.Read_Attributes_rsp:
            schema = foundation.GENERAL_COMMANDS[general.Read_Attributes_rsp].schema
            response, _ = schema.deserialize(body)
            values = [(r.attrid, r.value.value) for r in response.status_records
                      if r.status == foundation.Status.SUCCESS]
        else:
            return
        try:
            cls = lookup_cluster(cluster_id)  # the SE library's classes first, then zigpy's
        except KeyError:
            return
        fields: dict[str, Any] = {}
        for attrid, raw in values:
            try:
                name = cls.find_attribute(attrid).name
            except KeyError:
                continue
            if cluster_id == THERMOSTAT and name == "system_mode" and raw is not None:
                if int(raw) != Thermostat.SystemMode.Off:
                    self.last_active_mode = Thermostat.SystemMode(int(raw))
            fields.update(reading_fields(cluster_id, name, raw, self.scales.get(cluster_id)))
        if fields:
            self._publish_reading(fields)

    def _publish_reading(self, fields: dict[str, Any]) -> None:
        if not self.described or self.info is None:
            return  # not described yet: the registry would not know the device
        self.last.update(fields)
        self._hub.bus.publish(DeviceReading(self.device_id, self._hub.clock(), **fields))
        if self._on_waiters and "on" in fields:
            for on, future in list(self._on_waiters):
                if on is fields["on"] and not future.done():
                    future.set_result(None)
        power = fields.get("power_kw")
        if power is None or self.layout.kind == "battery" or self.last.get("on") is False:
            return
        if power >= (self.learnt_kw or 0.0) + LEARN_STEP_KW:
            self.learnt_kw = power
            if self.config.nominal_kw is None:
                self.info = replace(self.info, nominal_kw=round(power, 3), discovered_at=self._hub.clock())
                self._hub.bus.publish(self.info)

    def _on_event_status(self, command_id: int, body: bytes) -> None:
        command = Drlc.ServerCommandDefs.report_event_status
        if command_id != command.id:
            return
        fields, _ = command.schema.deserialize(body)
        event_id, status = int(fields.issuer_event_id), STATUS(int(fields.event_status))
        self.event_statuses[event_id] = int(status)
        log = _LOGGER.warning if status == STATUS.User_Chose_To_Opt_Out else _LOGGER.info
        log("[%s] %s: event %d %s", self.device_id, self.label, event_id, status.name.replace("_", " ").lower())

    # -- availability ----------------------------------------------------------------------

    def set_available(self, available: bool, detail: str) -> None:
        """Publish a change of availability (the first "available" is the DeviceInfo itself)."""
        if self.available is available:
            return
        first = self.available is None
        self.available = available
        if first and available:
            return
        if available:
            _LOGGER.info("[%s] %s is answering again", self.device_id, self.label)
        else:
            _LOGGER.warning("[%s] %s is not answering: %s", self.device_id, self.label, detail)
        self._hub.bus.publish(DeviceAvailability(self.device_id, available, self._hub.clock(), detail))

    async def ping(self) -> None:
        """Read one Basic attribute: an answer marks the device available (by the frame hook)."""
        basic = self.layout.endpoint_of(Basic.cluster_id)
        if basic is None or self.zdevice is None:
            return
        cluster = self.zdevice.endpoints[basic].in_clusters[Basic.cluster_id]
        await self._bounded(cluster.read_attributes(["zcl_version"], allow_cache=False))

    # -- commands (the DevicePort's work) --------------------------------------------------

    async def switch(self, on: bool) -> None:
        if self.layout.kind == "thermostat":
            mode = self.last_active_mode if on else Thermostat.SystemMode.Off
            await self._write(THERMOSTAT, {"system_mode": mode}, "system mode")
            return
        if self.layout.endpoint_of(ON_OFF) is None:
            raise DeviceError(f"{self.label} has no On/Off switch")
        cluster = self._cluster(ON_OFF)
        command = OnOff.ServerCommandDefs.on if on else OnOff.ServerCommandDefs.off
        result = await self._call(cluster.command(command.id))
        _check_default_response(result, f"{self.label} refused to switch {'on' if on else 'off'}")

    async def set_setpoints(self, cooling_c: float | None, heating_c: float | None) -> None:
        if self.layout.kind != "thermostat" or self.limits is None:
            raise DeviceError(f"{self.label} has no temperature setpoints")
        limits = self.limits
        for what, value, low, high in (("cooling", cooling_c, limits.min_cool_c, limits.max_cool_c),
                                       ("heating", heating_c, limits.min_heat_c, limits.max_heat_c)):
            if value is None:
                continue
            if not math.isfinite(value):
                raise DeviceError(f"{what} setpoint {value} is not a temperature")
            if value > high:
                raise DeviceError(f"{what} setpoint {value:.1f} °C is above the thermostat's limit {high:.1f} °C")
            if value < low:
                raise DeviceError(f"{what} setpoint {value:.1f} °C is below the thermostat's limit {low:.1f} °C")
        cool = cooling_c if cooling_c is not None else self.last.get("cooling_setpoint_c")
        heat = heating_c if heating_c is not None else self.last.get("heating_setpoint_c")
        both_given = cooling_c is not None and heating_c is not None
        if (cool is not None and heat is not None and (both_given or self.last.get("system_mode") == "auto")
                and cool - heat < limits.deadband_c - 1e-6):
            raise DeviceError(f"cooling setpoint {cool:.1f} °C must be at least {limits.deadband_c:.1f} °C "
                              f"above the heating setpoint {heat:.1f} °C (the thermostat's deadband)")
        values: dict[str, Any] = {}
        if cooling_c is not None:
            values["occupied_cooling_setpoint"] = centi_c(cooling_c)
        if heating_c is not None:
            values["occupied_heating_setpoint"] = centi_c(heating_c)
        if values:
            await self._write(THERMOSTAT, values, "setpoint")

    async def relay_event(self, event: LoadControlEvent) -> None:
        cluster = self._drlc_client()
        now = self._hub.clock()
        if event.end <= now:
            raise DeviceError(f"event {event.issuer_event_id} has already ended; not sent to {self.label}")
        # The event's own start and duration, even once it has started (a start in the past with an
        # end ahead runs at once, SE DRLC validation: only now > start + duration is expired): the
        # device ends it at the event's end to the second. "Now" with the minutes left, rounded up
        # to whole minutes, made it shed up to 59 s past the end.
        start_raw, minutes = _utc_time(event.start), event.duration_min
        command = Drlc.ClientCommandDefs.load_control_event
        fields = {
            "issuer_event_id": event.issuer_event_id,
            "device_class": self._own_class(),
            "utility_enrollment_group": self.info.enrollment_group if self.info else 0,
            "start_time": start_raw,
            "duration_in_minutes": max(1, min(1440, minutes)),
            "criticality_level": int(event.criticality),
            "cooling_temperature_offset": _tenths(event.cooling_offset_c),
            "heating_temperature_offset": _tenths(event.heating_offset_c),
            "cooling_temperature_set_point": _centi_or_unused(event.cooling_setpoint_c),
            "heating_temperature_set_point": _centi_or_unused(event.heating_setpoint_c),
            "average_load_adjustment_percentage": -128 if event.average_load_adjustment_pct is None
            else event.average_load_adjustment_pct,
            "duty_cycle": 0xFF if event.duty_cycle_pct is None else event.duty_cycle_pct,
            "event_control": event_control(event.randomize_start, event.randomize_end),
        }
        result = await self._call(cluster.request(False, command.id, command.schema, expect_reply=True,
                                                  disable_default_response=True, **fields))
        self._check_status(result, RELAY_OK, f"{self.label} refused event {event.issuer_event_id}")

    async def cancel_event(self, issuer_event_id: int) -> None:
        cluster = self._drlc_client()
        command = Drlc.ClientCommandDefs.cancel_load_control_event
        result = await self._call(cluster.request(
            False, command.id, command.schema, expect_reply=True, disable_default_response=True,
            issuer_event_id=issuer_event_id, device_class=self._own_class(),
            utility_enrollment_group=self.info.enrollment_group if self.info else 0,
            cancel_control=0, effective_time=0))
        self._check_status(result, CANCEL_OK, f"{self.label} refused to cancel event {issuer_event_id}")

    # -- helpers ---------------------------------------------------------------------------

    def _reachable(self) -> Any:
        if not self.connected or self.zdevice is None:
            raise DeviceError(f"{self.label} cannot be reached: the home network is not up")
        return self.zdevice

    def _cluster(self, cluster_id: int) -> Any:
        endpoint = self.layout.endpoint_of(cluster_id)
        if endpoint is None:
            raise DeviceError(f"{self.label} has no cluster 0x{cluster_id:04X}")
        return self._reachable().endpoints[endpoint].in_clusters[cluster_id]

    def _drlc_client(self) -> Any:
        endpoint = self.layout.drlc_endpoint
        if endpoint is None:
            raise DeviceError(f"{self.label} has no DRLC client to take an event")
        return self._reachable().endpoints[endpoint].out_clusters[DRLC]

    def _own_class(self) -> int:
        """The EMS re-issues the event to this device: addressed to the device's own class."""
        if self.drlc_class:
            return self.drlc_class & 0x0FFF
        return int(self.info.device_class) if self.info else 0x0FFF

    async def _read(self, cluster_id: int, names: tuple[str, ...], *, client: bool = False) -> dict[str, Any]:
        if client:
            cluster = self._drlc_client()
        else:
            cluster = self._cluster(cluster_id)
        success, _failure = await self._bounded(cluster.read_attributes(list(names), allow_cache=False))
        return {(k if isinstance(k, str) else cluster.find_attribute(k).name): v for k, v in success.items()}

    async def _bounded(self, request: Awaitable[Any]) -> Any:
        """A setup request: bounded like a command, failures left to the caller."""
        async with asyncio.timeout(self._settings.command_timeout_s):
            return await request

    async def _call(self, request: Awaitable[Any]) -> Any:
        """A command: DeviceError (and unavailable) if the device does not answer in time."""
        timeout_s = self._settings.command_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                return await request
        except TimeoutError as err:
            detail = f"did not answer within {timeout_s:g} s"
            self.set_available(False, detail)
            raise DeviceError(f"{self.label} {detail}") from err
        except zigpy.exceptions.DeliveryError as err:
            detail = f"did not answer (not reachable: {err})"
            self.set_available(False, detail)
            raise DeviceError(f"{self.label} {detail}") from err
        except zigpy.exceptions.ZigbeeException as err:
            raise DeviceError(f"{self.label} failed: {err}") from err

    async def _write(self, cluster_id: int, values: dict[str, Any], what: str) -> None:
        cluster = self._cluster(cluster_id)
        result = await self._call(cluster.write_attributes(values))
        for record in _flatten(result):
            status = getattr(record, "status", record)
            if isinstance(status, foundation.Status) and status != foundation.Status.SUCCESS:
                raise DeviceError(f"{self.label} refused the {what}: {status.name}")

    def _check_status(self, result: Any, ok: set[Any], message: str) -> None:
        status = getattr(result, "event_status", None)
        if status is not None:
            if STATUS(int(status)) not in ok:
                raise DeviceError(f"{message}: {STATUS(int(status)).name.replace('_', ' ').lower()}")
            return
        _check_default_response(result, message)


def _check_default_response(result: Any, message: str) -> None:
    status = getattr(result, "status", None)
    if status is not None and status != foundation.Status.SUCCESS:
        raise DeviceError(f"{message}: {foundation.Status(status).name}")


def _flatten(result: Any) -> list[Any]:
    if isinstance(result, list | tuple):
        return [item for part in result for item in _flatten(part)]
    return [result]


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _utc_time(at: datetime) -> int:
    """UTCTime: seconds since 2000-01-01 00:00 UTC (ZCL §2.6.2.30)."""
    return max(0, int((at - UTC_2000).total_seconds()))


def _tenths(value_c: float | None) -> int:
    return 0xFF if value_c is None else max(0, min(0xFE, round(value_c * 10)))


def _centi_or_unused(value_c: float | None) -> int:
    return -0x8000 if value_c is None else max(-0x7FFF, min(0x7FFF, round(value_c * 100)))
