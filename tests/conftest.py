"""Shared fixtures: every test runs with warnings as errors and must not leave tasks behind."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "test-output"


def require_tool(path: str, why: str) -> None:
    """Skip without the tool locally; fail in CI, where `make test` must have installed it."""
    if shutil.which(path) or Path(path).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{path} is missing in CI ({why}); `make test` installs it as root")
    pytest.skip(f"{path} is not installed ({why}); `make test` installs it as root")


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """A folder under test-output/ for artefacts a person may want to look at."""
    path = OUTPUT / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(autouse=True)
async def no_leftover_tasks():
    """Fail a test that leaves asyncio tasks running (every task must have an owner)."""
    before = set(asyncio.all_tasks())
    yield
    await asyncio.sleep(0)
    leftover = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    # Every task of ours has a name (TaskSet, hub.create_task); an unnamed one is a library's
    # (zigpy answering the last frames as the radio closed) and may take a moment to end by itself
    # on a busy machine. It gets that moment; one still running after it is left behind.
    unnamed = [t for t in leftover if t.get_name().startswith("Task-")]
    if unnamed and len(unnamed) == len(leftover):
        await asyncio.wait(unnamed, timeout=5.0)
        leftover = [t for t in leftover if not t.done()]
    if leftover:
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)
        names = ", ".join(sorted(f"{t.get_name()} ({getattr(t.get_coro(), '__qualname__', '?')})" for t in leftover))
        pytest.fail(f"test left {len(leftover)} task(s) running: {names}")


# -- PostgreSQL (tests/pg.py): one throwaway cluster per session, a fresh database per test ----


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: a store test about SQLite itself (not run on PostgreSQL)")


@pytest.fixture(scope="session")
def postgres_cluster():
    """The session's PostgreSQL cluster, started on first use; skipped (failed in CI) without PostgreSQL."""
    from tests import pg

    why = pg.missing()
    if why is not None:
        pg.unavailable(why)
    cluster = pg.start_cluster(pg.binaries())  # type: ignore[arg-type]
    yield cluster
    cluster.stop()


@pytest.fixture
async def postgres_url(postgres_cluster):
    """The URL of a new empty database in the session's cluster (``store: url:``), dropped after the test."""
    name = await postgres_cluster.create_database()
    yield postgres_cluster.url(name)
    await postgres_cluster.drop_database(name)
