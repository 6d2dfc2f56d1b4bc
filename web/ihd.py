"""The In-Home Display (/ihd): a full-screen kiosk page, and the owner's display links for it.

The page is a shell; its figures come over the WebSocket and two GETs, as on the dashboard. A
display link (``/ihd?k=TOKEN``, see web.auth) is swapped for an HttpOnly cookie at the first
visit, so the token leaves the address bar and the kiosk browser keeps working after a restart.
"""

from __future__ import annotations

import ipaddress
import socket
from datetime import timedelta

from aiohttp import web

from ems.accounts import AccountRejected, Scope
from web.auth import KIOSK_COOKIE, KIOSK_QUERY
from web.keys import ACCESS, ACCOUNTS, KIOSK_REFUSED, LISTEN, SITE
from web.pages import render

KIOSK_COOKIE_MAX = timedelta(days=365)  # a wall screen runs for months; revoking the token ends it


async def ihd_page(request: web.Request) -> web.StreamResponse:
    """The display, for a display link or anyone signed in who may read."""
    access = request.get(ACCESS)
    if access is None:
        if KIOSK_REFUSED in request:
            response = render(request, "ihd.html", 401, revoked=True, timezone=request.app[SITE].timezone)
            response.del_cookie(KIOSK_COOKIE, path="/")
            return response
        raise web.HTTPFound("/login?next=%2Fihd")
    if Scope.READ not in access.scopes:
        return render(request, "account_forbidden.html", 403, title="Not for this account",
                       reason=f"a {access.user.role.value} may not see the In-Home Display (needs read)")
    if access.kiosk and KIOSK_QUERY in request.query:
        response = web.Response(status=303, headers={"Location": "/ihd", "Cache-Control": "no-store"})
        response.set_cookie(
            KIOSK_COOKIE, request.query[KIOSK_QUERY], httponly=True, samesite="Strict",
            secure=request.secure, path="/", max_age=int(KIOSK_COOKIE_MAX.total_seconds()),
        )
        return response
    # A person signed in who may override events gets the Opt out button; a display link never does.
    can_override = access.session is not None and not access.kiosk and Scope.OVERRIDE_EVENTS in access.scopes
    return render(request, "ihd.html", revoked=False, timezone=request.app[SITE].timezone, can_override=can_override)


def display_origin(app: web.Application) -> str:
    """The dashboard's address for a display link: from the configuration, never from the request.

    A request's Host (or X-Forwarded-Host) is the client's to write; a link built from it could
    send the wall screen, and its token, elsewhere. Listening on every address (0.0.0.0, ::), the
    link names this machine.
    """
    listen = app[LISTEN]
    host = listen.host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if not host or (address is not None and address.is_unspecified):
        host, address = socket.gethostname(), None
    if address is not None and address.version == 6:
        host = f"[{host}]"
    return f"http://{host}:{listen.port}"


async def kiosk_links_page(request: web.Request) -> web.StreamResponse:
    """The owner creates a display link here; it is listed, and revoked, with the API tokens."""
    if request.method != "POST":
        raise web.HTTPFound("/account/tokens")
    form = await request.post()
    place = form.get("place")
    place = place if isinstance(place, str) else ""
    try:
        created = await request.app[ACCOUNTS].create_kiosk_token(request[ACCESS].user, place)
    except AccountRejected as err:
        return render(request, "account_kiosk.html", 400, title="Display links", error=str(err), place=place)
    link = f"{display_origin(request.app)}/ihd?{KIOSK_QUERY}={created.secret}"
    return render(request, "account_kiosk.html", title="Display links", created=created, link=link, place="")


def add_ihd_routes(app: web.Application) -> None:
    """The display at /ihd and the owner's form for display links at /account/kiosk."""
    app.router.add_get("/ihd", ihd_page)
    app.router.add_get("/account/kiosk", kiosk_links_page)
    app.router.add_post("/account/kiosk", kiosk_links_page)
