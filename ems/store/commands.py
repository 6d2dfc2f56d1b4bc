"""Writes that callers await (bulk intervals, read marks, the outbox), run by the one writer.

Each function takes the writer's connection inside its open transaction; the writer commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.model import IntervalReading
from ems.store import rows, tables
from ems.store.writer import insert


async def add_intervals(conn: AsyncConnection, readings: Sequence[IntervalReading]) -> int:
    """Insert intervals, skipping those already stored; return how many were new."""
    unique: dict[tuple[Any, ...], dict[str, Any]] = {}
    for reading in readings:
        row = rows.interval_row(reading)
        unique.setdefault((reading.meter_id, row["start"], reading.duration_s), row)
    if not unique:
        return 0
    t = tables.interval_readings
    stmt = insert(conn, t).on_conflict_do_nothing(index_elements=["meter_id", "start", "duration_s"])
    if conn.dialect.supports_sane_multi_rowcount:
        # SQLite: one executemany; its rowcount counts only the rows really inserted.
        result = await conn.execute(stmt, list(unique.values()))
        return int(result.rowcount)
    # Drivers without a reliable executemany rowcount (asyncpg): RETURNING yields only the
    # rows really inserted.
    result = await conn.execute(stmt.returning(t.c.meter_id), list(unique.values()))
    return len(result.all())


async def mark_message_read(conn: AsyncConnection, meter_id: str, message_id: int) -> bool:
    t = tables.messages
    result = await conn.execute(
        update(t)
        .where(and_(t.c.meter_id == meter_id, t.c.message_id == message_id))
        .values(read=True)
    )
    return bool(result.rowcount)


async def outbox_add(
    conn: AsyncConnection, kind: str, payload: dict[str, Any], created_at: datetime
) -> int:
    t = tables.outbox
    result = await conn.execute(
        t.insert()
        .values(kind=kind, payload=payload, created_at=created_at, attempts=0)
        .returning(t.c.id)
    )
    return int(result.scalar_one())


async def outbox_delivered(conn: AsyncConnection, item_id: int, at: datetime) -> None:
    t = tables.outbox
    await conn.execute(
        update(t)
        .where(t.c.id == item_id)
        .values(delivered_at=at, next_attempt_at=None, attempts=t.c.attempts + 1)
    )


async def outbox_failed(
    conn: AsyncConnection, item_id: int, attempts: int, next_attempt_at: datetime, error: str
) -> None:
    t = tables.outbox
    await conn.execute(
        update(t)
        .where(t.c.id == item_id)
        .values(attempts=attempts, next_attempt_at=next_attempt_at, last_error=error[:1000])
    )
