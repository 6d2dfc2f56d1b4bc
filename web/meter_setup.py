"""The meter setup page (/commissioning/meter, owner and installer) and its API.

How the appliance reads each meter, and setting up another way: a Rainforest bridge (EMU-2 over USB,
EAGLE on the LAN) or an IEEE 2030.5 meter. As Home Assistant's config flows do, nothing is saved
before it has been tried: the customer chooses the kind, finds the device (serial ports listed,
bridges and meters found on the LAN), tests it and sees the meter's figures, then saves; saving
starts it in place of what read that meter (``ems.meter_source.MeterSources``). A different meter
than the one pinned (after a move) waits here for the owner's word.

Credentials typed into the form (an EAGLE's install code) are never shown back: a saved one shows
as "set" and an empty field keeps it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.numbers import format_currency, format_decimal

from ems.local_text import format_moment
from ems.meter_source import MeterPin, MeterSourceKind, SavedSource, SourceField, SourceProbe
from ems.model import LinkState, Text
from web.control_api import dr_text
from web.guard import csrf_given, forbidden, same_token
from web.i18n import N_, _, current
from web.keys import ACCESS, HUB
from web.pages import render

_LOGGER = logging.getLogger(__name__)

FIND_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 20.0

LINK_WORDS = {
    LinkState.CONNECTING: N_("Connecting"),
    LinkState.ONLINE: N_("Receiving the meter's figures"),
    LinkState.STALE: N_("Connected, but the meter has gone quiet"),
    LinkState.OFFLINE: N_("Not connected: trying again"),
}
KIND_WORDS = {
    "zigbee": N_("ZigBee Smart Energy radio"),
    "emu2": N_("Rainforest EMU-2 (USB)"),
    "eagle": N_("Rainforest EAGLE (home network)"),
    "ieee2030_5": N_("IEEE 2030.5 meter (home network)"),
}
SAVED = "\u2022set\u2022"  # what a credential field holds once saved: left as is, the saved value is kept


def _kind_title(hub: Any, kind: str) -> str:
    if kind in KIND_WORDS:
        return _(KIND_WORDS[kind])
    source = hub.meter_source_kinds.get(kind)
    return _(source.title) if source is not None else kind


def _when(site: Any, at: Any) -> str:
    """A moment as the reader's locale writes it, in the site's zone (``Wed, Jul 15, 8:00 PM``)."""
    return format_moment(at.astimezone(ZoneInfo(site.timezone)), current())


def _meters(hub: Any, pins: dict[str, MeterPin], saved: dict[str, SavedSource]) -> list[dict[str, Any]]:
    site = hub.config.site
    ids = sorted(set(hub.state.meters) | set(pins) | set(saved) | set(hub.meter_sources.running))
    meters = []
    for meter_id in ids:
        state = hub.state.meters.get(meter_id)
        running = hub.meter_sources.running.get(meter_id)
        kind = saved[meter_id].kind if meter_id in saved else (running[0] if running else None)
        pin = pins.get(meter_id)
        meters.append({
            "meter_id": meter_id,
            "source": _kind_title(hub, kind) if kind else _("Not set up"),
            "set_up": (_("Set up on this page by %(who)s, %(when)s") % {
                "who": saved[meter_id].saved_by, "when": _when(site, saved[meter_id].saved_at)}
                if meter_id in saved else (_("Set up in the configuration file") if running else "")),
            # a different meter's figures are refused until the owner confirms it (the link may say offline)
            "link": _("Waiting for you to confirm the meter below") if pin and pin.pending_hardware_id else
                    _(LINK_WORDS[state.link]) if state is not None else _("No figures yet"),
            "link_state": state.link.value if state is not None else "none",
            "hardware_id": pin.hardware_id if pin else None,
            "pending": pin.pending_hardware_id if pin else None,
            "pending_at": _when(site, pin.pending_at) if pin and pin.pending_at else None,
        })
    return meters


def _fields(kind: MeterSourceKind, values: dict[str, str], saved: SavedSource | None) -> list[dict[str, Any]]:
    out = [{"name": "meter_id", "label": _("Meter name in this appliance"), "kind": "text", "required": True,
            "hint": _("Leave it as “main” unless this site has several meters."),
            "value": values.get("meter_id") or (saved.meter_id if saved else "main")}]
    for field in kind.fields:
        value = values.get(field.name)
        stored = saved.section.get(field.name) if saved is not None and saved.kind == kind.kind else None
        if field.kind == "password":  # a credential is never sent back, not even the one just typed
            value = SAVED if stored else ""
        elif value is None:
            value = str(stored if stored is not None else field.default)
        out.append({"name": field.name, "label": _(field.label), "kind": field.kind, "required": field.required,
                    "hint": _(field.hint) if field.hint else "", "value": value})
    return out


def _section(kind: MeterSourceKind, form: Any, saved: SavedSource | None) -> dict[str, Any]:
    """The kind's section from the form: empty fields left out (the schema's defaults), a credential
    left as SAVED taken from what was saved, numbers as numbers."""
    section: dict[str, Any] = {"meter_id": str(form.get("meter_id") or "main").strip()}
    for field in kind.fields:
        raw = form.get(field.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if field.kind == "password" and text == SAVED and saved is not None:
            if field.name in saved.section:
                section[field.name] = saved.section[field.name]
            continue
        if not text:
            continue
        if field.kind == "number":
            try:
                section[field.name] = float(text) if "." in text else int(text)
            except ValueError:
                section[field.name] = text  # the schema says what is wrong with it
        else:
            section[field.name] = text
    return section


def _reason(probe: SourceProbe, hub: Any) -> str:
    """Why a test failed, in the reader's language."""
    return _words(probe.reason or N_("The test failed."), hub)


def _words(text: Text | str, hub: Any) -> str:
    """A kind's words in the reader's language: a Text rendered with its values, a msgid translated."""
    if isinstance(text, Text):
        return dr_text(text, current(), hub.config.site.timezone)
    return _(text)


def _value(value: Text | str, hub: Any) -> str:
    """A detail's value: a Text in the reader's words; a plain value (a model, an address) as it is."""
    return dr_text(value, current(), hub.config.site.timezone) if isinstance(value, Text) else value


def _problem(kind: MeterSourceKind, err: ValueError) -> str:
    """A setting the kind's schema refused, named by its label on the form (the schema's English
    words only for a key the form does not show)."""
    where, _sep, problem = str(err).partition(": ")
    field = next((f for f in kind.fields if f.name == where), None)
    if where == "meter_id":
        return _("Check this setting: %(problem)s") % {"problem": _("Meter name in this appliance")} + " " + _(
            "Use 1 to 40 letters, digits, “_”, “-”, “.” or “:”.")
    if field is None:
        return _("Check this setting: %(problem)s") % {"problem": str(err)}
    return " ".join(part for part in (_("Check this setting: %(problem)s") % {"problem": _(field.label)},
                                      _(field.hint) if field.hint else "") if part)


def _figures(probe: SourceProbe, hub: Any) -> list[tuple[str, str]]:
    """What a successful test read, in the reader's words."""
    language = current()
    rows: list[tuple[str, str]] = []
    if probe.hardware_id:
        rows.append((_("Meter"), probe.hardware_id))
    reading = probe.reading
    if reading is not None:
        if reading.demand_kw is not None:
            rows.append((_("Power now"), _("%(kw)s kW") % {"kw": format_decimal(reading.demand_kw, "#,##0.000",
                                                                                  locale=language)}))
        if reading.summation_delivered_kwh is not None:
            rows.append((_("Energy used, meter total"), _("%(kwh)s kWh") % {
                "kwh": format_decimal(reading.summation_delivered_kwh, "#,##0.0", locale=language)}))
        if reading.summation_received_kwh:
            rows.append((_("Energy sent to the grid, meter total"), _("%(kwh)s kWh") % {
                "kwh": format_decimal(reading.summation_received_kwh, "#,##0.0", locale=language)}))
    price = probe.price
    if price is not None:
        money = format_currency(price.price_per_kwh, price.currency or "USD", locale=language,
                                format="¤#,##0.0000", currency_digits=False)
        rows.append((_("Price now"), _("%(money)s per kWh") % {"money": money}))
    for label, value in probe.details:
        rows.append((_(label), _value(value, hub)))
    return rows


async def _probe(kind: MeterSourceKind, section: dict[str, Any]) -> SourceProbe:
    try:
        return await asyncio.wait_for(kind.probe(section), PROBE_TIMEOUT_S)
    except TimeoutError:
        return SourceProbe(False, N_("The device did not answer within 20 seconds. Check that it is powered and "
                                     "connected, then try again."))
    except Exception:
        _LOGGER.exception("Testing a %s meter source failed", kind.kind)
        return SourceProbe(False, N_("The test failed unexpectedly; the appliance's log says why."))


async def meter_setup_page(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    access = request.get(ACCESS)
    sources = hub.meter_sources
    await sources.ensure_kinds()
    saved_all = await sources.saved()
    pins = await hub.meter_pins.pins()
    status = 200
    form: Any = request.query
    action = None
    if request.method == "POST":
        if access is None or access.session is None or not same_token(access.session.csrf_token,
                                                                      await csrf_given(request)):
            return forbidden(request, _("the form is missing its CSRF token; reload the page"))
        form = await request.post()
        action = form.get("action")
    who = access.user.username if access is not None and access.user is not None else "api"
    kinds = dict(hub.meter_source_kinds)
    kind_name = str(form.get("kind") or _current_kind(hub, saved_all, kinds))
    kind = kinds.get(kind_name)
    notice = error = failed = None
    candidates: list[dict[str, str]] | None = None
    probe: SourceProbe | None = None
    values: dict[str, str] = {k: v for k, v in form.items() if isinstance(v, str)} if request.method == "POST" else {}

    if action == "confirm":
        meter_id, hardware_id = str(form.get("meter_id", "")), str(form.get("hardware_id", ""))
        try:
            await hub.meter_pins.confirm(meter_id, hardware_id, by=who)
        except (LookupError, ValueError):
            status, error = 409, _("That meter is no longer waiting to be confirmed; reload the page.")
        else:
            raise web.HTTPSeeOther("/commissioning/meter?done=confirmed")
    elif action in ("find", "test", "save", "use") and kind is None:
        status, error = 400, _("Choose how the appliance should read the meter.")
    elif kind is not None and action == "find":
        found = await _find(kind)
        candidates = [{"address": c.address, "label": _words(c.label, hub), "hardware_id": c.hardware_id or ""}
                      for c in found]
    elif kind is not None and action == "use":
        address_field = next((f.name for f in kind.fields if f.kind == "address"), None)
        if address_field is not None:
            values[address_field] = str(form.get("address", ""))
    elif kind is not None and action in ("test", "save"):
        saved = saved_all.get(str(form.get("meter_id") or "main"))
        section = _section(kind, form, saved)
        try:
            validated = sources.validate(kind.kind, section)
        except ValueError as err:
            status, failed = 400, _problem(kind, err)
        else:
            probe = await _probe(kind, validated)
            if not probe.ok:  # shown beside the form, where the customer looks after pressing Test
                status = 400 if action == "save" else 200
                failed = (_("Not saved: ") if action == "save" else "") + _reason(probe, hub)
            elif action == "save":
                await sources.save(kind.kind, validated, by=who)
                raise web.HTTPSeeOther("/commissioning/meter?done=saved")
    if request.query.get("done") == "saved":
        notice = _("Saved. The appliance now reads the meter this way.")
    elif request.query.get("done") == "confirmed":
        notice = _("Confirmed. The appliance now takes this meter's figures.")
    saved_for_form = saved_all.get(str(values.get("meter_id") or "main"))
    registration = await _registration(kind) if kind is not None else []
    context: dict[str, Any] = {
        "title": _("Your meter"),
        "meters": _meters(hub, pins, saved_all),
        "kinds": [{"kind": name, "title": _kind_title(hub, name)} for name in kinds],
        "kind": kind_name if kind is not None else None,
        "fields": _fields(kind, values, saved_for_form) if kind is not None else [],
        "candidates": candidates,
        "probe": probe,
        "figures": _figures(probe, hub) if probe is not None and probe.ok else [],
        "error": error,
        "failed": failed,
        "notice": notice,
        "saved_marker": SAVED,
        "registration": registration,
    }
    return render(request, "meter_setup.html", status, **context)


async def _registration(kind: MeterSourceKind) -> list[tuple[str, str]]:
    """What the customer gives the utility for this kind (a 2030.5 meter: the appliance's LFDI and
    SFDI), when the kind says; labels in the reader's language."""
    registration = getattr(kind, "registration", None)
    if registration is None:
        return []
    try:
        return [(_(label), value) for label, value in await registration()]
    except Exception:
        _LOGGER.exception("The %s kind could not say what to register", kind.kind)
        return []


def _current_kind(hub: Any, saved: dict[str, SavedSource], kinds: dict[str, Any]) -> str:
    """The kind the form opens on: the one that reads the first meter (saved here or started by
    ems.yaml), else the first the appliance knows."""
    reading = [s.kind for _id, s in sorted(saved.items())] + [
        kind for _id, (kind, _source) in sorted(hub.meter_sources.running.items())]
    return next((k for k in reading if k in kinds), next(iter(kinds), ""))


async def _find(kind: MeterSourceKind) -> list[Any]:
    try:
        return list(await asyncio.wait_for(kind.discover(FIND_TIMEOUT_S), FIND_TIMEOUT_S + 5))
    except Exception:
        _LOGGER.exception("Finding %s meter sources failed", kind.kind)
        return []


# --- The API -------------------------------------------------------------------------------------


def _probe_json(probe: SourceProbe, hub: Any) -> dict[str, Any]:
    reading = probe.reading
    return {
        "ok": probe.ok,
        "reason": _reason(probe, hub) if not probe.ok else None,
        "hardware_id": probe.hardware_id,
        "demand_kw": reading.demand_kw if reading else None,
        "summation_delivered_kwh": reading.summation_delivered_kwh if reading else None,
        "summation_received_kwh": reading.summation_received_kwh if reading else None,
        "price_per_kwh": probe.price.price_per_kwh if probe.price else None,
        "currency": probe.price.currency if probe.price else None,
        "details": [{"label": _(label), "value": _value(value, hub)} for label, value in probe.details],
    }


def _field_json(field: SourceField) -> dict[str, Any]:
    return {"name": field.name, "label": _(field.label), "kind": field.kind, "required": field.required,
            "hint": _(field.hint) if field.hint else "", "default": field.default}


async def sources_api(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    await hub.meter_sources.ensure_kinds()
    saved = await hub.meter_sources.saved()
    pins = await hub.meter_pins.pins()
    return web.json_response({
        "kinds": [{"kind": name, "title": _kind_title(hub, name), "fields": [_field_json(f) for f in k.fields]}
                  for name, k in hub.meter_source_kinds.items()],
        "meters": [{"meter_id": m["meter_id"], "source": m["source"], "link": m["link_state"],
                    "hardware_id": m["hardware_id"], "pending_hardware_id": m["pending"]}
                   for m in _meters(hub, pins, saved)],
    }, headers={"Cache-Control": "no-store"})


def _fail(status: int, error: str, **extra: Any) -> web.Response:
    return web.json_response({"error": error, "status": status, **extra}, status=status)


async def _kind_or_404(request: web.Request) -> MeterSourceKind:
    await request.app[HUB].meter_sources.ensure_kinds()
    kind = request.app[HUB].meter_source_kinds.get(request.match_info["kind"])
    if kind is None:
        raise web.HTTPNotFound(reason=f"no meter source of kind {request.match_info['kind']!r}")
    return kind


async def _json_section(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError as err:
        raise web.HTTPBadRequest(reason="the body must be a JSON object of the kind's settings") from err
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(reason="the body must be a JSON object of the kind's settings")
    return body


async def candidates_api(request: web.Request) -> web.Response:
    found = await _find(await _kind_or_404(request))
    hub = request.app[HUB]
    return web.json_response({"candidates": [{"address": c.address, "label": _words(c.label, hub),
                                              "hardware_id": c.hardware_id}
                                             for c in found]}, headers={"Cache-Control": "no-store"})


async def probe_api(request: web.Request) -> web.Response:
    """Test settings without saving them (validated first: a bad one is a 400 naming the key)."""
    kind = await _kind_or_404(request)
    try:
        validated = request.app[HUB].meter_sources.validate(kind.kind, await _json_section(request))
    except ValueError as err:
        return _fail(400, str(err))
    probe = await _probe(kind, validated)
    return web.json_response(_probe_json(probe, request.app[HUB]), headers={"Cache-Control": "no-store"})


async def save_api(request: web.Request) -> web.Response:
    """Test, then save and start (422 with the reason when the test fails: nothing saved)."""
    kind = await _kind_or_404(request)
    hub = request.app[HUB]
    try:
        validated = hub.meter_sources.validate(kind.kind, await _json_section(request))
    except ValueError as err:
        return _fail(400, str(err))
    probe = await _probe(kind, validated)
    if not probe.ok:
        return _fail(422, _reason(probe, hub), probe=_probe_json(probe, hub))
    access = request.get(ACCESS)
    saved = await hub.meter_sources.save(kind.kind, validated, by=access.user.username if access and access.user
                                         else "api")
    return web.json_response({"meter_id": saved.meter_id, "kind": saved.kind, "probe": _probe_json(probe, hub)},
                             status=201)


async def confirm_api(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    body = await _json_section(request)
    access = request.get(ACCESS)
    try:
        pin = await hub.meter_pins.confirm(request.match_info["meter_id"], str(body.get("hardware_id", "")),
                                           by=access.user.username if access and access.user else "api")
    except (LookupError, ValueError) as err:
        return _fail(409, str(err))
    return web.json_response({"meter_id": pin.meter_id, "hardware_id": pin.hardware_id})


def add_meter_setup_routes(app: web.Application) -> None:
    app.router.add_get("/commissioning/meter", meter_setup_page)
    app.router.add_post("/commissioning/meter", meter_setup_page)
    app.router.add_get("/api/v1/commissioning/meter-sources", sources_api)
    app.router.add_get("/api/v1/commissioning/meter-sources/{kind}/candidates", candidates_api)
    app.router.add_post("/api/v1/commissioning/meter-sources/{kind}/probe", probe_api)
    app.router.add_post("/api/v1/commissioning/meter-sources/{kind}", save_api)
    app.router.add_post("/api/v1/commissioning/meters/{meter_id}/confirm", confirm_api)
