"""WebSocket push: every relevant bus event becomes a JSON message to each open page.

A page receives a full snapshot when it connects, then one message per change
(``{"topic": "meter", "data": {...}}``), so it never polls. When someone confirms or reads a
message, or opts out of an event, every page gets a fresh snapshot at once, so the other open
pages drop their unread mark or show the new state too.

Each socket keeps the language of the page that opened it (``?lang=`` or the person's): the
messages the EMS made itself are sent with ``display_text`` in that language.

Each message carries a topic's whole current state (a meter's, the prices, the messages, the
events, or everything in a snapshot), so what waits for a page is only the newest text per topic
(per meter for the meter topic), sent in order by one sender task per page: a burst of changes, or
a page that cannot keep up, never builds a queue (before, every change was a task per page; with
8 meters and 25 pages, hundreds waited at once, each with its copy: bench/load.py).

On shutdown (``app.on_shutdown``, before aiohttp cancels the handlers) every open socket is
closed with 1001 Going Away, so a page knows the appliance is restarting rather than broken
(1006). The pages are kept by their sockets in a WeakKeyDictionary, as aiohttp's graceful shutdown
keeps the sockets; the push's own timers are kept too and cancelled when it closes.
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
SNAPSHOT = "snapshot"  # the key of a whole snapshot: it replaces whatever waits for the page


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


class _Page:
    """One open page: its socket, its language, and the newest text per topic waiting for it."""

    __slots__ = ("language", "waiting", "sending")

    def __init__(self, language: str) -> None:
        self.language = language
        self.waiting: dict[str, str] = {}  # key (topic, or "meter:<id>") -> text; in the order first queued
        self.sending = False


class LivePush:
    """Keeps the open WebSockets and pushes state changes to them."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._pages: weakref.WeakKeyDictionary[web.WebSocketResponse, _Page] = weakref.WeakKeyDictionary()
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
        sockets = [ws for ws in list(self._pages) if not ws.closed]
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
        page = self._pages[ws] = _Page(language)
        try:
            self._queue(ws, page, SNAPSHOT, json.dumps(snapshot(self._hub, language)))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and msg.data == "snapshot":
                    self._queue(ws, page, SNAPSHOT, json.dumps(snapshot(self._hub, language)))
        finally:
            self._pages.pop(ws, None)
        return ws

    @property
    def client_count(self) -> int:
        return len(self._pages)

    def _on_meter(self, event: Any) -> None:
        state = self._hub.state.meters.get(event.meter_id)
        if isinstance(event, IntervalReading) and (state is None or state.last_interval is not event):
            return  # an older interval (history being read): nothing on the page changes
        if state is not None:
            payload = {"topic": "meter", "data": present.meter(state, self._hub.clock())}
            self._broadcast(f"meter:{event.meter_id}", lambda language: payload)

    def _on_health(self, event: StorageChanged) -> None:
        payload = {"topic": "health", "data": present.health(self._hub, self._hub.clock())}
        self._broadcast("health", lambda language: payload)

    def _on_price(self, event: PriceSignal) -> None:
        payload = {"topic": "prices", "data": present.prices(self._hub, self._hub.clock())}
        self._broadcast("prices", lambda language: payload)

    def _on_messages(self, event: Any) -> None:
        self._broadcast("messages", lambda language: {"topic": "messages", "data": _messages(self._hub, language)})

    def _on_action(self, event: Any) -> None:
        # On the next turn of the loop: whoever published it has applied it to the state by then.
        self._later(0, lambda: self._broadcast(SNAPSHOT, lambda language: snapshot(self._hub, language)))

    def _on_control(self, event: Any) -> None:
        if self._control_push_pending or not self._pages:
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
        self._broadcast("events", lambda language: payload)

    def _broadcast(self, key: str, payload: Callable[[str], dict[str, Any]]) -> None:
        """Queue ``payload(language)`` for every open page under ``key``, made once per language in use."""
        if not self._pages or self._closing:
            return
        texts: dict[str, str] = {}
        for ws, page in list(self._pages.items()):
            if ws.closed:
                continue
            if page.language not in texts:
                texts[page.language] = json.dumps(payload(page.language))
            self._queue(ws, page, key, texts[page.language])

    def _queue(self, ws: web.WebSocketResponse, page: _Page, key: str, text: str) -> None:
        """``text`` replaces what waits under ``key`` (a snapshot replaces everything waiting); the
        page's one sender is started if it is not running."""
        if key == SNAPSHOT:
            page.waiting.clear()
        page.waiting[key] = text
        if not page.sending:
            page.sending = True
            self._hub.create_task(self._send(ws, page), "websocket-send")

    async def _send(self, ws: web.WebSocketResponse, page: _Page) -> None:
        """Send what waits for ``page``, oldest key first, until nothing does."""
        try:
            while page.waiting and not ws.closed:
                key = next(iter(page.waiting))
                text = page.waiting.pop(key)
                async with asyncio.timeout(SEND_TIMEOUT_S):  # not wait_for: no second task per send
                    await ws.send_str(text)
        except (ConnectionError, TimeoutError, RuntimeError) as err:
            _LOGGER.debug("Dropping a WebSocket that cannot take data: %s", err)
            page.waiting.clear()
            self._pages.pop(ws, None)
        finally:
            page.sending = False
