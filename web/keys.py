"""The typed keys of the web app's state and of each request's: one leaf module.

Every web module imports its keys from here at the top, so no web module needs another one just
for a key (and none imports ``web.app``, which composes them all). This module imports nothing
from ``web``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiohttp import web

from ems.accounts import Accounts, ApiToken, Scope, Session, User
from ems.config import SiteConfig
from ems.hub import Hub


@dataclass(frozen=True, slots=True)
class Access:
    """Who made a request and what they may do: a session's user, or a token's."""

    user: User
    scopes: frozenset[Scope]
    session: Session | None = None
    token: ApiToken | None = None
    kiosk: bool = False  # a display link: the read scope, web.auth.KIOSK_PATHS only


class LiveSockets(Protocol):
    """What the app keeps of its WebSocket push (``web.live.LivePush``)."""

    def start(self) -> None: ...

    async def shutdown(self, app: web.Application) -> None: ...

    async def close(self) -> None: ...

    async def handle(self, request: web.Request) -> web.WebSocketResponse: ...


class SignInThrottle(Protocol):
    """What the app keeps of the sign-in backoff per client (``web.throttle.ClientThrottle``)."""

    def wait_until(self, client: str, now: datetime) -> datetime | None: ...

    def failed(self, client: str, now: datetime) -> None: ...

    def succeeded(self, client: str) -> None: ...


@dataclass(slots=True)
class Listen:
    """Where the dashboard listens, as configured (``web.host``, ``web.port``); ``web.app.WebServer``
    puts the bound port here once it listens (the configuration may say port 0)."""

    host: str
    port: int


# -- the app's state ---------------------------------------------------------------------------

HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
LIVE: web.AppKey[LiveSockets] = web.AppKey("live", LiveSockets)
ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts", Accounts)
DEMO: web.AppKey[bool] = web.AppKey("demo", bool)
SITE: web.AppKey[SiteConfig] = web.AppKey("site", SiteConfig)
LISTEN: web.AppKey[Listen] = web.AppKey("listen", Listen)
THROTTLE: web.AppKey[SignInThrottle] = web.AppKey("throttle", SignInThrottle)

# -- a request's ---------------------------------------------------------------------------------

ACCESS: web.RequestKey[Access] = web.RequestKey("access", Access)
KIOSK_REFUSED: web.RequestKey[str] = web.RequestKey("kiosk_refused", str)  # why a display link failed
TOKEN_USE_LOGGED: web.RequestKey[bool] = web.RequestKey("token_use_logged", bool)
