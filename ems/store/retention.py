"""Retention: what the store forgets, and when (run daily by the hub through the writer).

Messages are kept at least 12 hours whatever the configuration says (C6 4.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.config import StoreConfig
from ems.store import tables
from ems.store.records import PurgeResult

MIN_MESSAGE_RETENTION = timedelta(hours=12)
DEMAND_RETENTION = timedelta(days=35)
DELIVERED_OUTBOX_RETENTION = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each kind of row is kept."""

    messages: timedelta
    readings: timedelta
    demand: timedelta = DEMAND_RETENTION
    delivered_outbox: timedelta = DELIVERED_OUTBOX_RETENTION

    @classmethod
    def from_config(cls, config: StoreConfig) -> Retention:
        return cls(
            messages=max(timedelta(hours=config.message_retention_hours), MIN_MESSAGE_RETENTION),
            readings=timedelta(days=config.reading_retention_days),
        )


async def purge(conn: AsyncConnection, retention: Retention, now: datetime) -> PurgeResult:
    """Delete what is older than its retention; return how many rows went, per table."""
    readings_horizon = now - retention.readings

    async def run(statement: object) -> int:
        result = await conn.execute(statement)  # type: ignore[call-overload]
        return int(result.rowcount or 0)

    m, d, i, r = tables.messages, tables.demand_samples, tables.interval_readings, tables.register_readings
    p, e, s, o = tables.prices, tables.dr_events, tables.event_status_reports, tables.outbox
    return PurgeResult(
        messages=await run(delete(m).where(m.c.received_at < now - retention.messages)),
        demand_samples=await run(delete(d).where(d.c.at < now - retention.demand)),
        interval_readings=await run(delete(i).where(i.c.start < readings_horizon)),
        register_readings=await run(delete(r).where(r.c.at < readings_horizon)),
        # Prices and DR events ended long ago are billing history: kept as long as readings.
        price_signals=await run(delete(p).where(p.c.end < readings_horizon)),
        dr_events=await run(delete(e).where(e.c.end_at < readings_horizon)),
        event_status_reports=await run(delete(s).where(s.c.at < readings_horizon)),
        outbox=await run(
            delete(o).where(
                and_(
                    o.c.delivered_at.is_not(None),
                    o.c.delivered_at < now - retention.delivered_outbox,
                )
            )
        ),
    )
