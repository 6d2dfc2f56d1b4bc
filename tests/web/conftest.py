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


PASSWORD = "correct horse battery"  # every web test's people sign in with it


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


async def sign_in_as(client: Any, username: str = "owner", role: Any = None) -> None:
    """Sign ``username`` in through the login form (made first with ``role`` when one is given)."""
    if role is not None:
        await client.app[ACCOUNTS].create_user(username, PASSWORD, role)
    page = await client.get("/login")
    form = {"csrf_token": csrf_of(await page.text()), "username": username, "password": PASSWORD}
    assert (await client.post("/login", data=form, allow_redirects=False)).status == 303
