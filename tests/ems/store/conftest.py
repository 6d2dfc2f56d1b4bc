"""Fixtures for the store tests: each runs on both backends the README promises, a real SQLite
file in tmp_path and a fresh database in the session's throwaway PostgreSQL cluster (tests/pg.py).

A test that uses ``config``, ``open_store``, ``store``, ``bus`` or ``database`` runs twice
(``[sqlite]``, ``[postgresql]``); one about SQLite itself is marked ``@pytest.mark.sqlite_only``.
Sample events live in store_samples.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from ems.bus import EventBus
from ems.config import StoreConfig
from ems.store import Store
from ems.store.engine import database_url

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        sqlite_only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("backend", BACKENDS[:1] if sqlite_only else BACKENDS)


@dataclass(frozen=True)
class Database:
    """The test's database: ``url`` as ``store: url:`` takes it (None: SQLite in the data folder)."""

    backend: str
    url: str | None
    data_dir: Path

    @property
    def engine_url(self) -> URL:
        """The URL to build an engine on (``ems.store.engine.create_engine``), as the store does."""
        return database_url(self.url, self.data_dir)

    def config(self, message_retention_hours: float = 24.0, reading_retention_days: int = 400) -> StoreConfig:
        return StoreConfig(self.url, message_retention_hours, reading_retention_days)


@pytest.fixture
def database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Database:
    if backend == "postgresql":
        return Database(backend, request.getfixturevalue("postgres_url"), tmp_path)
    return Database(backend, None, tmp_path)


@pytest.fixture
def config(database: Database) -> StoreConfig:
    return database.config()


@pytest.fixture
async def open_store(
    tmp_path: Path, config: StoreConfig
) -> AsyncIterator[Callable[..., Awaitable[Store]]]:
    """Open a Store on the test's database (again and again: each call is a fresh Store, like a restart).

    A configuration given with no URL (``StoreConfig(None, ...)``, other retention) means the
    test's database too, so a test that sets its own retention runs on both backends."""
    opened: list[Store] = []

    async def open_(cfg: StoreConfig | None = None, **kwargs: object) -> Store:
        if cfg is not None and cfg.url is None:
            cfg = replace(cfg, url=config.url)
        store = Store(cfg or config, tmp_path, **kwargs)  # type: ignore[arg-type]
        await store.open()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_store: Callable[..., Awaitable[Store]]) -> Store:
    return await open_store()


@pytest.fixture
def bus(store: Store) -> EventBus:
    bus = EventBus()
    store.attach(bus)
    return bus
