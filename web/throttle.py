"""Sign-in backoff per client (remote address), kept in memory.

A client's first failures cost nothing; after them each failure doubles the wait before its next
attempt, up to ``MAX_DELAY``. A throttled attempt is refused before any password is hashed and
before the account's own failure count grows, so one client guessing many user names is slowed,
and a stranger slowed on their address does not slow the owner on another one.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

FREE_FAILURES = 10  # twice the account's lockout (ems.accounts.MAX_FAILURES): a person mistyping never waits
FIRST_DELAY = timedelta(seconds=2)
MAX_DELAY = timedelta(minutes=15)
FORGET_AFTER = timedelta(hours=1)  # a client quiet this long starts afresh
MAX_CLIENTS = 4096  # the oldest are forgotten first: memory stays bounded whoever calls


@dataclass(slots=True)
class _Client:
    failures: int
    until: datetime  # no attempt before this
    last: datetime


class ClientThrottle:
    """Failures per client, and until when each must wait."""

    def __init__(self) -> None:
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def wait_until(self, client: str, now: datetime) -> datetime | None:
        """When ``client`` may try again, or None if it may now."""
        state = self._clients.get(client)
        if state is None:
            return None
        if now - state.last > FORGET_AFTER:
            del self._clients[client]
            return None
        return state.until if state.until > now else None

    def failed(self, client: str, now: datetime) -> None:
        state = self._clients.pop(client, None)
        if state is None or now - state.last > FORGET_AFTER:
            state = _Client(0, now, now)
        state.failures += 1
        state.last = now
        extra = state.failures - FREE_FAILURES
        state.until = now + min(FIRST_DELAY * 2 ** (extra - 1), MAX_DELAY) if extra > 0 else now
        self._clients[client] = state
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)
