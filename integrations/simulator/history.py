"""Past interval readings for the demo, made from the scenario's household model.

A fresh demo has no history, so the baseline of a DR event ("the same hours on the ten most
recent similar days") and the year's usage chart would have nothing to stand on. The demo
seeds the weeks before the simulated meter's own one-day profile with what the same household
would have used, marked nowhere as real meter data: only ``ems demo`` does this.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ems.model import IntervalReading
from integrations.simulator.household import Household

SAMPLES_PER_INTERVAL = 3


def home_load(home: dict[str, Any] | None) -> Callable[[datetime, Any], float]:
    """The kW the scenario's home devices draw at a moment, as they run by themselves (no DR):
    plugs and load controllers on their schedules (the thermostat's HVAC is the household's own term)."""
    loads = []
    for device in (home or {}).get("devices", []):
        if device["kind"] in ("plug", "load_controller") and device.get("on", True):
            windows = tuple((int(w["start"]), int(w["end"])) for w in device.get("schedule", ())) or ((0, 1440),)
            loads.append((float(device["nominal_kw"]), windows))

    def at(moment: datetime, tz: Any) -> float:
        local = moment.astimezone(tz)
        minute = local.hour * 60 + local.minute
        return sum(kw for kw, windows in loads
                   if any(a <= minute < b if a <= b else (minute >= a or minute < b) for a, b in windows))

    return at


def synthesize_intervals(
    household: Household, meter_id: str, start: datetime, end: datetime, period: timedelta,
    home: dict[str, Any] | None = None,
) -> list[IntervalReading]:
    """Intervals from ``start`` (aligned down to ``period``) up to ``end``, net of the solar, with
    the home devices' own load when the scenario has a home."""
    devices = home_load(home)
    period_s = int(period.total_seconds())
    first = datetime.fromtimestamp(int(start.timestamp()) // period_s * period_s, start.tzinfo)
    step = period / SAMPLES_PER_INTERVAL
    hours = step.total_seconds() / 3600
    readings = []
    at = first
    while at + period <= end:
        consumed = generated = 0.0
        for i in range(SAMPLES_PER_INTERVAL):
            moment = at + step * i + step / 2
            net = household.net_kw(moment, devices(moment, household.timezone))
            if net >= 0:
                consumed += net * hours
            else:
                generated -= net * hours
        readings.append(IntervalReading(meter_id, at, period_s, round(consumed, 4), round(generated, 4)))
        at += period
    return readings
