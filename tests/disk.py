"""A data disk that fills up, for the store and whole-appliance tests: SQLite's max_page_count."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from ems.store import Store


@contextmanager
def full_disk(store: Store) -> Iterator[None]:
    """The database file cannot grow while inside: every connection gets max_page_count = its size.

    One listener, registered once and switched by a flag: adding or removing a listener while the
    writer's connection is being checked out (the listener's cursor calls switch greenlets) makes
    SQLAlchemy's listener deque change under its own iteration."""
    engine = store._engine  # noqa: SLF001 - the test fills the disk under the store's own engine
    assert engine is not None
    state = {"full": True}

    def cap(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        if state["full"]:
            cursor.execute("PRAGMA page_count")
            pages = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count={pages}")
        else:  # space returns on every pooled connection
            cursor.execute("PRAGMA max_page_count=1073741823")
        cursor.close()

    event.listen(engine.sync_engine, "checkout", cap)
    try:
        yield
    finally:
        state["full"] = False
