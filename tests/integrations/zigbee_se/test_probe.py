"""The meter link's cheap probe: a TCP radio's port accepts, a serial radio's device node exists."""

from __future__ import annotations

import asyncio
import socket

from integrations.zigbee_se.probe import radio_probe


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_a_virtual_or_network_radio_is_probed_by_its_tcp_port():
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for scheme in ("virtual", "socket", "tcp"):
            probe = radio_probe({"type": "virtual", "path": f"{scheme}://127.0.0.1:{port}"})
            assert probe is not None and await probe()
    finally:
        server.close()
        await server.wait_closed()
    assert not await radio_probe({"path": f"virtual://127.0.0.1:{_closed_port()}"})()


async def test_a_serial_radio_is_probed_by_its_device_node(tmp_path):
    node = tmp_path / "ttyUSB0"
    probe = radio_probe({"type": "ezsp", "path": str(node)})
    assert probe is not None and not await probe()
    node.touch()  # plugged in again
    assert await probe()


def test_a_path_without_a_cheap_probe_has_none():
    assert radio_probe({"type": "znp", "path": "COM3"}) is None
    assert radio_probe({"type": "virtual", "path": "virtual://127.0.0.1"}) is None
