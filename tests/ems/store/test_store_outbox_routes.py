"""Revision 0005: an outbox row pending before the upgrade goes out on its meter's route after it."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from ems.model import DeviceKind, EventStatus, EventStatusReport, TelemetryReport
from ems.outbox import Outbox, encode
from ems.store import Store
from ems.store.engine import create_engine, current_revision, migrate
from ems.store.tables import UtcDateTime
from tests.ems.store.conftest import Database
from tests.ems.store.store_samples import NOW, status_report

OUTBOX_0004 = sa.table(
    "outbox", sa.column("kind", sa.String()), sa.column("payload", sa.JSON()),
    sa.column("created_at", UtcDateTime()), sa.column("delivered_at", UtcDateTime()),
    sa.column("attempts", sa.Integer()),
)


async def test_rows_pending_before_0005_take_their_reports_meter_as_route(database: Database) -> None:
    engine = create_engine(database.engine_url)
    await migrate(engine, "0004")
    async with engine.begin() as conn:
        assert await conn.run_sync(current_revision) == "0004"
        for item in (status_report(100, EventStatus.STARTED, NOW),
                     TelemetryReport("battery-1", DeviceKind.BATTERY, NOW, soc_pct=40.0)):
            kind, payload = encode(item)
            await conn.execute(OUTBOX_0004.insert().values(
                kind=kind, payload=payload, created_at=NOW, delivered_at=None, attempts=0))
    await engine.dispose()

    store = Store(database.config(), database.data_dir)
    await store.open()
    outbox = Outbox(store)
    try:
        assert [(p.meter_id, p.kind) for p in await outbox.pending()] == [
            ("m1", "EventStatusReport"), (None, "TelemetryReport")]

        delivered: list[EventStatusReport] = []
        sent = asyncio.Event()

        async def send(report: EventStatusReport) -> None:
            delivered.append(report)
            sent.set()

        outbox.register_sender(EventStatusReport, send, meter_id="m1")
        await outbox.start()
        async with asyncio.timeout(5):
            await sent.wait()
        await store.flush()  # the delivered mark, queued as the sender returned
        assert delivered == [status_report(100, EventStatus.STARTED, NOW)]
        assert [p.kind for p in await outbox.pending()] == ["TelemetryReport"]  # no premise channel
    finally:
        await outbox.stop()
        await store.close()
