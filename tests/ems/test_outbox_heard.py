"""Issue 11 finding 4: a report that failed while the meter was silent goes out as soon as the meter is
heard again (``Outbox.peer_heard``), once per failure, not after the outbox's backoff. FixedClock."""

from __future__ import annotations

import asyncio

from ems.clock import FixedClock
from ems.model import EventStatusReport
from ems.outbox import Outbox
from ems.store import Store
from tests.ems.test_outbox_routing import Channel, clock, outbox, report, store  # noqa: F401 - fixtures


async def test_a_failed_report_is_retried_once_when_its_meter_is_heard(
    outbox: Outbox, store: Store, clock: FixedClock  # noqa: F811 - the fixtures above
) -> None:
    a = Channel("a", down=True)
    outbox.register_sender(EventStatusReport, a, meter_id="a")
    await outbox.enqueue(report("a", 1))
    await outbox.start()
    await a.until(lambda: len(a.attempts) == 1, store)

    outbox.peer_heard("b")  # another meter: nothing
    outbox.peer_heard("a")  # still down: one retry, failing again
    await a.until(lambda: len(a.attempts) == 2, store)
    a.down = False
    outbox.peer_heard("a")  # heard again after that failure: one more retry, which goes out
    await a.until(lambda: len(a.delivered) == 1, store)
    assert a.ids() == [1] and await outbox.pending() == []

    outbox.peer_heard("a")  # nothing failing: nothing to do
    await asyncio.sleep(0.05)
    assert len(a.attempts) == 3  # the clock never moved: every retry came from hearing the meter
