"""Hubs for the tests: a real hub on a configuration folder written under the test's tmp_path,
its store in real SQLite, on the clock the test gives (``ems.clock``); and an older hand-moved clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

from ems.clock import REAL
from ems.clock import Clock as AnyClock
from ems.config import load_config
from ems.hub import Hub

SITE = "site: {name: Test home, timezone: America/Los_Angeles}\n"


def new_hub(tmp_path: Path, config_text: str = SITE, files: Mapping[str, str] | None = None,
            clock: AnyClock = REAL) -> Hub:
    """A hub, not started, on ``tmp_path/config`` (``ems.yaml`` holding ``config_text``, and ``files``)."""
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "ems.yaml").write_text(config_text)
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    return Hub(load_config(folder), tmp_path / "data", clock)


@asynccontextmanager
async def started_hub(
    tmp_path: Path, config_text: str = SITE, files: Mapping[str, str] | None = None,
    clock: AnyClock = REAL,
) -> AsyncIterator[Hub]:
    """A started ``new_hub``, stopped on the way out."""
    hub = new_hub(tmp_path, config_text, files, clock)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()


class Clock:
    """A clock that moves only when the test moves it (pass it where a ``clock`` callable goes).

    Older than ``ems.clock.FixedClock`` (which also sleeps until moved, and goes where a Clock
    goes, e.g. ``Hub(..., clock=...)``); new tests use that one.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now
