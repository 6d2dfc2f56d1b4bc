"""Watches the bill as intervals arrive and raises local "energy usage warning" messages.

When new intervals are read, the cycle is costed again through ``ems.billing`` (the same
pipeline as ``GET /api/v1/cost``, the meter's prices included when they are in use), at most
once per ``min_gap_s``. Entering a new tier, or a projected bill above the customer's threshold,
becomes a ``UtilityMessage`` of local origin on the bus, shown and stored like the utility's
own messages (C6 3.2 step 5b-ii). A warning already held (also after a restart) is not repeated.
Each warning is made by ``ems.local_text.local_message``: it keeps its catalog template and values,
so the dashboard and the display show it in each reader's language (C6 4.1).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from ems import billing
from ems.bus import Unsubscribe
from ems.model import IntervalReading
from ems.tasks import TaskSet

if TYPE_CHECKING:
    from ems.costs import CycleReport

_LOGGER = logging.getLogger(__name__)


class BillWatch:
    """One per appliance; does nothing when no rate plan is configured."""

    def __init__(self, hub: Any, min_gap_s: float = 30.0) -> None:
        self._hub = hub
        self._min_gap_s = min_gap_s
        self._previous: dict[str, CycleReport] = {}
        self._pending: set[str] = set()
        self._tasks = TaskSet(_LOGGER, "bill-watch")
        self._unsubscribe: Unsubscribe | None = None

    async def start(self) -> None:
        tariff = self._hub.config.tariff
        if tariff is None or tariff.active_plan is None:
            _LOGGER.info("No rate plan configured: costs and usage warnings are off")
            return
        self._unsubscribe = self._hub.bus.listen(IntervalReading, self._on_interval)

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._tasks.cancel_all()

    def _on_interval(self, reading: IntervalReading) -> None:
        if reading.meter_id in self._pending:
            return
        self._pending.add(reading.meter_id)
        self._tasks.spawn(self._check_later(reading.meter_id), "bill-check")

    async def _check_later(self, meter_id: str) -> None:
        try:
            await asyncio.sleep(1.0)  # let a burst of intervals (a profile page) land first
            await self.check(meter_id)
            await asyncio.sleep(self._min_gap_s)
        finally:
            self._pending.discard(meter_id)

    async def check(self, meter_id: str) -> list[Any]:
        """Cost the cycle now (``ems.billing``, as the dashboard does) and publish the warnings it gives."""
        hub = self._hub
        cost = await billing.meter_cost(hub, meter_id)  # loads the numpy engine off the loop
        from ems.costs import usage_warnings  # loaded by now

        warnings = usage_warnings(self._previous.get(meter_id), cost.report, meter_id=meter_id,
                                  threshold_cost=cost.warning_threshold_cost, now=cost.at)
        self._previous[meter_id] = cost.report
        self._publish_demand(meter_id, cost)
        # A warning about what the customer switched off (program preferences) is not made.
        fresh = [w for w in warnings if (meter_id, w.message_id) not in hub.state.messages
                 and hub.preferences.wants_notice(w.template)]
        for warning in fresh:
            _LOGGER.info("[%s] %s", meter_id, warning.text)
            hub.bus.publish(warning)
        return fresh

    def _publish_demand(self, meter_id: str, cost: Any) -> None:
        """The level the bill's demand charges rise above now, for the rules (``demand_window: {above_peak: true}``)."""
        from ems.demand import level_now
        from ems.model import CycleDemand

        peaks = cost.report.cycle.demand
        if not peaks:
            return
        hub = self._hub
        plan = hub.config.tariff.active_plan
        level = level_now(plan, peaks, cost.at, hub.config.site.timezone)
        # Published also without a level (no charge covers this moment, or none has a peak read in
        # this cycle yet), so last cycle's peak never stands for this one's.
        hub.bus.publish(CycleDemand(meter_id, level, peaks[0].window_minutes, cost.at))
