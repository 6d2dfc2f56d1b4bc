"""SQL parameters are never logged (issue 11, finding 7): under ``ems -v`` a password hash, a CSRF
token or a session id written to the store appears in no log record and in no error's text."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta

import pytest
from argon2 import PasswordHasher

from ems.accounts import Accounts, Role, digest
from ems.cli import SECRET_BEARING_LOGGERS, _configure_logging
from ems.errors import StoreError
from ems.model import utcnow
from ems.store import Store, commands, queries

PASSWORD = "correct horse battery"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self._format = logging.Formatter("%(name)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self._format.format(record))  # the message and any traceback


@pytest.fixture
def verbose_log() -> Iterator[_Records]:
    """The logging ``ems -v`` sets up, every record it lets through collected."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    named = {name: logging.getLogger(name).level for name in
             (*SECRET_BEARING_LOGGERS, "zigpy", "aiohttp.access", "apscheduler", "alembic")}
    root.handlers.clear()  # pytest's handlers make basicConfig a no-op
    _configure_logging(True)
    records = _Records()
    root.addHandler(records)
    try:
        yield records
    finally:
        root.handlers[:], root.level = saved
        for name, level in named.items():
            logging.getLogger(name).setLevel(level)


async def test_no_secret_written_to_the_store_is_logged_or_in_an_error(
        open_store: Callable[..., Awaitable[Store]], verbose_log: _Records) -> None:
    store = await open_store()
    accounts = Accounts(store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    user = await accounts.create_user("owner", PASSWORD, Role.OWNER)
    new = await accounts.start_session(user)
    assert await accounts.session(new.session_id) is not None
    row = await store.read("read a user", queries.user_by_name, "owner")
    secrets = [PASSWORD, row.password_hash, new.session.csrf_token, new.session_id, digest(new.session_id)]

    now = utcnow()
    with pytest.raises(StoreError) as failed:  # the same session id again: a unique key violated
        await store.write("start a session", lambda conn: commands.add_session(
            conn, digest(new.session_id), user.id, new.session.csrf_token, now, now + timedelta(days=1)))

    assert any("start a session" in t or "Added user" in t for t in verbose_log.texts)  # the log ran
    assert not any(s in t for s in secrets for t in verbose_log.texts)
    assert not any(s in str(failed.value) for s in secrets), str(failed.value)
    assert not any(s in str(failed.value.__cause__) for s in secrets[1:]), "SQLAlchemy's text hides them"


def test_ems_verbose_holds_the_database_loggers_at_warning(verbose_log: _Records) -> None:
    assert logging.getLogger().level == logging.DEBUG
    for name in ("sqlalchemy", "sqlalchemy.engine.Engine", "aiosqlite", "asyncpg"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
