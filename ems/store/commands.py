"""Writes that callers await (intervals, read marks, the outbox, accounts), run by the one writer.

Each function takes the writer's connection inside its open transaction; the writer commits.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.model import EventStatusReport, IntervalReading
from ems.store import rows, tables
from ems.store.records import IntervalImport
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


IMPORT_REACH = timedelta(days=32)
"""How far before a file's first interval stored ones are looked at: the longest reading a Green
Button file holds is a billing month, which may have started that long before."""


async def import_intervals(conn: AsyncConnection, readings: Sequence[IntervalReading]) -> IntervalImport:
    """Write a file's intervals against what is stored, so nothing is counted twice.

    An interval already stored with other energy is corrected; one whose time stored readings of
    the same or a finer length already cover is left out; stored coarser readings that the file
    covers with finer ones are deleted (the finest data wins, as within one file).
    """
    by_meter: dict[str, list[IntervalReading]] = {}
    for reading in readings:
        by_meter.setdefault(reading.meter_id, []).append(reading)
    totals = [0, 0, 0, 0, 0]  # new, corrected, unchanged, covered, replaced
    for meter_id, items in by_meter.items():
        for index, count in enumerate(await _import_meter(conn, meter_id, items)):
            totals[index] += count
    return IntervalImport(*totals)


async def _import_meter(conn: AsyncConnection, meter_id: str, items: list[IntervalReading]) -> tuple[int, ...]:
    t = tables.interval_readings
    first = min(r.start for r in items)
    last = max(r.end for r in items)
    result = await conn.execute(
        select(t.c.start, t.c.duration_s, t.c.consumed_kwh, t.c.generated_kwh).where(
            t.c.meter_id == meter_id, t.c.start >= first - IMPORT_REACH, t.c.start < last
        )
    )
    stored: dict[tuple[int, int], tuple[float, float, datetime]] = {
        (int(start.timestamp()), duration_s): (consumed, generated, start)
        for start, duration_s, consumed, generated in result
    }
    # Stored starts per length: a stored reading of length d overlaps [s, e) iff it starts in (s - d, e).
    starts: dict[int, list[int]] = {}
    for start_s, duration_s in stored:
        starts.setdefault(duration_s, []).append(start_s)
    for values in starts.values():
        values.sort()
    new: list[dict[str, Any]] = []
    corrections: list[dict[str, Any]] = []
    doomed: set[tuple[int, int]] = set()
    unchanged = covered = 0
    for reading in items:
        start_s, duration_s = int(reading.start.timestamp()), reading.duration_s
        held = stored.get((start_s, duration_s))
        if held is not None:
            if _same(held[0], reading.consumed_kwh) and _same(held[1], reading.generated_kwh):
                unchanged += 1
            else:
                corrections.append(
                    {"b_start": reading.start, "b_duration": duration_s,
                     "b_consumed": reading.consumed_kwh, "b_generated": reading.generated_kwh}
                )
            continue
        end_s = start_s + duration_s
        coarser: list[tuple[int, int]] = []
        finer = False
        for length, values in starts.items():
            low = bisect_right(values, start_s - length)
            high = bisect_left(values, end_s)
            if low >= high:
                continue
            if length <= duration_s:
                finer = True
                break
            coarser.extend((values[i], length) for i in range(low, high))
        if finer:
            covered += 1
            continue
        doomed.update(coarser)
        new.append(rows.interval_row(reading))
    if doomed:
        await conn.execute(
            delete(t).where(t.c.meter_id == meter_id, t.c.start == bindparam("b_start"),
                            t.c.duration_s == bindparam("b_duration")),
            [{"b_start": stored[key][2], "b_duration": key[1]} for key in sorted(doomed)],
        )
    if corrections:
        await conn.execute(
            update(t)
            .where(t.c.meter_id == meter_id, t.c.start == bindparam("b_start"),
                   t.c.duration_s == bindparam("b_duration"))
            .values(consumed_kwh=bindparam("b_consumed"), generated_kwh=bindparam("b_generated")),
            corrections,
        )
    if new:
        await conn.execute(insert(conn, t).on_conflict_do_nothing(index_elements=["meter_id", "start", "duration_s"]), new)
    return len(new), len(corrections), unchanged, covered, len(doomed)


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


async def mark_message_read(conn: AsyncConnection, meter_id: str, message_id: int) -> bool:
    t = tables.messages
    result = await conn.execute(
        update(t)
        .where(and_(t.c.meter_id == meter_id, t.c.message_id == message_id))
        .values(read=True)
    )
    return bool(result.rowcount)


async def outbox_add(
    conn: AsyncConnection,
    kind: str,
    payload: dict[str, Any],
    created_at: datetime,
    meter_id: str | None = None,
) -> int:
    t = tables.outbox
    result = await conn.execute(
        t.insert()
        .values(kind=kind, payload=payload, created_at=created_at, attempts=0, meter_id=meter_id)
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


async def outbox_wire_id(conn: AsyncConnection, item_id: int, wire_id: int) -> None:
    t = tables.outbox
    await conn.execute(update(t).where(t.c.id == item_id).values(wire_id=wire_id))


async def outbox_failed(
    conn: AsyncConnection, item_id: int, attempts: int, next_attempt_at: datetime, error: str
) -> None:
    t = tables.outbox
    await conn.execute(
        update(t)
        .where(t.c.id == item_id)
        .values(attempts=attempts, next_attempt_at=next_attempt_at, last_error=error[:1000])
    )


# -- accounts and access (used by ems.accounts) ------------------------------------------------


async def add_user(
    conn: AsyncConnection,
    username: str,
    password_hash: str,
    role: str,
    created_at: datetime,
    *,
    only_if_first: bool = False,
) -> int | None:
    """Insert a user and return its id; None if the name is taken (or, for the first, any user exists)."""
    t = tables.users
    if only_if_first:
        taken = await conn.scalar(select(func.count()).select_from(t))
    else:
        taken = await conn.scalar(select(func.count()).select_from(t).where(t.c.username == username))
    if taken:
        return None
    result = await conn.execute(
        t.insert()
        .values(username=username, password_hash=password_hash, role=role, created_at=created_at)
        .returning(t.c.id)
    )
    return int(result.scalar_one())


async def set_password_hash(conn: AsyncConnection, user_id: int, password_hash: str) -> None:
    t = tables.users
    await conn.execute(update(t).where(t.c.id == user_id).values(password_hash=password_hash))


async def set_role(conn: AsyncConnection, user_id: int, role: str, keep_role: str) -> bool:
    """Change a user's role unless that leaves no user with ``keep_role`` (the last owner)."""
    t = tables.users
    if role != keep_role and not await _keeps_one(conn, user_id, keep_role):
        return False
    result = await conn.execute(update(t).where(t.c.id == user_id).values(role=role))
    return bool(result.rowcount)


async def delete_user(conn: AsyncConnection, user_id: int, keep_role: str) -> bool:
    """Delete a user (their sessions and tokens go with them) unless they are the last ``keep_role``."""
    t = tables.users
    if not await _keeps_one(conn, user_id, keep_role):
        return False
    result = await conn.execute(delete(t).where(t.c.id == user_id))
    return bool(result.rowcount)


async def _keeps_one(conn: AsyncConnection, user_id: int, role: str) -> bool:
    t = tables.users
    others = await conn.scalar(
        select(func.count()).select_from(t).where(t.c.role == role, t.c.id != user_id)
    )
    return bool(others)


async def add_session(
    conn: AsyncConnection,
    id_hash: str,
    user_id: int,
    csrf_token: str,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    """Insert a session, and drop the sessions that have expired meanwhile."""
    t = tables.sessions
    await conn.execute(delete(t).where(t.c.expires_at <= created_at))
    await conn.execute(
        t.insert().values(
            id_hash=id_hash,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=created_at,
            last_seen_at=created_at,
            expires_at=expires_at,
        )
    )


async def touch_session(
    conn: AsyncConnection, id_hash: str, last_seen_at: datetime, expires_at: datetime
) -> None:
    t = tables.sessions
    await conn.execute(
        update(t).where(t.c.id_hash == id_hash).values(last_seen_at=last_seen_at, expires_at=expires_at)
    )


async def delete_session(conn: AsyncConnection, id_hash: str) -> None:
    t = tables.sessions
    await conn.execute(delete(t).where(t.c.id_hash == id_hash))


async def record_login_failure(
    conn: AsyncConnection,
    username: str,
    now: datetime,
    window: timedelta,
    max_failures: int,
    first_lock: timedelta,
    max_lock: timedelta,
) -> datetime | None:
    """Count a failed sign-in; return until when the name is locked if this one locks it.

    The ``max_failures``-th failure within ``window`` locks the name for ``first_lock``, and each
    failure after a lock ends doubles it, up to ``max_lock``: a stranger guessing slows down, and
    counts restart only once the name has been quiet (no lock either) for a whole window. Rows
    nobody needs any more are deleted here, so names tried at random do not pile up.
    """
    t = tables.login_failures
    quiet_since = now - window
    await conn.execute(
        delete(t).where(
            t.c.window_start <= quiet_since,
            or_(t.c.locked_until.is_(None), t.c.locked_until <= quiet_since),
        )
    )
    row = (await conn.execute(select(t).where(t.c.username == username))).first()
    if row is None:
        failures, window_start = 1, now
    else:
        failures, window_start = row.failures + 1, row.window_start
    locked_until = None
    if failures >= max_failures:
        locked_until = now + min(first_lock * 2 ** min(failures - max_failures, 20), max_lock)
    values = {"failures": failures, "window_start": window_start, "locked_until": locked_until}
    stmt = insert(conn, t).values(username=username, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["username"], set_=values))
    return locked_until


async def remember_device(
    conn: AsyncConnection, id_hash: str, user_id: int, now: datetime, keep: int
) -> None:
    """Record (or touch) a known device; a user keeps their ``keep`` most recently used ones."""
    t = tables.known_devices
    values = {"user_id": user_id, "last_used_at": now}
    stmt = insert(conn, t).values(id_hash=id_hash, created_at=now, **values)
    await conn.execute(stmt.on_conflict_do_update(index_elements=["id_hash"], set_=values))
    newest = select(t.c.id_hash).where(t.c.user_id == user_id).order_by(t.c.last_used_at.desc()).limit(keep)
    await conn.execute(delete(t).where(t.c.user_id == user_id, t.c.id_hash.not_in(newest.scalar_subquery())))


async def clear_login_failures(conn: AsyncConnection, username: str) -> None:
    t = tables.login_failures
    await conn.execute(delete(t).where(t.c.username == username))


async def add_consent(
    conn: AsyncConnection, party: str, scopes: str, granted_by: int, granted_at: datetime
) -> int:
    t = tables.consents
    result = await conn.execute(
        t.insert()
        .values(party=party, scopes=scopes, granted_by=granted_by, granted_at=granted_at)
        .returning(t.c.id)
    )
    return int(result.scalar_one())


async def revoke_consent(conn: AsyncConnection, consent_id: int, at: datetime) -> bool:
    """Revoke a consent and every token issued under it; False if it was not active."""
    c, k = tables.consents, tables.api_tokens
    result = await conn.execute(
        update(c).where(c.c.id == consent_id, c.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    await conn.execute(
        update(k).where(k.c.consent_id == consent_id, k.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    return bool(result.rowcount)


async def add_token(
    conn: AsyncConnection,
    user_id: int,
    name: str,
    token_hash: str,
    scopes: str,
    consent_id: int | None,
    created_at: datetime,
) -> int:
    t = tables.api_tokens
    result = await conn.execute(
        t.insert()
        .values(
            user_id=user_id,
            name=name,
            token_hash=token_hash,
            scopes=scopes,
            consent_id=consent_id,
            created_at=created_at,
        )
        .returning(t.c.id)
    )
    return int(result.scalar_one())


async def revoke_token(conn: AsyncConnection, token_id: int, at: datetime) -> bool:
    t = tables.api_tokens
    result = await conn.execute(
        update(t).where(t.c.id == token_id, t.c.revoked_at.is_(None)).values(revoked_at=at)
    )
    return bool(result.rowcount)


async def add_token_use(
    conn: AsyncConnection,
    token_id: int,
    at: datetime,
    method: str,
    path: str,
    status: int,
    keep_since: datetime,
) -> None:
    """Log one use of a token, mark the token used, and forget uses older than ``keep_since``."""
    u, k = tables.token_uses, tables.api_tokens
    await conn.execute(
        u.insert().values(token_id=token_id, at=at, method=method[:8], path=path[:255], status=status)
    )
    await conn.execute(update(k).where(k.c.id == token_id).values(last_used_at=at))
    await conn.execute(delete(u).where(u.c.at < keep_since))


# -- DR status reports (used by ems.dr.events) --------------------------------------------------

# The statuses an event has at most once (SE §2.12): received, started and every final one. Opt-out and
# opt-in may alternate (the DR core refuses the same choice twice), and a refusal answers each refused frame.
ONCE_PER_EVENT = frozenset({0x01, 0x02, 0x03, 0x06, 0x07, 0x08, 0x09, 0x0A})


async def record_event_status(
    conn: AsyncConnection,
    report: EventStatusReport,
    payload: dict[str, Any],
    created_at: datetime,
    participation: dict[str, Any] | None = None,
) -> int | None:
    """One status of a DR event, in one transaction: the customer's choice that caused it (a
    ``dr_participation`` row, if any), its history row and its outbox item. Returns the outbox id,
    or None when this once-only status was already reported for (meter, issuer event id, status): then nothing but the choice is written, so the
    utility never hears one status twice, whatever the DR core's memory lost (a restart, a resend)."""
    if participation is not None:
        p = tables.dr_participation
        stmt = insert(conn, p).on_conflict_do_update(
            index_elements=["meter_id", "issuer_event_id", "device_id"],
            set_={k: participation[k] for k in ("opted_out", "changed_at", "changed_by")},
        )
        await conn.execute(stmt, participation)
    t = tables.event_status_reports
    if int(report.status) in ONCE_PER_EVENT:
        same = and_(t.c.meter_id == report.meter_id, t.c.issuer_event_id == report.issuer_event_id,
                    t.c.status == int(report.status))
        if (await conn.execute(select(t.c.id).where(same).limit(1))).first() is not None:
            return None
    await conn.execute(t.insert().values(rows.status_row(report)))
    return await outbox_add(conn, "EventStatusReport", payload, created_at, report.meter_id)


async def confirm_message_once(conn: AsyncConnection, meter_id: str, message_id: int, confirmed_at: datetime,
                               answer: str | None, payload: dict[str, Any]) -> int | None:
    """Mark a message confirmed and queue its MessageConfirmation, in one transaction, only if it was
    not confirmed yet: per (meter, message id) the utility hears one confirmation (a double click, two
    pages). Returns the outbox id, or None when it was already confirmed (or is not stored)."""
    t = tables.messages
    result = await conn.execute(
        update(t)
        .where(and_(t.c.meter_id == meter_id, t.c.message_id == message_id, t.c.confirmed_at.is_(None)))
        .values(confirmed_at=confirmed_at, confirmation_answer=answer, read=True)
    )
    if not result.rowcount:
        return None
    return await outbox_add(conn, "MessageConfirmed", payload, confirmed_at, meter_id)
