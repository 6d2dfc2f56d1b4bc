"""The Devices and Rules pages: what each device does and why, and the customer's rules file.

Both are rendered on the server in the reader's language. The Devices page refreshes its
table every few seconds by fetching itself (``?part=table``), so it needs no strings in
JavaScript; its buttons are plain forms (CSRF-checked) that work without a script. The Rules
page shows each validation problem beside the text with its line number, in plain words in the
reader's language (web.rule_problems).
"""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from ems.accounts import Scope
from ems.errors import ConfigError, RejectedCommand
from ems.hub import Hub
from ems.local_text import N_
from ems.model import EventPhase, EventView
from web.control_api import device_list
from web.errors import status_for
from web.guard import csrf_given, forbidden, same_token
from web.i18n import _
from web.keys import ACCESS, HUB
from web.pages import render
from web.rule_problems import explain_all

# A thermostat's system mode (integrations/zigbee_home/catalog.py's names) as the Devices page says it.
MODE_NAMES = {"off": N_("off"), "auto": N_("automatic"), "cool": N_("cooling"), "heat": N_("heating"),
              "fan_only": N_("fan only"), "dry": N_("drying"), "sleep": N_("sleep")}


def _hub(request: web.Request) -> Hub:
    return request.app[HUB]


def _active_events(hub: Hub) -> list[EventView]:
    control = hub.control
    if control is None:
        return []
    return [v for v in control.events() if v.addressed and v.phase is not EventPhase.ENDED]


async def devices_page(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    context = {"title": _("Devices"), "devices": device_list(hub), "events": _active_events(hub),
               "running": hub.control is not None, "notice": request.query.get("done") and _("Done."),
               "mode_names": MODE_NAMES,
               "timezone": hub.config.site.timezone}
    if request.query.get("part") == "table":
        response = aiohttp_jinja2.render_template("devices_table.html", request, context)
        response.headers["Cache-Control"] = "no-store"
        return response
    return render(request, "devices.html", **context)


async def device_release(request: web.Request) -> web.StreamResponse:
    """Take a device out of an event (or put it back): the form on the Devices page."""
    hub = _hub(request)
    access = request.get(ACCESS)
    if access is None or access.session is None:
        return forbidden(request, _("sign in to change this"))
    if not same_token(access.session.csrf_token, await csrf_given(request)):
        return forbidden(request, _("the form is missing its CSRF token; reload the page"))
    form = await request.post()
    device_id = request.match_info["device_id"]
    try:
        meter_id = str(form.get("meter_id", ""))
        event_id = int(str(form.get("issuer_event_id", "")))
        opted_out = form.get("take_part") != "yes"
        if hub.control is None:
            raise RejectedCommand(_("demand response is not running"))
        await hub.control.set_participation(meter_id, event_id, opted_out=opted_out, device_id=device_id,
                                            by=access.user.username)
    except (ValueError, RejectedCommand) as err:  # the page again, saying why (a bad form: 400)
        status = status_for(err) if isinstance(err, RejectedCommand) else 400
        return render(request, "devices.html", status, title=_("Devices"), devices=device_list(hub),
                       events=_active_events(hub), running=hub.control is not None, error=str(err), mode_names=MODE_NAMES,
                       timezone=hub.config.site.timezone)
    raise web.HTTPSeeOther("/devices?done=1")


async def rules_page(request: web.Request) -> web.StreamResponse:
    hub = _hub(request)
    control = hub.control
    access = request.get(ACCESS)
    can_edit = access is not None and access.session is not None and Scope.ADMIN in access.scopes
    text = control.rulebook.text if control is not None else ""
    problems: list[str] = list(control.rulebook.problems) if control is not None else []
    warnings: list[str] = list(control.rulebook.warnings) if control is not None else []
    notice, status = None, 200
    if request.method == "POST":
        if not can_edit:
            return forbidden(request, _("only the owner changes the rules"))
        if not same_token(access.session.csrf_token, await csrf_given(request)):
            return forbidden(request, _("the form is missing its CSRF token; reload the page"))
        form = await request.post()
        text = str(form.get("text", ""))
        check_only = form.get("action") == "check"
        if control is None:
            problems, status = [_("demand response is not running")], 503
        else:
            try:
                if check_only:
                    _ruleset, warnings = await control.rulebook.validate(text, control.known_devices())
                    notice = _("The rules are valid (not saved yet).")
                else:
                    warnings = await control.replace_rules(text, control.known_devices())
                    notice = _("Saved. The new rules are in force.")
                problems = []
            except ConfigError as err:
                problems, status = err.problems, 422
    devices = [d["name"] for d in device_list(hub)]
    return render(request, "rules.html", status, title=_("Rules"), text=text, problems=explain_all(problems, devices),
                   warnings=warnings, can_edit=can_edit, notice=notice,
                   path_on_disk=str(control.rulebook.path) if control is not None else "")


def add_control_pages(app: web.Application) -> None:
    app.router.add_get("/devices", devices_page)
    app.router.add_post("/devices/{device_id}/participation", device_release)
    app.router.add_get("/rules", rules_page)
    app.router.add_post("/rules", rules_page)
