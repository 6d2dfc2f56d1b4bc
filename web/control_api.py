"""The API of demand response: devices and their readings, the rules file, and who takes part in an event.

GET /api/v1/devices                          every device: what it is, what it says, who holds it and why
GET /api/v1/devices/{device_id}/readings     its readings (telemetry) over the last hours
GET /api/v1/rules                            the rules file, its warnings and problems
PUT /api/v1/rules                            replace it (validated first; 422 lists the problems)
POST /api/v1/rules/validate                  check a rules text without putting it in force
POST /api/v1/events/{meter}/{event}/devices/{device_id}/opt-out | opt-in   take one device out or back
GET /api/v1/events/{meter}/{event}/actions   what the EMS did for the event (every device command)

The handlers talk to the hub's demand-response component; what they ask becomes a proposal or
a participation change there, never a device command here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from babel.dates import format_time
from babel.numbers import format_decimal

from ems.config import parse_yaml
from ems.dr.component import DemandResponse
from ems.errors import ConfigError, DocumentRefused, NotReady
from ems.hub import Hub
from ems.local_text import TEMPERATURE_UNIT, format_value, temperature
from ems.model import Text, english
from web import i18n, present
from web.keys import ACCESS, HUB
from web.params import event_key

MAX_RULES_BYTES = 256 * 1024
RULES_TYPES = ("text/yaml", "application/yaml", "text/plain", "application/json")
MAX_HOURS = 24 * 31


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store"})


def _hub(request: web.Request) -> Hub:
    return request.app[HUB]


def _control(request: web.Request) -> DemandResponse:
    control = _hub(request).control
    if control is None:
        raise NotReady("demand response is not running")
    return control


# -- the texts of demand response in the reader's language ---------------------------------------

_PLAIN_NUMBERS = ("_pct", "_min", "_num")


def dr_text(text: Text, language: str, timezone: str) -> str:
    """A reason, note or why the rules, arbiter or dispatcher made, in ``language``.

    The placeholders' rules are ``ems.model.Text``'s, formatted for the locale: ``*_phrase`` is
    itself a msgid, filled from the same values (a phrase may hold another); ``*_signed_c`` and
    ``*_c`` are degrees and ``*_kw`` kW (one decimal); ``*_pct``, ``*_min`` and ``*_num`` plain
    numbers; ``*_time`` a time of day in the site's zone; and ``ems.local_text``'s rules for the rest.
    """
    template, values = text.msgid, dict(text.params)
    gettext = i18n.translations(language).ugettext
    shown = _Shown({key: _shown(key, value, values, language, timezone)
                    for key, value in values.items() if not key.endswith("_phrase")})
    phrases = {key: value for key, value in values.items() if key.endswith("_phrase")}
    for _depth in range(_PHRASE_DEPTH if phrases else 0):  # inner phrases settle first
        shown.update({key: _fill(gettext(value), value, shown) for key, value in phrases.items()})
    return _in_unit(_fill(gettext(template) if template else template, template, shown))


def _in_unit(text: str) -> str:
    """The text's "°C" as the reader's unit (its numbers were converted with it)."""
    return text.replace("°C", "°F") if TEMPERATURE_UNIT.get() == "F" else text


_PHRASE_DEPTH = 3


def _fill(text: str, english: str, shown: dict[str, str]) -> str:
    try:
        return text.format_map(shown)
    except (ValueError, IndexError, AttributeError):  # a broken translation: the English
        try:
            return english.format_map(shown)
        except (ValueError, IndexError, AttributeError):
            return english


class _Shown(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _shown(key: str, value: str, values: dict[str, str], language: str, timezone: str) -> str:
    try:
        # Degrees in the reader's unit (local_text.TEMPERATURE_UNIT): an offset is a difference.
        if key.endswith("_signed_c"):
            return format_decimal(temperature(float(value), difference=True), "+0.0;-0.0", locale=language)
        if key.endswith("_c"):
            return format_decimal(temperature(float(value), difference="offset" in key), "0.0", locale=language)
        if key.endswith("_kw"):
            return format_decimal(float(value), "0.0", locale=language)
        if key.endswith(_PLAIN_NUMBERS):
            return format_decimal(float(value), locale=language)
        if key.endswith("_time"):
            return format_time(datetime.fromisoformat(value).astimezone(ZoneInfo(timezone)), "short", locale=language)
    except (ValueError, TypeError, LookupError):
        return value  # not what its name promises: shown as it came
    return format_value(key, value, values, language, timezone)


def dr_parts_text(parts: Iterable[Text], language: str, timezone: str) -> str | None:
    """Notes made of parts (joined with "; " as the English is), in ``language``; None if none."""
    texts = [dr_text(part, language, timezone) for part in parts]
    return "; ".join(texts) if texts else None


# -- devices -----------------------------------------------------------------------------------


def device_list(hub: Hub, language: str | None = None) -> list[dict[str, Any]]:
    """The devices' JSON; the human texts also in ``language`` (the request's when not given)."""
    control = hub.control
    if control is None:
        return []
    language = language or i18n.current()
    timezone = hub.config.site.timezone

    def shown(text: Text) -> str:
        return dr_text(text, language, timezone)

    out = []
    for state in control.device_statuses():
        info, reading, decision, held = state.info, state.reading, state.decision, state.controlled
        winner = decision.winner if decision is not None else None
        out.append({
            "device_id": info.device_id,
            "name": info.name,
            "kind": str(info.kind),
            "device_class": [c.name.lower() for c in type(info.device_class) if c & info.device_class],
            "enrollment_group": info.enrollment_group,
            "nominal_kw": info.nominal_kw,
            "setpoint_limits_c": [info.min_setpoint_c, info.max_setpoint_c]
            if info.min_setpoint_c is not None else None,
            "capacity_kwh": info.capacity_kwh,
            "model": info.model,
            "available": state.available,
            "detail": state.detail,
            "last_seen": present.iso(state.last_seen) if state.last_seen else None,
            "reading": None if reading is None else {
                "at": present.iso(reading.at),
                "power_kw": reading.power_kw,
                "on": reading.on,
                "indoor_c": reading.indoor_c,
                "outdoor_c": reading.outdoor_c,
                "cooling_setpoint_c": reading.cooling_setpoint_c,
                "heating_setpoint_c": reading.heating_setpoint_c,
                "system_mode": reading.system_mode,
                "soc_pct": reading.soc_pct,
            },
            "controlled": held is not None,
            "controlled_since": present.iso(held.since) if held is not None else None,
            "held_by": None if winner is None else {
                "action": str(winner.action), "source": winner.source.name.lower(), "rule": winner.rule or None,
                "reason": winner.reason.english(), "reason_text": shown(winner.reason),
                "issuer_event_id": winner.issuer_event_id,
                "value": winner.value, "cooling_setpoint_c": winner.cooling_setpoint_c,
                "heating_setpoint_c": winner.heating_setpoint_c,
            },
            "note": english(decision.note) if decision is not None and decision.note else None,
            "note_text": dr_parts_text(decision.note, language, timezone) if decision is not None else None,
            "not_chosen": [] if decision is None else [
                {"reason": p.reason.english(), "reason_text": shown(p.reason), "why": why.english(),
                 "why_text": shown(why)}
                for p, why in decision.losers],
            "taken_in_hand_by_customer": state.override is not None,
        })
    return out


async def devices(request: web.Request) -> web.Response:
    return _json({"devices": device_list(_hub(request))})


async def device_readings(request: web.Request) -> web.Response:
    control = _control(request)
    device_id = request.match_info["device_id"]
    control.device(device_id)  # 404 for an unknown device
    text = request.query.get("hours", "24")
    try:
        hours = float(text)
    except ValueError:
        raise web.HTTPBadRequest(reason=f"hours must be a number, not {text!r}") from None
    if not 0 < hours <= MAX_HOURS:
        raise web.HTTPBadRequest(reason=f"hours must be above 0 and at most {MAX_HOURS}")
    now = _hub(request).clock()
    readings = await control.device_history(device_id, now - timedelta(hours=hours), now)
    fields = ("power_kw", "on", "indoor_c", "outdoor_c", "cooling_setpoint_c", "heating_setpoint_c",
              "system_mode", "soc_pct")
    return _json({"device_id": device_id, "readings": [
        {"at": present.iso(r.at), **{f: getattr(r, f) for f in fields if getattr(r, f) is not None}}
        for r in readings]})


# -- rules -------------------------------------------------------------------------------------


def _rules_state(control: DemandResponse) -> dict[str, Any]:
    book = control.rulebook
    ruleset = book.ruleset
    return {
        "path": str(book.path),
        "text": book.text,
        "rules": len(getattr(ruleset, "rules", ()) or ()),
        "warnings": list(book.warnings),
        "problems": list(book.problems),
    }


async def get_rules(request: web.Request) -> web.Response:
    return _json(_rules_state(_control(request)))


async def _rules_text(request: web.Request) -> str:
    if request.content_length is not None and request.content_length > MAX_RULES_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_RULES_BYTES, actual_size=request.content_length)
    body = await request.read()
    if len(body) > MAX_RULES_BYTES:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_RULES_BYTES, actual_size=len(body))
    if not body.strip():
        raise web.HTTPBadRequest(reason="the body is empty: send the rules file's YAML text (an empty set is 'rules: []')")
    if request.content_type not in RULES_TYPES:
        raise web.HTTPUnsupportedMediaType(
            reason=f"send the rules as {', '.join(RULES_TYPES)}, not {request.content_type}")
    if request.content_type == "application/json":
        try:
            data = json.loads(body or b"null")
        except ValueError:
            raise web.HTTPBadRequest(reason='the body must be JSON such as {"text": "rules: []"}') from None
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise web.HTTPBadRequest(reason='the body must be a JSON object with a "text" string')
        return str(data["text"])
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise web.HTTPBadRequest(reason="the rules must be UTF-8 text") from None


def _problems(err: ConfigError) -> web.Response:
    return _json({"error": "the rules are not valid", "status": 422, "problems": err.problems}, status=422)


async def _require_mapping(text: str) -> web.Response | None:
    """A rules file sent over the API must be a YAML mapping (an empty document is no file).

    Read with ems.config's bounded parser, in a thread: a document too large, too deep or
    whose aliases expand too far is answered 400 with the reason, and never blocks the loop.
    """
    try:
        loaded = await asyncio.to_thread(parse_yaml, text, Path("rules.yaml"))
    except DocumentRefused as err:
        return _json({"error": "the rules document is refused", "status": 400, "problems": err.problems},
                     status=400)
    except ConfigError:
        return None  # the rule parser names the line of the syntax error
    document = None if loaded.empty else loaded.data
    if isinstance(document, dict):
        return None
    return _problems(ConfigError([f"rules.yaml:1: (top level): expected a mapping with 'rules:' (and optionally "
                                  f"'devices:', 'seasons:'), found {type(document).__name__}"]))


async def put_rules(request: web.Request) -> web.Response:
    control = _control(request)
    text = await _rules_text(request)
    if (refused := await _require_mapping(text)) is not None:
        return refused
    try:
        await control.replace_rules(text, control.known_devices())
    except ConfigError as err:
        return _problems(err)
    return _json(_rules_state(control))


async def validate_rules(request: web.Request) -> web.Response:
    control = _control(request)
    text = await _rules_text(request)
    if (refused := await _require_mapping(text)) is not None:
        return refused
    try:
        ruleset, warnings = await control.rulebook.validate(text, control.known_devices())
    except ConfigError as err:
        return _problems(err)
    return _json({"valid": True, "rules": len(getattr(ruleset, "rules", ()) or ()), "warnings": warnings})


# -- events ------------------------------------------------------------------------------------


async def _device_participation(request: web.Request, opted_out: bool) -> web.Response:
    control = _control(request)
    meter_id, event_id = event_key(request)
    device_id = request.match_info["device_id"]
    control.device(device_id)  # 404 for an unknown device
    control.event(meter_id, event_id)  # and for an unknown event
    access = request.get(ACCESS)
    by = access.user.username if access is not None and access.user is not None else "api"
    await control.set_participation(meter_id, event_id, opted_out=opted_out, device_id=device_id, by=by)
    return _json(present.event(control.event(meter_id, event_id), control.device_names()))


async def device_opt_out(request: web.Request) -> web.Response:
    return await _device_participation(request, True)


async def device_opt_in(request: web.Request) -> web.Response:
    return await _device_participation(request, False)


async def event_actions(request: web.Request) -> web.Response:
    hub = _hub(request)
    control = _control(request)
    meter_id, event_id = event_key(request)
    rows = await control.event_actions(meter_id, event_id)
    names = control.device_names()
    language, timezone = i18n.current(), hub.config.site.timezone
    return _json({"actions": [
        {"at": present.iso(r.at), "device_id": r.device_id, "device": names.get(r.device_id, r.device_id),
         "action": r.action, "detail": r.detail, "source": r.source, "reason": str(r.reason),
         "reason_text": dr_text(r.reason, language, timezone), "ok": r.ok, "error": r.error}
        for r in rows]})


def add_control_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/devices", devices)
    app.router.add_get("/api/v1/devices/{device_id}/readings", device_readings)
    app.router.add_get("/api/v1/rules", get_rules)
    app.router.add_put("/api/v1/rules", put_rules)
    app.router.add_post("/api/v1/rules/validate", validate_rules)
    app.router.add_post("/api/v1/events/{meter_id}/{issuer_event_id}/devices/{device_id}/opt-out", device_opt_out)
    app.router.add_post("/api/v1/events/{meter_id}/{issuer_event_id}/devices/{device_id}/opt-in", device_opt_in)
    app.router.add_get("/api/v1/events/{meter_id}/{issuer_event_id}/actions", event_actions)
