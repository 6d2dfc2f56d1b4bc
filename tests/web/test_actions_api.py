"""The customer's actions over HTTP: confirm and read messages, opt out of and back into DR events."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ems.accounts import Accounts, Role, Scope
from ems.dr.component import DemandResponse
from ems.hub import Hub
from ems.model import (
    Criticality,
    DeviceClass,
    EventStatus,
    LoadControlEvent,
    MessageImportance,
    UtilityMessage,
    utcnow,
)
from tests.hubs import started_hub
from web.auth import ACCOUNTS

from .control import NoRules

PASSWORD = "correct horse battery"


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with started_hub(tmp_path) as hub:
        hub.control = DemandResponse(hub, NoRules(tmp_path / "rules.yaml"))
        await hub.control.start()
        now = utcnow()
        for message_id, confirm, enhanced in ((1, True, False), (2, False, False), (3, True, True)):
            hub.bus.publish(UtilityMessage("main", message_id, f"message {message_id}", MessageImportance.HIGH,
                                           now - timedelta(minutes=1), now + timedelta(hours=1), confirm, now,
                                           enhanced_confirmation=enhanced))
        for event_id, start in ((10, now + timedelta(hours=1)), (11, now - timedelta(minutes=5)),
                                (12, now - timedelta(hours=2))):
            hub.bus.publish(LoadControlEvent("main", event_id, DeviceClass.HVAC, 0, start, 30,
                                             Criticality.LEVEL_2, now, cooling_offset_c=2.0))
        yield hub
        await hub.control.stop()


async def _headers(client: Any, scopes: list[Scope] | None = None) -> dict[str, str]:
    accounts: Accounts = client.app[ACCOUNTS]
    owner = await accounts.user("owner") or await accounts.create_user("owner", PASSWORD, Role.OWNER)
    token = await accounts.create_token(owner, "test", scopes or list(Scope))
    return {"Authorization": f"Bearer {token.secret}"}


LIFECYCLE = (EventStatus.RECEIVED, EventStatus.STARTED, EventStatus.COMPLETED, EventStatus.COMPLETED_NO_PARTICIPATION)


async def _queued(hub: Hub) -> list[Any]:
    """What the customer's actions queued (not the events' own start and end reports)."""
    return [p.item for p in await hub.outbox.pending() if getattr(p.item, "status", None) not in LIFECYCLE]


async def test_confirming_a_message_marks_it_and_queues_the_confirmation(client: Any, hub: Hub) -> None:
    response = await client.post("/api/v1/messages/main/1/confirm", headers=await _headers(client))

    assert response.status == 200
    body = await response.json()
    assert body["message_id"] == 1 and body["confirmed_at"] is not None and body["read"] is True
    assert hub.state.messages[("main", 1)].confirmed_at is not None
    (queued,) = await _queued(hub)
    assert (type(queued).__name__, queued.message_id, queued.answer) == ("MessageConfirmed", 1, None)


async def test_a_second_confirmation_is_a_409(client: Any) -> None:
    headers = await _headers(client)
    await client.post("/api/v1/messages/main/1/confirm", headers=headers)

    again = await client.post("/api/v1/messages/main/1/confirm", headers=headers)

    assert again.status == 409
    assert "already confirmed" in (await again.json())["error"]


async def test_a_message_that_asks_no_confirmation_is_a_409(client: Any, hub: Hub) -> None:
    response = await client.post("/api/v1/messages/main/2/confirm", headers=await _headers(client))

    assert response.status == 409
    assert "asks for no confirmation" in (await response.json())["error"]
    assert await _queued(hub) == []


async def test_an_unknown_message_is_a_json_404(client: Any) -> None:
    headers = await _headers(client)

    for path in ("/api/v1/messages/main/99/confirm", "/api/v1/messages/other/1/read",
                 "/api/v1/messages/main/x/read"):
        response = await client.post(path, headers=headers)
        assert response.status == 404, path
        assert (await response.json())["status"] == 404


async def test_an_enhanced_confirmation_carries_the_answer(client: Any, hub: Hub) -> None:
    headers = await _headers(client)

    missing = await client.post("/api/v1/messages/main/3/confirm", headers=headers)
    wrong = await client.post("/api/v1/messages/main/3/confirm", headers=headers, json={"answer": "maybe"})
    answered = await client.post("/api/v1/messages/main/3/confirm", headers=headers, json={"answer": "no"})

    assert (missing.status, wrong.status, answered.status) == (400, 400, 200)
    assert 'answer must be "yes" or "no"' in (await wrong.json())["error"]
    (queued,) = await _queued(hub)
    assert queued.answer == "no"


async def test_reading_a_message_marks_it_read(client: Any, hub: Hub) -> None:
    response = await client.post("/api/v1/messages/main/2/read", headers=await _headers(client))

    assert response.status == 200
    assert (await response.json())["read"] is True
    assert hub.state.messages[("main", 2)].read is True


async def test_mark_all_read_marks_every_unread_message_and_confirms_none(client: Any, hub: Hub) -> None:
    await client.post("/api/v1/messages/main/2/read", headers=await _headers(client))
    unread = {key for key, m in hub.state.messages.items() if not m.read}
    assert {("main", 1), ("main", 3)} <= unread

    response = await client.post("/api/v1/messages/read-all", headers=await _headers(client))

    assert response.status == 200
    body = await response.json()
    assert body["marked"] == len(unread)  # 2 was read already
    assert all(m["read"] for m in body["messages"])
    assert all(m.read for m in hub.state.messages.values())
    assert hub.state.messages[("main", 1)].confirmed_at is None  # reading is not confirming
    stored = await hub.store.messages(utcnow() - timedelta(days=1))
    assert stored and all(m.read for m in stored)  # kept across a restart
    again = await client.post("/api/v1/messages/read-all", headers=await _headers(client))
    assert (await again.json())["marked"] == 0


async def test_mark_all_read_needs_the_confirm_scope(client: Any) -> None:
    response = await client.post("/api/v1/messages/read-all", headers=await _headers(client, [Scope.READ]))

    assert response.status == 403


@pytest.mark.parametrize("event_id", [10, 11], ids=["scheduled", "active"])
async def test_opting_out_records_the_choice_and_queues_the_report(client: Any, hub: Hub, event_id: int) -> None:
    headers = await _headers(client)

    out = await client.post(f"/api/v1/events/main/{event_id}/opt-out", headers=headers)
    back = await client.post(f"/api/v1/events/main/{event_id}/opt-in", headers=headers)

    assert (out.status, back.status) == (200, 200)
    assert (await out.json())["participation"] == "opted_out"
    assert (await back.json())["participation"] == "opted_in"
    reports = await _queued(hub)
    # SE 2.12 items 8-9: reported at once while the event runs; before it, when it would start.
    expected = [(event_id, EventStatus.OPTED_OUT), (event_id, EventStatus.OPTED_IN)] if event_id == 11 else []
    assert [(r.issuer_event_id, r.status) for r in reports
            if r.issuer_event_id == event_id and r.status in (EventStatus.OPTED_OUT, EventStatus.OPTED_IN)] == expected


async def test_opting_out_twice_or_of_a_past_event_is_a_409(client: Any) -> None:
    headers = await _headers(client)
    await client.post("/api/v1/events/main/10/opt-out", headers=headers)

    twice = await client.post("/api/v1/events/main/10/opt-out", headers=headers)
    past = await client.post("/api/v1/events/main/12/opt-out", headers=headers)
    not_out = await client.post("/api/v1/events/main/11/opt-in", headers=headers)
    unknown = await client.post("/api/v1/events/main/77/opt-out", headers=headers)

    assert (twice.status, past.status, not_out.status, unknown.status) == (409, 409, 409, 404)
    assert "completed" in (await past.json())["error"]


async def test_the_event_list_shows_the_choice(client: Any) -> None:
    headers = await _headers(client)
    await client.post("/api/v1/events/main/11/opt-out", headers=headers)

    events = (await (await client.get("/api/v1/events", headers=headers)).json())["events"]

    assert {e["issuer_event_id"]: e["participation"] for e in events} == {
        10: "opted_in", 11: "opted_out", 12: "opted_in"}


async def test_a_read_only_token_may_do_nothing(client: Any, hub: Hub) -> None:
    headers = await _headers(client, [Scope.READ])

    for path in ("/api/v1/messages/main/1/confirm", "/api/v1/messages/main/2/read",
                 "/api/v1/events/main/10/opt-out"):
        response = await client.post(path, headers=headers)
        assert response.status == 403, path
    assert await _queued(hub) == []


async def test_each_action_needs_its_own_scope(client: Any) -> None:
    confirm_only = await _headers(client, [Scope.CONFIRM_MESSAGES])
    override_only = await _headers(client, [Scope.OVERRIDE_EVENTS])

    assert (await client.post("/api/v1/messages/main/1/confirm", headers=override_only)).status == 403
    assert (await client.post("/api/v1/events/main/10/opt-out", headers=confirm_only)).status == 403
    assert (await client.post("/api/v1/messages/main/1/confirm", headers=confirm_only)).status == 200
    assert (await client.post("/api/v1/events/main/10/opt-out", headers=override_only)).status == 200


async def test_a_cookie_session_needs_the_csrf_header(client: Any, hub: Hub) -> None:
    accounts: Accounts = client.app[ACCOUNTS]
    await accounts.create_user("owner", PASSWORD, Role.OWNER)
    await accounts.create_user("mia", PASSWORD, Role.MEMBER)
    login = await client.get("/login")
    field = re.search(r'name="csrf_token" value="([^"]+)"', await login.text()).group(1)
    await client.post("/login", data={"csrf_token": field, "username": "mia", "password": PASSWORD})
    page = await (await client.get("/")).text()
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)

    refused = await client.post("/api/v1/events/main/10/opt-out")
    accepted = await client.post("/api/v1/events/main/10/opt-out", headers={"X-CSRF-Token": token})

    assert refused.status == 403 and "CSRF" in (await refused.json())["error"]
    assert accepted.status == 200
    assert hub.control.event("main", 10).opted_out is True


async def test_a_wrong_method_says_which_methods_are_allowed(client: Any) -> None:
    response = await client.get("/api/v1/messages/main/1/confirm", headers=await _headers(client))
    assert response.status == 405
    assert "POST" in response.headers["Allow"]
    assert (await response.json())["status"] == 405
