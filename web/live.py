"""WebSocket push: every relevant bus event becomes a JSON message to each open page.

A page receives a full snapshot when it connects, then one message per change
(``{"topic": "meter", "data": {...}}``), so it never polls. When someone confirms or reads a
message, or opts out of an event, every page gets a fresh snapshot at once, so the other open
pages drop their unread mark or show the new state too.

Each socket keeps the language of the page that opened it (``?lang=`` or the person's): the
messages the EMS made itself are sent with ``display_text`` in that language.

On shutdown (``app.on_shutdown``, before aiohttp cancels the handlers) every open socket is
closed with 1001 Going Away, so a page knows the appliance is restarting rather than broken
(1006). The sockets are kept in a WeakSet, as aiohttp's graceful shutdown does; the push's own
timers are kept too and cancelled when it closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ems.bus import Unsubscribe
from ems.hub import Hub
from ems.model import (
    DeviceCommanded,
    EventCancellation,
    EventParticipationChanged,
    EventStatusReport,
    IntervalReading,
    LoadControlEvent,
    MessageCancelled,
    MessageConfirmed,
    MessageRead,
    MeterInfo,
    MeterLinkChanged,
    MeterReading,
    PriceSignal,
    StorageChanged,
    UtilityMessage,
)
from web import i18n, present

_LOGGER = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0  # how long a page may take to answer the close (a silent one holds up shutdown)
CONTROL_PUSH_DELAY_S = 0.3  # a burst of device commands becomes one push
GOING_AWAY = b"appliance shutting down"


def snapshot(hub: Hub, language: str = i18n.DEFAULT) -> dict[str, Any]:
    now = hub.clock()
    return {
        "topic": "snapshot",
        "at": present.iso(now),
        "data": {
            "meters": present.meters(hub, now),
            "prices": present.prices(hub, now),
            "messages": _messages(hub, language),
            "events": present.events(hub),
            "health": present.health(hub, now),
        },
    }


def _messages(hub: Hub, language: str) -> list[dict[str, Any]]:
    return i18n.localize_messages(hub, present.messages(hub, hub.clock()), language)


class LivePush:
    """Keeps the open WebSockets and pushes state changes to them."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._languages: weakref.WeakKeyDictionary[web.WebSocketResponse, str] = weakref.WeakKeyDictionary()
        self._unsubscribe: list[Unsubscribe] = []
        self._timers: set[asyncio.Handle] = set()  # pushes waiting for their turn; cancelled on close
        self._control_push_pending = False
        self._closing = False

    def start(self) -> None:
        self._closing = False
        bus = self._hub.bus
        for event_type in (MeterReading, MeterLinkChanged, MeterInfo, IntervalReading):
            self._unsubscribe.append(bus.listen(event_type, self._on_meter))
        self._unsubscribe.append(bus.listen(PriceSignal, self._on_price))
        for event_type in (UtilityMessage, MessageCancelled):
            self._unsubscribe.append(bus.listen(event_type, self._on_messages))
        # Someone acted on one page: every page gets the whole new state at once.
        for event_type in (MessageConfirmed, MessageRead, EventParticipationChanged):
            self._unsubscribe.append(bus.listen(event_type, self._on_action))
        for event_type in (LoadControlEvent, EventCancellation):
            self._unsubscribe.append(bus.listen(event_type, self._on_events))
        # What the EMS did (device commands, an event starting or ending): one push per burst.
        for event_type in (DeviceCommanded, EventStatusReport):
            self._unsubscribe.append(bus.listen(event_type, self._on_control))
        # The database stopped or started taking writes: every page says so at once.
        self._unsubscribe.append(bus.listen(StorageChanged, self._on_health))

    async def shutdown(self, app: web.Application) -> None:
        """``app.on_shutdown``: stop pushing and close every page's socket with 1001 Going Away."""
        await self.close()

    async def close(self) -> None:
        """Stop listening, cancel the pending pushes, close the open sockets (1001); idempotent."""
        self._closing = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self._control_push_pending = False
        sockets = [ws for ws in list(self._sockets) if not ws.closed]
        if sockets:
            _LOGGER.debug("Closing %d WebSocket(s): going away", len(sockets))
            await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY, message=GOING_AWAY) for ws in sockets),
                                 return_exceptions=True)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20, timeout=CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        if self._closing:  # opened as the appliance stops: nothing more will come
            await ws.close(code=WSCloseCode.GOING_AWAY, message=GOING_AWAY)
            return ws
        language = i18n.current()
        self._sockets.add(ws)
        self._languages[ws] = language
        try:
            await ws.send_str(json.dumps(snapshot(self._hub, language)))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and msg.data == "snapshot":
                    await ws.send_str(json.dumps(snapshot(self._hub, language)))
        finally:
            self._sockets.discard(ws)
        return ws

    @property
    def client_count(self) -> int:
        return len(self._sockets)

    def _on_meter(self, event: Any) -> None:
        state = self._hub.state.meters.get(event.meter_id)
        if isinstance(event, IntervalReading) and (state is None or state.last_interval is not event):
            return  # an older interval (history being read): nothing on the page changes
        if state is not None:
            payload = {"topic": "meter", "data": present.meter(state, self._hub.clock())}
            self._broadcast(lambda language: payload)

    def _on_health(self, event: StorageChanged) -> None:
        payload = {"topic": "health", "data": present.health(self._hub, self._hub.clock())}
        self._broadcast(lambda language: payload)

    def _on_price(self, event: PriceSignal) -> None:
        payload = {"topic": "prices", "data": present.prices(self._hub, self._hub.clock())}
        self._broadcast(lambda language: payload)

    def _on_messages(self, event: Any) -> None:
        self._broadcast(lambda language: {"topic": "messages", "data": _messages(self._hub, language)})

    def _on_action(self, event: Any) -> None:
        # On the next turn of the loop: whoever published it has applied it to the state by then.
        self._later(0, lambda: self._broadcast(lambda language: snapshot(self._hub, language)))

    def _on_control(self, event: Any) -> None:
        if self._control_push_pending or not self._sockets:
            return
        self._control_push_pending = True
        self._later(CONTROL_PUSH_DELAY_S, self._push_control)

    def _later(self, delay_s: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``delay_s`` (0: on the loop's next turn), unless the push closes first."""
        if self._closing:
            return
        loop = asyncio.get_running_loop()

        def run() -> None:
            self._timers.discard(handle)
            callback()

        handle: asyncio.Handle = loop.call_later(delay_s, run) if delay_s > 0 else loop.call_soon(run)
        self._timers.add(handle)

    def _push_control(self) -> None:
        self._control_push_pending = False
        self._on_events(None)

    def _on_events(self, event: Any) -> None:
        payload = {"topic": "events", "data": present.events(self._hub)}
        self._broadcast(lambda language: payload)

    def _broadcast(self, payload: Callable[[str], dict[str, Any]]) -> None:
        """Send ``payload(language)`` to every open page, made once per language in use."""
        if not self._sockets or self._closing:
            return
        texts: dict[str, str] = {}
        for ws in list(self._sockets):
            if ws.closed:
                continue
            language = self._languages.get(ws, i18n.DEFAULT)
            if language not in texts:
                texts[language] = json.dumps(payload(language))
            self._hub.create_task(self._send(ws, texts[language]), "websocket-send")

    async def _send(self, ws: web.WebSocketResponse, text: str) -> None:
        try:
            await asyncio.wait_for(ws.send_str(text), SEND_TIMEOUT_S)
        except (ConnectionError, TimeoutError, RuntimeError) as err:
            _LOGGER.debug("Dropping a WebSocket that cannot take data: %s", err)
            self._sockets.discard(ws)
