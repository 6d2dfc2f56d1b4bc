"""The Commissioning page's "Programs and Home Assistant" setup (/commissioning/programs).

The owner or the installer enters the utility program's VTN (OpenADR) and the home's MQTT broker
here as well as in ems.yaml. Each form is checked by the integration's own schema, tried (an
OpenADR registration, an MQTT connection: ``ems.program_setup``) and only then saved in the store
and applied by restarting the integration; a form that fails is shown again with why, nothing
saved. A secret (a password, the private key) is never shown back: the field stays empty, "set"
beside it, and an empty field keeps the one saved.

The forms are data (``FORMS``): which keys of the section each field sets, of which kind. The web
knows no integration: it reaches them through ``hub.program_setups``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ems.errors import ConfigError
from ems.model import Text
from ems.program_setup import RegisteredSetup, save_section, section_in_force
from web.control_api import dr_text
from web.guard import csrf_given, forbidden, same_token
from web.i18n import N_, _, current
from web.keys import ACCESS, HUB
from web.pages import render

MAX_UPLOAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Field:
    """One input of a form: the section key it sets, its label and hint (msgids), its kind."""

    key: str
    label: str
    kind: str = "text"  # text | url | number | password | file | checkbox
    hint: str | None = None

    @property
    def input_id(self) -> str:
        return self.key.replace("_", "-")


@dataclass(frozen=True, slots=True)
class Form:
    name: str  # the section (and ``hub.program_setups`` key)
    title: str
    intro: str
    fields: tuple[Field, ...]
    saved: str  # the notice once saved


FORMS = (
    Form("openadr", N_("Utility program (OpenADR)"),
         N_("If your utility or an aggregator enrolled this home in a demand-response program that uses "
            "OpenADR 2.0b, enter what the program gave you. Leave the address empty to turn it off."),
         (Field("vtn_url", N_("VTN address"), "url",
                N_("For example https://vtn.example.com/OpenADR2/Simple/2.0b")),
          Field("ven_name", N_("VEN name"), hint=N_("The name the program enrolled this home under")),
          Field("vtn_fingerprint", N_("VTN certificate fingerprint"),
                hint=N_("Pairs of hexadecimal digits separated by colons, as the program gives it")),
          Field("cert_pem", N_("This home's certificate (PEM file)"), "file"),
          Field("key_pem", N_("This home's private key (PEM file)"), "file"),
          Field("passphrase", N_("Passphrase of the private key"), "password",
                N_("Only if the key is protected by one")),),
         N_("Saved: the VTN registered this home, and the program now runs on these settings.")),
    Form("mqtt", N_("Home Assistant (MQTT)"),
         N_("Publish this appliance's readings to an MQTT broker, such as Home Assistant's Mosquitto add-on, "
            "and take its commands. Leave the broker empty to turn it off."),
         (Field("host", N_("Broker"), hint=N_("Its name or address, for example 192.168.1.10")),
          Field("port", N_("Port"), "number", N_("Usually 1883, or 8883 with TLS")),
          Field("username", N_("User name"), hint=N_("Only if the broker asks for a login")),
          Field("password", N_("Password"), "password"),
          Field("tls", N_("Connect with TLS (the broker's certificate is checked)"), "checkbox"),
          Field("site_id", N_("Site name in the topics"), hint=N_("Letters, digits, - and _; the topics begin with ems/ and this name"))),
         N_("Saved: the broker accepted the connection, and MQTT now runs on these settings.")),
)
FORM_BY_NAME = {form.name: form for form in FORMS}


def _registered(hub: Any, name: str) -> RegisteredSetup | None:
    return hub.program_setups.get(name)


async def _values(hub: Any, form: Form) -> dict[str, Any]:
    """What the form shows: the section in force, secrets and files only as "set"."""
    registered = _registered(hub, form.name)
    if registered is None:
        return {"available": False}
    section, saved = await section_in_force(hub.store, registered)
    secrets = set(registered.setup.secrets)
    shown: dict[str, Any] = {}
    is_set: dict[str, bool] = {}
    for field in form.fields:
        value = section.get(field.key)
        if field.kind == "file":
            path_key = field.key.removesuffix("_pem")
            is_set[field.key] = bool(value or section.get(path_key))
        elif field.kind == "password" or field.key in secrets:
            is_set[field.key] = bool(value)
        else:
            shown[field.key] = "" if value is None else value
    return {"available": True, "saved_here": saved, "values": shown, "is_set": is_set,
            "enabled": registered.setup.enabled(section)}


async def _read_form(request: web.Request, form: Form, current: dict[str, Any],
                     secrets: set[str]) -> tuple[dict[str, Any], list[str]]:
    """The section the form asks for: the one in force with the fields changed."""
    post = await request.post()
    section = dict(current)
    problems: list[str] = []
    for field in form.fields:
        raw = post.get(field.key)
        if post.get(f"clear_{field.key}") == "on":
            section[field.key] = None
            if field.kind == "file":
                section[field.key.removesuffix("_pem")] = None
            continue
        if field.kind == "checkbox":
            section[field.key] = raw == "on"
        elif field.kind == "file":
            upload = getattr(raw, "file", None)
            if upload is None:
                continue  # nothing chosen: the one saved stays
            data = upload.read(MAX_UPLOAD_BYTES + 1)
            if not data:
                continue
            if len(data) > MAX_UPLOAD_BYTES:
                problems.append(_("%(label)s: the file is over 64 kB", label=_(field.label)))
                continue
            try:
                section[field.key] = data.decode("utf-8")
            except UnicodeDecodeError:
                problems.append(_("%(label)s: expected a PEM text file", label=_(field.label)))
        else:
            text = raw.strip() if isinstance(raw, str) else ""
            if not text:
                if field.kind == "password" or field.key in secrets:
                    continue  # empty: the one saved stays
                section[field.key] = None if field.kind != "number" else current.get(field.key)
                continue
            if field.kind == "number":
                try:
                    section[field.key] = int(text)
                except ValueError:
                    problems.append(_("%(label)s: expected a whole number", label=_(field.label)))
            else:
                section[field.key] = text
    return section, problems


async def programs_page(request: web.Request) -> web.StreamResponse:
    return await _render(request, done=request.query.get("done"))


async def _render(request: web.Request, status: int = 200, *, done: str | None = None, failed: str | None = None,
                  problems: list[str] | None = None, reason: str | None = None,
                  entered: dict[str, Any] | None = None) -> web.StreamResponse:
    hub = request.app[HUB]
    forms = []
    for form in FORMS:
        values = await _values(hub, form)
        if failed == form.name and entered is not None and values.get("available"):
            values["values"] = {**values["values"], **{k: ("" if v is None else v) for k, v in entered.items()
                                                       if k in values["values"]}}
        forms.append({"form": form, **values, "problems": problems if failed == form.name else [],
                      "reason": reason if failed == form.name else None})
    notice = FORM_BY_NAME[done].saved if done in FORM_BY_NAME else None
    return render(request, "programs_setup.html", status, title=_("Programs and Home Assistant"), forms=forms,
                  notice=notice)


async def save_program(request: web.Request) -> web.StreamResponse:
    """One form posted: checked, tried, then saved and applied (or shown again with why not)."""
    access = request.get(ACCESS)
    if access is None or access.session is None or not same_token(access.session.csrf_token,
                                                                  await csrf_given(request)):
        return forbidden(request, _("the form is missing its CSRF token; reload the page"))
    hub = request.app[HUB]
    form = FORM_BY_NAME.get(request.match_info["name"])
    registered = _registered(hub, form.name) if form is not None else None
    if form is None or registered is None:
        raise web.HTTPNotFound()
    setup = registered.setup
    current, _saved = await section_in_force(hub.store, registered)
    given, problems = await _read_form(request, form, current, set(setup.secrets))
    entered = {f.key: given.get(f.key) for f in form.fields if f.kind not in ("password", "file")}
    if problems:
        return await _render(request, 400, failed=form.name, problems=problems, entered=entered)
    try:
        section = setup.check(given)
    except ConfigError as err:
        return await _render(request, 400, failed=form.name, problems=err.problems, entered=entered)
    if setup.enabled(section):
        probe = await setup.probe(section)
        if not probe.ok:
            return await _render(request, 422, failed=form.name, reason=_reason(probe.reason, hub),
                                 entered=entered)
    await save_section(hub.store, form.name, section, hub.clock(), access.user.username)
    await registered.restart(section)
    raise web.HTTPSeeOther(f"/commissioning/programs?done={form.name}")


def _reason(reason: Text | str | None, hub: Any) -> str:
    """Why a try failed, in the reader's language."""
    if isinstance(reason, Text):
        return dr_text(reason, current(), hub.config.site.timezone)
    return _(reason) if reason else _("It did not work.")


def add_programs_setup_routes(app: web.Application) -> None:
    app.router.add_get("/commissioning/programs", programs_page)
    app.router.add_post("/commissioning/programs/{name}", save_program)
