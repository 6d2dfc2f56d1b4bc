"""A commit is a commit: what flush and enqueue confirmed survives ``kill -9`` of the process."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from ems.outbox import Outbox
from ems.store import Store
from tests.ems.store.conftest import Database
from tests.ems.store.store_samples import NOW, message, status_report

OpenStore = Callable[..., Awaitable[Store]]

# Runs in a child process on the test's database (argv: data folder, URL or "" for SQLite there):
# enqueue one report, write one message through the bus and the writer, say "ok" and then wait
# to be killed.
CHILD = """
import asyncio, sys
from datetime import UTC, datetime
from pathlib import Path

from ems.bus import EventBus
from ems.config import StoreConfig
from ems.model import EventStatus, EventStatusReport, MessageImportance, UtilityMessage
from ems.outbox import Outbox
from ems.store import Store

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


async def main():
    store = Store(StoreConfig(sys.argv[2] or None, 24.0, 400), Path(sys.argv[1]))
    await store.open()
    bus = EventBus()
    store.attach(bus)
    await Outbox(store).enqueue(
        EventStatusReport("m1", 100, EventStatus.RECEIVED, NOW, criticality_applied=3)
    )
    bus.publish(UtilityMessage("m1", 7, "Peak event tomorrow 4-7 pm", MessageImportance.HIGH,
                               NOW, None, True, NOW))
    await store.flush()
    print("ok", flush=True)
    await asyncio.sleep(3600)


asyncio.run(main())
"""


async def test_enqueued_report_and_flushed_message_survive_kill_9(
    tmp_path: Path, database: Database, open_store: OpenStore
) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(tmp_path), database.url or "",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(15):
            line = await child.stdout.readline()  # type: ignore[union-attr]
        assert line == b"ok\n", (line, await child.stderr.read())  # type: ignore[union-attr]
    finally:
        if child.returncode is None:
            child.send_signal(signal.SIGKILL)
        await child.communicate()
    assert child.returncode == -signal.SIGKILL

    store = await open_store()

    [stored] = await store.messages(NOW - timedelta(hours=1))
    assert stored.message == message(7)
    assert [p.item for p in await Outbox(store).pending()] == [status_report(100)]
