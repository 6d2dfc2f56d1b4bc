"""The aiohttp application: REST API, WebSocket and pages, started and stopped by the hub."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ems.errors import ConfigError, DeviceError, EmsError, NotReady, RejectedCommand
from ems.hub import Hub
from ems.model import utcnow
from web import present
from web.actions_api import add_action_routes
from web.auth import setup_auth
from web.control_api import add_control_routes
from web.control_pages import add_control_pages
from web.costs_api import add_cost_routes
from web.i18n import add_language_middlewares, current, localize_messages, setup_i18n
from web.ihd import add_ihd_routes
from web.live import LivePush
from web.loadchange_api import add_loadchange_routes
from web.openapi import add_openapi_route
from web.settings_page import add_settings_routes
from web.usage_api import add_usage_routes

_LOGGER = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)
LIVE: web.AppKey[LivePush] = web.AppKey("live", LivePush)

_STATUS_FOR_ERROR: tuple[tuple[type[EmsError], int], ...] = (
    (RejectedCommand, 400),
    (ConfigError, 400),
    (NotReady, 503),
    (DeviceError, 502),
)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Map the appliance's errors to HTTP statuses in one place; API errors are JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith("/api/") and exc.status >= 400:
            # Keep the exception's headers: a 405 must say which methods are Allowed (RFC 9110).
            headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
            return web.json_response({"error": exc.reason, "status": exc.status}, status=exc.status,
                                     headers=headers)
        raise
    except EmsError as exc:
        status = next((code for cls, code in _STATUS_FOR_ERROR if isinstance(exc, cls)), 500)
        return web.json_response({"error": str(exc), "status": status}, status=status)


def _json(data: Any) -> web.Response:
    return web.json_response(data, headers={"Cache-Control": "no-store"})


async def health(request: web.Request) -> web.Response:
    return _json(present.health(request.app[HUB], utcnow()))


async def meter(request: web.Request) -> web.Response:
    return _json({"meters": present.meters(request.app[HUB], utcnow())})


async def price(request: web.Request) -> web.Response:
    return _json({"prices": present.prices(request.app[HUB], utcnow())})


async def messages(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return _json({"messages": localize_messages(hub, present.messages(hub, utcnow()), current())})


async def events(request: web.Request) -> web.Response:
    return _json({"events": present.events(request.app[HUB], utcnow())})


async def websocket(request: web.Request) -> web.StreamResponse:
    return await request.app[LIVE].handle(request)


@aiohttp_jinja2.template("live.html")
async def live_page(request: web.Request) -> dict[str, Any]:
    from web.auth import _page

    return _page(request, timezone=request.app[HUB].config.site.timezone, title=None)


def create_app(hub: Hub, demo: bool = False) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[HUB] = hub
    app[LIVE] = LivePush(hub)
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
    add_openapi_route(app)
    app.router.add_static("/static/", HERE / "static", name="static")

    async def live_ctx(app: web.Application) -> Any:
        app[LIVE].start()
        yield
        await app[LIVE].close()

    app.cleanup_ctx.append(live_ctx)
    setup_auth(app, demo=demo)
    add_language_middlewares(app)
    add_settings_routes(app)
    return app


class WebServer:
    """The HTTP server as a hub component: ``start`` binds, ``stop`` closes sockets cleanly."""

    def __init__(self, hub: Hub, host: str, port: int, demo: bool = False) -> None:
        self._hub = hub
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.app = create_app(hub, demo=demo)

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
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            self._runner = None
            raise NotReady(f"cannot listen on {self._host}:{self._port}: {err.strerror}") from err
        _LOGGER.info("Dashboard on %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
