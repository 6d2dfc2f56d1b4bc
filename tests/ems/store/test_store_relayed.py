"""Relayed events live in the store (``relayed_events``, migration 0007), on SQLite and PostgreSQL:
what the dispatcher relayed to a load controller is read back after a restart, replaced by a later
relay, and goes with the device's controlled row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import func, select

from ems.dr import dispatch
from ems.model import Criticality, DeviceClass, LoadControlEvent
from ems.outbox import encode
from ems.store import Store, tables
from tests.ems.store.store_samples import NOW

OpenStore = Callable[..., Awaitable[Store]]
SPA = "00:0d:6f:00:00:00:00:06"


def _event(event_id: int) -> LoadControlEvent:
    return LoadControlEvent("m1", event_id, DeviceClass.SMART_APPLIANCE, 0, NOW, 60, Criticality.LEVEL_2, NOW,
                            duty_cycle_pct=50, randomize_end=True)


def _row(event: LoadControlEvent) -> dict[str, object]:
    return {"device_id": SPA, "meter_id": event.meter_id, "issuer_event_id": event.issuer_event_id,
            "event": encode(event)[1], "relayed_at": NOW}


async def _count(store: Store) -> int:
    async def count(conn):
        return (await conn.execute(select(func.count()).select_from(tables.relayed_events))).scalar_one()
    return await store.read("count", count)


async def test_a_relayed_event_is_read_back_after_a_restart_and_a_later_relay_replaces_it(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    await store.write("save", lambda conn: dispatch._save_relayed(conn, _row(_event(1))))
    await store.write("save", lambda conn: dispatch._save_relayed(conn, _row(_event(2))))
    await store.close()

    store = await open_store()
    assert await store.read("read", dispatch._relayed) == [(SPA, _event(2))]
    assert (await store.read("read", dispatch._relayed))[0][1].end == NOW + timedelta(minutes=60)


async def test_a_relayed_event_goes_with_its_devices_controlled_row(open_store: OpenStore) -> None:
    store = await open_store()
    await store.write("save", lambda conn: dispatch._save_controlled(
        conn, [{"device_id": SPA, "original": {}, "since": NOW, "source": "event:m1:1"}]))
    await store.write("save", lambda conn: dispatch._save_relayed(conn, _row(_event(1))))
    assert await _count(store) == 1
    await store.write("forget", lambda conn: dispatch._delete_controlled(conn, [SPA]))
    assert await _count(store) == 0
    assert await store.read("read", dispatch._controlled) == []
