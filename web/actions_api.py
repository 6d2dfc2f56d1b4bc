"""What a customer does from the dashboard or the API: confirm or read a message, opt out of a DR event.

The handlers parse the request and call the core (``ems.messages``, the demand-response
component), which changes the state and queues the report for the meter in the durable outbox
(Messaging MessageConfirmation, DRLC ReportEventStatus), so it reaches the utility even across an
outage or a restart. What the core refuses reaches the client through ``web.errors``. Scopes are
checked by ``web.auth.RULES`` before a handler runs.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web

from ems import messages
from ems.errors import NotReady, RejectedCommand
from ems.hub import Hub
from web import present
from web.i18n import localize_message
from web.keys import ACCESS, HUB
from web.params import event_key, path_uint32

_LOGGER = logging.getLogger(__name__)


def _json(data: Any) -> web.Response:
    return web.json_response(data, headers={"Cache-Control": "no-store"})


def _hub(request: web.Request) -> Hub:
    return request.app[HUB]


def _message_key(request: web.Request) -> tuple[str, int]:
    return request.match_info["meter_id"], path_uint32(request, "message_id")


async def _answer(request: web.Request) -> Any:
    """The optional ``{"answer": "yes"|"no"}`` of an enhanced confirmation (checked by the core)."""
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
    if body["answer"] is None:  # sent, but null: not the same as no answer
        raise RejectedCommand('answer must be "yes" or "no", not None')
    return body["answer"]


async def confirm_message(request: web.Request) -> web.Response:
    """Confirm a message that asks for it; the confirmation goes to the meter through the outbox."""
    hub, (meter_id, message_id) = _hub(request), _message_key(request)
    messages.message(hub, meter_id, message_id)  # an unknown message is a 404 before a bad body's 400
    state = await messages.confirm(hub, meter_id, message_id, await _answer(request))
    return _json(localize_message(hub, present.message(state, hub.clock())))


async def read_message(request: web.Request) -> web.Response:
    """Mark a message read (in the store and the current state); every open page hears of it."""
    hub, (meter_id, message_id) = _hub(request), _message_key(request)
    state = await messages.mark_read(hub, meter_id, message_id)
    return _json(localize_message(hub, present.message(state, hub.clock())))


async def read_all_messages(request: web.Request) -> web.Response:
    """Mark every unread message read; answers the messages as they now stand, newest first."""
    hub = _hub(request)
    marked = await messages.mark_all_read(hub)
    _LOGGER.info("Customer marked %d message(s) read", len(marked))
    now = hub.clock()
    shown = [localize_message(hub, present.message(s, now)) for s in hub.state.recent_messages(now)]
    return _json({"marked": len(marked), "messages": shown})


async def _participate(request: web.Request, opt_out: bool) -> web.Response:
    hub = _hub(request)
    meter_id, event_id = event_key(request)
    control = hub.control
    if control is None:
        raise NotReady("demand response is not running; try again in a moment")
    control.event(meter_id, event_id)  # 404 for an event not heard here
    access = request.get(ACCESS)
    by = access.user.username if access is not None and access.user is not None else "api"
    # The DR component records the choice durably, reports it to the meter as SE asks
    # (at once while the event runs, at its start before), and restores the devices.
    await control.set_participation(meter_id, event_id, opted_out=opt_out, by=by)
    _LOGGER.info("[%s] Customer opted %s of event %d", meter_id, "out" if opt_out else "in", event_id)
    return _json(present.event(control.event(meter_id, event_id), control.device_names()))


async def opt_out(request: web.Request) -> web.Response:
    """Opt out of an active or scheduled DR event (C6 3.3 step 4)."""
    return await _participate(request, opt_out=True)


async def opt_in(request: web.Request) -> web.Response:
    """Take part again in an event the customer opted out of."""
    return await _participate(request, opt_out=False)


def add_action_routes(app: web.Application) -> None:
    """Register the message and event actions under /api/v1."""
    app.router.add_post("/api/v1/messages/{meter_id}/{message_id}/confirm", confirm_message)
    app.router.add_post("/api/v1/messages/read-all", read_all_messages)
    app.router.add_post("/api/v1/messages/{meter_id}/{message_id}/read", read_message)
    app.router.add_post("/api/v1/events/{meter_id}/{issuer_event_id}/opt-out", opt_out)
    app.router.add_post("/api/v1/events/{meter_id}/{issuer_event_id}/opt-in", opt_in)

