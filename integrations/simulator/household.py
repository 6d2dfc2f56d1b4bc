"""The simulated household: what the meter sees at any moment.

Demand is a base load (what is always on), the household's own appliances on their schedules
and duty cycles (a fridge cycling, cooking, lights in the evening, dishwasher and laundry runs on
some days), an optional smooth evening peak, HVAC that follows an outdoor temperature curve, and
rooftop solar with a daily bell curve (zero at night) that makes the meter run backwards around
noon. Everything is a pure function of the local time plus seeded noise (and a seeded warmer or
cooler day), so a test can rely on it. When the scenario simulates a thermostat, the HVAC is
that device's load instead (``include_hvac=False``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from integrations.simulator.loads import Schedule, schedules_of


@dataclass(frozen=True, slots=True)
class Household:
    """Load model parameters (the ``household`` section of a scenario)."""

    base_kw: float
    evening_peak_kw: float
    hvac: dict[str, float]
    outdoor: dict[str, float]
    solar: dict[str, float]
    noise_kw: float
    seed: int
    timezone: ZoneInfo
    appliances: tuple[tuple[float, Schedule], ...] = field(default=())

    @classmethod
    def from_scenario(cls, household: dict[str, Any], timezone: str) -> Household:
        zone = ZoneInfo(timezone)
        fields = {k: v for k, v in household.items() if k != "appliances"}
        return cls(timezone=zone, appliances=tuple(schedules_of(household.get("appliances", ()), zone)), **fields)

    def _minute_of_day(self, at: datetime) -> float:
        local = at.astimezone(self.timezone)
        return local.hour * 60 + local.minute + local.second / 60

    def outdoor_c(self, at: datetime) -> float:
        """A daily sine between min and max, warmest at ``warmest_at``; each day is warmer or cooler
        by up to ``day_to_day_c`` (seeded by the date), as a run of summer days is."""
        local = at.astimezone(self.timezone)
        minute = local.hour * 60 + local.minute + local.second / 60
        phase = (minute - self.outdoor["warmest_at"]) / 1440 * 2 * math.pi
        low, high = self.outdoor["min_c"], self.outdoor["max_c"]
        swing = self.outdoor.get("day_to_day_c", 0.0)
        offset = random.Random(self.seed * 100_003 + local.toordinal()).uniform(-swing, swing) if swing else 0.0
        return low + offset + (high - low) * (1 + math.cos(phase)) / 2

    def hvac_kw(self, at: datetime) -> float:
        temp = self.outdoor_c(at)
        hvac = self.hvac
        if temp > hvac["cooling_above_c"]:
            need = temp - hvac["cooling_above_c"]
        elif temp < hvac["heating_below_c"]:
            need = hvac["heating_below_c"] - temp
        else:
            return 0.0
        return min(hvac["max_kw"], need * hvac["kw_per_degree"])

    def solar_kw(self, at: datetime) -> float:
        minute = self._minute_of_day(at)
        rise, set_ = self.solar["sunrise"], self.solar["sunset"]
        if not rise < minute < set_:
            return 0.0
        # sin**k: k = 1 is a plain arch; a larger k is the narrower bell of a real panel's day.
        return self.solar["peak_kw"] * math.sin(math.pi * (minute - rise) / (set_ - rise)) ** self.solar.get("shape", 1.0)

    def appliances_kw(self, at: datetime) -> float:
        """What the household's own appliances draw now, each on its schedule and duty cycle."""
        return sum(kw for kw, schedule in self.appliances if schedule.running(at))

    def consumption_kw(self, at: datetime, *, include_hvac: bool = True) -> float:
        """What the house draws (before solar), with seeded noise per minute."""
        minute = self._minute_of_day(at)
        evening = self.evening_peak_kw * math.exp(-(((minute - 19 * 60) / 90) ** 2))
        rng = random.Random(hash((self.seed, int(at.timestamp() // 60))))
        noise = rng.uniform(-self.noise_kw, self.noise_kw)
        hvac = self.hvac_kw(at) if include_hvac else 0.0
        appliances = self.appliances_kw(at) if self.appliances else 0.0
        return max(0.0, self.base_kw + evening + appliances + hvac + noise)

    def net_kw(self, at: datetime, extra_kw: float = 0.0, *, include_hvac: bool = True) -> float:
        """Net demand at the meter: positive imports, negative exports."""
        return self.consumption_kw(at, include_hvac=include_hvac) + extra_kw - self.solar_kw(at)
