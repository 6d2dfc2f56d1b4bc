"""Fixtures of the web tests: a hub with its store open (no meter link, no web server), and a
test client of the whole web app on whichever ``hub`` a test module provides."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from ems.accounts import Accounts
from ems.hub import Hub
from tests.hubs import new_hub
from web.app import create_app
from web.auth import ACCOUNTS


@pytest.fixture
def site_name() -> str:
    """The site's name on the pages (a test module may override this fixture)."""
    return "Test home"


@pytest.fixture
async def hub(tmp_path: Path, site_name: str) -> AsyncIterator[Hub]:
    hub = new_hub(tmp_path, f"site: {{name: {site_name}, timezone: America/Los_Angeles}}\n")
    await hub.store.open()
    yield hub
    await hub.store.close()


@pytest.fixture
async def client(hub: Hub, aiohttp_client: Any) -> Any:
    """The web app on ``hub``, its accounts hashing passwords fast (a module may override this)."""
    app = create_app(hub)
    app[ACCOUNTS] = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    return await aiohttp_client(app)
