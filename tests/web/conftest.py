"""Fixtures of the web tests: a hub with its store open (no meter link, no web server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ems.config import load_config
from ems.hub import Hub


@pytest.fixture
def site_name() -> str:
    """The site's name on the pages (a test module may override this fixture)."""
    return "Test home"


@pytest.fixture
async def hub(tmp_path: Path, site_name: str) -> AsyncIterator[Hub]:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "ems.yaml").write_text(f"site: {{name: {site_name}, timezone: America/Los_Angeles}}\n")
    hub = Hub(load_config(folder), tmp_path / "data")
    await hub.store.open()
    yield hub
    await hub.store.close()
