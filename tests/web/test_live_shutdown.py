"""The live push as the appliance stops: a real server on a free port, a real client WebSocket."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType
from argon2 import PasswordHasher

from ems.accounts import Accounts, Role, Scope
from ems.hub import Hub
from web.app import WebServer
from web.keys import ACCOUNTS


async def _reader_token(server: WebServer, hub: Hub) -> str:
    accounts = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    server.app[ACCOUNTS] = accounts
    owner = await accounts.create_user("owner", "correct horse battery", Role.OWNER)
    return (await accounts.create_token(owner, "test", [Scope.READ])).secret


async def test_open_pages_are_told_going_away_when_the_server_stops(hub: Hub) -> None:
    server = WebServer(hub, "127.0.0.1", 0)
    token = await _reader_token(server, hub)
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {token}"}
            async with session.ws_connect(f"{server.url}/api/v1/ws", headers=headers) as ws:
                snapshot = await ws.receive_json()
                stopping = asyncio.create_task(server.stop())
                closing: Any = await ws.receive()
                await stopping
    finally:
        await server.stop()

    assert snapshot["topic"] == "snapshot"
    # 1001, not the 1006 of a connection dropped under the page (the handler cancelled first).
    assert (closing.type, closing.data, ws.close_code) == (WSMsgType.CLOSE, WSCloseCode.GOING_AWAY,
                                                           WSCloseCode.GOING_AWAY)
    assert closing.extra == "appliance shutting down"
