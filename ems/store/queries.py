"""Read repositories: plain async functions over a connection, returning domain values.

Reads never go through the writer; on SQLite, WAL lets them run beside it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, Row, cast, extract, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncConnection

from ems.model import EventStatusReport, IntervalReading, MeterInfo, MeterReading, PriceSignal
from ems.store import rows, tables
from ems.store.records import OutboxRecord, StoredEvent, StoredMessage

if TYPE_CHECKING:
    from ems.costs import ReadingArrays

# Rows converted to columns per step of a streamed read: each step holds the loop well under a
# millisecond (512 Row objects, four small arrays), never the whole window. Small steps also keep
# the rows from living long enough to be promoted by the garbage collector (4,096-row steps
# triggered a full collection on every 46,000-row read: 180-260 ms of stall on the loaded test box).
COLUMN_STEP_ROWS = 512


async def meter_ids(conn: AsyncConnection) -> list[str]:
    """Every meter the store knows of, by info or by any reading."""
    query = union(
        *(
            select(t.c.meter_id).group_by(t.c.meter_id)
            for t in (
                tables.meters,
                tables.interval_readings,
                tables.demand_samples,
                tables.register_readings,
            )
        )
    )
    result = await conn.execute(query)
    return sorted(result.scalars())


async def meters(conn: AsyncConnection) -> list[MeterInfo]:
    t = tables.meters
    result = await conn.execute(select(t).order_by(t.c.meter_id))
    return [rows.meter_info(row) for row in result]


async def intervals(
    conn: AsyncConnection, meter_id: str, start: datetime, end: datetime
) -> list[IntervalReading]:
    """Intervals of one meter that start in [start, end), oldest first."""
    t = tables.interval_readings
    result = await conn.execute(
        select(t)
        .where(t.c.meter_id == meter_id, t.c.start >= start, t.c.start < end)
        .order_by(t.c.start, t.c.duration_s)
    )
    return [rows.interval_reading(row) for row in result]


async def interval_columns(
    conn: AsyncConnection, meter_id: str, start: datetime, end: datetime
) -> ReadingArrays:
    """Intervals of one meter that start in [start, end), oldest first, as numpy columns.

    What ``intervals`` returns, without a Python object per row: the database turns the start into
    epoch seconds (SQLite ``strftime('%s')``, PostgreSQL ``EXTRACT(EPOCH)``) and the rows are read
    in steps of ``COLUMN_STEP_ROWS``, each turned into arrays at once, so a month of 1-minute
    intervals never holds the event loop for more than a step (the bill check, every minute).
    """
    import numpy as np  # on first use: an appliance without a rate plan never loads it

    from ems.costs import ReadingArrays

    t = tables.interval_readings
    query = (
        select(cast(extract("epoch", t.c.start), BigInteger), t.c.duration_s, t.c.consumed_kwh, t.c.generated_kwh)
        .where(t.c.meter_id == meter_id, t.c.start >= start, t.c.start < end)
        .order_by(t.c.start, t.c.duration_s)
    )
    steps: list[tuple[np.ndarray, ...]] = []
    async with conn.stream(query.execution_options(yield_per=COLUMN_STEP_ROWS)) as result:
        async for part in result.partitions(COLUMN_STEP_ROWS):
            start_s, duration_s, consumed, generated = zip(*part, strict=True)
            steps.append((np.array(start_s, dtype=np.int64), np.array(duration_s, dtype=np.int64),
                          np.array(consumed, dtype=np.float64), np.array(generated, dtype=np.float64)))
    if not steps:
        return ReadingArrays.from_columns([], [], [], [])
    if len(steps) == 1:
        return ReadingArrays(*steps[0])
    return ReadingArrays(*(np.concatenate(column) for column in zip(*steps, strict=True)))


async def interval_count(conn: AsyncConnection, meter_id: str, start: datetime, end: datetime) -> int:
    """How many intervals of one meter start in [start, end) (counted by the database, off the loop)."""
    t = tables.interval_readings
    query = select(func.count()).where(t.c.meter_id == meter_id, t.c.start >= start, t.c.start < end)
    return int(await conn.scalar(query) or 0)


async def latest_interval(
    conn: AsyncConnection, meter_id: str, start: datetime | None = None, end: datetime | None = None
) -> IntervalReading | None:
    """The meter's latest interval (of those starting in [start, end) when given): one row read."""
    t = tables.interval_readings
    query = select(t).where(t.c.meter_id == meter_id)
    if start is not None:
        query = query.where(t.c.start >= start)
    if end is not None:
        query = query.where(t.c.start < end)
    result = await conn.execute(query.order_by(t.c.start.desc(), t.c.duration_s.desc()).limit(1))
    row = result.first()
    return None if row is None else rows.interval_reading(row)


async def demand_samples(
    conn: AsyncConnection, meter_id: str, start: datetime, end: datetime
) -> list[MeterReading]:
    """Demand samples of one meter taken in [start, end), oldest first, as MeterReadings."""
    t = tables.demand_samples
    result = await conn.execute(
        select(t.c.at, t.c.demand_kw)
        .where(t.c.meter_id == meter_id, t.c.at >= start, t.c.at < end)
        .order_by(t.c.at, t.c.id)
    )
    return [MeterReading(meter_id, read_at=row.at, demand_kw=row.demand_kw) for row in result]


async def latest_demand(conn: AsyncConnection, meter_id: str) -> MeterReading | None:
    t = tables.demand_samples
    result = await conn.execute(
        select(t.c.at, t.c.demand_kw)
        .where(t.c.meter_id == meter_id)
        .order_by(t.c.at.desc(), t.c.id.desc())
        .limit(1)
    )
    row = result.first()
    return None if row is None else MeterReading(meter_id, read_at=row.at, demand_kw=row.demand_kw)


async def latest_register(conn: AsyncConnection, meter_id: str) -> MeterReading | None:
    """The latest value of each register (a report may carry only one of them)."""
    t = tables.register_readings
    latest: dict[str, Any] = {}
    read_at = None
    for column in ("summation_delivered_kwh", "summation_received_kwh"):
        result = await conn.execute(
            select(t.c.at, t.c[column])
            .where(t.c.meter_id == meter_id, t.c[column].is_not(None))
            .order_by(t.c.at.desc(), t.c.id.desc())
            .limit(1)
        )
        row = result.first()
        if row is not None:
            latest[column] = row[1]
            read_at = row.at if read_at is None else max(read_at, row.at)
    if read_at is None:
        return None
    return MeterReading(meter_id, read_at=read_at, **latest)


async def prices(
    conn: AsyncConnection, meter_id: str | None, since: datetime
) -> list[PriceSignal]:
    """Prices (of one meter, or all) not ended before ``since``, in the order received."""
    t = tables.prices
    query = select(t).where(or_(t.c.end.is_(None), t.c.end > since))
    if meter_id is not None:
        query = query.where(t.c.meter_id == meter_id)
    result = await conn.execute(query.order_by(t.c.received_at, t.c.id))
    return [rows.price_signal(row) for row in result]


async def messages(conn: AsyncConnection, since: datetime) -> list[StoredMessage]:
    """Messages received at or after ``since``, oldest first, with their marks."""
    t = tables.messages
    result = await conn.execute(
        select(t).where(t.c.received_at >= since).order_by(t.c.received_at, t.c.id)
    )
    return [rows.stored_message(row) for row in result]


async def events(conn: AsyncConnection, since: datetime) -> list[StoredEvent]:
    """DR events not ended before ``since`` (running, upcoming or ended since), by start."""
    t = tables.dr_events
    result = await conn.execute(
        select(t).where(t.c.end_at >= since).order_by(t.c.start, t.c.id)
    )
    return [rows.stored_event(row) for row in result]


async def event_status_history(
    conn: AsyncConnection, issuer_event_id: int, meter_id: str | None = None
) -> list[EventStatusReport]:
    t = tables.event_status_reports
    query = select(t).where(t.c.issuer_event_id == issuer_event_id)
    if meter_id is not None:
        query = query.where(t.c.meter_id == meter_id)
    result = await conn.execute(query.order_by(t.c.at, t.c.id))
    return [rows.status_report(row) for row in result]


async def outbox_pending(conn: AsyncConnection) -> list[OutboxRecord]:
    """Undelivered outbox rows, oldest first."""
    t = tables.outbox
    result = await conn.execute(select(t).where(t.c.delivered_at.is_(None)).order_by(t.c.id))
    return [rows.outbox_record(row) for row in result]


async def outbox_route_pending(
    conn: AsyncConnection, meter_id: str | None, kind: str
) -> list[OutboxRecord]:
    """Undelivered rows of one route (a meter, or None for the premise, and a kind), oldest first."""
    t = tables.outbox
    meter = t.c.meter_id.is_(None) if meter_id is None else t.c.meter_id == meter_id
    result = await conn.execute(
        select(t).where(t.c.delivered_at.is_(None), t.c.kind == kind, meter).order_by(t.c.id)
    )
    return [rows.outbox_record(row) for row in result]



# -- accounts and access: rows, mapped to records by ems.accounts ------------------------------


async def user_count(conn: AsyncConnection) -> int:
    return int(await conn.scalar(select(func.count()).select_from(tables.users)) or 0)


async def user_by_name(conn: AsyncConnection, username: str) -> Row[Any] | None:
    t = tables.users
    return (await conn.execute(select(t).where(t.c.username == username))).first()


async def users(conn: AsyncConnection) -> list[Row[Any]]:
    t = tables.users
    return list(await conn.execute(select(t).order_by(t.c.username)))


async def session_with_user(conn: AsyncConnection, id_hash: str) -> Row[Any] | None:
    """A session and its user's name and role (the session's columns, then ``username``, ``role``)."""
    s, u = tables.sessions, tables.users
    result = await conn.execute(
        select(s, u.c.username, u.c.role, u.c.created_at.label("user_created_at"),
               u.c.language.label("user_language"), u.c.temperature_unit.label("user_temperature_unit"))
        .join(u, u.c.id == s.c.user_id)
        .where(s.c.id_hash == id_hash)
    )
    return result.first()


async def login_failure(conn: AsyncConnection, username: str) -> Row[Any] | None:
    t = tables.login_failures
    return (await conn.execute(select(t).where(t.c.username == username))).first()


async def known_device_user(conn: AsyncConnection, id_hash: str) -> int | None:
    """The user a known device (by its cookie's digest) signed in as, or None."""
    t = tables.known_devices
    return await conn.scalar(select(t.c.user_id).where(t.c.id_hash == id_hash))


def _tokens_query() -> Any:
    k, u, c = tables.api_tokens, tables.users, tables.consents
    return (
        select(
            k,
            u.c.username,
            u.c.role,
            u.c.created_at.label("user_created_at"),
            c.c.party,
            c.c.revoked_at.label("consent_revoked_at"),
        )
        .join(u, u.c.id == k.c.user_id)
        .outerjoin(c, c.c.id == k.c.consent_id)
    )


async def token_by_hash(conn: AsyncConnection, token_hash: str) -> Row[Any] | None:
    """A token with its user's name and role and its consent's party and revocation."""
    k = tables.api_tokens
    return (await conn.execute(_tokens_query().where(k.c.token_hash == token_hash))).first()


async def tokens(conn: AsyncConnection) -> list[Row[Any]]:
    """Every token, newest first, with the same columns as ``token_by_hash``."""
    k = tables.api_tokens
    return list(await conn.execute(_tokens_query().order_by(k.c.created_at.desc(), k.c.id.desc())))


async def consent(conn: AsyncConnection, consent_id: int) -> Row[Any] | None:
    c, u = tables.consents, tables.users
    result = await conn.execute(
        select(c, u.c.username).outerjoin(u, u.c.id == c.c.granted_by).where(c.c.id == consent_id)
    )
    return result.first()


async def consents(conn: AsyncConnection) -> list[Row[Any]]:
    """Every consent, newest first, with the granting user's name (``username``)."""
    c, u = tables.consents, tables.users
    result = await conn.execute(
        select(c, u.c.username)
        .outerjoin(u, u.c.id == c.c.granted_by)
        .order_by(c.c.granted_at.desc(), c.c.id.desc())
    )
    return list(result)


async def token_uses(conn: AsyncConnection, limit: int) -> list[Row[Any]]:
    """The latest uses of any token, newest first, with the token's name (``name``)."""
    u, k = tables.token_uses, tables.api_tokens
    result = await conn.execute(
        select(u, k.c.name)
        .join(k, k.c.id == u.c.token_id)
        .order_by(u.c.at.desc(), u.c.id.desc())
        .limit(limit)
    )
    return list(result)


# -- demand response: what the dispatcher did for an event --------------------------------------


def _names_event(source: str, event_source: str) -> bool:
    """Whether a command's source (``ems.dr.dispatch.source_of``) names the event: its own
    ``event:{meter}:{id}``, or a rule's ``rule:{name}@event:{meter}:{id}``, ending exactly there."""
    return source == event_source or (source.startswith("rule:") and source.endswith("@" + event_source))


async def event_commands(conn: AsyncConnection, meter_id: str, issuer_event_id: int) -> list[Row[Any]]:
    """Every device command one event caused, oldest first, each with the restore that followed it.

    A restore (source ``restore``) belongs to the event when it is the next of the event's
    commands and restores for the same device. Event 7's commands are never event 71's.
    """
    t = tables.device_commands
    own = f"event:{meter_id}:{issuer_event_id}"
    by_rule = t.c.source.startswith("rule:", autoescape=True) & t.c.source.endswith("@" + own, autoescape=True)
    query = select(t).where(or_(t.c.source == own, by_rule, t.c.source == "restore")).order_by(t.c.at, t.c.id)
    out: list[Row[Any]] = []
    controlled: set[str] = set()
    for row in await conn.execute(query):
        if _names_event(row.source, own):
            controlled.add(row.device_id)
            out.append(row)
        elif row.device_id in controlled:  # the restore after the event's command
            out.append(row)
            controlled.discard(row.device_id)
    return out
