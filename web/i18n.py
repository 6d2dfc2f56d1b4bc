"""Languages: the catalogs, who reads which language, and formatting for the reader's locale.

The catalogs are the ``.po`` files under ``web/translations/<lang>/LC_MESSAGES/messages.po``,
compiled in memory when first used (so a checkout and the wheel need no build step). Each request
gets a language, kept in a context variable that templates (jinja2's i18n extension), the page
code (``_``) and the WebSocket read:

- ``?lang=xx`` on any request (the kiosk display's ``/ihd?lang=es`` and its WebSocket);
- a signed-in person's own choice (``User.language``), or the site's (``site.language``);
- before anyone signs in, the browser's ``Accept-Language``; then the site's language.

A display link (``/ihd`` without a person) follows the site's language. The JavaScript of a page
gets its strings from the page: ``js_catalog`` extracts the ``t("...")`` calls of a script and
the template renders their translations as a JSON block. API JSON keeps machine values; a local
message (``ems.local_text``) gains ``display_text`` in the reader's language beside its ``text``.
"""

from __future__ import annotations

import contextvars
import io
from collections.abc import Awaitable, Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from babel.support import Translations

from ems import local_text
from ems.local_text import N_, TEMPERATURE_UNIT, default_temperature_unit, format_temperature
from web.keys import ACCESS, HUB, SITE

HERE = Path(__file__).resolve().parent
TRANSLATIONS = HERE / "translations"
STATIC = HERE / "static"
DOMAIN = "messages"

# Each language by its own name, as a person looks for it in a list.
# ``zh`` is Simplified Chinese; any ``zh-*`` a browser sends (``zh-CN``, ``zh-Hans``, also ``zh-TW``) reads it.
LANGUAGES: dict[str, str] = {"en": "English", "es": "Español", "zh": "简体中文"}
DEFAULT = "en"
JS_KEYWORDS = {"t": None}  # t("msgid", {values}) in the pages' scripts

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_LANGUAGE: contextvars.ContextVar[str] = contextvars.ContextVar("ems_language", default=DEFAULT)

# Names of machine values a page shows (roles, scopes), marked for the catalogs.
ROLE_NAMES = {"owner": N_("owner"), "member": N_("household member"), "installer": N_("installer")}
SCOPE_NAMES = {
    "read": N_("see the energy data"),
    "confirm_messages": N_("confirm messages"),
    "override_events": N_("opt out of events"),
    "commission": N_("commission and provision"),
    "admin": N_("administer the appliance"),
}


# -- catalogs ---------------------------------------------------------------------------------


def catalog_path(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(language: str) -> Translations:
    """The compiled catalog of a language (an English one translates nothing)."""
    path = catalog_path(language)
    if not path.exists():
        return Translations()
    # babel's catalog tools (~2 MB with the extractor below): on a translated language's first use
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with path.open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    mo = io.BytesIO()
    write_mo(mo, catalog, use_fuzzy=False)
    mo.seek(0)
    return Translations(mo, domain=DOMAIN)


def supported(language: str | None) -> str | None:
    """The language if the appliance speaks it, matched on its primary subtag (``es-MX``: ``es``)."""
    if not language:
        return None
    code = language.strip().replace("_", "-").split("-")[0].lower()
    return code if code in LANGUAGES else None


def negotiate(accept_language: str | None) -> str | None:
    """The best language of an ``Accept-Language`` header that the appliance speaks (RFC 9110 §12.5.4)."""
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "").split(",")):
        tag, _sep, rest = part.strip().partition(";")
        quality = 1.0
        for param in rest.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        code = supported(tag)
        if code is not None and quality > 0:
            choices.append((-quality, index, code))
    return min(choices)[2] if choices else None


# -- the request's language ---------------------------------------------------------------------


def current() -> str:
    """The language of the request being handled."""
    return _LANGUAGE.get()


def use(language: str) -> contextvars.Token[str]:
    """Make ``language`` the current one (the middlewares and the tests)."""
    return _LANGUAGE.set(supported(language) or DEFAULT)


def gettext(msgid: str, **values: Any) -> str:
    """``msgid`` in the current language, ``%(name)s`` filled from ``values``."""
    text = translations(current()).ugettext(msgid)
    return text % values if values else text


_ = gettext


def ngettext(singular: str, plural: str, n: int, **values: Any) -> str:
    text = translations(current()).ungettext(singular, plural, n)
    return text % {"num": n, **values}


def site_language(request: web.Request) -> str:
    """The program's language the customer chose (Settings, ems.preferences), else ``site.language``."""
    hub = request.app.get(HUB)
    chosen = hub.preferences.language if hub is not None else None
    return supported(chosen) or supported(request.app[SITE].language) or DEFAULT


def request_language(request: web.Request) -> str:
    """Before the person is known: ``?lang``, the kiosk display's site language, or the browser's."""
    asked = supported(request.query.get("lang"))
    if asked is not None:
        return asked
    if request.path == "/ihd":
        return site_language(request)
    return negotiate(request.headers.get("Accept-Language")) or site_language(request)


def site_temperature_unit(request: web.Request) -> str:
    """°C or °F as ``site.temperature_unit`` says, else as the site's time zone's country reads."""
    site = request.app[SITE]
    return site.temperature_unit or default_temperature_unit(site.timezone)


@web.middleware
async def language_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Set the request's language (and temperature unit) from what is known before sign-in
    (outside the auth check)."""
    token = use(request_language(request))
    unit = TEMPERATURE_UNIT.set(site_temperature_unit(request))
    try:
        return await handler(request)
    finally:
        TEMPERATURE_UNIT.reset(unit)
        _LANGUAGE.reset(token)


@web.middleware
async def person_language_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Once the auth check knows who asks: a signed-in person reads their own language and unit."""
    access = request.get(ACCESS)
    if access is None or access.kiosk or (access.session is None and access.token is not None):
        return await handler(request)  # a display, or a script's token: the site's, no preference
    unit = TEMPERATURE_UNIT.set(access.user.temperature_unit or site_temperature_unit(request))
    token = None if supported(request.query.get("lang")) is not None else \
        use(access.user.language or site_language(request))
    try:
        return await handler(request)
    finally:
        if token is not None:
            _LANGUAGE.reset(token)
        TEMPERATURE_UNIT.reset(unit)


# -- the pages' scripts ---------------------------------------------------------------------------


@cache
def js_msgids(script: str) -> tuple[str, ...]:
    """The msgids of a script under web/static: its ``t("...")`` calls."""
    from babel.messages.extract import extract_from_file

    path = STATIC / script
    found = extract_from_file("javascript", str(path), keywords=JS_KEYWORDS, comment_tags=())
    return tuple(dict.fromkeys(message for _line, message, _comments, _context in found if isinstance(message, str)))


def js_catalog(*scripts: str) -> dict[str, Any]:
    """What a page's scripts need: the locale and the translations of their strings."""
    language = current()
    strings: dict[str, str] = {}
    if language != DEFAULT:
        catalog = translations(language)
        for script in scripts:
            for msgid in js_msgids(script):
                text = catalog.ugettext(msgid)
                if text != msgid:
                    strings[msgid] = text
    return {"locale": language, "strings": strings, "temperature_unit": TEMPERATURE_UNIT.get()}


# -- local messages in the reader's language ------------------------------------------------------


def local_text_in(template: str, params: Iterable[tuple[str, str]], language: str, timezone: str) -> str:
    """A message the EMS made, in ``language``, its times in the site's time zone."""
    return local_text.render(
        template, tuple(params), locale=language, timezone=timezone,
        gettext=translations(language).ugettext,
    )


def localize_messages(hub: Any, items: list[dict[str, Any]], language: str) -> list[dict[str, Any]]:
    """The messages' JSON with ``display_text``: a local message in ``language``, others as sent."""
    timezone = hub.config.site.timezone
    shown = []
    for item in items:
        state = hub.state.messages.get((item["meter_id"], item["message_id"]))
        message = state.message if state is not None else None
        if message is not None and message.template:
            text = local_text_in(message.template, message.params, language, timezone)
        else:
            text = item["text"]
        shown.append({**item, "display_text": text})
    return shown


def localize_message(hub: Any, item: dict[str, Any], language: str | None = None) -> dict[str, Any]:
    return localize_messages(hub, [item], language or current())[0]


# -- the templates ----------------------------------------------------------------------------------


def setup_i18n(env: jinja2.Environment) -> None:
    """Give the templates ``_``/``{% trans %}`` in the request's language, and the helpers they use."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda msgid: translations(current()).ugettext(msgid),
        lambda singular, plural, n: translations(current()).ungettext(singular, plural, n),
        newstyle=True,
    )
    env.globals.update(
        language=current,
        languages=LANGUAGES,
        js_catalog=js_catalog,
        # A temperature the store keeps in °C, in the reader's unit: temperature(24.5) is "76.1 °F".
        temperature=lambda celsius, difference=False: format_temperature(celsius, current(), difference=difference),
        role_name=lambda value: gettext(ROLE_NAMES.get(str(value), str(value))),
        scope_name=lambda value: gettext(SCOPE_NAMES.get(str(value), str(value))),
    )


def add_language_middlewares(app: web.Application, auth_middleware: Any) -> None:
    """One middleware before the auth check (its refusals are in a language too), one after it."""
    index = app.middlewares.index(auth_middleware)
    app.middlewares.insert(index, language_middleware)
    app.middlewares.append(person_language_middleware)
