"""Adding the home's devices (UC134): the Add devices page, its API and its live log.

``/devices/add`` (owner and installer, scope ``commission``) opens joining with a countdown (and
install codes), lists each device as it announces with what it can do, lets the customer name it,
say where it is and which programs it takes part in, sends it its program parameters and shows
its acknowledgement; the test tool (link quality, round trip, packet counters, a scan) and the
provisioning log (filterable, CSV and JSON) are on the same page. The page's forms are plain
CSRF-checked forms that work without a script; its script only counts the countdown down and,
on each push of ``/api/v1/provision/ws``, fetches the page's parts again (rendered here in the
reader's language, so no string lives in JavaScript).

The API under ``/api/v1/provision`` is what ``ems han`` uses with a token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from datetime import datetime
from typing import Any

import aiohttp_jinja2
from aiohttp import WSCloseCode, web

from ems.errors import NotReady, RejectedCommand
from ems.local_text import N_
from ems.provisioning import (
    GUIDANCE,
    PROGRAMS,
    RESULTS,
    STAGES,
    LinkTest,
    NetworkScan,
    Provisioning,
    ProvisioningChanged,
    ProvisioningEntry,
    to_csv,
    to_json,
)
from web.guard import csrf_given, forbidden, same_token
from web.i18n import _
from web.keys import ACCESS, HUB, SITE
from web.pages import local, page, render

_LOGGER = logging.getLogger(__name__)

# The words the page uses for the fixed names of ems.provisioning (translated there).
STAGE_NAMES = {"joining": N_("joining"), "joined": N_("joined"), "discovered": N_("discovered"),
               "chosen": N_("chosen"), "provisioning": N_("settings sent"), "acknowledged": N_("acknowledged"),
               "test": N_("test"), "scan": N_("scan"), "clock": N_("clock set")}
RESULT_NAMES = {"ok": N_("done"), "failed": N_("failed"), "waiting": N_("waiting"), "info": N_("note")}
PROGRAM_NAMES = {"load_control": N_("Load control (demand response)"), "pricing": N_("Prices")}
CAPABILITY_NAMES = {"load_control": N_("load control"), "price_aware": N_("price aware"),
                    "thermostat": N_("thermostat"), "metering": N_("metering"), "battery": N_("battery"),
                    "switch": N_("switch"), "time": N_("keeps time"), "sensor": N_("sensor")}
CREDENTIAL_NAMES = {"install_code": N_("install code"), "network_key": N_("network key only")}
READINESS_NAMES = {"not_provisioned": N_("not set up yet"), "waiting": N_("waiting for the device"),
                   "ready": N_("ready"), "refused": N_("refused"), "not_answering": N_("not answering")}
GUIDANCE_TEXT = {
    "out_of_range": N_("The device does not answer. Move it closer to the appliance (or add a plug-in device "
                       "between them as a repeater), check it has power, then run the test again."),
    "not_joining": N_("The device has not joined. Open joining here first, then put the device in joining mode "
                      "(see its manual: usually hold its button until its light blinks) within the countdown."),
    "wrong_install_code": N_("The install code is not valid. Type it again exactly as printed on the device's "
                             "label (12, 16, 24 or 32 digits and letters A-F, then its 4-character check value)."),
    "not_compatible": N_("The device joined but cannot take part in this program. Leave it out of the program, "
                         "or check with its maker that it supports Smart Energy load control or pricing."),
    "refused": N_("The device refused the program settings. Reset it to factory settings, let it join again, "
                  "then send the settings again."),
}
assert set(GUIDANCE_TEXT) == set(GUIDANCE)  # noqa: S101 - the core's guidance and the page's words agree
DEFAULT_PERMIT_S = 120
LOG_ON_PAGE = 100
MAX_BODY = 64 * 1024


def _provisioning(request: web.Request) -> Provisioning:
    provisioning = request.app[HUB].provisioning
    if provisioning is None:
        raise NotReady("provisioning is not running")
    return provisioning


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store"})


def _window(provisioning: Provisioning, now: Any) -> dict[str, Any]:
    window = provisioning.join_window()
    left = max(0, int((window.until - now).total_seconds())) if window.until else 0
    return {"open": window.until is not None, "until": window.until.isoformat() if window.until else None,
            "seconds_left": left}


def _test_dict(result: LinkTest) -> dict[str, Any]:
    return {"device_id": result.device_id, "ok": result.ok, "lqi": result.lqi, "rssi_dbm": result.rssi_dbm,
            "round_trip_ms": result.round_trip_ms, "sent": result.sent, "received": result.received,
            "retries": result.retries, "failures": result.failures, "problem": result.problem,
            "guidance": GUIDANCE.get(result.problem or "", "")}


def _scan_dict(scan: NetworkScan) -> dict[str, Any]:
    return {"channel": scan.channel, "pan_id": scan.pan_id, "extended_pan_id": scan.extended_pan_id,
            "permit_joining": scan.permit_joining, "devices": scan.devices,
            "energy_by_channel": {str(k): v for k, v in scan.energy_by_channel.items()}, "note": scan.note}


def _codes(value: Any) -> dict[str, str]:
    """Install codes as a mapping, or as "IEEE=CODE" lines (the page's text box)."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str):
        codes = {}
        for line in value.replace(",", "\n").splitlines():
            if not line.strip():
                continue
            ieee, sep, code = line.partition("=")
            if not sep or not ieee.strip() or not code.strip():
                raise RejectedCommand("write each install code as DEVICE-ID=CODE, one a line")
            codes[ieee.strip()] = code.strip()
        return codes
    raise RejectedCommand("install_codes must map device IDs to install codes")


def _seconds(value: Any) -> int:
    try:
        seconds = int(str(value if value is not None else DEFAULT_PERMIT_S).strip())
    except ValueError as err:
        raise RejectedCommand("seconds must be a whole number from 0 to 254") from err
    return seconds


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length and request.content_length > MAX_BODY:
        raise RejectedCommand("the request is too large")
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as err:
        raise RejectedCommand("the body must be JSON") from err
    if not isinstance(data, dict):
        raise RejectedCommand("the body must be a JSON object")
    return data


def _filters(request: web.Request, lenient: bool = False) -> tuple[str | None, str | None, str | None]:
    """The log's filters; the page's form sends "" for "all" (``lenient``), the API leaves a filter out."""
    query = request.query
    values = [query.get(name) for name in ("device", "stage", "result")]
    if lenient:
        values = [v or None for v in values]
    device, stage, result = values
    if stage is not None and stage not in STAGES:
        raise RejectedCommand(f"stage must be one of {', '.join(STAGES)}")
    if result is not None and result not in RESULTS:
        raise RejectedCommand(f"result must be one of {', '.join(RESULTS)}")
    if query.get("format") not in (None, "csv", "json"):
        raise RejectedCommand("format must be csv or json")
    return device, stage, result


def _typed(body: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    """``body[key]`` if it is there and of ``kind`` (None if absent); RejectedCommand if it is something else."""
    if key not in body:
        return None
    value = body[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise RejectedCommand(f"{key} must be {what}")
    return value


# -- the API -----------------------------------------------------------------------------------


async def api_devices(request: web.Request) -> web.Response:
    provisioning = _provisioning(request)
    return _json({"join": _window(provisioning, request.app[HUB].clock()), "devices": provisioning.devices(),
                  "network": provisioning.totals()})


async def api_permit(request: web.Request) -> web.Response:
    provisioning = _provisioning(request)
    body = await _body(request)
    seconds = _typed(body, "seconds", int, "a whole number from 0 to 254")
    codes = _typed(body, "install_codes", dict, "a mapping of device IDs to install codes")
    if codes is not None and not all(isinstance(v, str) for v in codes.values()):
        raise RejectedCommand("each install code must be text")
    await provisioning.permit(DEFAULT_PERMIT_S if seconds is None else seconds, _codes(codes))
    return _json({"join": _window(provisioning, request.app[HUB].clock())})


async def api_device(request: web.Request) -> web.Response:
    provisioning = _provisioning(request)
    device_id = request.match_info["device_id"]
    body = await _body(request)
    programs = _typed(body, "programs", list, f"a list of {', '.join(PROGRAMS)}")
    if programs is not None and not all(isinstance(p, str) for p in programs):
        raise RejectedCommand(f"programs must be a list of {', '.join(PROGRAMS)}")
    name = _typed(body, "name", str, "text")
    location = _typed(body, "location", str, "text")
    send = _typed(body, "send", bool, "true or false")
    await provisioning.choose(device_id, name=name, location=location, programs=programs)
    if send:
        await provisioning.provision(device_id)
    device = next(d for d in provisioning.devices() if d["device_id"] == device_id)
    return _json(device)


async def api_test(request: web.Request) -> web.Response:
    provisioning = _provisioning(request)
    body = await _body(request)
    device_id = _typed(body, "device_id", str, "text")
    results = await provisioning.test([device_id] if device_id else None)
    return _json({"results": [_test_dict(r) for r in results], "network": provisioning.totals()})


async def api_scan(request: web.Request) -> web.Response:
    return _json(_scan_dict(await _provisioning(request).scan()))


async def api_log(request: web.Request) -> web.StreamResponse:
    provisioning = _provisioning(request)
    entries = await provisioning.entries(*_filters(request))
    if request.query.get("format") == "csv":
        return web.Response(text=to_csv(entries), content_type="text/csv", charset="utf-8", headers={
            "Content-Disposition": 'attachment; filename="provisioning-log.csv"', "Cache-Control": "no-store"})
    response = web.Response(text=to_json(entries), content_type="application/json", headers={"Cache-Control": "no-store"})
    if request.query.get("format") == "json":
        response.headers["Content-Disposition"] = 'attachment; filename="provisioning-log.json"'
    return response


# -- live push -----------------------------------------------------------------------------------


class ProvisioningPush:
    """The provisioning log and the devices' changes, pushed to each open Add devices page."""

    def __init__(self, hub: Any) -> None:
        self._hub = hub
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._unsubscribe: list[Any] = []

    def start(self) -> None:
        self._unsubscribe = [self._hub.bus.listen(ProvisioningEntry, self._on_entry),
                             self._hub.bus.listen(ProvisioningChanged, self._on_changed)]

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        await asyncio.gather(*(ws.close(code=WSCloseCode.GOING_AWAY) for ws in list(self._sockets)),
                             return_exceptions=True)

    def _send(self, message: dict[str, Any]) -> None:
        text = json.dumps(message)
        for ws in list(self._sockets):
            if not ws.closed:
                self._hub.create_task(self._send_one(ws, text), "provisioning-push")

    @staticmethod
    async def _send_one(ws: web.WebSocketResponse, text: str) -> None:
        try:
            async with asyncio.timeout(5):
                await ws.send_str(text)
        except (ConnectionError, TimeoutError, RuntimeError):
            await ws.close()

    def _on_entry(self, entry: ProvisioningEntry) -> None:
        if self._sockets:
            self._send({"topic": "log", "data": entry.as_dict()})

    def _on_changed(self, event: ProvisioningChanged) -> None:
        if self._sockets:
            self._send({"topic": "device", "data": {"device_id": event.device_id}})

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            async for _msg in ws:
                pass
        finally:
            self._sockets.discard(ws)
        return ws


PUSH: web.AppKey[ProvisioningPush] = web.AppKey("provisioning_push", ProvisioningPush)


async def api_ws(request: web.Request) -> web.StreamResponse:
    return await request.app[PUSH].handle(request)


# -- the page ------------------------------------------------------------------------------------


def _context(request: web.Request, **extra: Any) -> dict[str, Any]:
    hub = request.app[HUB]
    provisioning = hub.provisioning
    now = hub.clock()
    running = provisioning is not None and provisioning.port is not None
    devices = provisioning.devices() if running and provisioning is not None else []
    return {
        "title": N_("Add devices"),
        "running": running,
        "join": _window(provisioning, now) if provisioning is not None else {"open": False, "seconds_left": 0},
        "devices": devices,
        "totals": provisioning.totals() if provisioning is not None else {},
        "programs": PROGRAMS,
        "program_names": PROGRAM_NAMES,
        "capability_names": CAPABILITY_NAMES,
        "credential_names": CREDENTIAL_NAMES,
        "readiness_names": READINESS_NAMES,
        "stage_names": STAGE_NAMES,
        "result_names": RESULT_NAMES,
        "guidance_text": GUIDANCE_TEXT,
        "stages": STAGES,
        "results": RESULTS,
        "default_seconds": DEFAULT_PERMIT_S,
        "local_text": lambda text: local(request.app[SITE], datetime.fromisoformat(text)) if text else "",
        **extra,
    }


async def _page_log(request: web.Request) -> tuple[list[ProvisioningEntry], tuple[str | None, str | None, str | None]]:
    provisioning = request.app[HUB].provisioning
    try:
        filters = _filters(request, lenient=True)
    except RejectedCommand:
        filters = (None, None, None)
    if provisioning is None:
        return [], filters
    return list(await provisioning.entries(*filters, limit=LOG_ON_PAGE)), filters


async def add_devices_page(request: web.Request, status: int = 200, **extra: Any) -> web.StreamResponse:
    entries, (device, stage, result) = await _page_log(request)
    context = _context(request, log=list(reversed(entries)), filter_device=device or "", filter_stage=stage or "",
                       filter_result=result or "", **extra)
    part = request.query.get("part")
    if part in ("devices", "log"):
        response = aiohttp_jinja2.render_template(f"devices_add_{part}.html", request, page(request, **context))
        response.headers["Cache-Control"] = "no-store"
        return response
    return render(request, "devices_add.html", status, **context)


async def _checked_form(request: web.Request) -> Any:
    access = request.get(ACCESS)
    if access is None or access.session is None:
        return None
    if not same_token(access.session.csrf_token, await csrf_given(request)):
        return None
    return await request.post()


async def _act(request: web.Request, action: Any, done: str) -> web.StreamResponse:
    """Run a form's action; the page again, with what happened or why not."""
    form = await _checked_form(request)
    if form is None:
        return forbidden(request, _("the form is missing its CSRF token; reload the page"))
    try:
        extra = await action(form) or {}
    except (RejectedCommand, NotReady) as err:
        status = 503 if isinstance(err, NotReady) else 400
        return await add_devices_page(request, status, error=_guidance_or(str(err)))
    return await add_devices_page(request, notice=done, **extra)


def _guidance_or(text: str) -> str:
    for key, words in GUIDANCE.items():
        if words in text:
            return GUIDANCE_TEXT[key]
    return text


async def form_permit(request: web.Request) -> web.StreamResponse:
    async def permit(form: Any) -> None:
        await _provisioning(request).permit(_seconds(form.get("seconds")), _codes(str(form.get("install_codes", ""))))

    return await _act(request, permit, N_("Joining is open. Put each device in joining mode now."))


async def form_device(request: web.Request) -> web.StreamResponse:
    device_id = request.match_info["device_id"]

    async def save(form: Any) -> None:
        provisioning = _provisioning(request)
        programs = [p for p in form.getall("program", []) if isinstance(p, str)]
        await provisioning.choose(device_id, name=str(form.get("name", "")), location=str(form.get("location", "")),
                                  programs=programs)
        if form.get("action") == "send" and programs:
            await provisioning.provision(device_id)

    return await _act(request, save, N_("Saved."))


async def form_test(request: web.Request) -> web.StreamResponse:
    async def test(form: Any) -> dict[str, Any]:
        device_id = str(form.get("device_id", "")) or None
        results = await _provisioning(request).test([device_id] if device_id else None)
        return {"tests": [_test_dict(r) for r in results]}

    return await _act(request, test, N_("Test finished."))


async def form_scan(request: web.Request) -> web.StreamResponse:
    async def scan(form: Any) -> dict[str, Any]:
        return {"scan": _scan_dict(await _provisioning(request).scan())}

    return await _act(request, scan, N_("Scan finished."))


def add_provision_routes(app: web.Application) -> None:
    push = app[PUSH] = ProvisioningPush(app[HUB])

    async def push_ctx(app: web.Application) -> Any:
        push.start()
        yield
        await push.close()

    app.cleanup_ctx.append(push_ctx)
    app.router.add_get("/devices/add", add_devices_page)
    app.router.add_post("/devices/add/permit", form_permit)
    app.router.add_post("/devices/add/test", form_test)
    app.router.add_post("/devices/add/scan", form_scan)
    app.router.add_post("/devices/add/device/{device_id}", form_device)
    app.router.add_get("/api/v1/provision/devices", api_devices)
    app.router.add_post("/api/v1/provision/permit", api_permit)
    app.router.add_post("/api/v1/provision/devices/{device_id}", api_device)
    app.router.add_post("/api/v1/provision/test", api_test)
    app.router.add_get("/api/v1/provision/scan", api_scan)
    app.router.add_get("/api/v1/provision/log", api_log)
    app.router.add_get("/api/v1/provision/ws", api_ws)
