"""The simulated utility's rate: which price applies now, from time of day and block use.

The published price is the time-of-use period's price (if the rate has periods) plus the
block price for the energy used so far in the billing period. A new price is published
whenever the period or the block changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class PricePoint:
    """What the meter publishes: the price now, its tier and label, and when it ends."""

    price: float
    tier: int
    label: str
    block: int
    period: str
    ends_at: datetime | None


@dataclass(frozen=True, slots=True)
class SimulatedRate:
    """The ``rate`` section of a scenario, able to answer "what is the price now"."""

    settings: dict[str, Any]
    timezone: ZoneInfo

    @property
    def number_of_tiers(self) -> int:
        tou_tiers = {p["tier"] for p in self.settings["tou"]}
        return max(tou_tiers) if tou_tiers else len(self.settings["block_prices"])

    def block_for(self, period_kwh: float) -> int:
        """0-based block index for the energy used so far in the block period."""
        return sum(1 for t in self.settings["block_thresholds_kwh"] if period_kwh >= t)

    def price_at(self, at: datetime, period_kwh: float) -> PricePoint:
        block = self.block_for(period_kwh)
        block_price = self.settings["block_prices"][block]
        local = at.astimezone(self.timezone)
        minute = local.hour * 60 + local.minute
        for period in self.settings["tou"]:
            if period["start"] <= minute < period["end"]:
                end_local = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(
                    minutes=period["end"]
                )
                return PricePoint(
                    price=round(period["price"] + block_price, 6),
                    tier=period["tier"],
                    label=self.settings["label"],
                    block=block,
                    period=period["name"],
                    ends_at=end_local.astimezone(at.tzinfo),
                )
        return PricePoint(
            price=block_price,
            tier=block + 1,
            label=self.settings["label"],
            block=block,
            period="",
            ends_at=None,
        )
