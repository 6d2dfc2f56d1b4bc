"""Who may reach what: sign-in pages, session cookies, CSRF, bearer tokens and the account pages.

``setup_auth`` adds two middlewares around the routes: one logs every request made with a token
(outside the error middleware, so it sees the status the client got), and one inside it that
authenticates (session cookie, or ``Authorization: Bearer``, or ``?token=`` on the WebSocket)
and checks the route's scope in ``RULES``. Pages without a session go to /login (or /setup on
the first start); the API answers 401 JSON. A form posted with the session cookie must carry
the session's CSRF token (field ``csrf_token`` or header ``X-CSRF-Token``); a Bearer token
needs none, since no browser sends it by itself.

A display link (``/ihd?k=TOKEN``, a read-only "Kiosk: ..." token) opens the In-Home Display
without a session: the ``k`` parameter, then the HttpOnly kiosk cookie set from it, stands for
the token, and a kiosk token, however sent, reaches only ``KIOSK_PATHS`` and only reads.
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import hdrs, web

from ems.accounts import (
    SESSION_MAX,
    THIRD_PARTY_SCOPES,
    AccountRejected,
    Accounts,
    Role,
    Scope,
)
from ems.errors import StoreError
from ems.model import utcnow
from web.guard import csrf_given, forbidden, is_api, same_token, unauthorized
from web.i18n import N_, _
from web.keys import (
    ACCESS,
    ACCOUNTS,
    DEMO,
    HUB,
    KIOSK_REFUSED,
    SITE,
    THROTTLE,
    TOKEN_USE_LOGGED,
    Access,
)
from web.pages import render
from web.throttle import ClientThrottle

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SESSION_COOKIE = "ems_session"
CSRF_COOKIE = "ems_csrf"  # the token of the sign-in and setup forms, before any session exists
KIOSK_COOKIE = "ems_kiosk"
DEVICE_COOKIE = "ems_device"  # a browser that signed in before: the name's lock does not hold it
DEVICE_COOKIE_MAX = timedelta(days=400)  # the longest a browser keeps a cookie (RFC 6265bis)
KIOSK_QUERY = "k"  # only on /ihd: /ihd?k=TOKEN
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may reach a path: the first rule whose prefix and method match decides.

    ``prefix`` matches the path itself and everything below it; ``scope`` None is public.
    """

    prefix: str
    scope: Scope | None
    methods: frozenset[str] | None = None  # None: any method
    anonymous: bool = False  # public, and nobody is even looked up (static files, health)

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self.prefix == "/":
            return True
        return path == self.prefix or path.startswith(self.prefix + "/")


# The access table. Roles map to scopes in
# ems.accounts.ROLE_SCOPES: owner all; member read, confirm_messages, override_events;
# installer commission.
RULES: tuple[Rule, ...] = (
    Rule("/api/v1/health", None, anonymous=True),  # no customer data (Docker's HEALTHCHECK)
    Rule("/static", None, anonymous=True),
    Rule("/api/v1/openapi.json", None, anonymous=True),  # describes the API; no customer data
    Rule("/login", None),
    Rule("/setup", None),  # only while no user exists; afterwards it sends you to /login
    Rule("/logout", None),  # ends the session there is (its CSRF token checked)
    Rule("/ihd", None, SAFE_METHODS),
    Rule("/settings", None),  # any signed-in person, whatever their role; its handler asks for a session  # its handler asks for a sign-in or says a display link was revoked
    Rule("/account", Scope.ADMIN),  # users, tokens, consents, token use log: owner only
    Rule("/api/v1/account", Scope.ADMIN),
    Rule("/installer", Scope.COMMISSION),  # commissioning and provisioning: owner, installer
    Rule("/commission", Scope.COMMISSION),
    Rule("/commissioning", Scope.COMMISSION),
    Rule("/api/v1/commissioning", Scope.COMMISSION),
    Rule("/api/v1/selftest", Scope.COMMISSION),
    Rule("/provision", Scope.COMMISSION),
    Rule("/devices/add", Scope.COMMISSION),  # the Add devices page (UC134), under /devices for the household
    Rule("/api/v1/commission", Scope.COMMISSION),
    Rule("/api/v1/provision", Scope.COMMISSION),
    Rule("/api/v1/messages", Scope.CONFIRM_MESSAGES, WRITE_METHODS),  # confirm, mark read
    Rule("/api/v1/events", Scope.OVERRIDE_EVENTS, WRITE_METHODS),  # override / opt out
    Rule("/api/v1/events", Scope.READ, SAFE_METHODS),  # the events and each one's measured load change
    Rule("/", Scope.READ, SAFE_METHODS),  # every other page and GET of the API, the WebSocket
    Rule("/", Scope.ADMIN),  # any other write: owner only until a rule above names it
)


# All a display link reaches (besides /static): the In-Home Display, its WebSocket and the GETs it
# makes. Exact paths: /api/v1/cost/whatif, say, stays out. A ``{name}`` part stands for one path
# segment: the display shows the saving of the event running (a figure it shows anyway, no personal data).
KIOSK_PATHS = frozenset({
    "/ihd", "/api/v1/ws", "/api/v1/meter", "/api/v1/price", "/api/v1/messages", "/api/v1/events",
    "/api/v1/cost", "/api/v1/tariff", "/api/v1/events/{meter_id}/{issuer_event_id}/load-change",
})
KIOSK_REVOKED = N_("This display link was revoked or is not valid. Ask the owner for a new one.")


_WHO = {"owner": N_("an owner"), "member": N_("a household member"), "installer": N_("an installer")}


def rule_for(method: str, path: str) -> Rule:
    return next(rule for rule in RULES if rule.matches(method, path))


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"


def _bearer(request: web.Request) -> str | None:
    """The token the request carries: the Authorization header, or ?token= on the WebSocket."""
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.path == "/api/v1/ws" and "token" in request.query:
        return request.query["token"]
    return None


def _kiosk_secret(request: web.Request) -> tuple[str, bool] | None:
    """The display link a request carries, and whether it came as ``?k=`` (rather than the cookie)."""
    if request.path == "/ihd" and KIOSK_QUERY in request.query:
        return request.query[KIOSK_QUERY], True
    secret = request.cookies.get(KIOSK_COOKIE)
    return (secret, False) if secret else None


_KIOSK_SHAPES = tuple(p.split("/") for p in KIOSK_PATHS if "{" in p)


def _kiosk_path(path: str) -> bool:
    """Whether ``path`` is one of KIOSK_PATHS, a ``{name}`` there matching one non-empty segment."""
    if path in KIOSK_PATHS:
        return True
    parts = path.split("/")
    return any(
        len(shape) == len(parts) and all(
            (s.startswith("{") and s.endswith("}") and p != "") or s == p for s, p in zip(shape, parts, strict=True)
        )
        for shape in _KIOSK_SHAPES
    )


def kiosk_reach(request: web.Request) -> bool:
    """Whether a display link may make this request: a read of the display's paths."""
    return request.method in SAFE_METHODS and _kiosk_path(request.path)


def _same_origin(request: web.Request) -> bool:
    """A browser's WebSocket from another site carries its Origin: refuse it with our cookie."""
    origin = request.headers.get(hdrs.ORIGIN)
    return origin is None or urlsplit(origin).netloc == request.host


# -- middlewares ---------------------------------------------------------------------------------


@web.middleware
async def token_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log each request made with a token with the status the client got (shown to the owner)."""
    at = utcnow()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        await _log_use(request, at, exc.status)
        raise
    except Exception:
        await _log_use(request, at, 500)
        raise
    await _log_use(request, at, response.status)
    return response


async def _log_use(request: web.Request, at: datetime, status: int) -> None:
    access = request.get(ACCESS)
    if access is None or access.token is None or request.get(TOKEN_USE_LOGGED):
        return
    request[TOKEN_USE_LOGGED] = True
    try:
        await request.app[ACCOUNTS].record_token_use(
            access.token.id, request.method, request.path, status, at
        )
    except StoreError as err:
        _LOGGER.warning("Could not log the use of token %d: %s", access.token.id, err)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, then check the route's scope and, for cookie-borne writes, the CSRF token."""
    rule = rule_for(request.method, request.path)
    if rule.anonymous:
        return await handler(request)
    accounts = request.app[ACCOUNTS]
    secret = _bearer(request)
    access: Access | None = None
    if secret is not None:
        token = await accounts.authenticate_token(secret)
        if token is None:
            return unauthorized(request, "the token is unknown or was revoked")
        access = Access(token.user, token.effective_scopes, token=token, kiosk=token.is_kiosk)
    else:
        kiosk = _kiosk_secret(request)
        session_id = request.cookies.get(SESSION_COOKIE)
        session = await accounts.session(session_id) if session_id else None
        if session is not None and not (kiosk is not None and kiosk[1]):
            access = Access(session.user, session.user.scopes, session=session)
        elif kiosk is not None:
            token = await accounts.authenticate_token(kiosk[0])
            if token is None or not token.is_kiosk:
                request[KIOSK_REFUSED] = KIOSK_REVOKED
                if is_api(request) and kiosk_reach(request):
                    return unauthorized(request, KIOSK_REVOKED)
            else:
                access = Access(token.user, token.effective_scopes & {Scope.READ}, token=token, kiosk=True)
    if access is not None and access.kiosk and not kiosk_reach(request):
        request[ACCESS] = access
        return forbidden(request, _("a display link only shows the In-Home Display and cannot change anything"))
    if access is not None:
        request[ACCESS] = access
    if rule.scope is None:
        return await handler(request)
    if access is None:
        if not is_api(request) and not await accounts.has_users():
            raise web.HTTPFound("/setup")
        return unauthorized(request, "sign in, or send Authorization: Bearer TOKEN")
    if rule.scope not in access.scopes:
        who = _(_WHO[access.user.role.value]) if access.token is None else _("this token")
        return forbidden(request, _("%(who)s may not do this (needs %(scope)s)", who=who, scope=rule.scope.value))
    if access.session is not None:
        if request.method not in SAFE_METHODS and not same_token(
            access.session.csrf_token, await csrf_given(request)
        ):
            return forbidden(request, _("the form is missing its CSRF token; reload the page"))
        if _is_websocket(request) and not _same_origin(request):
            return forbidden(request, _("a WebSocket from another site"))
    elif _is_websocket(request):
        if access.kiosk and not _same_origin(request):
            return forbidden(request, _("a WebSocket from another site"))
        await _log_use(request, utcnow(), 101)  # logged when opened, not when it ends
    return await handler(request)


# -- pages -----------------------------------------------------------------------------------


def _anonymous_form(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A sign-in or setup form: its CSRF token is a random cookie the form must repeat."""
    token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(request, template, status, form_csrf=token, **context)
    response.set_cookie(
        CSRF_COOKIE, token, httponly=True, samesite="Strict", secure=request.secure, path="/"
    )
    return response


async def _anonymous_csrf_ok(request: web.Request) -> bool:
    return same_token(request.cookies.get(CSRF_COOKIE), await csrf_given(request))


def _see_other(target: str) -> web.Response:
    return web.Response(status=303, headers={hdrs.LOCATION: target, "Cache-Control": "no-store"})


def _signed_in(request: web.Request, session_id: str, target: str) -> web.Response:
    response = _see_other(target)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        httponly=True,
        samesite="Lax",
        secure=request.secure,
        path="/",
        max_age=int(SESSION_MAX.total_seconds()),
    )
    response.del_cookie(CSRF_COOKIE, path="/")
    return response


def _is_local_path(value: str) -> bool:
    """One leading "/", no "//", no backslash, no scheme, no control, format or space character."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return False
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Zs") for c in value):
        return False  # a browser drops a tab or newline: "/\t/evil" would become "//evil"
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc


def _safe_next(value: str | None) -> str:
    """Only a path on this appliance, else "/" (no open redirect, issue 11 finding 7).

    The query value arrives decoded once; it is checked as it is and decoded once more, since
    whatever is percent-encoded in it may be decoded again on the way to the browser.
    """
    if not value or not (_is_local_path(value) and _is_local_path(unquote(value))):
        return "/"
    return value


async def _form(request: web.Request) -> dict[str, str]:
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def setup_page(request: web.Request) -> web.StreamResponse:
    accounts = request.app[ACCOUNTS]
    if await accounts.has_users():
        raise web.HTTPFound("/login")
    if request.method == "GET":
        return _anonymous_form(request, "setup.html", title=_("Create the owner's account"))
    form = await _form(request)
    if not await _anonymous_csrf_ok(request):
        return _anonymous_form(request, "setup.html", 403, title=_("Create the owner's account"),
                               error=_("The form expired. Please try again."), username=form.get("username", ""))
    username, password = form.get("username", ""), form.get("password", "")
    try:
        if password != form.get("confirm", ""):
            raise AccountRejected(_("The two passwords differ."))
        user = await accounts.create_user(username, password, Role.OWNER, first=True)
    except AccountRejected as err:
        return _anonymous_form(request, "setup.html", 400, title=_("Create the owner's account"),
                               error=_(str(err)), username=username)
    started = await accounts.start_session(user)
    return _signed_in(request, started.session_id, "/")


async def login_page(request: web.Request) -> web.StreamResponse:
    accounts = request.app[ACCOUNTS]
    target = _safe_next(request.query.get("next"))
    if not await accounts.has_users():
        raise web.HTTPFound("/setup")
    if request.method == "GET":
        if ACCESS in request and request[ACCESS].session is not None:
            raise web.HTTPFound(target)
        notice = _("You are signed out.") if "bye" in request.query else None
        return _anonymous_form(request, "login.html", title=_("Sign in"), notice=notice, next=target)
    form = await _form(request)
    username = form.get("username", "")
    context = {"title": _("Sign in"), "username": username, "next": target}
    if not await _anonymous_csrf_ok(request):
        return _anonymous_form(request, "login.html", 403, error=_("The form expired. Please try again."),
                               **context)
    throttle, client, now = request.app[THROTTLE], request.remote or "", request.app[HUB].clock()
    wait_until = throttle.wait_until(client, now)
    if wait_until is not None:
        seconds = max(1, int((wait_until - now).total_seconds() + 0.999))
        error = _("Too many failed sign-ins from this device. Try again in %(seconds)s seconds.", seconds=seconds)
        response = _anonymous_form(request, "login.html", 429, error=error, **context)
        response.headers["Retry-After"] = str(seconds)
        return response
    device = request.cookies.get(DEVICE_COOKIE) or None
    result = await accounts.verify_login(username, form.get("password", ""), now, device)
    if result.user is None:
        throttle.failed(client, now)
        if result.locked_until is not None:
            seconds = max(1, int((result.locked_until - now).total_seconds() + 0.999))
            error = _("Too many failed sign-ins with this name. Try again in %(seconds)s seconds, or from a "
                      "browser that has signed in here before.", seconds=seconds)
            response = _anonymous_form(request, "login.html", 429, error=error, **context)
            response.headers["Retry-After"] = str(seconds)
            return response
        return _anonymous_form(request, "login.html", 401, error=_("Wrong user name or password."),
                               **context)
    throttle.succeeded(client)
    started = await accounts.start_session(result.user)
    device = await accounts.remember_device(result.user, device, now)
    if result.user.role is Role.INSTALLER and target == "/":
        target = "/installer"
    response = _signed_in(request, started.session_id, target)
    response.set_cookie(DEVICE_COOKIE, device, httponly=True, samesite="Strict", secure=request.secure,
                        path="/login", max_age=int(DEVICE_COOKIE_MAX.total_seconds()))
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    access = request.get(ACCESS)
    if access is not None and access.session is not None:
        if not same_token(access.session.csrf_token, await csrf_given(request)):
            return forbidden(request, _("the form is missing its CSRF token; reload the page"))
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            await request.app[ACCOUNTS].end_session(session_id)
    response = _see_other("/login?bye")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def installer_page(request: web.Request) -> web.StreamResponse:
    """Where an installer lands: the commissioning and provisioning pages, once they exist."""
    return render(request, "account_installer.html", title=_("Installer"))


# -- account pages (owner) -----------------------------------------------------------------------

_DONE = {
    "added": N_("User added."),
    "role": N_("Role changed."),
    "removed": N_("User removed."),
    "revoked": N_("Token revoked."),
    "consent-revoked": N_("Consent revoked, and every token issued under it."),
}


def _current(request: web.Request) -> Access:
    return request[ACCESS]


def _int(form: dict[str, str], key: str) -> int:
    try:
        return int(form.get(key, ""))
    except ValueError:
        raise AccountRejected(_("The form was incomplete. Please try again.")) from None


def _scopes(form: Any, allowed: frozenset[Scope]) -> list[Scope]:
    return [scope for scope in Scope if scope in allowed and form.get(f"scope_{scope.value}") == "on"]


async def users_page(request: web.Request) -> web.StreamResponse:
    accounts = request.app[ACCOUNTS]
    status, error, form = 200, None, {}
    if request.method == "POST":
        form = await _form(request)
        try:
            action = form.get("action")
            if action == "add":
                role = Role(form.get("role", Role.MEMBER.value))
                await accounts.create_user(form.get("username", ""), form.get("password", ""), role)
                raise web.HTTPSeeOther("/account/users?done=added")
            if action == "role":
                await accounts.set_role(_int(form, "user_id"), Role(form.get("role", "")))
                raise web.HTTPSeeOther("/account/users?done=role")
            if action == "remove":
                await accounts.remove_user(_int(form, "user_id"))
                raise web.HTTPSeeOther("/account/users?done=removed")
            raise AccountRejected(_("Unknown action."))
        except ValueError:
            status, error = 400, _("Choose one of the roles.")
        except AccountRejected as err:
            status, error = 400, _(str(err))
    return render(
        request, "account_users.html", status, title=_("Users"), users=await accounts.users(),
        error=error, notice=_(_DONE[request.query["done"]]) if request.query.get("done") in _DONE else None,
        username=form.get("username", "") if error else "",
    )


async def tokens_page(request: web.Request) -> web.StreamResponse:
    accounts = request.app[ACCOUNTS]
    status, error, created = 200, None, None
    if request.method == "POST":
        form = await _form(request)
        try:
            if form.get("action") == "create":
                me = _current(request).user
                created = await accounts.create_token(me, form.get("name", ""), _scopes(form, me.scopes))
            elif form.get("action") == "revoke":
                await accounts.revoke_token(_int(form, "token_id"))
                raise web.HTTPSeeOther("/account/tokens?done=revoked")
            else:
                raise AccountRejected(_("Unknown action."))
        except AccountRejected as err:
            status, error = 400, _(str(err))
    return render(
        request, "account_tokens.html", status, title=_("API tokens"), tokens=await accounts.tokens(),
        uses=await accounts.token_uses(100), created=created, error=error,
        notice=_(_DONE[request.query["done"]]) if request.query.get("done") in _DONE else None, scopes=list(Scope),
    )


async def consents_page(request: web.Request) -> web.StreamResponse:
    accounts = request.app[ACCOUNTS]
    status, error, created, party = 200, None, None, ""
    if request.method == "POST":
        form = await _form(request)
        try:
            if form.get("action") == "grant":
                party = form.get("party", "")
                if form.get("agree") != "on":
                    raise AccountRejected(_("Tick the box to confirm that you give this access."))
                scopes = _scopes(form, THIRD_PARTY_SCOPES)
                me = _current(request).user
                consent = await accounts.grant_consent(me, party, scopes)
                created = await accounts.create_token(me, f"{consent.party} (consent {consent.id})",
                                                      scopes, consent=consent)
                party = ""
            elif form.get("action") == "revoke":
                await accounts.revoke_consent(_int(form, "consent_id"))
                raise web.HTTPSeeOther("/account/consents?done=consent-revoked")
            else:
                raise AccountRejected(_("Unknown action."))
        except AccountRejected as err:
            status, error = 400, _(str(err))
    return render(
        request, "account_consents.html", status, title=_("Third parties"),
        consents=await accounts.consents(), created=created, error=error, party=party,
        notice=_(_DONE[request.query["done"]]) if request.query.get("done") in _DONE else None,
        scopes=[s for s in Scope if s in THIRD_PARTY_SCOPES],
    )


async def account_home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/account/users")


def setup_auth(app: web.Application, *, demo: bool = False) -> None:
    """Add accounts and access to the app: middlewares, sign-in and account pages.

    The token log goes outermost (it must see the status the error middleware answers); the
    check goes innermost, so the error middleware still turns its refusals into JSON.
    """
    hub = app[HUB]
    app[ACCOUNTS] = Accounts(hub.store)
    app[SITE] = hub.config.site
    app[DEMO] = demo
    app[THROTTLE] = ClientThrottle()
    app.middlewares.insert(0, token_log_middleware)
    app.middlewares.append(auth_middleware)
    for path, handler in (
        ("/setup", setup_page),
        ("/login", login_page),
        ("/account/users", users_page),
        ("/account/tokens", tokens_page),
        ("/account/consents", consents_page),
    ):
        app.router.add_get(path, handler)
        app.router.add_post(path, handler)
    app.router.add_post("/logout", logout)
    app.router.add_get("/account", account_home)
    app.router.add_get("/installer", installer_page)
