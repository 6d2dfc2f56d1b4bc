"""The schema is Alembic's: an old database upgrades to head with its rows intact and usable,
on SQLite and on PostgreSQL alike (the ``database`` fixture gives each test both)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from ems.errors import StoreError
from ems.model import EventStatus, EventStatusReport
from ems.outbox import Outbox
from ems.store import Store
from ems.store.engine import (
    MIGRATIONS_DIR,
    create_engine,
    current_revision,
    describe,
    migrate,
)
from ems.store.tables import Base, UtcDateTime
from tests.ems.store.conftest import Database
from tests.ems.store.store_samples import NOW, interval, message, status_report

OpenStore = Callable[..., Awaitable[Store]]


def _table(name: str, **columns: Any) -> sa.TableClause:
    return sa.table(name, *(sa.column(key, type_) for key, type_ in columns.items()))


# The 0001 shape of the tables the test fills (messages and outbox changed in 0002).
MESSAGES_0001 = _table(
    "messages",
    meter_id=sa.String(), message_id=sa.Integer(), text=sa.Text(), importance=sa.Integer(),
    start=UtcDateTime(), end=UtcDateTime(), confirmation_required=sa.Boolean(),
    received_at=UtcDateTime(), origin=sa.String(), enhanced_confirmation=sa.Boolean(),
    cancelled_at=UtcDateTime(), confirmed_at=UtcDateTime(),
)
OUTBOX_0001 = _table(
    "outbox", kind=sa.String(), payload=sa.JSON(), created_at=UtcDateTime(),
    delivered_at=UtcDateTime(),
)
INTERVALS_0001 = _table(
    "interval_readings", meter_id=sa.String(), start=UtcDateTime(), duration_s=sa.Integer(),
    consumed_kwh=sa.Float(), generated_kwh=sa.Float(),
)


async def _database_at_0001_with_rows(database: Database) -> None:
    engine = create_engine(database.engine_url)
    await migrate(engine, "0001")
    async with engine.begin() as conn:
        assert await conn.run_sync(current_revision) == "0001"
        await conn.execute(MESSAGES_0001.insert().values(
            meter_id="m1", message_id=7, text="Old message", importance=2, start=NOW, end=None,
            confirmation_required=True, received_at=NOW, origin="utility",
            enhanced_confirmation=False, cancelled_at=None, confirmed_at=None,
        ))
        await conn.execute(OUTBOX_0001.insert().values(
            kind="EventStatusReport",
            payload={"type": "EventStatusReport", "fields": {
                "meter_id": "m1", "issuer_event_id": 100, "status": 1, "at": NOW.isoformat(),
                "criticality_applied": 3, "cooling_setpoint_applied_c": None,
                "heating_setpoint_applied_c": None, "average_load_adjustment_applied_pct": None,
                "duty_cycle_applied_pct": None, "event_control": 0,
            }},
            created_at=NOW, delivered_at=None,
        ))
        await conn.execute(INTERVALS_0001.insert().values(
            meter_id="m1", start=NOW, duration_s=900, consumed_kwh=0.25, generated_kwh=0.0,
        ))
    await engine.dispose()


async def test_upgrade_from_0001_keeps_messages_usable(database: Database, open_store: OpenStore) -> None:
    await _database_at_0001_with_rows(database)

    store = await open_store()

    [stored] = await store.messages(NOW - timedelta(hours=1))
    assert stored.message == message(7, text="Old message")
    assert not stored.read
    assert await store.mark_message_read("m1", 7)
    [stored] = await store.messages(NOW - timedelta(hours=1))
    assert stored.read


async def test_upgrade_from_0001_keeps_intervals_and_their_dedupe(
    database: Database, open_store: OpenStore
) -> None:
    await _database_at_0001_with_rows(database)

    store = await open_store()

    assert await store.add_intervals([interval(NOW), interval(NOW + timedelta(minutes=15))]) == 1
    assert len(await store.intervals("m1", NOW, NOW + timedelta(hours=1))) == 2


async def test_upgrade_from_0001_delivers_the_pending_outbox_item(
    database: Database, open_store: OpenStore
) -> None:
    await _database_at_0001_with_rows(database)
    store = await open_store()
    outbox = Outbox(store)
    delivered: list[EventStatusReport] = []
    sent = asyncio.Event()

    async def send(report: EventStatusReport) -> None:
        delivered.append(report)
        sent.set()

    [pending] = await outbox.pending()
    assert pending.attempts == 0 and pending.next_attempt_at is None
    outbox.register_sender(EventStatusReport, send)
    await outbox.start()
    try:
        async with asyncio.timeout(5):
            await sent.wait()
        await store.flush()  # the delivered mark, queued as the sender returned
    finally:
        await outbox.stop()

    assert delivered == [status_report(100, EventStatus.RECEIVED, NOW)]
    assert await outbox.pending() == []


async def test_the_models_match_the_migrations(database: Database) -> None:
    """Running every migration gives the schema a new database is created with."""
    from alembic import command

    from ems.store.engine import alembic_config

    engine = create_engine(database.engine_url)
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "head"))

    def differences(conn: sa.Connection) -> list[Any]:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)

    async with engine.connect() as conn:
        diff = await conn.run_sync(differences)
    await engine.dispose()
    assert diff == []


async def test_a_database_from_a_newer_version_is_refused_with_its_name(
    database: Database, open_store: OpenStore
) -> None:
    engine = create_engine(database.engine_url)
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    await engine.dispose()
    name = "ems.db" if database.url is None else describe(database.engine_url)

    with pytest.raises(StoreError, match=re.escape(name) + ": cannot migrate.*9999"):
        await open_store()


def test_head_revision_is_the_newest_migration() -> None:
    from alembic.script import ScriptDirectory

    from ems.store.engine import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_a_new_database_is_created_at_head_without_loading_alembic(database: Database) -> None:
    import subprocess
    import sys

    script = (
        "import asyncio, sys; from pathlib import Path\n"
        "from ems.store.engine import create_engine, database_url, migrate\n"
        "async def main():\n"
        f"    engine = create_engine(database_url({database.url!r}, Path({str(database.data_dir)!r})))\n"
        "    await migrate(engine)\n"
        "    await engine.dispose()\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_the_migrations_ship_inside_the_package() -> None:
    import ems.store

    package = Path(ems.store.__file__).parent
    assert MIGRATIONS_DIR.is_relative_to(package)
    assert (MIGRATIONS_DIR / "env.py").is_file()
    revisions = sorted(p.name for p in (MIGRATIONS_DIR / "versions").glob("*.py"))
    assert revisions[:2] == ["0001_initial.py", "0002_outbox_retry_and_message_read.py"]


async def test_a_postgresql_url_without_its_driver_is_a_store_error_without_the_password(
    tmp_path: Path,
) -> None:
    from ems.config import StoreConfig

    store = Store(StoreConfig("postgresql+asyncpg://ems:secret@db.local/ems", 24.0, 400), tmp_path)

    with pytest.raises(StoreError, match=r"postgresql\+asyncpg://ems:\*\*\*@db\.local/ems") as info:
        await store.open()
    assert "secret" not in str(info.value)


async def test_a_migration_that_fails_halfway_leaves_the_old_schema_whole(
    database: Database, open_store: OpenStore
) -> None:
    # Both backends run DDL inside the transaction (SQLite because the engine issues BEGIN itself).
    engine = create_engine(database.engine_url)
    await migrate(engine, "0001")
    async with engine.begin() as conn:
        # Someone added a column by hand: 0002 alters the outbox, then fails on messages.
        await conn.execute(sa.text("ALTER TABLE messages ADD COLUMN read BOOLEAN"))

    def outbox_columns(conn: sa.Connection) -> set[str]:
        return {c["name"] for c in sa.inspect(conn).get_columns("outbox")}

    try:
        with pytest.raises(StoreError, match="cannot migrate.*(duplicate column|already exists)"):
            await open_store()

        async with engine.connect() as conn:
            assert await conn.run_sync(current_revision) == "0001"
            assert "attempts" not in await conn.run_sync(outbox_columns)
    finally:
        await engine.dispose()
