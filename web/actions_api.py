"""What a customer does from the dashboard or the API: confirm or read a message, opt out of a DR event.

Each action changes the current state and queues its report for the meter in the durable outbox
(Messaging MessageConfirmation, DRLC ReportEventStatus), so it reaches the utility even across an
outage or a restart. Scopes are checked by ``web.auth.RULES`` before a handler runs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from ems.errors import NotReady, RejectedCommand
from ems.hub import Hub
from ems.model import MessageConfirmed, MessageRead, utcnow
from ems.state import EventState, MessageState
from web import present
from web.i18n import localize_message
from web.params import event_key, path_uint32

_LOGGER = logging.getLogger(__name__)

ANSWERS = ("yes", "no")


def _json(data: Any) -> web.Response:
    return web.json_response(data, headers={"Cache-Control": "no-store"})


def _hub(request: web.Request) -> Hub:
    from web.app import HUB  # web.app composes this module's routes

    return request.app[HUB]


def _message(request: web.Request) -> tuple[Hub, MessageState]:
    hub = _hub(request)
    meter_id, message_id = request.match_info["meter_id"], path_uint32(request, "message_id")
    state = hub.state.messages.get((meter_id, message_id))
    if state is None:
        raise web.HTTPNotFound(reason=f"no message {message_id} from meter {meter_id!r}")
    return hub, state


def _event(request: web.Request) -> tuple[Hub, EventState]:
    hub = _hub(request)
    meter_id, event_id = event_key(request)
    state = hub.state.events.get((meter_id, event_id))
    if state is None:
        raise web.HTTPNotFound(reason=f"no event {event_id} from meter {meter_id!r}")
    return hub, state


async def _answer(request: web.Request) -> str | None:
    """The optional ``{"answer": "yes"|"no"}`` of an enhanced confirmation."""
    if not request.can_read_body:
        return None
    text = (await request.read()).decode("utf-8", errors="replace").strip()
    if not text:
        return None
    try:
        body = json.loads(text)
    except ValueError:
        raise RejectedCommand('the body must be JSON such as {"answer": "yes"}') from None
    if not isinstance(body, dict):
        raise RejectedCommand('the body must be a JSON object such as {"answer": "yes"}')
    if "answer" not in body:
        return None
    answer = body["answer"]
    if answer not in ANSWERS:
        raise RejectedCommand(f'answer must be "yes" or "no", not {answer!r}')
    return answer


async def confirm_message(request: web.Request) -> web.Response:
    """Confirm a message that asks for it; the confirmation goes to the meter through the outbox."""
    hub, state = _message(request)
    answer = await _answer(request)
    msg = state.message
    if not msg.confirmation_required:
        raise web.HTTPConflict(reason=f"message {msg.message_id} asks for no confirmation")
    if state.confirmed_at is not None:
        raise web.HTTPConflict(reason=f"message {msg.message_id} was already confirmed at "
                                      f"{present.iso(state.confirmed_at)}")
    if msg.enhanced_confirmation and answer is None:
        raise RejectedCommand(f'message {msg.message_id} asks for an answer: send {{"answer": "yes"}} or "no"')
    if answer is not None and not msg.enhanced_confirmation:
        answer = None  # a plain confirmation carries no yes/no control bits
    confirmed = MessageConfirmed(msg.meter_id, msg.message_id, utcnow(), answer)
    # Durable first: once the outbox holds it, the meter will hear of it; then the state and
    # the store mark the message (the state's and the store's listeners on the bus).
    await hub.outbox.enqueue(confirmed)
    hub.bus.publish(confirmed)
    _LOGGER.info("[%s] Message %d confirmed%s", msg.meter_id, msg.message_id,
                 f" ({answer})" if answer else "")
    return _json(localize_message(hub, present.message(state, utcnow())))


async def read_message(request: web.Request) -> web.Response:
    """Mark a message read (in the store and the current state); every open page hears of it."""
    hub, state = _message(request)
    msg = state.message
    await hub.store.mark_message_read(msg.meter_id, msg.message_id)
    hub.bus.publish(MessageRead(msg.meter_id, msg.message_id, utcnow()))  # the state marks it read
    return _json(localize_message(hub, present.message(state, utcnow())))


async def _participate(request: web.Request, opt_out: bool) -> web.Response:
    hub, state = _event(request)
    now = utcnow()
    ev = state.event
    if hub.control is None:
        raise NotReady("demand response is not running; try again in a moment")
    from web.auth import ACCESS

    access = request.get(ACCESS)
    by = access.user.username if access is not None and access.user is not None else "api"
    try:
        # The DR component records the choice durably, reports it to the meter as SE asks
        # (at once while the event runs, at its start before), and restores the devices.
        await hub.control.set_participation(ev.meter_id, ev.issuer_event_id, opted_out=opt_out, by=by)
    except RejectedCommand as err:
        raise web.HTTPConflict(reason=str(err)) from None
    state.opted_out, state.opt_changed_at = opt_out, now
    _LOGGER.info("[%s] Customer opted %s of event %d", ev.meter_id, "out" if opt_out else "in",
                 ev.issuer_event_id)
    return _json(present.event(state, now, hub.control))


async def opt_out(request: web.Request) -> web.Response:
    """Opt out of an active or scheduled DR event (C6 3.3 step 4)."""
    return await _participate(request, opt_out=True)


async def opt_in(request: web.Request) -> web.Response:
    """Take part again in an event the customer opted out of."""
    return await _participate(request, opt_out=False)


def add_action_routes(app: web.Application) -> None:
    """Register the message and event actions under /api/v1."""
    app.router.add_post("/api/v1/messages/{meter_id}/{message_id}/confirm", confirm_message)
    app.router.add_post("/api/v1/messages/{meter_id}/{message_id}/read", read_message)
    app.router.add_post("/api/v1/events/{meter_id}/{issuer_event_id}/opt-out", opt_out)
    app.router.add_post("/api/v1/events/{meter_id}/{issuer_event_id}/opt-in", opt_in)

