"""The Settings page (/settings): each person's own choices (the language they read), and for the
owner the site's configuration, read-only (it lives in ems.yaml).

Any signed-in role reaches it (``web.auth.RULES``: public, so an installer, who lacks ``read``,
gets it too); the handler itself asks for a session and checks the form's CSRF token.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ems.accounts import AccountRejected, Scope
from web import i18n
from web.guard import csrf_given, forbidden, same_token, unauthorized
from web.i18n import _
from web.ihd import wall_display
from web.keys import ACCESS, ACCOUNTS, HUB
from web.pages import render

FOLLOW_SITE = "site"  # the form's value for "the site's language"


def _site_info(request: web.Request) -> list[tuple[str, str]]:
    """What the owner sees of the site's configuration (labels translated, values as configured)."""
    config = request.app[HUB].config
    tariff = config.tariff
    plan = tariff.active_plan if tariff is not None else None
    meters = sorted(request.app[HUB].state.meters)
    return [
        (_("Site name"), config.site.name),
        (_("Time zone"), config.site.timezone),
        (_("Site language"), i18n.LANGUAGES.get(config.site.language, config.site.language)),
        (_("Rate plan"), f"{plan.label} ({tariff.plan})" if plan is not None and tariff is not None
         else _("none (costs are not computed)")),
        (_("Meters"), ", ".join(meters) if meters else _("none yet")),
        (_("Configuration folder"), str(config.config_dir)),
    ]


async def settings_page(request: web.Request) -> web.StreamResponse:
    access = request.get(ACCESS)
    if access is None or access.session is None:
        if access is not None:  # a token or a display link: settings belong to a person
            return forbidden(request, _("settings belong to a signed-in person"))
        return unauthorized(request, "sign in")
    status, error = 200, None
    if request.method == "POST":
        form = await request.post()
        if not same_token(access.session.csrf_token, await csrf_given(request)):
            return forbidden(request, _("the form is missing its CSRF token; reload the page"))
        if "temperature_unit" in form:
            unit = form.get("temperature_unit")
            try:
                # Anything but "C", "F" or the site's (a file field too) is refused by the accounts.
                await request.app[ACCOUNTS].set_temperature_unit(
                    access.user.id, None if unit == FOLLOW_SITE else str(unit))
            except AccountRejected:
                status, error = 400, _("Choose °C or °F.")
            else:
                raise web.HTTPSeeOther("/settings?done=unit")
        else:
            chosen = form.get("language")
            language = None if chosen == FOLLOW_SITE else chosen
            try:
                if language is not None and not isinstance(language, str):
                    raise AccountRejected("Choose one of the languages.")
                await request.app[ACCOUNTS].set_language(access.user.id, language)
            except AccountRejected:
                status, error = 400, _("Choose one of the languages.")
            else:
                raise web.HTTPSeeOther("/settings?done=language")
    site_language = i18n.site_language(request)
    context: dict[str, Any] = {
        "title": _("Settings"),
        "choice": access.user.language or FOLLOW_SITE,
        "follow_site": FOLLOW_SITE,
        "site_language_name": i18n.LANGUAGES[site_language],
        "site_info": _site_info(request) if Scope.ADMIN in access.scopes else None,
        "wall": wall_display(request.app),
        "error": error,
        "unit_choice": access.user.temperature_unit or FOLLOW_SITE,
        "site_unit": i18n.site_temperature_unit(request),
        "notice": {"language": _("Saved. The pages now use your language."),
                   "unit": _("Saved. Temperatures are now shown in your unit.")}.get(request.query.get("done", "")),
    }
    return render(request, "settings.html", status, **context)


def add_settings_routes(app: web.Application) -> None:
    app.router.add_get("/settings", settings_page)
    app.router.add_post("/settings", settings_page)
