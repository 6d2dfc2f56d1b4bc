"""Alembic environment: run the migrations on the connection the store hands in.

The store runs them from code (``ems.store.engine.migrate``). To write a new revision, point an
alembic.ini's ``script_location`` here and run ``alembic -x url=sqlite:///path/ems.db revision
--autogenerate`` (a synchronous URL).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from ems.store.tables import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite can alter a table only by copying it
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    elif not url:
        raise SystemExit("alembic: give the database with -x url=sqlite:///path/ems.db")
    else:
        engine = create_engine(url)
        with engine.begin() as conn:
            _run(conn)
        engine.dispose()
