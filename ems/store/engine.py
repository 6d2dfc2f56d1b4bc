"""The database engine: URL choice, SQLite pragmas, and Alembic migrations run from code.

SQLite (the default, one file in the data directory) runs in WAL mode so the dashboard can read
while the writer writes; PostgreSQL is reached by URL (``postgresql+asyncpg://``) with the same
schema. Migrations live inside the package, so an installed wheel can upgrade its database.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

_LOGGER = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DB_FILE = "ems.db"
BUSY_TIMEOUT_MS = 10_000
HEAD_REVISION = "0013"  # the newest file in migrations/versions (a test keeps them equal)


def database_url(url: str | None, data_dir: Path) -> URL:
    """The configured URL, or the SQLite file ``DATA_DIR/ems.db``."""
    if url:
        return make_url(url)
    return make_url(f"sqlite+aiosqlite:///{Path(data_dir).resolve() / DB_FILE}")


def describe(url: URL) -> str:
    """A name for the database in messages: the file for SQLite, the URL without password."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    return url.render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The SQLite database file, or None for an in-memory or non-SQLite database."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")
OWNER_ONLY = 0o600  # the database holds password hashes, session and token hashes, and usage


def restrict_sqlite_files(path: Path) -> None:
    """Make the database file readable by its owner only, before SQLite opens it.

    SQLite creates a new file 0644 (less the umask) and gives its -wal, -shm and -journal the
    database file's mode (os_unix.c, findCreateFileMode), so an empty 0600 file made here is
    enough for all of them; files left by an older version are closed again.
    """
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, OWNER_ONLY))
    for suffix in SQLITE_SUFFIXES:
        name = f"{path}{suffix}"
        try:
            if os.stat(name).st_mode & 0o777 != OWNER_ONLY:
                os.chmod(name, OWNER_ONLY)
        except FileNotFoundError:
            pass
        except PermissionError:  # another user's file (a tool run under another account): say so, go on
            _LOGGER.warning("%s: cannot make it readable by its owner only", name)


OWNER_ONLY_DIR = 0o700  # the data directory: the database, its journal, tokens, the radio's state


def restrict_data_dir(path: Path) -> None:
    """Create the data directory for its owner only, or tighten one others could read or enter.

    The files in it are 0600 already, but a directory others can list shows what is there and
    lets them read any file a tool or an older version made with the usual 0644. Its parents
    are left as they are (they may be the system's).
    """
    path = Path(path)
    path.mkdir(mode=OWNER_ONLY_DIR, parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        try:
            os.chmod(path, OWNER_ONLY_DIR)
        except PermissionError:
            _LOGGER.warning("%s: others may read the data directory (mode %o) and it cannot be changed",
                            path, mode)
            return
        _LOGGER.info("%s: the data directory was mode %o; now %o (its owner only)", path, mode, OWNER_ONLY_DIR)


def create_engine(url: URL) -> AsyncEngine:
    """An async engine; on SQLite every new connection gets the appliance's pragmas.

    ``hide_parameters``: the values bound to a statement (password hashes, CSRF tokens, session
    and token digests) never appear in SQLAlchemy's log lines or in the text of its errors.
    """
    path = sqlite_path(url)
    if path is not None:
        restrict_sqlite_files(path)
    if url.get_backend_name() == "sqlite":
        engine = create_async_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000},
                                     hide_parameters=True)
        event.listen(engine.sync_engine, "connect", _sqlite_connect)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        return engine
    return create_async_engine(url, pool_pre_ping=True, hide_parameters=True)


def error_text(err: BaseException) -> str:
    """What went wrong with a database call, for a StoreError: the driver's first line only.

    SQLAlchemy's own text adds the statement and its parameters, and PostgreSQL's adds a
    ``DETAIL: Key (id_hash)=(...)`` line naming the very value that clashed; neither belongs in
    an error a page or a log may show.
    """
    from sqlalchemy.exc import StatementError

    cause = err.orig if isinstance(err, StatementError) and err.orig is not None else err
    lines = str(cause).strip().splitlines()
    first = lines[0].strip() if lines else type(cause).__name__
    if isinstance(err, StatementError) and "[SQL:" in first:  # no driver error: SQLAlchemy's own words
        first = first.split("[SQL:")[0].strip()
    return first


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module starts transactions only before DML, so DDL would run outside them
    # and a migration cut short could leave a half-altered schema. Take transactions over:
    # autocommit at the driver, an explicit BEGIN for each SQLAlchemy transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # WAL: readers never block the writer. NORMAL: a commit survives a crash of the
        # process (kill -9); only a power cut may lose the last commits, so the outbox's
        # commits use FULL (see Writer).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")


async def set_sqlite_synchronous(conn: AsyncConnection, level: str) -> None:
    """Set ``PRAGMA synchronous`` (SQLite refuses it inside a transaction: call it outside)."""
    raw = await conn.get_raw_connection()
    cursor = await raw.driver_connection.execute(f"PRAGMA synchronous={level}")  # type: ignore[union-attr]
    await cursor.close()


def alembic_config(connection: Connection | None = None) -> Any:
    """Alembic's configuration built in code (no alembic.ini at runtime)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(connection: Connection) -> str | None:
    """The schema revision recorded in the database, read without loading Alembic."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade_if_needed(connection: Connection, revision: str) -> tuple[str | None, str | None]:
    """Bring the schema to ``revision``, loading Alembic only when there is work for it.

    A database already at head costs one query. An empty one at head is created from the
    models and stamped (Alembic's documented "create_all, then stamp head"; a test checks
    that this gives the same schema as running every migration). Alembic itself, some
    11 MB of memory, is imported only to upgrade an older database or to reach another revision.
    """
    before = current_revision(connection)
    target = HEAD_REVISION if revision == "head" else revision
    if before == target:
        return before, before
    if before is None and target == HEAD_REVISION and not inspect(connection).get_table_names():
        from ems.store.tables import Base

        Base.metadata.create_all(connection)
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                                "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": target})
        return before, target
    from alembic import command

    command.upgrade(alembic_config(connection), revision)
    return before, current_revision(connection)


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` in one transaction."""
    async with engine.begin() as conn:
        before, after = await conn.run_sync(_upgrade_if_needed, revision)
    if before != after:
        _LOGGER.info("Migrated %s from %s to %s", describe(engine.url), before or "empty", after)
