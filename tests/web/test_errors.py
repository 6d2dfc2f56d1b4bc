"""One place maps the appliance's errors to HTTP statuses (web.errors), whichever handler raised them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from ems.accounts import Accounts, Role, Scope
from ems.errors import (
    ConfigError,
    Conflict,
    DeviceError,
    EmsError,
    NotFound,
    NotReady,
    RejectedCommand,
    StoreError,
)
from ems.hub import Hub
from web.errors import error_middleware, public_text, status_for
from web.keys import ACCOUNTS

from .control import PUMP, home_hub

ERRORS: dict[str, tuple[EmsError, int]] = {
    "not-found": (NotFound("no such thing"), 404),
    "conflict": (Conflict("already so"), 409),
    "rejected": (RejectedCommand("a bad value"), 400),
    "config": (ConfigError(["ems.yaml:3: site.timezone: not a time zone"]), 400),
    "not-ready": (NotReady("the meter is not reachable yet"), 503),
    "device": (DeviceError("the thermostat did not answer"), 502),
    "store": (StoreError("the disk is full"), 503),
}


async def test_each_kind_of_error_gets_its_status_as_json(aiohttp_client: Any) -> None:
    async def fail(request: web.Request) -> web.Response:
        raise ERRORS[request.match_info["kind"]][0]

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/api/v1/fail/{kind}", fail)
    client = await aiohttp_client(app)

    for kind, (error, status) in ERRORS.items():
        response = await client.get(f"/api/v1/fail/{kind}")
        text = public_text(error)
        assert (response.status, await response.json()) == (status, {"error": text, "status": status}), kind


def test_a_subclass_is_mapped_before_its_base() -> None:
    class AlreadyDone(Conflict):
        pass

    assert status_for(AlreadyDone("done")) == 409
    assert status_for(NotFound("gone")) == 404


# -- opting out or in twice: the event and one device answer alike --------------------------------


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with home_hub(tmp_path, cooling_offset_c=2.0, duty_cycle_pct=0) as hub:
        yield hub


async def _owner(client: Any) -> dict[str, str]:
    accounts: Accounts = client.app[ACCOUNTS]
    owner = await accounts.create_user("owner", "correct horse battery", Role.OWNER)
    token = await accounts.create_token(owner, "test", list(Scope))
    return {"Authorization": f"Bearer {token.secret}"}


async def test_already_opted_out_or_in_is_a_409_for_the_event_and_for_a_device(client: Any) -> None:
    headers = await _owner(client)
    device = f"/api/v1/events/main/7/devices/{PUMP}"

    device_in = await client.post(f"{device}/opt-in", headers=headers)  # never taken out
    device_out = await client.post(f"{device}/opt-out", headers=headers)
    device_out_again = await client.post(f"{device}/opt-out", headers=headers)
    event_in = await client.post("/api/v1/events/main/7/opt-in", headers=headers)  # never opted out
    event_out = await client.post("/api/v1/events/main/7/opt-out", headers=headers)
    event_out_again = await client.post("/api/v1/events/main/7/opt-out", headers=headers)

    assert (device_out.status, event_out.status) == (200, 200)
    for refused in (device_in, device_out_again, event_in, event_out_again):
        body = await refused.json()
        assert (refused.status, body["status"]) == (409, 409), body
        assert "already" in body["error"], body


def test_a_store_error_names_no_file_and_no_sql_to_the_caller() -> None:
    """A confirm on a full disk once answered 500 with the database path in its body (issue 11, 6)."""
    error = StoreError("/var/lib/ems/ems.db: add to the outbox failed: (sqlite3.OperationalError) "
                       "database or disk is full [SQL: INSERT INTO outbox ...]")
    assert status_for(error) == 503
    assert "ems.db" not in public_text(error) and "SQL" not in public_text(error)
