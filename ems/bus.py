"""Typed event bus: components publish domain events, others listen by event type.

Listeners are plain callables called in publish order; a coroutine listener is run as a task
owned by the bus (and awaited on close). A failing listener is logged at ERROR with its event
and never stops the publisher or the other listeners.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

_LOGGER = logging.getLogger(__name__)

E = TypeVar("E")
Listener = Callable[[E], Awaitable[None] | None]
Unsubscribe = Callable[[], None]


class EventBus:
    """Publish/subscribe of frozen domain events, keyed by their class."""

    def __init__(self) -> None:
        self._listeners: dict[type, list[Callable[[Any], Any]]] = defaultdict(list)
        self._any: list[Callable[[Any], Any]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def listen(self, event_type: type[E], listener: Callable[[E], Any]) -> Unsubscribe:
        """Call ``listener`` for every published event of ``event_type`` (or a subclass)."""
        self._listeners[event_type].append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners[event_type]:
                self._listeners[event_type].remove(listener)

        return unsubscribe

    def listen_all(self, listener: Callable[[Any], Any]) -> Unsubscribe:
        """Call ``listener`` for every event (the store and the WebSocket use this)."""
        self._any.append(listener)

        def unsubscribe() -> None:
            if listener in self._any:
                self._any.remove(listener)

        return unsubscribe

    def publish(self, event: object) -> None:
        for cls in type(event).__mro__:
            for listener in tuple(self._listeners.get(cls, ())):
                self._call(listener, event)
        for listener in tuple(self._any):
            self._call(listener, event)

    def _call(self, listener: Callable[[Any], Any], event: object) -> None:
        try:
            result = listener(event)
        except Exception:
            _LOGGER.exception("Listener %r failed on %r", listener, event)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._guard(listener, event, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(listener: Callable[[Any], Any], event: object, result: Awaitable[Any]) -> None:
        try:
            await result
        except Exception:
            _LOGGER.exception("Listener %r failed on %r", listener, event)

    async def drain(self) -> None:
        """Wait for the coroutine listeners still running."""
        while self._tasks:
            await asyncio.gather(*tuple(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        self._listeners.clear()
        self._any.clear()
