"""What every server-rendered page gets: the site, who is signed in, the CSRF token its forms send."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
from aiohttp import web

from ems.accounts import DEMO_PASSWORD, DEMO_USERNAME, Role, Scope
from ems.config import SiteConfig
from web.i18n import _
from web.keys import ACCESS, DEMO, HUB, SITE


def csrf_token(request: web.Request) -> str:
    """The CSRF token a page's forms and fetch calls must send (empty without a session)."""
    access = request.get(ACCESS)
    return access.session.csrf_token if access is not None and access.session is not None else ""


def page(request: web.Request, **context: Any) -> dict[str, Any]:
    """A template's context: the site, the person and the CSRF token, then ``context``."""
    site = request.app[SITE]
    access = request.get(ACCESS)
    hub = request.app.get(HUB)
    return {
        "site_name": site.name,
        "path": request.path,
        "demo": request.app[DEMO],
        "demo_username": DEMO_USERNAME,
        "demo_password": DEMO_PASSWORD,
        "access": access,
        "csrf_token": csrf_token(request),
        "Role": Role,
        "Scope": Scope,
        "local": lambda at: local(site, at),
        # What of the utility's program the customer switched off (ems.preferences): the dashboard and
        # the In-Home Display leave it out.
        "hidden_info": frozenset(hub.preferences.hidden) if hub is not None else frozenset(),
        **context,
    }


def local(site: SiteConfig, at: datetime | None) -> str:
    """A time as the household reads it: the site's local date and time."""
    if at is None:
        return _("never")
    return at.astimezone(ZoneInfo(site.timezone)).strftime("%Y-%m-%d %H:%M")


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """``template`` rendered with ``page``'s context, never cached."""
    response = aiohttp_jinja2.render_template(template, request, page(request, **context), status=status)
    response.headers["Cache-Control"] = "no-store"
    return response
