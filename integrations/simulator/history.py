"""Past interval readings for the demo, made from the scenario's household model.

A fresh demo has no history, so the baseline of a DR event ("the same hours on the ten most
recent similar days") and the year's usage chart would have nothing to stand on. The demo
seeds the weeks before the simulated meter's own one-day profile with what the same household
would have used, marked nowhere as real meter data: only ``ems demo`` does this.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ems.model import IntervalReading
from integrations.simulator.household import Household

SAMPLES_PER_INTERVAL = 3


def synthesize_intervals(
    household: Household, meter_id: str, start: datetime, end: datetime, period: timedelta
) -> list[IntervalReading]:
    """Intervals from ``start`` (aligned down to ``period``) up to ``end``, net of the solar."""
    period_s = int(period.total_seconds())
    first = datetime.fromtimestamp(int(start.timestamp()) // period_s * period_s, start.tzinfo)
    step = period / SAMPLES_PER_INTERVAL
    hours = step.total_seconds() / 3600
    readings = []
    at = first
    while at + period <= end:
        consumed = generated = 0.0
        for i in range(SAMPLES_PER_INTERVAL):
            net = household.net_kw(at + step * i + step / 2)
            if net >= 0:
                consumed += net * hours
            else:
                generated -= net * hours
        readings.append(IntervalReading(meter_id, at, period_s, round(consumed, 4), round(generated, 4)))
        at += period
    return readings
