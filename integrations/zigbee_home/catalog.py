"""What the EMS asks of each kind of home device, as data: clusters, reports, units.

Protocol only (zigpy and the standard library, no ``ems`` import). A device's kind follows
from its clusters: a Thermostat server (0x0201) makes a thermostat, a DRLC client (0x0701,
SE) a load controller, an On/Off server (0x0006) a switch, and a PowerConfiguration server
with a power measurement (Electrical Measurement 0x0B04 or Metering 0x0702) a battery.
The adapter (``device.py``) turns the values named here into domain readings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zigpy.zcl.clusters.general import Basic, OnOff, PowerConfiguration
from zigpy.zcl.clusters.homeautomation import ElectricalMeasurement
from zigpy.zcl.clusters.hvac import Thermostat

from integrations.zigbee.se.clusters import Drlc, Metering

BASIC = Basic.cluster_id
ON_OFF = OnOff.cluster_id
POWER_CONFIG = PowerConfiguration.cluster_id
THERMOSTAT = Thermostat.cluster_id
ELECTRICAL = ElectricalMeasurement.cluster_id
METERING = Metering.cluster_id
DRLC = Drlc.cluster_id

THERMOSTAT_KIND, SWITCH_KIND, LOAD_CONTROLLER_KIND, BATTERY_KIND = (
    "thermostat", "switch", "load_controller", "battery")

INVALID_TEMPERATURE = -0x8000  # ZCL §6.3.2.2.1.1: "invalid" measured temperature
INVALID_POWER = -0x8000  # ZCL §4.9.2.2.5: active power not available
INVALID_PERCENTAGE = 0xFF

# ZCL §6.3.2.2.2.11 SystemMode, in the four words the domain uses where one fits.
SYSTEM_MODES = {
    Thermostat.SystemMode.Off: "off",
    Thermostat.SystemMode.Auto: "auto",
    Thermostat.SystemMode.Cool: "cool",
    Thermostat.SystemMode.Heat: "heat",
    Thermostat.SystemMode.Emergency_Heating: "heat",
    Thermostat.SystemMode.Pre_cooling: "cool",
    Thermostat.SystemMode.Fan_only: "fan_only",
    Thermostat.SystemMode.Dry: "dry",
    Thermostat.SystemMode.Sleep: "sleep",
}


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a device keeps what the EMS needs: server cluster -> endpoint, and its DRLC client."""

    kind: str
    servers: dict[int, int]  # cluster id -> endpoint id (the first endpoint that has it)
    drlc_endpoint: int | None = None

    def endpoint_of(self, cluster_id: int) -> int | None:
        return self.servers.get(cluster_id)

    @property
    def power_cluster(self) -> int | None:
        """Electrical Measurement if the device has it, else Metering (SE)."""
        for cluster_id in (ELECTRICAL, METERING):
            if cluster_id in self.servers:
                return cluster_id
        return None


def classify(endpoints: Iterable[tuple[int, Iterable[int], Iterable[int]]]) -> Layout | None:
    """The layout of a device from (endpoint id, in-clusters, out-clusters); None if it is none of ours."""
    servers: dict[int, int] = {}
    drlc_endpoint = None
    for endpoint_id, in_clusters, out_clusters in sorted(endpoints, key=lambda e: e[0]):
        if endpoint_id == 0:
            continue  # ZDO
        for cluster_id in in_clusters:
            servers.setdefault(int(cluster_id), endpoint_id)
        if DRLC in {int(c) for c in out_clusters} and drlc_endpoint is None:
            drlc_endpoint = endpoint_id
    has_power = ELECTRICAL in servers or METERING in servers
    if THERMOSTAT in servers:
        kind = THERMOSTAT_KIND
    elif drlc_endpoint is not None:
        kind = LOAD_CONTROLLER_KIND
    elif ON_OFF in servers:
        kind = SWITCH_KIND
    elif POWER_CONFIG in servers and has_power:
        kind = BATTERY_KIND
    else:
        return None
    return Layout(kind, servers, drlc_endpoint)


@dataclass(frozen=True, slots=True)
class Report:
    """One attribute the device is asked to report (ZCL §2.5.7), with its reportable change."""

    cluster_id: int
    attribute: str
    reportable_change: int | None = None  # analog attributes only; raw units
    at_once: bool = False  # reported as soon as it changes (minimum interval 0), whatever the setting


REPORTS: tuple[Report, ...] = (
    Report(THERMOSTAT, "local_temperature", 10),  # 0.1 degC
    Report(THERMOSTAT, "outdoor_temperature", 50),  # optional in ZCL: a refusal is fine
    Report(THERMOSTAT, "occupied_cooling_setpoint", 1),
    Report(THERMOSTAT, "occupied_heating_setpoint", 1),
    Report(THERMOSTAT, "system_mode"),
    Report(THERMOSTAT, "running_state"),
    # The switch's report is a groupcast's acknowledgement (zigbee_home.groups): it must not wait
    # out the minimum interval; a switch changes seldom, so this costs nothing on the air.
    Report(ON_OFF, "on_off", at_once=True),
    Report(ELECTRICAL, "active_power", 10),  # 10 W at a 1/1 scale
    Report(METERING, "instantaneous_demand", 10),  # 10 W at the usual 1/1000 kW scale
    Report(POWER_CONFIG, "battery_percentage_remaining", 2),  # 1 %
)

# Read once when the device is set up: scales and limits, before any value is read.
SETUP_READS: dict[int, tuple[str, ...]] = {
    THERMOSTAT: ("min_cool_setpoint_limit", "max_cool_setpoint_limit", "min_heat_setpoint_limit",
                 "max_heat_setpoint_limit", "min_setpoint_dead_band"),
    ELECTRICAL: ("ac_power_multiplier", "ac_power_divisor"),
    METERING: ("multiplier", "divisor"),
}
DRLC_CLIENT_READS = ("device_class_value", "utility_enrollment_group")

# Read after reporting is set up, so the first readings are complete.
VALUE_READS: dict[int, tuple[str, ...]] = {
    THERMOSTAT: ("local_temperature", "outdoor_temperature", "occupied_cooling_setpoint",
                 "occupied_heating_setpoint", "system_mode"),
    ON_OFF: ("on_off",),
    ELECTRICAL: ("active_power",),
    METERING: ("instantaneous_demand",),
    POWER_CONFIG: ("battery_percentage_remaining",),
}


@dataclass(frozen=True, slots=True)
class PowerScale:
    """Raw power -> kW: Electrical Measurement in W times multiplier/divisor, Metering in kW."""

    multiplier: int = 1
    divisor: int = 1
    watts: bool = True

    def kw(self, raw: int) -> float:
        value = raw * self.multiplier / (self.divisor or 1)
        return value / 1000 if self.watts else value


def temperature_c(raw: Any) -> float | None:
    """A ZCL temperature (int16, 0.01 degC) in degC; None when the device says invalid."""
    raw = int(raw)
    return None if raw == INVALID_TEMPERATURE else raw / 100


def centi_c(value_c: float) -> int:
    return round(value_c * 100)


def system_mode(raw: Any) -> str:
    try:
        return SYSTEM_MODES[Thermostat.SystemMode(int(raw))]
    except (KeyError, ValueError):
        return f"mode_{int(raw)}"


def soc_pct(raw: Any) -> float | None:
    """BatteryPercentageRemaining is in half percent (ZCL §3.3.2.2.3.2); 0xFF is unknown."""
    raw = int(raw)
    return None if raw == INVALID_PERCENTAGE else min(100.0, raw / 2)


def reading_fields(cluster_id: int, attribute: str, raw: Any, scale: PowerScale | None) -> dict[str, Any]:
    """What one attribute value says, as DeviceReading field names and units (may be empty)."""
    if raw is None:
        return {}
    if cluster_id == THERMOSTAT:
        if attribute in ("local_temperature", "outdoor_temperature"):
            value = temperature_c(raw)
            name = "indoor_c" if attribute == "local_temperature" else "outdoor_c"
            return {} if value is None else {name: value}
        if attribute == "occupied_cooling_setpoint":
            return {"cooling_setpoint_c": int(raw) / 100}
        if attribute == "occupied_heating_setpoint":
            return {"heating_setpoint_c": int(raw) / 100}
        if attribute == "system_mode":
            mode = system_mode(raw)
            return {"system_mode": mode, "on": mode != "off"}
        return {}
    if cluster_id == ON_OFF and attribute == "on_off":
        return {"on": bool(raw)}
    if cluster_id == ELECTRICAL and attribute == "active_power":
        if int(raw) == INVALID_POWER or scale is None:
            return {}
        return {"power_kw": round(scale.kw(int(raw)), 4)}
    if cluster_id == METERING and attribute == "instantaneous_demand":
        return {} if scale is None else {"power_kw": round(scale.kw(int(raw)), 4)}
    if cluster_id == POWER_CONFIG and attribute == "battery_percentage_remaining":
        value = soc_pct(raw)
        return {} if value is None else {"soc_pct": value}
    return {}

