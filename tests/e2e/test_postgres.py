"""The appliance on PostgreSQL, as the README promises (``store: url: postgresql+asyncpg://...``).

A building with several meters is the case that needs a database server. Here the whole
appliance (``ems demo``, in its own process, with its simulated meter) and a hub serving two
meters run on a fresh database of the session's throwaway cluster (tests/pg.py):

- readings, a message and a DR event with its status reach PostgreSQL; the appliance is then
  killed with SIGKILL (no clean stop), started again on the same database, and every row
  committed before the kill is still there, nothing is stored twice and no row is an orphan;
- two meters' readings, events and per-meter outbox routes are kept apart in PostgreSQL, and
  what meter a still owes (its link is down) is there after a restart, in order.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from ems.model import EventStatus, MeterReading
from ems.store.engine import create_engine, database_url
from tests.e2e.conftest import FAST_SCENARIO, HANG_GUARD_S
from tests.e2e.test_two_meters import RULES, Home, statuses
from tests.processes import running_demo

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config"
METER = "main"  # the demo's meter (zigbee_se.meter_id's default)
EVENT_ID = 4101  # FAST_SCENARIO's event, announced 0.4 s after the meter is found

# Rows that must exist for a row to make sense (a foreign key in spirit, or in the schema).
ORPHANS = {
    "status reports of no stored event": """
        SELECT count(*) FROM event_status_reports s LEFT JOIN dr_events e
        ON e.meter_id = s.meter_id AND e.issuer_event_id = s.issuer_event_id WHERE e.id IS NULL""",
    "participation in no stored event": """
        SELECT count(*) FROM dr_participation p LEFT JOIN dr_events e
        ON e.meter_id = p.meter_id AND e.issuer_event_id = p.issuer_event_id WHERE e.id IS NULL""",
    "sessions of no user": """
        SELECT count(*) FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE u.id IS NULL""",
    "tokens of no user": """
        SELECT count(*) FROM api_tokens t LEFT JOIN users u ON u.id = t.user_id WHERE u.id IS NULL""",
    "token uses of no token": """
        SELECT count(*) FROM token_uses u LEFT JOIN api_tokens t ON t.id = u.token_id WHERE t.id IS NULL""",
}
# Each table's identity: a row committed before the kill is found again by it after the restart.
IDENTITY = {
    "meters": "meter_id",
    "demand_samples": "id",
    "register_readings": "id",
    "interval_readings": "meter_id, start, duration_s",
    "messages": "meter_id, message_id",
    "dr_events": "meter_id, issuer_event_id",
    "event_status_reports": "id",
    "outbox": "id, delivered_at IS NOT NULL",
    "users": "id",
    "api_tokens": "id",
}


@pytest.fixture
async def engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """The test's own engine on the appliance's database, to look at what it stored."""
    engine = create_engine(database_url(postgres_url, Path("unused")))
    yield engine
    await engine.dispose()


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(sql), params)).scalar()


async def committed(engine: AsyncEngine) -> dict[str, set[tuple[Any, ...]]]:
    """Every table's rows by identity, as committed now (one snapshot transaction)."""
    async with engine.connect() as conn:
        await conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        return {table: {tuple(row) for row in await conn.execute(sa.text(f"SELECT {key} FROM {table}"))}
                for table, key in IDENTITY.items()}


async def wait_for(engine: AsyncEngine, sql: str, what: str, **params: Any) -> None:
    """Wait until ``sql`` (a count) is positive; the bound only guards against a hang."""
    async with asyncio.timeout(HANG_GUARD_S):
        while not await scalar(engine, sql, **params):  # noqa: ASYNC110 - another process writes it
            await asyncio.sleep(0.1)


def demo_config(folder: Path, url: str) -> Path:
    """The shipped configuration folder, on PostgreSQL, with the meter asked to report fast."""
    shutil.copytree(REPO_CONFIG, folder, ignore=shutil.ignore_patterns("scenarios"))
    text = (folder / "ems.yaml").read_text()
    text = text.replace("store:\n", f"store:\n  url: \"{url}\"\n", 1)
    text = text.replace("report_interval_s: 5 ", "report_interval_s: 0.5 ", 1)
    (folder / "ems.yaml").write_text(text)
    return folder


async def test_the_appliance_on_postgresql_loses_nothing_committed_to_a_kill_9(
    tmp_path: Path, postgres_url: str, engine: AsyncEngine
) -> None:
    config = demo_config(tmp_path / "config", postgres_url)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(FAST_SCENARIO))
    args = ("-c", str(config), "--scenario", str(scenario))
    data = tmp_path / "data"

    with running_demo(data, *args) as demo:
        await wait_for(engine, "SELECT count(*) FROM demand_samples WHERE meter_id = :m", "demand", m=METER)
        await wait_for(engine, "SELECT count(*) FROM register_readings WHERE meter_id = :m", "summation", m=METER)
        await wait_for(engine, "SELECT count(*) FROM messages WHERE meter_id = :m", "the message", m=METER)
        await wait_for(engine, "SELECT count(*) FROM event_status_reports WHERE issuer_event_id = :e "
                               "AND status = :s", "RECEIVED", e=EVENT_ID, s=int(EventStatus.RECEIVED))
        await wait_for(engine, "SELECT count(*) FROM users", "the demo's owner")
        before = await committed(engine)
        demo.proc.kill()  # SIGKILL: no clean stop, no last flush
        assert demo.proc.wait() == -9

    assert await scalar(engine, "SELECT count(*) FROM dr_events WHERE issuer_event_id = :e", e=EVENT_ID) == 1
    with running_demo(data, *args) as demo:
        after = await committed(engine)
        readings_before = len(before["demand_samples"])
        await wait_for(engine, "SELECT count(*) > :n FROM demand_samples", "new demand", n=readings_before)
        assert demo.stop() == 0

    for table, rows in before.items():
        if table == "outbox":  # a row pending before may have been delivered since: same id
            assert {row_id for row_id, _ in rows} <= {row_id for row_id, _ in after[table]}
        else:
            assert rows <= after[table], f"{table}: {len(rows - after[table])} committed row(s) lost"
    assert await scalar(engine, "SELECT count(*) FROM dr_events") == 1  # the event, once
    assert await scalar(engine, "SELECT count(*) FROM users") == 1  # the demo's owner, once
    for what, sql in ORPHANS.items():
        assert await scalar(engine, sql) == 0, what


async def test_two_meters_are_kept_apart_in_postgresql_and_meter_as_owed_reports_survive_a_restart(
    tmp_path: Path, postgres_url: str, engine: AsyncEngine
) -> None:
    import rules
    from ems.dr.component import DemandResponse
    from ems.dr.rulebook import RuleBook
    from tests.hubs import started_hub

    config_text = (f"site: {{name: A building, timezone: America/Los_Angeles}}\n"
                   f"store: {{url: \"{postgres_url}\"}}\n")

    async def run_home(hub: Any, then: Any) -> Any:
        book = RuleBook(hub.config.config_dir / "rules.yaml", rules.parse_rules, rules.evaluate,
                        rules.check_conflicts)
        hub.control = DemandResponse(hub, book, {"start_randomization_min": 0, "cycle_tick_s": 0.2})
        home = Home(hub)
        for link in home.links.values():
            link.upstream.register()
        await hub.control.start()
        try:
            return await then(home)
        finally:
            await hub.control.stop()
            for link in home.links.values():
                link.upstream.unregister()

    async def first(home: Home) -> list[tuple[str, int, EventStatus]]:
        now = home.hub.clock()
        for meter_id, kw in (("a", 1.5), ("b", 42.0)):
            home.hub.bus.publish(MeterReading(meter_id, now, demand_kw=kw, summation_delivered_kwh=kw * 100))
        home.event("a", 11)
        home.event("b", 21)
        await home.until(lambda: EventStatus.STARTED in statuses(home.reports("b")))
        await home.hub.control.set_participation("a", 11, opted_out=True)
        await home.until(lambda: True)
        return [(p.meter_id, p.item.issuer_event_id, p.item.status) for p in await home.hub.outbox.pending()]

    (tmp_path / "one").mkdir()
    async with started_hub(tmp_path / "one", config_text, files={"rules.yaml": RULES}) as hub:
        owed = await run_home(hub, first)
        assert [r.demand_kw for r in await hub.store.demand_samples("a", hub.clock().replace(year=2000),
                                                                     hub.clock().replace(year=2100))] == [1.5]
    assert {meter_id for meter_id, _, _ in owed} == {"a"}
    assert statuses(owed)[-1] == EventStatus.OPTED_OUT
    assert await scalar(engine, "SELECT count(*) FROM dr_events") == 2
    assert await scalar(engine, "SELECT count(DISTINCT meter_id) FROM demand_samples") == 2

    async def again(home: Home) -> list[tuple[str, int, EventStatus]]:
        home.link_online("a")
        await home.until(lambda: len(home.reports("a")) >= len(owed))
        return home.reports("a")

    (tmp_path / "two").mkdir()
    # Another appliance folder, the same database.
    async with started_hub(tmp_path / "two", config_text, files={"rules.yaml": RULES}) as hub:
        delivered = await run_home(hub, again)
        assert await hub.outbox.pending() == []
    assert delivered[: len(owed)] == owed  # every report meter a was owed, in order, after the restart
    for what, sql in ORPHANS.items():
        assert await scalar(engine, sql) == 0, what
