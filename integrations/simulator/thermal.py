"""The house's thermal model and the thermostat's control logic, as plain deterministic code.

The house is one thermal mass: its indoor temperature moves towards the outdoor temperature
through the envelope (``ua_kw_per_c``) and is pushed by the HVAC's heat (electric power times
its coefficient of performance). The thermostat follows the ZCL Thermostat cluster's model
(ZCL r8 §6.3): occupied cooling and heating setpoints, a system mode, setpoint limits and a
minimum deadband between the two setpoints, and runs the HVAC with a small hysteresis.
No Zigbee here: ``home_devices.py`` puts these behind a simulated node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MODES = ("off", "cool", "heat", "auto")


@dataclass(slots=True)
class ThermalHouse:
    """One-mass house: ``step`` moves ``indoor_c`` by the envelope and the HVAC's heat."""

    indoor_c: float
    ua_kw_per_c: float = 0.25  # heat through the envelope per degree of difference
    capacity_kwh_per_c: float = 3.0  # energy to move the whole house by one degree
    internal_gain_kw: float = 0.4  # people, appliances, sun through the windows

    def step(self, hours: float, outdoor_c: float, hvac_heat_kw: float) -> float:
        """Advance ``hours`` (exact for constant inputs); ``hvac_heat_kw`` < 0 cools."""
        if hours <= 0:
            return self.indoor_c
        gain = self.internal_gain_kw + hvac_heat_kw
        # Steady state where envelope loss balances the gains, approached exponentially.
        if self.ua_kw_per_c > 0:
            target = outdoor_c + gain / self.ua_kw_per_c
            decay = math.exp(-self.ua_kw_per_c * hours / self.capacity_kwh_per_c)
            self.indoor_c = target + (self.indoor_c - target) * decay
        else:
            self.indoor_c += gain * hours / self.capacity_kwh_per_c
        return self.indoor_c


class SetpointError(ValueError):
    """A setpoint outside the thermostat's limits or too close to the other setpoint."""


@dataclass(slots=True)
class ThermostatLogic:
    """Setpoints, mode and limits of a thermostat, and whether its HVAC runs now."""

    cooling_setpoint_c: float = 24.0
    heating_setpoint_c: float = 20.0
    system_mode: str = "cool"
    min_cool_c: float = 16.0
    max_cool_c: float = 32.0
    min_heat_c: float = 7.0
    max_heat_c: float = 30.0
    deadband_c: float = 2.0
    hysteresis_c: float = 0.5
    hvac_kw: float = 3.5  # electric power while the compressor or furnace runs
    cop: float = 3.0  # heat moved per unit of electricity
    running: str = "idle"  # "idle" | "cooling" | "heating"

    def check(self, cooling_c: float, heating_c: float) -> None:
        """Raise SetpointError unless both setpoints fit the limits and the deadband."""
        if not self.min_cool_c <= cooling_c <= self.max_cool_c:
            raise SetpointError(
                f"cooling setpoint {cooling_c:.1f} °C is outside {self.min_cool_c:.1f}-{self.max_cool_c:.1f} °C"
            )
        if not self.min_heat_c <= heating_c <= self.max_heat_c:
            raise SetpointError(
                f"heating setpoint {heating_c:.1f} °C is outside {self.min_heat_c:.1f}-{self.max_heat_c:.1f} °C"
            )
        if cooling_c - heating_c < self.deadband_c - 1e-9:
            raise SetpointError(
                f"cooling setpoint {cooling_c:.1f} °C must be at least {self.deadband_c:.1f} °C"
                f" above the heating setpoint {heating_c:.1f} °C"
            )

    def decide(self, indoor_c: float) -> str:
        """Switch the HVAC on or off for ``indoor_c``; returns and keeps the running state."""
        half = self.hysteresis_c / 2
        cool = self.system_mode in ("cool", "auto")
        heat = self.system_mode in ("heat", "auto")
        if cool and (indoor_c > self.cooling_setpoint_c + half or (
                self.running == "cooling" and indoor_c > self.cooling_setpoint_c - half)):
            self.running = "cooling"
        elif heat and (indoor_c < self.heating_setpoint_c - half or (
                self.running == "heating" and indoor_c < self.heating_setpoint_c + half)):
            self.running = "heating"
        else:
            self.running = "idle"
        return self.running

    @property
    def power_kw(self) -> float:
        return 0.0 if self.running == "idle" else self.hvac_kw

    @property
    def heat_kw(self) -> float:
        """Heat the HVAC adds to the house now (negative while cooling)."""
        if self.running == "cooling":
            return -self.hvac_kw * self.cop
        if self.running == "heating":
            return self.hvac_kw * self.cop
        return 0.0
