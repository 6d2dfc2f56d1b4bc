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


async def test_the_link_asks_the_probe_only_while_its_radio_is_gone():
    """A radio that is there says nothing about the meter: a link that failed further on (discovery)
    keeps its backoff (I1NFR3) instead of retrying at the probe's pace."""
    from types import SimpleNamespace

    from ems.clock import REAL
    from integrations.zigbee_se import CONFIG_SCHEMA, MeterLinkSettings
    from integrations.zigbee_se.link import MeterLink

    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = MeterLinkSettings.from_section(CONFIG_SCHEMA({"radio": {"path": f"virtual://127.0.0.1:{port}"}}))
        link = MeterLink(SimpleNamespace(clock=REAL, create_task=None), settings)
        assert await link._probe()  # never connected yet: the radio counts as gone
        link._radio_down = False  # the radio came up, a later step (discovery) failed
        assert not await link._probe()
        link._on_connection_lost()
        assert await link._probe()
    finally:
        server.close()
        await server.wait_closed()
