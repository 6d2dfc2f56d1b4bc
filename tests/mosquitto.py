"""A throwaway Mosquitto broker on a free loopback port, for the MQTT tests and bench.

Debian's ``mosquitto`` binary (``make test`` installs it as root), started with a config file of
its own in a temporary folder: never the packaged system service. No persistence, so a restart
loses every retained message, as a broker whose store was wiped does: what the appliance
publishes after it is what it published again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """One mosquitto process; ``restart`` stops it and starts a fresh one on the same port."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.config = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n"
            f"log_dest file {self.log}\nlog_type error\nlog_type warning\n")
        self._proc = await asyncio.to_thread(subprocess.Popen, [MOSQUITTO, "-c", str(self.config)],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:  # listening once a connection is accepted (pytest-timeout guards a hang)
            if self._proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited ({self._proc.returncode}): {self.log.read_text()}")
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            await writer.wait_closed()
            return

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            proc.kill()
            await asyncio.to_thread(proc.wait)

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@contextlib.asynccontextmanager
async def running_broker(folder: Path) -> AsyncIterator[Broker]:
    broker = Broker(folder)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


class Watcher:
    """A client that subscribes and keeps every message by topic (the latest, and all in order)."""

    def __init__(self, port: int, topics: tuple[str, ...] = ("#",)) -> None:
        self.port = port
        self.topics = topics
        self.latest: dict[str, bytes] = {}
        self.seen: list[tuple[str, bytes, bool, float]] = []  # topic, payload, retained, loop time
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Watcher:
        self._client = aiomqtt.Client("127.0.0.1", self.port)
        await self._client.__aenter__()
        for topic in self.topics:
            await self._client.subscribe(topic, qos=1)
        self._task = asyncio.get_running_loop().create_task(self._read(), name="mqtt-watcher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._client is not None:
            with contextlib.suppress(aiomqtt.MqttError):
                await self._client.__aexit__(None, None, None)

    async def _read(self) -> None:
        assert self._client is not None
        async for message in self._client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            topic = str(message.topic)
            self.latest[topic] = payload
            self.seen.append((topic, payload, bool(message.retain), asyncio.get_running_loop().time()))
            self._changed.set()

    async def publish(self, topic: str, payload: Any, retain: bool = False) -> None:
        assert self._client is not None
        text = payload if isinstance(payload, str | bytes) else json.dumps(payload)
        await self._client.publish(topic, text, qos=1, retain=retain)

    async def wait_for(self, predicate: Any, what: str = "", guard_s: float = 60.0) -> Any:
        """Wait until ``predicate(self)`` is truthy; the bound only guards against a hang."""
        try:
            async with asyncio.timeout(guard_s):
                while True:
                    result = predicate(self)
                    if result:
                        return result
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what or predicate}") from None

    def json(self, topic: str) -> Any:
        return json.loads(self.latest[topic])
