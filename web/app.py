"""The aiohttp application: REST API, WebSocket and pages, started and stopped by the hub."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web, web_response

from ems.errors import NotReady
from ems.hub import Hub
from web import present
from web.actions_api import add_action_routes
from web.auth import auth_middleware, setup_auth
from web.commissioning_page import add_commissioning_routes
from web.control_api import add_control_routes
from web.control_pages import add_control_pages
from web.costs_api import add_cost_routes
from web.errors import error_middleware
from web.i18n import add_language_middlewares, current, localize_messages, setup_i18n
from web.ihd import add_ihd_routes
from web.keys import HUB, LISTEN, LIVE, Listen
from web.live import LivePush
from web.loadchange_api import add_loadchange_routes
from web.meter_setup import add_meter_setup_routes
from web.openapi import add_openapi_route
from web.pages import page
from web.programs_setup import add_programs_setup_routes
from web.provision_api import add_provision_routes
from web.settings_page import add_settings_routes
from web.usage_api import add_usage_routes

__all__ = ["HUB", "LIVE", "WebServer", "create_app"]

_LOGGER = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent


def _json(data: Any) -> web.Response:
    return web.json_response(data, headers={"Cache-Control": "no-store"})


async def health(request: web.Request) -> web.Response:
    return _json(present.health(request.app[HUB], request.app[HUB].clock()))


async def meter(request: web.Request) -> web.Response:
    return _json({"meters": present.meters(request.app[HUB], request.app[HUB].clock())})


async def price(request: web.Request) -> web.Response:
    return _json({"prices": present.prices(request.app[HUB], request.app[HUB].clock())})


async def messages(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return _json({"messages": localize_messages(hub, present.messages(hub, hub.clock()), current())})


async def events(request: web.Request) -> web.Response:
    return _json({"events": present.events(request.app[HUB])})


async def websocket(request: web.Request) -> web.StreamResponse:
    return await request.app[LIVE].handle(request)


@aiohttp_jinja2.template("live.html")
async def live_page(request: web.Request) -> dict[str, Any]:
    return page(request, timezone=request.app[HUB].config.site.timezone, title=None)


# The pages load their scripts and styles from /static (the JSON in <script type="application/json">
# is data, never run); the WebSocket is same-origin (CSP3: 'self' matches ws: and wss: on this host);
# the favicon is "data:,". No page is ever framed.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SERVER_NAME = "ems"  # aiohttp would name itself, and its and Python's versions
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Server": SERVER_NAME,
}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response the app sends: pages, API, static files, errors and WebSocket upgrades."""
    response.headers.update(SECURITY_HEADERS)


def create_app(hub: Hub, demo: bool = False) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app.on_response_prepare.append(_security_headers)
    app[HUB] = hub
    app[LIVE] = LivePush(hub)
    app[LISTEN] = Listen(hub.config.web.host, hub.config.web.port)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    setup_i18n(env)
    app.router.add_get("/", live_page)
    app.router.add_get("/api/v1/health", health)
    app.router.add_get("/api/v1/meter", meter)
    app.router.add_get("/api/v1/price", price)
    app.router.add_get("/api/v1/messages", messages)
    app.router.add_get("/api/v1/events", events)
    app.router.add_get("/api/v1/ws", websocket)
    add_cost_routes(app)
    add_usage_routes(app)
    add_ihd_routes(app)
    add_action_routes(app)
    add_loadchange_routes(app)
    add_control_routes(app)
    add_control_pages(app)
    add_provision_routes(app)
    add_openapi_route(app)
    app.router.add_static("/static/", HERE / "static", name="static")

    async def live_ctx(app: web.Application) -> Any:
        app[LIVE].start()
        yield
        await app[LIVE].close()  # whatever on_shutdown did not (idempotent)

    app.cleanup_ctx.append(live_ctx)
    # Before aiohttp cancels the handlers: the pages' sockets get 1001 Going Away, not 1006.
    app.on_shutdown.append(app[LIVE].shutdown)
    setup_auth(app, demo=demo)
    add_language_middlewares(app, auth_middleware)
    add_settings_routes(app)
    add_commissioning_routes(app)
    add_meter_setup_routes(app)
    add_programs_setup_routes(app)
    return app


class WebServer:
    """The HTTP server as a hub component: ``start`` binds, ``stop`` closes sockets cleanly."""

    def __init__(self, hub: Hub, host: str, port: int, demo: bool = False,
                 sockets: Sequence[socket.socket] = ()) -> None:
        self._hub = hub
        self._host = host
        self._port = port
        self._sockets = tuple(sockets)  # already listening (web/starting.py): served instead of binding
        self._runner: web.AppRunner | None = None
        self.app = create_app(hub, demo=demo)
        self.app[LISTEN] = Listen(host, port)

    @property
    def port(self) -> int:
        """The bound port (useful when configured with port 0)."""
        if self._runner is None or not self._runner.addresses:
            return self._port
        return int(self._runner.addresses[0][1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        # A request too malformed to reach the app is answered by aiohttp's protocol handler with
        # no signal to hook; its Server header is this module global, read at each response.
        web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        sites = [web.SockSite(self._runner, sock) for sock in self._sockets] or [
            web.TCPSite(self._runner, self._host, self._port)]
        try:
            for site in sites:
                await site.start()
        except OSError as err:
            await self._runner.cleanup()
            self._runner = None
            raise NotReady(f"cannot listen on {self._host}:{self._port}: {err.strerror}") from err
        self.app[LISTEN].port = self.port  # the display links name the port bound (port 0 in tests)
        _LOGGER.info("Dashboard on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
