"""Refusing a request the same way wherever it is refused: 401, 403, and the CSRF token check.

An API request gets JSON (the error middleware turns an ``HTTPForbidden`` into it); a page gets
the sign-in redirect or the "not for this account" page.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote

from aiohttp import hdrs, web

from web.i18n import _
from web.pages import render

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/")


def unauthorized(request: web.Request, reason: str) -> web.StreamResponse:
    """401 JSON for the API; a page goes to /login (and comes back after)."""
    if is_api(request):
        return web.json_response(
            {"error": reason, "status": 401},
            status=401,
            headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="ems"', "Cache-Control": "no-store"},
        )
    target = "/login" if request.path == "/" else f"/login?next={quote(request.path_qs, safe='')}"
    raise web.HTTPFound(target)


def forbidden(request: web.Request, reason: str) -> web.StreamResponse:
    """403: JSON for the API, the "not for this account" page otherwise."""
    if is_api(request):
        raise web.HTTPForbidden(reason=reason)
    return render(request, "account_forbidden.html", 403, reason=reason, title=_("Not for this account"))


async def csrf_given(request: web.Request) -> str:
    """The CSRF token the request carries: the header, or the form's field."""
    given = request.headers.get(CSRF_HEADER)
    if given:
        return given
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def same_token(expected: str | None, given: str) -> bool:
    """Whether ``given`` is the expected token (neither empty), compared in constant time."""
    return bool(expected) and bool(given) and secrets.compare_digest(str(expected), given)
