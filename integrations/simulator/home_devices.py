"""The home's simulated Zigbee devices: a thermostat, plugs, a battery and an SE load controller.

Each is a ``VirtualNode`` on the home network with the clusters a real device of its kind
has, plus the behaviour behind them: ``tick(now, hours)`` moves the device's own state over
``hours`` of simulated time and refreshes its attributes (configured reporting then sends
what changed); ``load_kw`` is what it draws now (a battery discharging is negative), which
the runner adds to the meter's demand. Every device can be changed "by hand", as a person at
the device would, and can go ``silent`` (stays joined, answers nothing) for outage tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from zigpy.zcl import foundation
from zigpy.zcl.clusters.general import Basic, Groups, OnOff, PowerConfiguration
from zigpy.zcl.clusters.homeautomation import ElectricalMeasurement
from zigpy.zcl.clusters.hvac import Thermostat

from integrations.simulator.loads import Schedule
from integrations.simulator.thermal import ThermalHouse, ThermostatLogic
from integrations.zigbee.se import codec
from integrations.zigbee.se.clusters import Drlc, Metering
from integrations.zigbee.virtual_node import (
    CommandRequest,
    NodeEndpoint,
    NodeSendError,
    VirtualNode,
)

_LOGGER = logging.getLogger(__name__)

HA_PROFILE, SE_PROFILE = 0x0104, 0x0109
TIME_CLUSTER = 0x000A
ENDPOINT = 1
DEVICE_TYPES = {"thermostat": 0x0301, "plug": 0x0051, "battery": 0x0053, "load_controller": 0x0504,
                "door_sensor": 0x0402}
PRICE_CLUSTER = 0x0700
IAS_ZONE = 0x0500
MANUFACTURER = "Premise EMS simulator"
MODE_TO_ZCL = {"off": Thermostat.SystemMode.Off, "cool": Thermostat.SystemMode.Cool,
               "heat": Thermostat.SystemMode.Heat, "auto": Thermostat.SystemMode.Auto}
ZCL_TO_MODE = {int(v): k for k, v in MODE_TO_ZCL.items()}
RUNNING_STATE = {"idle": Thermostat.RunningState.Idle, "cooling": Thermostat.RunningState.Cool_State_On,
                 "heating": Thermostat.RunningState.Heat_State_On}
RUNNING_MODE = {"idle": Thermostat.RunningMode.Off, "cooling": Thermostat.RunningMode.Cool,
                "heating": Thermostat.RunningMode.Heat}
MAX_STEP_H = 5 / 60  # the thermal model is stepped at most five simulated minutes at a time

Windows = tuple[tuple[int, int], ...]  # (start, end) minutes after local midnight


def in_windows(windows: Windows, at: datetime, timezone: ZoneInfo) -> bool:
    """Whether the local time of day at ``at`` falls in one of the windows."""
    local = at.astimezone(timezone)
    minute = local.hour * 60 + local.minute + local.second / 60
    for start, end in windows:
        if start <= end and start <= minute < end:
            return True
        if start > end and (minute >= start or minute < end):  # across midnight
            return True
    return False


def windows_of(entries: list[dict[str, int]]) -> Windows:
    return tuple((int(e["start"]), int(e["end"])) for e in entries)


def _centi(value_c: float) -> int:
    return round(value_c * 100)


class SimDevice:
    """What every simulated home device shares: its node, its name, its load."""

    kind = ""

    def __init__(self, node: VirtualNode, name: str, timezone: ZoneInfo) -> None:
        self.node = node
        self.name = name
        self.timezone = timezone
        self.on_change: Callable[[], None] = lambda: None  # the home refreshes the meter
        self._now: datetime | None = None

    @property
    def ieee(self) -> str:
        return str(self.node.ieee)

    @property
    def load_kw(self) -> float:
        return 0.0

    @property
    def silent(self) -> bool:
        return self.node.silent

    @silent.setter
    def silent(self, value: bool) -> None:
        """A silent device stays joined but hears and says nothing (powered off, hung)."""
        self.node.silent = value

    def tick(self, now: datetime, hours: float) -> None:
        """Advance the device by ``hours`` of simulated time, ending at ``now``."""
        self._now = now

    async def read_time(self, timeout_s: float = 5.0) -> datetime | None:
        """Ask the coordinator's Time server for the time (ZCL §3.12), as a device setting its clock does.

        Returns the time it answered (None: "not set"); TimeoutError if nothing comes back.
        """
        endpoint = next(iter(self.node.endpoints))
        since = len(self.node.log)
        self._time_tsn = (getattr(self, "_time_tsn", 0x40) + 1) & 0xFF
        header = bytes([0x00, self._time_tsn, foundation.GeneralCommand.Read_Attributes])  # client -> server
        self.node.send_raw(endpoint, TIME_CLUSTER, header + (0x0000).to_bytes(2, "little") + (0x0001).to_bytes(2, "little"))
        frame = await self.node.wait_for("Read_Attributes_rsp", cluster_id=TIME_CLUSTER, since=since,
                                         timeout_s=timeout_s)
        for record in frame.fields.get("status_records", []):
            if int(record.attrid) == 0x0000 and record.status == foundation.Status.SUCCESS:
                self.clock_time = codec.utc_time_to_datetime(int(record.value.value))
                self.time_status = next((int(r.value.value) for r in frame.fields["status_records"]
                                         if int(r.attrid) == 0x0001 and r.status == foundation.Status.SUCCESS), None)
                return self.clock_time
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.ieee}>"


def _node(kind: str, ieee: str, nwk: int, name: str, model: str, *, in_clusters: tuple[int, ...],
          out_clusters: tuple[int, ...] = (), profile: int = HA_PROFILE, mains: bool = True) -> VirtualNode:
    return VirtualNode(
        ieee=ieee,
        nwk=nwk,
        name=name,
        joins_on_permit=True,  # home devices join when the EMS opens the network
        endpoints=[NodeEndpoint(ENDPOINT, profile, DEVICE_TYPES[kind], in_clusters=in_clusters,
                                out_clusters=out_clusters)],
        attributes={(ENDPOINT, Basic.cluster_id): {
            "manufacturer": MANUFACTURER, "model": model, "zcl_version": 8,
            "power_source": Basic.PowerSource.Mains_single_phase if mains else Basic.PowerSource.Battery,
        }},
    )


# --- thermostat ----------------------------------------------------------------------------


class SimThermostat(SimDevice):
    """A thermostat (Thermostat 0x0201) running the house's HVAC, with its power measured."""

    kind = "thermostat"

    def __init__(self, spec: dict[str, Any], ieee: str, nwk: int, house: ThermalHouse,
                 outdoor_c: Callable[[datetime], float], timezone: ZoneInfo) -> None:
        node = _node("thermostat", ieee, nwk, spec["name"], "SimThermostat",
                     in_clusters=(Basic.cluster_id, Thermostat.cluster_id, ElectricalMeasurement.cluster_id))
        super().__init__(node, spec["name"], timezone)
        self.house = house
        self.outdoor_c = outdoor_c
        self.logic = ThermostatLogic(
            cooling_setpoint_c=spec["cooling_setpoint_c"], heating_setpoint_c=spec["heating_setpoint_c"],
            system_mode=spec["system_mode"], min_cool_c=spec["min_cool_c"], max_cool_c=spec["max_cool_c"],
            min_heat_c=spec["min_heat_c"], max_heat_c=spec["max_heat_c"], deadband_c=spec["deadband_c"],
            hvac_kw=spec["hvac_kw"], cop=spec["cop"])
        logic = self.logic
        set_attr = self._set
        for name, value_c in (("min_cool_setpoint_limit", logic.min_cool_c),
                              ("max_cool_setpoint_limit", logic.max_cool_c),
                              ("min_heat_setpoint_limit", logic.min_heat_c),
                              ("max_heat_setpoint_limit", logic.max_heat_c),
                              ("abs_min_cool_setpoint_limit", logic.min_cool_c),
                              ("abs_max_cool_setpoint_limit", logic.max_cool_c),
                              ("abs_min_heat_setpoint_limit", logic.min_heat_c),
                              ("abs_max_heat_setpoint_limit", logic.max_heat_c)):
            set_attr(name, _centi(value_c))
        set_attr("min_setpoint_dead_band", round(logic.deadband_c * 10))  # 0.1 degC (§6.3.2.2.2.10)
        set_attr("ctrl_sequence_of_oper", Thermostat.ControlSequenceOfOperation.Cooling_and_Heating)
        self._write_state()
        node.set_attribute(ENDPOINT, ElectricalMeasurement, "measurement_type", 0x0001)  # active AC
        node.set_attribute(ENDPOINT, ElectricalMeasurement, "ac_power_multiplier", 1)
        node.set_attribute(ENDPOINT, ElectricalMeasurement, "ac_power_divisor", 1)
        self._refresh()

    def _set(self, attribute: str, value: Any) -> None:
        self.node.set_attribute(ENDPOINT, Thermostat, attribute, value)

    def _get(self, attribute: str) -> Any:
        return self.node.get_attribute(ENDPOINT, Thermostat, attribute)

    def _write_state(self) -> None:
        logic = self.logic
        self._set("occupied_cooling_setpoint", _centi(logic.cooling_setpoint_c))
        self._set("occupied_heating_setpoint", _centi(logic.heating_setpoint_c))
        self._set("system_mode", MODE_TO_ZCL[logic.system_mode])

    def _read_state(self) -> None:
        """Take what a client wrote (setpoints, mode) into the control logic, within limits."""
        logic = self.logic
        cool = min(max(int(self._get("occupied_cooling_setpoint")) / 100, logic.min_cool_c), logic.max_cool_c)
        heat = min(max(int(self._get("occupied_heating_setpoint")) / 100, logic.min_heat_c), logic.max_heat_c)
        logic.cooling_setpoint_c, logic.heating_setpoint_c = cool, heat
        logic.system_mode = ZCL_TO_MODE.get(int(self._get("system_mode")), "off")
        self._write_state()  # a clamped value shows as what the thermostat really keeps

    def _refresh(self) -> None:
        self._set("local_temperature", _centi(self.house.indoor_c))
        if self._now is not None:
            self._set("outdoor_temperature", _centi(self.outdoor_c(self._now)))
        self._set("running_state", RUNNING_STATE[self.logic.running])
        self._set("running_mode", RUNNING_MODE[self.logic.running])
        self.node.set_attribute(ENDPOINT, ElectricalMeasurement, "active_power", round(self.load_kw * 1000))

    @property
    def setpoints_centi(self) -> tuple[int, int]:
        """(cooling, heating) set points as the thermostat keeps them, in 0.01 degC (what is applied)."""
        return int(self._get("occupied_cooling_setpoint")), int(self._get("occupied_heating_setpoint"))

    @property
    def indoor_c(self) -> float:
        return self.house.indoor_c

    @property
    def load_kw(self) -> float:
        return self.logic.power_kw

    def tick(self, now: datetime, hours: float) -> None:
        self._read_state()
        outdoor = self.outdoor_c(now)
        remaining = hours
        while remaining > 1e-12:
            step = min(remaining, MAX_STEP_H)
            self.logic.decide(self.house.indoor_c)
            self.house.step(step, outdoor, self.logic.heat_kw)
            remaining -= step
        self.logic.decide(self.house.indoor_c)
        super().tick(now, hours)
        self._refresh()

    def set_by_hand(self, *, cooling_c: float | None = None, heating_c: float | None = None,
                    system_mode: str | None = None) -> None:
        """A person at the thermostat changes it; it reports the change like any other.

        Raises ``thermal.SetpointError`` for setpoints the thermostat would not accept.
        """
        self._read_state()
        logic = self.logic
        cool = logic.cooling_setpoint_c if cooling_c is None else cooling_c
        heat = logic.heating_setpoint_c if heating_c is None else heating_c
        logic.check(cool, heat)
        logic.cooling_setpoint_c, logic.heating_setpoint_c = cool, heat
        if system_mode is not None:
            if system_mode not in MODE_TO_ZCL:
                raise ValueError(f"system mode {system_mode!r} is not one of {', '.join(MODE_TO_ZCL)}")
            logic.system_mode = system_mode
        self._write_state()
        logic.decide(self.house.indoor_c)
        self._refresh()
        self.on_change()


# --- plugs ---------------------------------------------------------------------------------


class SimPlug(SimDevice):
    """A smart plug or relay (On/Off) in front of an appliance that runs on its own schedule."""

    kind = "plug"

    def __init__(self, name: str, ieee: str, nwk: int, nominal_kw: float, timezone: ZoneInfo, *,
                 on: bool = True, schedule: Windows | Schedule = ((0, 1440),)) -> None:
        node = _node("plug", ieee, nwk, name, "SimPlug",
                     in_clusters=(Basic.cluster_id, Groups.cluster_id, OnOff.cluster_id,
                                  ElectricalMeasurement.cluster_id))  # Groups: joins the EMS's shed groups
        super().__init__(node, name, timezone)
        self.nominal_kw = nominal_kw
        self.schedule = schedule if isinstance(schedule, Schedule) else Schedule(schedule, timezone=timezone)
        self.running = True  # the appliance wants power (its own timer or thermostat)
        node.set_attribute(ENDPOINT, OnOff, "on_off", on)
        node.set_attribute(ENDPOINT, ElectricalMeasurement, "measurement_type", 0x0001)
        node.set_attribute(ENDPOINT, ElectricalMeasurement, "ac_power_multiplier", 1)
        node.set_attribute(ENDPOINT, ElectricalMeasurement, "ac_power_divisor", 1)
        for command, handler in (("on", self._on), ("off", self._off), ("toggle", self._toggle)):
            node.on_command(ENDPOINT, OnOff.cluster_id, command, handler)
        self._refresh()

    @property
    def on(self) -> bool:
        return bool(self.node.get_attribute(ENDPOINT, OnOff, "on_off"))

    @property
    def load_kw(self) -> float:
        return self.nominal_kw if self.on and self.running else 0.0

    def _refresh(self) -> None:
        self.node.set_attribute(ENDPOINT, ElectricalMeasurement, "active_power", round(self.load_kw * 1000))

    def switch_by_hand(self, on: bool) -> None:
        """A person presses the plug's button."""
        self.node.set_attribute(ENDPOINT, OnOff, "on_off", on)
        self._refresh()
        self.on_change()

    def _on(self, request: CommandRequest) -> None:
        self.switch_by_hand(True)

    def _off(self, request: CommandRequest) -> None:
        self.switch_by_hand(False)

    def _toggle(self, request: CommandRequest) -> None:
        self.switch_by_hand(not self.on)

    def tick(self, now: datetime, hours: float) -> None:
        super().tick(now, hours)
        self.running = self.schedule.running(now)
        self._refresh()


# --- battery -------------------------------------------------------------------------------


class SimBattery(SimDevice):
    """A home battery: state of charge (PowerConfiguration) and signed power (Electrical Measurement).

    ``mode`` is "auto" (charge and discharge windows), "charge", "discharge" or "idle"; the
    charge moves with the power and stops at 100 % and at the reserve.
    """

    kind = "battery"

    def __init__(self, spec: dict[str, Any], ieee: str, nwk: int, timezone: ZoneInfo) -> None:
        node = _node("battery", ieee, nwk, spec["name"], "SimBattery", in_clusters=(
            Basic.cluster_id, PowerConfiguration.cluster_id, ElectricalMeasurement.cluster_id))
        super().__init__(node, spec["name"], timezone)
        self.capacity_kwh = spec["capacity_kwh"]
        self.max_kw = spec["max_kw"]
        self.soc_pct = spec["soc_pct"]
        self.reserve_pct = spec["reserve_pct"]
        self.charge_windows = windows_of(spec["charge"])
        self.discharge_windows = windows_of(spec["discharge"])
        self.mode = "auto"
        self.power_kw = 0.0
        node.set_attribute(ENDPOINT, ElectricalMeasurement, "measurement_type", 0x0001)
        node.set_attribute(ENDPOINT, ElectricalMeasurement, "ac_power_multiplier", 1)
        node.set_attribute(ENDPOINT, ElectricalMeasurement, "ac_power_divisor", 1)
        self._refresh()

    @property
    def load_kw(self) -> float:
        return self.power_kw

    def _wanted(self, now: datetime | None) -> str:
        if self.mode != "auto":
            return self.mode
        if now is not None and in_windows(self.charge_windows, now, self.timezone):
            return "charge"
        if now is not None and in_windows(self.discharge_windows, now, self.timezone):
            return "discharge"
        return "idle"

    def _power_for(self, wanted: str) -> float:
        if wanted == "charge" and self.soc_pct < 100.0 - 1e-9:
            return self.max_kw
        if wanted == "discharge" and self.soc_pct > self.reserve_pct + 1e-9:
            return -self.max_kw
        return 0.0

    def tick(self, now: datetime, hours: float) -> None:
        wanted = self._wanted(now)
        power = self._power_for(wanted)
        if power and hours > 0:
            soc = self.soc_pct + power * hours / self.capacity_kwh * 100
            self.soc_pct = min(100.0, max(self.reserve_pct if power < 0 else 0.0, soc))
        super().tick(now, hours)
        self.power_kw = self._power_for(wanted)  # full or at the reserve: the power stops
        self._refresh()

    def set_mode_by_hand(self, mode: str) -> None:
        """Force charging, discharging or idling ("auto" follows the windows again)."""
        if mode not in ("auto", "charge", "discharge", "idle"):
            raise ValueError(f"battery mode {mode!r} is not auto, charge, discharge or idle")
        self.mode = mode
        self.power_kw = self._power_for(self._wanted(self._now))
        self._refresh()
        self.on_change()

    def _refresh(self) -> None:
        node = self.node
        node.set_attribute(ENDPOINT, PowerConfiguration, "battery_percentage_remaining",
                           round(self.soc_pct * 2))  # half-percent steps (ZCL §3.3.2.2.3.2)
        node.set_attribute(ENDPOINT, ElectricalMeasurement, "active_power", round(self.power_kw * 1000))


# --- SE load control device ----------------------------------------------------------------


@dataclass(slots=True)
class _Event:
    issuer_event_id: int
    start: datetime
    end: datetime
    criticality: int
    state: str = "scheduled"  # scheduled | running | done
    src: tuple[int, int] = (0x0000, 1)  # where its status reports go (the EMS)


class SimLoadController(SimDevice):
    """An SE Load Control Device: a DRLC client that sheds its load during events (SE §D.2).

    It answers a LoadControlEvent with ReportEventStatus "received" (then "started" when the
    event starts, "completed" when it ends) and a cancel with "cancelled", or "rejected:
    undefined event" for one it does not know. Its demand is in its Metering server.
    """

    kind = "load_controller"

    def __init__(self, spec: dict[str, Any], ieee: str, nwk: int, timezone: ZoneInfo,
                 clock: Callable[[], datetime]) -> None:
        clients = (TIME_CLUSTER, Drlc.cluster_id) + ((PRICE_CLUSTER,) if spec.get("price_aware") else ())
        node = _node("load_controller", ieee, nwk, spec["name"], "SimLoadController",
                     in_clusters=(Basic.cluster_id, Metering.cluster_id), out_clusters=clients, profile=SE_PROFILE)
        super().__init__(node, spec["name"], timezone)
        self.clock = clock
        self.nominal_kw = spec["nominal_kw"]
        self.schedule = Schedule.of(spec, timezone)
        self.device_class = spec["device_class"]
        self.enrollment_group = spec["enrollment_group"]
        self.running = True
        self.events: dict[int, _Event] = {}
        self.statuses: list[tuple[int, int]] = []  # (issuer event id, EventStatus) as sent
        self.delivered_kwh = 0.0
        for attribute, value in (("utility_enrollment_group", self.enrollment_group),
                                 ("start_randomization_minutes", 0),
                                 ("duration_randomization_minutes", 0),
                                 ("device_class_value", self.device_class)):
            node.set_attribute(ENDPOINT, Drlc, attribute, value, client=True)
        for attribute, value in (("unit_of_measure", 0), ("multiplier", 1), ("divisor", 1000),
                                 ("summation_formatting", 0x2B), ("demand_formatting", 0x2B),
                                 ("metering_device_type", 0), ("status", 0)):
            node.set_attribute(ENDPOINT, Metering, attribute, value)
        node.on_command(ENDPOINT, Drlc.cluster_id, "load_control_event", self._on_event)
        node.on_command(ENDPOINT, Drlc.cluster_id, "cancel_load_control_event", self._on_cancel)
        node.on_command(ENDPOINT, Drlc.cluster_id, "cancel_all_load_control_events", self._on_cancel_all)
        self.prices: list[dict[str, Any]] = []  # the PublishPrice commands it took (price aware)
        if spec.get("price_aware"):
            node.on_command(ENDPOINT, PRICE_CLUSTER, "publish_price", self._on_price)
        self._refresh()

    def _on_price(self, request: CommandRequest) -> Any:
        self.prices.append(dict(request.fields))
        return foundation.Status.SUCCESS

    @property
    def shedding(self) -> bool:
        return any(e.state == "running" for e in self.events.values())

    @property
    def load_kw(self) -> float:
        return 0.0 if self.shedding or not self.running else self.nominal_kw

    def _refresh(self) -> None:
        self.node.set_attribute(ENDPOINT, Metering, "instantaneous_demand", round(self.load_kw * 1000))
        self.node.set_attribute(ENDPOINT, Metering, "current_summ_delivered", round(self.delivered_kwh * 1000))

    def tick(self, now: datetime, hours: float) -> None:
        self.delivered_kwh += self.load_kw * hours
        super().tick(now, hours)
        self.running = self.schedule.running(now)
        for event in list(self.events.values()):
            if event.state == "scheduled" and event.start <= now:
                self._start(event, now)
            if event.state == "running" and event.end <= now:
                event.state = "done"
                self._report_later(event, Drlc.EventStatus.Event_Completed, now)
        self._refresh()

    # -- DRLC ------------------------------------------------------------------------------

    def _addressed(self, fields: Any) -> bool:
        group = int(fields["utility_enrollment_group"])
        group_ok = self.enrollment_group == 0 or group == 0 or group == self.enrollment_group
        return bool(int(fields["device_class"]) & self.device_class) and group_ok

    def _status_fields(self, event_id: int, status: int, now: datetime, criticality: int = 0) -> dict[str, Any]:
        return {
            "issuer_event_id": event_id,
            "event_status": status,
            "event_status_time": codec.datetime_to_utc_time(now),
            "criticality_level_applied": criticality,
            "cooling_temperature_set_point_applied": -0x8000,
            "heating_temperature_set_point_applied": -0x8000,
            "average_load_adjustment_percentage_applied": -128,
            "duty_cycle_applied": 0xFF,
            "event_control": 0,
            "signature_type": 0,
            "signature": [0xFF] * 42,
        }

    def _reply(self, request: CommandRequest, event_id: int, status: int, now: datetime,
               criticality: int = 0) -> None:
        self.statuses.append((event_id, int(status)))
        request.reply("report_event_status", **self._status_fields(event_id, status, now, criticality))

    def _report_later(self, event: _Event, status: int, now: datetime) -> None:
        """An unsolicited ReportEventStatus to the EMS (started, completed, opted out)."""
        self.statuses.append((event.issuer_event_id, int(status)))
        fields = self._status_fields(event.issuer_event_id, status, now, event.criticality)
        try:
            # The node's synchronous send: the report goes out now, in order with the tick.
            self.node._send_cluster_command(
                ENDPOINT, Drlc.cluster_id, "report_event_status", to_client=False, dst_nwk=event.src[0],
                dst_endpoint=event.src[1], tsn=None, disable_default_response=True, fields=fields)
        except NodeSendError as err:
            _LOGGER.debug("%s: event status not delivered: %s", self.name, err)

    def _start(self, event: _Event, now: datetime) -> None:
        event.state = "running"
        self._report_later(event, Drlc.EventStatus.Event_Started, now)
        self._refresh()
        self.on_change()

    def _on_event(self, request: CommandRequest) -> Any:
        fields, now = request.fields, self.clock()
        event_id = int(fields["issuer_event_id"])
        if not self._addressed(fields):
            self._reply(request, event_id, Drlc.EventStatus.Load_Control_Event_Command_Rejected, now)
            return None
        start = codec.utc_time_to_datetime(int(fields["start_time"])) if int(fields["start_time"]) else now
        start = start or now
        end = start + timedelta(minutes=int(fields["duration_in_minutes"]))
        if end <= now:
            self._reply(request, event_id, Drlc.EventStatus.Rejected_Event_Received_After_Expiration, now)
            return None
        known = self.events.get(event_id)
        criticality = int(fields["criticality_level"])
        if known is None or known.state == "done":
            self.events[event_id] = _Event(event_id, start, end, criticality,
                                           src=(request.src_nwk, request.src_endpoint))
        self._reply(request, event_id, Drlc.EventStatus.Load_Control_Event_Command_Received, now, criticality)
        event = self.events[event_id]
        if event.state == "scheduled" and start <= now:
            self._start(event, now)
        return None

    def _cancel(self, event: _Event, now: datetime) -> None:
        event.state = "done"
        self._refresh()
        self.on_change()

    def _on_cancel(self, request: CommandRequest) -> Any:
        now = self.clock()
        event_id = int(request.fields["issuer_event_id"])
        event = self.events.get(event_id)
        if event is None or event.state == "done":
            self._reply(request, event_id,
                        Drlc.EventStatus.Rejected_Invalid_Cancel_Command_Undefined_Event, now)
            return None
        self._cancel(event, now)
        self._reply(request, event_id, Drlc.EventStatus.Event_Cancelled, now, event.criticality)
        return None

    def _on_cancel_all(self, request: CommandRequest) -> Any:
        now = self.clock()
        for event in self.events.values():
            if event.state != "done":
                self._cancel(event, now)
                self._report_later(event, Drlc.EventStatus.Event_Cancelled, now)
        return foundation.Status.SUCCESS

    def opt_out_by_hand(self) -> list[int]:
        """The customer overrides the running events at the device; returns their ids."""
        now = self.clock()
        ids = []
        for event in self.events.values():
            if event.state == "running":
                event.state = "done"
                ids.append(event.issuer_event_id)
                self._report_later(event, Drlc.EventStatus.User_Chose_To_Opt_Out, now)
        self._refresh()
        self.on_change()
        return ids


# --- a door sensor -------------------------------------------------------------------------


class SimDoorSensor(SimDevice):
    """A battery door sensor (IAS Zone): it joins and is discovered, and takes part in no program."""

    kind = "door_sensor"

    def __init__(self, spec: dict[str, Any], ieee: str, nwk: int, timezone: ZoneInfo) -> None:
        node = _node("door_sensor", ieee, nwk, spec["name"], "SimDoorSensor", mains=False,
                     in_clusters=(Basic.cluster_id, PowerConfiguration.cluster_id, IAS_ZONE))
        super().__init__(node, spec["name"], timezone)
        node.set_attribute(ENDPOINT, PowerConfiguration, "battery_percentage_remaining", 180)
