"""Utility messages as a core service (ems.messages) on a real hub: confirm, with or without an answer,
and mark read; each refusal says what the caller must do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems import messages
from ems.clock import FixedClock
from ems.errors import Conflict, NotFound, RejectedCommand
from ems.hub import Hub
from ems.model import MessageConfirmed, MessageImportance, MessageRead, UtilityMessage
from tests.hubs import started_hub

NOW = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)
PLAIN, NO_CONFIRMATION, ENHANCED = 1, 2, 3


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    async with started_hub(tmp_path, clock=FixedClock(NOW)) as hub:
        for message_id, confirm, enhanced in ((PLAIN, True, False), (NO_CONFIRMATION, False, False),
                                              (ENHANCED, True, True)):
            hub.bus.publish(UtilityMessage("main", message_id, f"message {message_id}", MessageImportance.HIGH,
                                           NOW - timedelta(minutes=5), NOW + timedelta(hours=1), confirm,
                                           NOW - timedelta(minutes=5), enhanced_confirmation=enhanced))
        yield hub


def _heard(hub: Hub, event_type: type) -> list[object]:
    heard: list[object] = []
    hub.bus.listen(event_type, heard.append)
    return heard


async def _queued(hub: Hub) -> list[MessageConfirmed]:
    return [p.item for p in await hub.outbox.pending() if isinstance(p.item, MessageConfirmed)]


async def _stored(hub: Hub, message_id: int) -> object:
    (stored,) = [m for m in await hub.store.messages(NOW - timedelta(days=1)) if m.message.message_id == message_id]
    return stored


async def test_a_confirmation_is_queued_for_the_meter_published_and_marked(hub: Hub) -> None:
    heard = _heard(hub, MessageConfirmed)

    state = await messages.confirm(hub, "main", PLAIN)

    confirmed = MessageConfirmed("main", PLAIN, NOW, None)
    assert await _queued(hub) == [confirmed]
    assert heard == [confirmed]
    assert (state.confirmed_at, state.read) == (NOW, True)
    stored = await _stored(hub, PLAIN)
    assert (stored.confirmed_at, stored.read) == (NOW, True)


async def test_an_enhanced_confirmation_carries_its_answer_and_a_plain_one_none(hub: Hub) -> None:
    await messages.confirm(hub, "main", ENHANCED, "no")
    await messages.confirm(hub, "main", PLAIN, "yes")  # a plain confirmation has no yes/no bits

    assert {c.message_id: c.answer for c in await _queued(hub)} == {ENHANCED: "no", PLAIN: None}
    assert (await _stored(hub, ENHANCED)).confirmation_answer == "no"


async def test_an_enhanced_confirmation_needs_a_yes_or_a_no(hub: Hub) -> None:
    with pytest.raises(RejectedCommand, match="asks for an answer") as missing:
        await messages.confirm(hub, "main", ENHANCED)
    with pytest.raises(RejectedCommand, match='answer must be "yes" or "no"') as wrong:
        await messages.confirm(hub, "main", ENHANCED, "maybe")

    # A request to fix, not a clash with how things stand.
    assert not isinstance(missing.value, Conflict) and not isinstance(wrong.value, Conflict)
    assert await _queued(hub) == []
    assert hub.state.messages[("main", ENHANCED)].confirmed_at is None


async def test_confirming_twice_or_what_asks_no_confirmation_is_a_conflict(hub: Hub) -> None:
    await messages.confirm(hub, "main", PLAIN)

    with pytest.raises(Conflict, match="already confirmed"):
        await messages.confirm(hub, "main", PLAIN)
    with pytest.raises(Conflict, match="asks for no confirmation"):
        await messages.confirm(hub, "main", NO_CONFIRMATION)
    assert len(await _queued(hub)) == 1


async def test_an_unknown_message_is_not_found(hub: Hub) -> None:
    for meter_id, message_id in (("main", 99), ("other", PLAIN)):
        with pytest.raises(NotFound, match=f"no message {message_id} from meter {meter_id!r}"):
            await messages.confirm(hub, meter_id, message_id)
        with pytest.raises(NotFound):
            await messages.mark_read(hub, meter_id, message_id)
    assert await _queued(hub) == []


async def test_marking_read_marks_the_state_and_the_store_and_tells_the_pages(hub: Hub) -> None:
    heard = _heard(hub, MessageRead)

    state = await messages.mark_read(hub, "main", NO_CONFIRMATION)

    assert state.read is True and hub.state.messages[("main", NO_CONFIRMATION)].read is True
    assert heard == [MessageRead("main", NO_CONFIRMATION, NOW)]
    assert (await _stored(hub, NO_CONFIRMATION)).read is True
    assert await _queued(hub) == []  # reading is the customer's own business: nothing goes upstream


def _again(message_id: int, text: str | None = None) -> UtilityMessage:
    """Message ``message_id`` as the hub fixture made it, heard again later (its times differ)."""
    return UtilityMessage("main", message_id, text or f"message {message_id}", MessageImportance.HIGH,
                          NOW, NOW + timedelta(hours=2), message_id != NO_CONFIRMATION, NOW,
                          enhanced_confirmation=message_id == ENHANCED)


async def test_the_same_message_heard_again_keeps_the_confirmation_and_read_mark(hub: Hub) -> None:
    # Issue 11 finding 3: the meter re-sends its last message (GetLastMessage at each reconnect).
    await messages.confirm(hub, "main", PLAIN)
    await messages.mark_read(hub, "main", NO_CONFIRMATION)

    hub.bus.publish(_again(PLAIN))
    hub.bus.publish(_again(NO_CONFIRMATION))

    plain, other = hub.state.messages[("main", PLAIN)], hub.state.messages[("main", NO_CONFIRMATION)]
    assert (plain.confirmed_at, plain.read) == (NOW, True)
    assert other.read
    assert plain.message.received_at == NOW - timedelta(minutes=5)  # the first one heard
    with pytest.raises(Conflict, match="already confirmed"):
        await messages.confirm(hub, "main", PLAIN)
    assert await _queued(hub) == [MessageConfirmed("main", PLAIN, NOW, None)]  # no second one
    stored = await _stored(hub, PLAIN)
    assert (stored.confirmed_at, stored.read) == (NOW, True)
    assert (await _stored(hub, NO_CONFIRMATION)).read


async def test_a_new_message_under_the_same_id_asks_again(hub: Hub) -> None:
    await messages.confirm(hub, "main", PLAIN)

    hub.bus.publish(_again(PLAIN, text="another text"))

    state = hub.state.messages[("main", PLAIN)]
    assert (state.message.text, state.confirmed_at, state.read) == ("another text", None, False)
    stored = await _stored(hub, PLAIN)
    assert (stored.message.text, stored.confirmed_at, stored.read) == ("another text", None, False)


async def test_two_confirmations_at_once_reach_the_meter_once(hub: Hub) -> None:
    """Issue 11 finding 3b: once per (meter, message id), as the utility sees it (a double click, two pages)."""
    heard = _heard(hub, MessageConfirmed)

    results = await asyncio.gather(messages.confirm(hub, "main", PLAIN), messages.confirm(hub, "main", PLAIN),
                                   return_exceptions=True)

    assert sorted(type(r).__name__ for r in results) == ["Conflict", "MessageState"]
    assert await _queued(hub) == [MessageConfirmed("main", PLAIN, NOW, None)]
    assert len(heard) == 1
