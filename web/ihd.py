"""The In-Home Display (/ihd): a full-screen kiosk page, and the owner's display links for it.

The page is a shell; its figures come over the WebSocket and two GETs, as on the dashboard. A
display link (``/ihd?k=TOKEN``, see web.auth) is swapped for an HttpOnly cookie at the first
visit, so the token leaves the address bar and the kiosk browser keeps working after a restart.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import segno
from aiohttp import web
from markupsafe import Markup

from ems.accounts import AccountRejected, Scope
from web import i18n
from web.auth import KIOSK_COOKIE, KIOSK_QUERY
from web.i18n import _
from web.keys import ACCESS, ACCOUNTS, HUB, KIOSK_REFUSED, LISTEN, SITE
from web.pages import render

KIOSK_COOKIE_MAX = timedelta(days=365)  # a wall screen runs for months; revoking the token ends it
NIGHT = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d-(?:[01]\d|2[0-3]):[0-5]\d")  # dim=22:00-07:00: dimmed from 22:00 to 07:00


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
        # The token goes into a cookie; the display's options (language, night dimming) stay in the address.
        options = display_query(request.query.get("lang"), request.query.get("dim"))
        location = f"/ihd?{options}" if options else "/ihd"
        response = web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
        response.set_cookie(
            KIOSK_COOKIE, request.query[KIOSK_QUERY], httponly=True, samesite="Strict",
            secure=request.secure, path="/", max_age=int(KIOSK_COOKIE_MAX.total_seconds()),
        )
        return response
    # A person signed in who may override events gets the Opt out button; a display link never does.
    can_override = access.session is not None and not access.kiosk and Scope.OVERRIDE_EVENTS in access.scopes
    return render(request, "ihd.html", revoked=False, timezone=request.app[SITE].timezone, can_override=can_override)


def lan_address() -> str:
    """This machine's address on the home network (the one its default route leaves by), else its name.

    A UDP socket "connected" to an address outside the LAN sends nothing; it only makes the kernel
    choose the interface, whose address it then tells.
    """
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1 (RFC 5737): never routed anywhere
        address = probe.getsockname()[0]
        if address and not ipaddress.ip_address(address).is_loopback:
            return str(address)
    return socket.gethostname()


def display_origin(app: web.Application) -> str:
    """The dashboard's address for a display link: from the configuration, never from the request.

    A request's Host (or X-Forwarded-Host) is the client's to write; a link built from it could
    send the wall screen, and its token, elsewhere. ``web: public_url`` wins when set; listening on
    every address (0.0.0.0, ::), the link names this machine's LAN address.
    """
    hub = app.get(HUB)
    public_url = hub.config.web.public_url if hub is not None else None
    if public_url:
        return public_url.rstrip("/")
    listen = app[LISTEN]
    host = listen.host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if not host or (address is not None and address.is_unspecified):
        host, address = lan_address(), None
    if address is not None and address.version == 6:
        host = f"[{host}]"
    return f"http://{host}:{listen.port}"


def reachable_only_here(app: web.Application) -> bool:
    """Whether the appliance listens on this machine only (127.0.0.1, ::1, localhost): no wall screen reaches it."""
    hub = app.get(HUB)
    if hub is not None and hub.config.web.public_url:
        return False
    host = app[LISTEN].host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def display_query(lang: str | None, dim: str | None) -> str:
    """The display's own options in a link (``&lang=es&dim=22:00-07:00``): kept across the display link's redirect."""
    options = {}
    if lang and i18n.supported(lang):
        options["lang"] = i18n.supported(lang)
    if dim and NIGHT.fullmatch(dim):
        options["dim"] = dim
    return urlencode(options)


async def kiosk_links_page(request: web.Request) -> web.StreamResponse:
    """The owner creates a display link here; it is listed, and revoked, with the API tokens."""
    if request.method != "POST":
        raise web.HTTPFound("/account/tokens")
    form = await request.post()
    place = form.get("place")
    place = place if isinstance(place, str) else ""
    wall = wall_display(request.app)
    try:
        created = await request.app[ACCOUNTS].create_kiosk_token(request[ACCESS].user, place)
    except AccountRejected as err:
        return render(request, "account_kiosk.html", 400, title="Display links", error=str(err), place=place, wall=wall)
    options = display_query(_field(form, "lang"), _night(form))
    link = f"{display_origin(request.app)}/ihd?{KIOSK_QUERY}={created.secret}" + (f"&{options}" if options else "")
    return render(request, "account_kiosk.html", title="Display links", created=created, link=link, place="",
                   qr=qr_svg(link, _("QR code of the display link")), wall=wall)


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value else None


def _night(form: Any) -> str | None:
    """The form's night dimming (a box ticked, from and to) as ``22:00-07:00``, or None."""
    if form.get("dim") != "on":
        return None
    start, end = _field(form, "dim_from") or "22:00", _field(form, "dim_to") or "07:00"
    return f"{start[:5]}-{end[:5]}"


def qr_svg(text: str, title: str) -> Markup:
    """``text`` as a QR code, an inline SVG drawn on the server (no script, nothing fetched)."""
    code = segno.make(text, error="m")
    return Markup(code.svg_inline(scale=4, border=3, dark="#111111", light="#ffffff", title=title, omitsize=True))


def wall_display(app: web.Application) -> dict[str, Any]:
    """What the "Wall display" sections show: the display's address, its QR code, whether a screen can reach it."""
    address = f"{display_origin(app)}/ihd"
    return {"address": address, "qr": qr_svg(address, _("QR code of the display's address")),
            "local_only": reachable_only_here(app), "host": app[LISTEN].host}


def add_ihd_routes(app: web.Application) -> None:
    """The display at /ihd and the owner's form for display links at /account/kiosk."""
    app.router.add_get("/ihd", ihd_page)
    app.router.add_get("/account/kiosk", kiosk_links_page)
    app.router.add_post("/account/kiosk", kiosk_links_page)
