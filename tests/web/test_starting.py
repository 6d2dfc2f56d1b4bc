"""The dashboard's port while the appliance starts: "starting" answers, then a handover that refuses no one."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest
from aiohttp import web

from ems.cli import main
from web.starting import StartingServer


async def _started() -> tuple[StartingServer, int]:
    starting = StartingServer("127.0.0.1", 0)
    await starting.start()
    return starting, starting.port


async def test_the_api_says_starting_with_a_503_and_when_to_ask_again():
    starting, port = await _started()
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/api/v1/health") as response:
            assert response.status == 503
            assert response.headers["Retry-After"] == "2"
            assert (await response.json())["status"] == "starting"
    finally:
        await starting.close()


@pytest.mark.parametrize(("accept", "words"), [("es-MX,es;q=0.9", "Iniciando"), ("zh-CN", "正在启动"),
                                                ("fr-FR", "Starting"), (None, "Starting")])
async def test_a_page_says_starting_in_the_browsers_language_and_reloads_itself(accept, words):
    starting, port = await _started()
    try:
        headers = {"Accept-Language": accept} if accept else {}
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/ihd", headers=headers) as response:
            assert response.status == 503
            page = await response.text()
        assert f"<h1>{words}…</h1>" in page
        assert '<meta http-equiv="refresh" content="2">' in page
    finally:
        await starting.close()


async def test_the_appliances_server_takes_the_port_over_without_refusing_a_connection():
    starting, port = await _started()
    url = f"http://127.0.0.1:{port}/api/v1/health"
    statuses: list[int] = []
    refused = 0
    stop = asyncio.Event()

    async def ask_until_stopped(session: aiohttp.ClientSession) -> None:
        """New connections, one after another, while the port changes hands."""
        nonlocal refused
        while not stop.is_set():
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
                    statuses.append(response.status)
            except aiohttp.ClientConnectorError:  # nothing listening: what must never happen
                refused += 1
            except (aiohttp.ClientError, TimeoutError):  # a connection the closing server dropped
                pass
            await asyncio.sleep(0)

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/api/v1/health", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        async with session.get(url) as response:
            assert response.status == 503
        asker = asyncio.create_task(ask_until_stopped(session))
        await asyncio.sleep(0.05)
        for sock in starting.sockets():
            await web.SockSite(runner, sock).start()
        await asyncio.sleep(0.05)
        await starting.close()
        await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(asker, 30)  # the bound guards a hang only
        async with session.get(url) as response:
            assert response.status == 200
    await runner.cleanup()
    assert refused == 0
    assert 503 in statuses and 200 in statuses


def test_ems_run_names_the_address_when_the_port_is_taken(tmp_path, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["run", "--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1", "--port", str(port)])
    assert code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
