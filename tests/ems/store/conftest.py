"""Fixtures for the store tests: a real SQLite file in tmp_path, and a bus feeding it.

Sample events live in store_samples.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from ems.bus import EventBus
from ems.config import StoreConfig
from ems.store import Store


@pytest.fixture
def config() -> StoreConfig:
    return StoreConfig(url=None, message_retention_hours=24.0, reading_retention_days=400)


@pytest.fixture
async def open_store(
    tmp_path: Path, config: StoreConfig
) -> AsyncIterator[Callable[..., Awaitable[Store]]]:
    """Open a Store on tmp_path (again and again: each call is a fresh Store, like a restart)."""
    opened: list[Store] = []

    async def open_(cfg: StoreConfig | None = None, **kwargs: object) -> Store:
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
