"""When a simulated load runs, and what the home's devices draw over a stretch of past time.

``Schedule`` is the one answer to "does this appliance run now": windows of the local day, the
days of the week it runs on, and a duty cycle within the windows (a fridge's compressor, a water
heater's element). The household's own appliances (``household.py``), the home's simulated plugs
and load controllers (``home_devices.py``) and the seeded history all ask it, so the history shows
the same day as the live meter.

``HomeLoadModel`` runs the scenario's home devices by themselves (no DR, nobody at a button) over
past time: the thermostat's thermal model, the battery's charge and the schedules, minute by minute.
``ems demo`` seeds its history with it and the simulated meter fills its last day's profile with it,
so the weeks before the demo started look like the day that follows. Plain code, no Zigbee.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from integrations.simulator.thermal import ThermalHouse, ThermostatLogic

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAY: tuple[tuple[int, int], ...] = ((0, 1440),)
MAX_STEP_H = 5 / 60  # the thermal model is stepped at most five simulated minutes at a time


@dataclass(frozen=True, slots=True)
class Schedule:
    """Windows of the local day (minutes after midnight; start > end spans midnight), the weekdays
    (0 = Monday) the appliance runs on, and a duty cycle: on for ``on_min`` of every ``every_min``
    minutes of the day while in a window (``every_min`` 0: on for the whole window)."""

    windows: tuple[tuple[int, int], ...] = ALL_DAY
    days: frozenset[int] = frozenset(range(7))
    on_min: int = 0
    every_min: int = 0
    timezone: ZoneInfo = ZoneInfo("UTC")

    @classmethod
    def of(cls, spec: dict[str, Any], timezone: ZoneInfo) -> Schedule:
        """From a scenario entry's ``schedule``, ``days`` and ``duty`` keys (all optional)."""
        windows = tuple((int(w["start"]), int(w["end"])) for w in spec.get("schedule") or ()) or ALL_DAY
        days = frozenset(WEEKDAYS.index(d) for d in spec.get("days") or WEEKDAYS)
        duty = spec.get("duty") or {}
        return cls(windows, days, int(duty.get("on_min", 0)), int(duty.get("every_min", 0)), timezone)

    def running(self, at: datetime) -> bool:
        local = at.astimezone(self.timezone)
        if local.weekday() not in self.days:
            return False
        minute = local.hour * 60 + local.minute + local.second / 60
        if not any(start <= minute < end if start <= end else (minute >= start or minute < end)
                   for start, end in self.windows):
            return False
        return not self.every_min or minute % self.every_min < self.on_min


def schedules_of(entries: Iterable[dict[str, Any]], timezone: ZoneInfo) -> list[tuple[float, Schedule]]:
    """(kW, schedule) of each scenario entry with a ``kw`` or ``nominal_kw``."""
    return [(float(e.get("kw", e.get("nominal_kw", 0.0))), Schedule.of(e, timezone)) for e in entries]


class _Battery:
    """The simulated battery's own rule (as ``SimBattery`` in auto mode): full power in its
    windows, stopping at 100 % and at the reserve."""

    def __init__(self, spec: dict[str, Any], timezone: ZoneInfo) -> None:
        self.capacity_kwh = float(spec["capacity_kwh"])
        self.max_kw = float(spec["max_kw"])
        self.soc_pct = float(spec["soc_pct"])
        self.reserve_pct = float(spec["reserve_pct"])
        self.charge = Schedule.of({"schedule": spec["charge"]}, timezone) if spec["charge"] else None
        self.discharge = Schedule.of({"schedule": spec["discharge"]}, timezone) if spec["discharge"] else None

    def step(self, at: datetime, hours: float, time_scale: float = 1.0) -> float:
        """The mean kW over ``hours`` from ``at`` (charging positive); the charge moves
        ``time_scale`` times as fast, as the live battery's does."""
        power = 0.0
        if self.charge is not None and self.charge.running(at) and self.soc_pct < 100.0 - 1e-9:
            power = self.max_kw
        elif self.discharge is not None and self.discharge.running(at) and self.soc_pct > self.reserve_pct + 1e-9:
            power = -self.max_kw
        if power:
            # Only what fits: the last step of a charge is a part step, as the live battery's.
            room_kwh = ((100.0 - self.soc_pct) if power > 0 else (self.soc_pct - self.reserve_pct)) \
                / 100 * self.capacity_kwh
            wanted_kwh = abs(power) * hours * time_scale
            if wanted_kwh <= 0:
                return 0.0
            energy = min(wanted_kwh, room_kwh)
            self.soc_pct += (energy if power > 0 else -energy) / self.capacity_kwh * 100
            return power * energy / wanted_kwh
        return 0.0


class HomeLoadModel:
    """The scenario's home devices running by themselves; ``series`` gives their kW step by step."""

    def __init__(self, home: dict[str, Any] | None, household: Any) -> None:
        self.household = household
        tz = household.timezone
        self.time_scale = float((home or {}).get("time_scale", 1.0))
        self._switched: list[tuple[float, Schedule]] = []
        self._thermostat: tuple[ThermalHouse, ThermostatLogic] | None = None
        self._batteries: list[_Battery] = []
        for spec in (home or {}).get("devices", []):
            kind = spec["kind"]
            if kind in ("plug", "load_controller"):
                if spec.get("on", True):
                    self._switched.append((float(spec["nominal_kw"]), Schedule.of(spec, tz)))
            elif kind == "thermostat" and self._thermostat is None:
                house = home["house"]  # type: ignore[index]
                self._thermostat = (
                    ThermalHouse(indoor_c=house["indoor_c"], ua_kw_per_c=house["ua_kw_per_c"],
                                 capacity_kwh_per_c=house["capacity_kwh_per_c"],
                                 internal_gain_kw=house["internal_gain_kw"]),
                    ThermostatLogic(
                        cooling_setpoint_c=spec["cooling_setpoint_c"], heating_setpoint_c=spec["heating_setpoint_c"],
                        system_mode=spec["system_mode"], min_cool_c=spec["min_cool_c"],
                        max_cool_c=spec["max_cool_c"], min_heat_c=spec["min_heat_c"],
                        max_heat_c=spec["max_heat_c"], deadband_c=spec["deadband_c"], hvac_kw=spec["hvac_kw"],
                        cop=spec["cop"]))
            elif kind == "battery":
                self._batteries.append(_Battery(spec, tz))

    @property
    def has_thermostat(self) -> bool:
        return self._thermostat is not None

    def series(self, start: datetime, end: datetime, step: timedelta,
               warm_up: timedelta = timedelta(days=1)) -> list[float]:
        """The devices' mean kW over each ``step`` from ``start`` to ``end``. The thermal model and
        the battery run ``warm_up`` before ``start`` first, so the first steps are not a cold start."""
        out: list[float] = []
        at = start - warm_up
        hours = step.total_seconds() / 3600
        warm_step = max(step, timedelta(minutes=5))
        while at < start:  # coarser steps suffice to settle the state
            self._advance(at, warm_step.total_seconds() / 3600)
            at += warm_step
        at = start
        while at < end:
            out.append(self._advance(at, hours))
            at += step
        return out

    def _advance(self, at: datetime, hours: float) -> float:
        middle = at + timedelta(hours=hours / 2)
        kw = sum(kw for kw, schedule in self._switched if schedule.running(middle))
        if self._thermostat is not None:
            house, logic = self._thermostat
            outdoor = self.household.outdoor_c(middle)
            remaining, energy = hours * self.time_scale, 0.0
            while remaining > 1e-12:
                part = min(remaining, MAX_STEP_H)
                logic.decide(house.indoor_c)
                energy += logic.power_kw * part
                house.step(part, outdoor, logic.heat_kw)
                remaining -= part
            kw += energy / (hours * self.time_scale) if hours and self.time_scale else 0.0
        for battery in self._batteries:
            kw += battery.step(middle, hours, self.time_scale)
        return kw
