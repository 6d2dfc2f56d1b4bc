"""WebSocket push: every relevant bus event becomes a JSON message to each open page.

A page receives a full snapshot when it connects, then one message per change
(``{"topic": "meter", "data": {...}}``), so it never polls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from typing import Any

from aiohttp import WSMsgType, web

from ems.bus import Unsubscribe
from ems.hub import Hub
from ems.model import (
    EventCancellation,
    IntervalReading,
    LoadControlEvent,
    MessageCancelled,
    MessageConfirmed,
    MeterInfo,
    MeterLinkChanged,
    MeterReading,
    PriceSignal,
    UtilityMessage,
    utcnow,
)
from web import present

_LOGGER = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0


def snapshot(hub: Hub) -> dict[str, Any]:
    now = utcnow()
    return {
        "topic": "snapshot",
        "at": present.iso(now),
        "data": {
            "meters": present.meters(hub, now),
            "prices": present.prices(hub, now),
            "messages": present.messages(hub, now),
            "events": present.events(hub, now),
            "health": present.health(hub, now),
        },
    }


class LivePush:
    """Keeps the open WebSockets and pushes state changes to them."""

    def __init__(self, hub: Hub) -> None:
        self._hub = hub
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._unsubscribe: list[Unsubscribe] = []

    def start(self) -> None:
        bus = self._hub.bus
        for event_type in (MeterReading, MeterLinkChanged, MeterInfo, IntervalReading):
            self._unsubscribe.append(bus.listen(event_type, self._on_meter))
        self._unsubscribe.append(bus.listen(PriceSignal, self._on_price))
        for event_type in (UtilityMessage, MessageCancelled, MessageConfirmed):
            self._unsubscribe.append(bus.listen(event_type, self._on_messages))
        for event_type in (LoadControlEvent, EventCancellation):
            self._unsubscribe.append(bus.listen(event_type, self._on_events))

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"appliance shutting down")

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await ws.send_str(json.dumps(snapshot(self._hub)))
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and msg.data == "snapshot":
                    await ws.send_str(json.dumps(snapshot(self._hub)))
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
            self._broadcast({"topic": "meter", "data": present.meter(state, utcnow())})

    def _on_price(self, event: PriceSignal) -> None:
        self._broadcast({"topic": "prices", "data": present.prices(self._hub, utcnow())})

    def _on_messages(self, event: Any) -> None:
        self._broadcast({"topic": "messages", "data": present.messages(self._hub, utcnow())})

    def _on_events(self, event: Any) -> None:
        self._broadcast({"topic": "events", "data": present.events(self._hub, utcnow())})

    def _broadcast(self, payload: dict[str, Any]) -> None:
        if not self._sockets:
            return
        text = json.dumps(payload)
        for ws in list(self._sockets):
            if ws.closed:
                continue
            self._hub.create_task(self._send(ws, text), "websocket-send")

    async def _send(self, ws: web.WebSocketResponse, text: str) -> None:
        try:
            await asyncio.wait_for(ws.send_str(text), SEND_TIMEOUT_S)
        except (ConnectionError, TimeoutError, RuntimeError) as err:
            _LOGGER.debug("Dropping a WebSocket that cannot take data: %s", err)
            self._sockets.discard(ws)
