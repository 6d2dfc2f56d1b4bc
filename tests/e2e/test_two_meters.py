"""Two meters on one appliance: each meter's DR status reports go back over that meter's own link.

The hub runs the real demand-response component, outbox and the SE client's upstream senders
(one per meter link); the links themselves are stand-ins whose session records what would be
sent to the meter. Meter "a" is offline while meter "b" is not: b's reports go out at once, a's
wait in order and go out when a's link is online again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import rules
from ems.dr.component import DemandResponse
from ems.dr.rulebook import RuleBook
from ems.hub import Hub
from ems.model import (
    Criticality,
    DeviceClass,
    EventStatus,
    EventStatusReport,
    LinkState,
    LoadControlEvent,
    MeterLinkChanged,
    utcnow,
)
from integrations.zigbee_se.upstream import UpstreamSender
from tests.hubs import started_hub

RULES = """\
rules:
  - name: Follow every event
    triggers: [{event: active}]
    action: follow_event
"""


class Session:
    """What a linked meter's session would send it: the status reports, in order."""

    def __init__(self, meter_id: str, changed: asyncio.Condition) -> None:
        self.meter_id = meter_id
        self.reports: list[EventStatusReport] = []
        self._changed = changed

    async def report_event_status(self, report: EventStatusReport) -> None:
        self.reports.append(report)
        async with self._changed:
            self._changed.notify_all()

    async def confirm_message(self, message_id: int, confirmed_at: Any, answer: str | None) -> None:
        raise AssertionError("no message is confirmed in these tests")


class Link:
    """A meter link as the upstream sender sees it: its meter id and its session (None: down)."""

    def __init__(self, hub: Hub, meter_id: str, changed: asyncio.Condition, *, online: bool) -> None:
        self.meter_id = meter_id
        self.linked = Session(meter_id, changed)
        self.session: Session | None = self.linked if online else None
        self.upstream = UpstreamSender(hub, self)


class Home:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.changed = asyncio.Condition()
        self.links = {m: Link(hub, m, self.changed, online=m != "a") for m in ("a", "b")}

    def reports(self, meter_id: str) -> list[tuple[str, int, EventStatus]]:
        return [(r.meter_id, r.issuer_event_id, r.status) for r in self.links[meter_id].linked.reports]

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, then for the outbox's delivered marks to be committed."""
        async with asyncio.timeout(10):
            async with self.changed:
                await self.changed.wait_for(predicate)
        await self.hub.store.flush()

    def event(self, meter_id: str, issuer_event_id: int) -> None:
        now = utcnow()
        self.hub.bus.publish(LoadControlEvent(meter_id, issuer_event_id, DeviceClass.HVAC, 0,
                                              now - timedelta(minutes=1), 60, Criticality.LEVEL_2, now))

    def link_online(self, meter_id: str) -> None:
        link = self.links[meter_id]
        link.session = link.linked
        self.hub.bus.publish(MeterLinkChanged(meter_id, LinkState.ONLINE, utcnow(), "meter found"))


@pytest.fixture
async def home(tmp_path: Path) -> AsyncIterator[Home]:
    async with started_hub(tmp_path, files={"rules.yaml": RULES}) as hub:
        book = RuleBook(hub.config.config_dir / "rules.yaml", rules.parse_rules, rules.evaluate,
                        rules.check_conflicts)
        hub.control = DemandResponse(hub, book, {"start_randomization_min": 0, "cycle_tick_s": 0.2})
        home = Home(hub)
        for link in home.links.values():
            link.upstream.register()
        await hub.control.start()
        try:
            yield home
        finally:
            await hub.control.stop()
            for link in home.links.values():
                link.upstream.unregister()


def statuses(reports: list[tuple[str, int, EventStatus]]) -> list[EventStatus]:
    return [status for _, _, status in reports]


async def test_an_event_on_meter_b_is_reported_to_meter_b_only(home: Home) -> None:
    home.event("b", 21)
    await home.until(lambda: EventStatus.STARTED in statuses(home.reports("b")))

    assert {(meter_id, event_id) for meter_id, event_id, _ in home.reports("b")} == {("b", 21)}
    assert home.reports("a") == []
    assert await home.hub.outbox.pending() == []


async def test_meter_bs_reports_go_while_meter_a_is_offline_and_as_go_in_order_when_it_is_back(
    home: Home,
) -> None:
    home.event("a", 11)
    home.event("b", 21)
    await home.until(lambda: EventStatus.STARTED in statuses(home.reports("b")))
    await home.hub.control.set_participation("a", 11, opted_out=True)  # reported at once: it runs
    await home.hub.control.set_participation("b", 21, opted_out=True)
    await home.until(lambda: EventStatus.OPTED_OUT in statuses(home.reports("b")))

    assert statuses(home.reports("b"))[-2:] == [EventStatus.STARTED, EventStatus.OPTED_OUT]
    assert {meter_id for meter_id, _, _ in home.reports("b")} == {"b"}
    waiting = [(p.meter_id, p.item.issuer_event_id, p.item.status) for p in await home.hub.outbox.pending()]
    assert {meter_id for meter_id, _, _ in waiting} == {"a"}
    assert statuses(waiting)[-2:] == [EventStatus.STARTED, EventStatus.OPTED_OUT]
    assert home.reports("a") == []

    home.link_online("a")  # the link's online state cuts the backoff short
    await home.until(lambda: len(home.reports("a")) == len(waiting))

    assert home.reports("a") == waiting  # every one, in the order they were made
    assert await home.hub.outbox.pending() == []
