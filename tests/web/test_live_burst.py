"""The live push under load: what waits for a page is bounded, whatever the rate of changes.

A real server on a free port and real client WebSockets. Before this fix every change became a
task per open page (and asyncio.wait_for's own task inside it): a burst of meter reports with 25
pages open (bench/load.py: 8 meters, 300 devices) left hundreds of sends waiting, each with its
copy of the state, and a page that could not keep up was sent every stale value in turn. Now each
page has one sender and, per topic (per meter for the meter topic), only the newest text waits.
Counted in tasks and messages; no duration is measured.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aiohttp
from argon2 import PasswordHasher

from ems.accounts import Accounts, Role, Scope
from ems.model import MeterReading
from tests.hubs import started_hub
from web.app import WebServer
from web.keys import ACCOUNTS

BURST = 50
PAGES = 2
T0 = datetime(2026, 7, 15, 20, 0, tzinfo=UTC)


def _sends_waiting() -> int:
    return sum(1 for task in asyncio.all_tasks() if task.get_name() == "websocket-send" and not task.done())


async def test_a_burst_of_meter_reports_leaves_one_send_per_page_and_the_pages_get_the_newest(tmp_path):
    async with started_hub(tmp_path) as hub:
        server = WebServer(hub, "127.0.0.1", 0)
        accounts = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        server.app[ACCOUNTS] = accounts
        owner = await accounts.create_user("owner", "correct horse battery", Role.OWNER)
        token = (await accounts.create_token(owner, "test", [Scope.READ])).secret
        await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                headers = {"Authorization": f"Bearer {token}"}
                pages = [await session.ws_connect(f"{server.url}/api/v1/ws", headers=headers) for _ in range(PAGES)]
                for ws in pages:
                    assert (await ws.receive_json())["topic"] == "snapshot"

                for n in range(BURST):  # in one turn of the loop: faster than any page takes them
                    hub.bus.publish(MeterReading("main", T0, demand_kw=1.0 + n / 1000))
                waiting = _sends_waiting()

                received: list[list[float]] = []
                for ws in pages:
                    values: list[float] = []
                    while not values or values[-1] != 1.0 + (BURST - 1) / 1000:
                        message = await asyncio.wait_for(ws.receive_json(), 10)
                        if message["topic"] == "meter":
                            values.append(message["data"]["demand_kw"])
                    received.append(values)
                for ws in pages:
                    await ws.close()
        finally:
            await server.stop()

    assert waiting <= PAGES, f"{waiting} sends waiting for {PAGES} pages after {BURST} meter reports"
    for values in received:
        assert values[-1] == 1.049  # the newest state arrives
        assert len(values) <= 2, f"a page was sent {len(values)} meter states of one burst, not the newest"
