"""Utility messages as a service: find one, confirm it (with the answer an enhanced one asks), mark it read.

The web, and any other customer input, calls these instead of touching the store or the outbox.
A confirmation is durable before anything else: once the outbox holds it, the meter will hear of
it (Messaging MessageConfirmation, SE 1.x D.5.3.1), even across an outage or a restart; then it
is published on the bus, where the current state and the store mark the message. The store marks
the message and queues the confirmation in one transaction that does nothing for a message
confirmed already, so two confirmations at once (a double click, two pages) reach the meter once. Marking read is
the customer's own business and goes no further than the store and the bus.

A refusal says what the caller must do (``ems.errors``): ``NotFound`` for a message that is not
here, ``Conflict`` for one that asks for no confirmation or was confirmed already, and
``RejectedCommand`` for a missing or wrong yes/no answer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ems.errors import Conflict, NotFound, RejectedCommand
from ems.model import MessageConfirmed, MessageRead
from ems.state import MessageState

if TYPE_CHECKING:
    from ems.hub import Hub

_LOGGER = logging.getLogger(__name__)

ANSWERS = ("yes", "no")  # an enhanced confirmation's answer (its yes/no control bits)


def message(hub: Hub, meter_id: str, message_id: int) -> MessageState:
    """The message ``message_id`` from ``meter_id`` as it stands; NotFound if it is not here."""
    state = hub.state.messages.get((meter_id, message_id))
    if state is None:
        raise NotFound(f"no message {message_id} from meter {meter_id!r}")
    return state


async def confirm(hub: Hub, meter_id: str, message_id: int, answer: str | None = None) -> MessageState:
    """Confirm a message that asks for it; its confirmation is queued for the meter, then published.

    ``answer`` ("yes" or "no") is required by an enhanced confirmation and dropped for a plain
    one, which carries no yes/no bits.
    """
    state = message(hub, meter_id, message_id)
    msg = state.message
    if answer is not None and answer not in ANSWERS:
        raise RejectedCommand(f'answer must be "yes" or "no", not {answer!r}')
    if not msg.confirmation_required:
        raise Conflict(f"message {msg.message_id} asks for no confirmation")
    if state.confirmed_at is not None:
        raise Conflict(f"message {msg.message_id} was already confirmed at "
                       f"{state.confirmed_at.isoformat().replace('+00:00', 'Z')}")
    if msg.enhanced_confirmation and answer is None:
        raise RejectedCommand(f'message {msg.message_id} asks for an answer: send {{"answer": "yes"}} or "no"')
    if not msg.enhanced_confirmation:
        answer = None
    confirmed = MessageConfirmed(msg.meter_id, msg.message_id, hub.clock(), answer)
    # Durable first, and once per (meter, message id): the meter will hear of it exactly once.
    if await hub.outbox.enqueue_confirmation(confirmed) is None:
        raise Conflict(f"message {msg.message_id} was already confirmed")
    hub.bus.publish(confirmed)  # then the state and the store mark the message
    _LOGGER.info("[%s] Message %d confirmed%s", msg.meter_id, msg.message_id, f" ({answer})" if answer else "")
    return state


async def mark_read(hub: Hub, meter_id: str, message_id: int) -> MessageState:
    """Mark a message read in the store and the current state; every open page hears of it."""
    state = message(hub, meter_id, message_id)
    await hub.store.mark_message_read(meter_id, message_id)
    hub.bus.publish(MessageRead(meter_id, message_id, hub.clock()))  # the state marks it read
    return state


async def mark_all_read(hub: Hub) -> list[MessageState]:
    """Mark every message still unread read (what "Mark all read" does); returns those it marked.
    A message that asks for a confirmation still asks for it: reading is not confirming."""
    unread = [state for state in hub.state.recent_messages(hub.clock()) if not state.read]
    for state in unread:
        await mark_read(hub, state.message.meter_id, state.message.message_id)
    return unread
