"""The Settings page (/settings): each person's own choices (the language they read), and for the
owner the site's configuration, read-only (it lives in ems.yaml).

Any signed-in role reaches it (``web.auth.RULES``: public, so an installer, who lacks ``read``,
gets it too); the handler itself asks for a session and checks the form's CSRF token.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ems import preferences
from ems.accounts import AccountRejected, Scope
from web import i18n
from web.guard import csrf_given, forbidden, same_token, unauthorized
from web.i18n import N_, _
from web.ihd import wall_display
from web.keys import ACCESS, ACCOUNTS, HUB
from web.pages import render

FOLLOW_SITE = "site"  # the form's value for "the site's language"

# The program information the customer chooses to see (ems.preferences.INFORMATION), as the form names it.
INFORMATION_WORDS = {
    "current_price": N_("The price now"),
    "usage_and_demand": N_("Your usage and demand"),
    "scheduled_prices": N_("Prices and periods to come"),
    "dr_events": N_("Demand-response events and what they ask"),
    "current_tier": N_("The price tier you are in"),
}


async def _save_program(request: web.Request, form: Any) -> str | None:
    """The owner's program preferences from the form; an error to show, or None once saved."""
    access = request[ACCESS]
    if Scope.ADMIN not in access.scopes:
        return _("Only the owner chooses what the utility's program shows.")
    hub = request.app[HUB]
    language = form.get("program_language")
    if language == FOLLOW_SITE:
        language = None
    if language is not None and language not in preferences.LANGUAGES:
        return _("Choose one of the languages.")
    chosen = {name: form.get(name) == "on" for name in preferences.INFORMATION}
    hub.preferences = await preferences.save(hub.store, hub.preferences.with_changes(**chosen, language=language),
                                             hub.clock(), access.user.username)
    return None


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
        if "program" in form:
            error = await _save_program(request, form)
            if error is None:
                raise web.HTTPSeeOther("/settings?done=program")
            status = 403 if Scope.ADMIN not in access.scopes else 400
        elif "temperature_unit" in form:
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
        "program": request.app[HUB].preferences if Scope.ADMIN in access.scopes else None,
        "configured_language_name": i18n.LANGUAGES.get(request.app[HUB].config.site.language, ""),
        "information": INFORMATION_WORDS,
        "notice": {"language": _("Saved. The pages now use your language."),
                   "unit": _("Saved. Temperatures are now shown in your unit."),
                   "program": _("Saved. The dashboard and the In-Home Display now show what you chose.")}.get(
            request.query.get("done", "")),
    }
    return render(request, "settings.html", status, **context)


def add_settings_routes(app: web.Application) -> None:
    app.router.add_get("/settings", settings_page)
    app.router.add_post("/settings", settings_page)
