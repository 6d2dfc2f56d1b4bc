"""Issue 11 findings 2 and 3a at the DR core's seam: a status and the customer's choice that caused it
are durable together before anything acts on them or reports them, and a restart resumes the event's
life from the store, so nothing already reported is reported again.

The crash is simulated as a power loss would leave the disk: the SQLite files are copied the instant
the call returns (no await in between, so no later write can land), and a new hub opens the copy
without any graceful stop of the first."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from ems.dr.events import LoadControl, LoadControlSettings
from ems.model import EventPhase, EventStatus, EventStatusReport
from ems.outbox import Outbox
from tests.hubs import started_hub

from .conftest import T0, make_event


def crash_copy(hub_dir: Path, to: Path) -> None:
    """The data folder as it stands now (database, WAL and shared memory), into ``to``/data."""
    (to / "data").mkdir(parents=True)
    for path in (hub_dir / "data").glob("ems.db*"):
        shutil.copy(path, to / "data" / path.name)


async def test_an_opt_out_and_its_status_survive_a_power_loss_together(tmp_path, hub, clock, reports):
    control = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock)
    await control.start()
    try:
        hub.bus.publish(make_event())
        clock.advance(minutes=15)
        await control.advance()  # RECEIVED, STARTED
        await hub.store.flush()
        await control.set_participation("main", 1, opted_out=True)
        crash_copy(tmp_path, tmp_path / "after")  # the power goes the moment the opt-out is answered
    finally:
        await control.stop()
    async with started_hub(tmp_path / "after") as again:
        restarted: list[EventStatusReport] = []
        again.bus.listen(EventStatusReport, restarted.append)
        lc = LoadControl(again, LoadControlSettings(start_randomization_min=0), clock=clock)
        await lc.start()
        try:
            assert lc.view("main", 1).opted_out and lc.view("main", 1).phase is EventPhase.ACTIVE
            history = [r.status for r in await again.store.event_status_history(1, "main")]
            assert history == [EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.OPTED_OUT]
            pending = [p.item.status for p in await Outbox(again.store).pending()]
            assert EventStatus.OPTED_OUT in pending  # and the utility will hear of it
            clock.advance(hours=1)
            await lc.advance()
            assert [r.status for r in restarted] == [EventStatus.PARTIALLY_COMPLETED_OPT_OUT]
        finally:
            await lc.stop()


async def test_a_status_already_reported_is_never_queued_again(hub, clock, reports):
    # Two records of one event's life (a restart that lost its memory, a second core): the store's
    # history decides, so the utility hears RECEIVED and STARTED once.
    first = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock)
    second = LoadControl(hub, LoadControlSettings(start_randomization_min=0), clock=clock)
    await first.start()
    await second.start()
    try:
        hub.bus.publish(make_event(start=T0 + timedelta(minutes=1)))
        clock.advance(minutes=5)
        await first.advance()
        await second.advance()
        statuses = [r.status for r in reports]
        assert statuses == [EventStatus.RECEIVED, EventStatus.STARTED]
        queued = [p.item.status for p in await Outbox(hub.store).pending()]
        assert queued == [EventStatus.RECEIVED, EventStatus.STARTED]
    finally:
        await first.stop()
        await second.stop()
