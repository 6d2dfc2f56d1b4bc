"""Retention: what the store forgets, and when (run daily by the hub through the writer).

Messages are kept at least 12 hours whatever the configuration says (C6 4.2). With a size limit
(``store: max_size_mb``) the database is also kept within it: the oldest rows of the most
plentiful and least needed kinds go first (demand samples, then device readings, then energy
history), never a message, an event's own row or a report still owed upstream.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, and_, delete, func, select, text
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
    max_bytes: int | None = None  # the database's size limit (None: none)

    @classmethod
    def from_config(cls, config: StoreConfig) -> Retention:
        return cls(
            messages=max(timedelta(hours=config.message_retention_hours), MIN_MESSAGE_RETENTION),
            readings=timedelta(days=config.reading_retention_days),
            max_bytes=None if config.max_size_mb is None else int(config.max_size_mb * 1024 * 1024),
        )


@dataclass(frozen=True, slots=True)
class SizeTrim:
    """What one size check found and did: the bytes in use before and after, rows deleted per table."""

    used_before: int
    used_after: int
    deleted: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


# The kinds a size limit may thin, the least needed first, by the column that orders their age.
_TRIMMABLE: tuple[tuple[str, str], ...] = (
    ("demand_samples", "at"),
    ("device_readings", "at"),
    ("register_readings", "at"),
    ("interval_readings", "start"),
)
TRIM_SHARE = 0.2  # each step deletes the oldest fifth of a table's rows
TRIM_TARGET = 0.9  # trimmed down to 90% of the limit, so the next rows do not trim again at once


async def used_bytes(conn: AsyncConnection) -> int:
    """The bytes the database's rows take (SQLite: pages in use, free pages not counted; they are
    reused before the file grows. PostgreSQL: the database's size)."""
    if conn.dialect.name == "sqlite":
        pages = (await conn.execute(text("PRAGMA page_count"))).scalar_one()
        free = (await conn.execute(text("PRAGMA freelist_count"))).scalar_one()
        size = (await conn.execute(text("PRAGMA page_size"))).scalar_one()
        return int((pages - free) * size)
    return int((await conn.execute(text("SELECT pg_database_size(current_database())"))).scalar_one())


async def trim_to_size(conn: AsyncConnection, max_bytes: int) -> SizeTrim:
    """Delete the oldest rows, the least needed kinds first, until the database is within
    ``TRIM_TARGET`` of ``max_bytes`` (or nothing more may go)."""
    before = used = await used_bytes(conn)
    deleted: dict[str, int] = {}
    if used <= max_bytes:
        return SizeTrim(before, used, deleted)
    for name, column_name in _TRIMMABLE:
        table: Table = getattr(tables, name)
        column = table.c[column_name]
        while used > max_bytes * TRIM_TARGET:
            count = int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
            if count == 0:
                break
            cutoff = (await conn.execute(select(column).order_by(column).offset(
                max(int(count * TRIM_SHARE), 1) - 1).limit(1))).scalar_one()
            gone = int((await conn.execute(delete(table).where(column <= cutoff))).rowcount or 0)
            deleted[name] = deleted.get(name, 0) + gone
            used = await used_bytes(conn)
        if used <= max_bytes * TRIM_TARGET:
            break
    return SizeTrim(before, used, deleted)


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
