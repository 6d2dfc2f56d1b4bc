"""The Commissioning page (/commissioning, owner and installer) and its API.

It shows the appliance's identity as the customer gives it to the utility (C6 3.1 steps 1-3: device
type, device ID, install code with its CRC, the meter's number) as text, as a QR code and as a
printable label, says where to register (``commissioning.utility_contact`` in ems.yaml), follows
each meter's commissioning stages as the meter link publishes them, and shows the self-test.

The link key derived from the install code is never computed here: the page, the API and the
log carry the install code only (tests grep all three for the key).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ems.hub import Hub
from ems.identity import ApplianceIdentity
from ems.model import CheckOutcome, CommissioningStage, CommissioningStep, SelfTestReport
from ems.selftest import SelfTest, configured_meter_ids
from web.control_api import dr_text
from web.guard import csrf_given, forbidden, same_token
from web.i18n import N_, _, current
from web.ihd import qr_svg
from web.keys import ACCESS, HUB
from web.pages import local, render

SELFTEST_METER_WAIT_S = 5.0  # the button's run: the link is up already, or the start's run says why

STEP_WORDS = {
    CommissioningStep.WAITING: N_("Waiting for the utility to register this appliance"),
    CommissioningStep.JOINING: N_("Joining the meter's network"),
    CommissioningStep.JOINED: N_("Joined the meter's network"),
    CommissioningStep.AUTHENTICATED: N_("Authenticated by the meter"),
    CommissioningStep.KEYS_ESTABLISHED: N_("Security keys established"),
    CommissioningStep.CONFIGURED: N_("Configured by the utility"),
    CommissioningStep.REFUSED: N_("The meter refused this appliance"),
    CommissioningStep.METER_CHECKED: N_("Meter number checked"),
    CommissioningStep.WRONG_METER: N_("Not your meter: no data taken from it"),
}
OUTCOME_WORDS = {CheckOutcome.PASSED: N_("OK"), CheckOutcome.WARNING: N_("Look at this"),
                 CheckOutcome.FAILED: N_("Failed")}
CHECK_WORDS = {"store": N_("Database"), "radio": N_("Radio"), "meter_link": N_("Meter link"),
               "clock": N_("Clock"), "disk": N_("Disk")}


def _meter_ids(hub: Hub) -> list[str]:
    """Every meter configured (several for a commercial account, C6 4.1) or heard of: each its own state."""
    return sorted(set(hub.state.meters) | set(hub.state.commissioning) | set(configured_meter_ids(hub.config.sections)))


def _stage(stage: CommissioningStage, hub: Hub) -> dict[str, Any]:
    return {"meter_id": stage.meter_id, "stage": stage.stage.value, "at": stage.at.isoformat(),
            "words": _(STEP_WORDS[stage.stage]), "detail": stage.detail,
            "local_at": local(hub.config.site, stage.at)}


def _stages(hub: Hub) -> list[dict[str, Any]]:
    """Per meter: the latest stage (None: nothing heard yet) and the ones before, newest first."""
    meters = []
    for meter_id in _meter_ids(hub):
        history = [_stage(s, hub) for s in reversed(hub.state.commissioning.get(meter_id, []))]
        meters.append({"meter_id": meter_id, "latest": history[0] if history else None,
                       "earlier": history[1:]})
    return meters or [{"meter_id": None, "latest": None, "earlier": []}]  # no meter configured yet


def selftest_json(report: SelfTestReport | None, hub: Hub) -> dict[str, Any]:
    """The latest self-test in the reader's language (``at`` None: none has run yet)."""
    if report is None:
        return {"at": None, "passed": None, "checks": []}
    language, timezone = current(), hub.config.site.timezone
    return {
        "at": report.at.isoformat(),
        "passed": not report.failed_critically,
        "checks": [{"name": c.name, "label": _(CHECK_WORDS.get(c.name, c.name)), "outcome": c.outcome.value,
                    "outcome_words": _(OUTCOME_WORDS[c.outcome]), "critical": c.critical,
                    "summary": dr_text(c.summary, language, timezone)} for c in report.checks],
    }


def identity_json(identity: ApplianceIdentity | None) -> dict[str, Any] | None:
    """What the utility registers; the install code is given, its link key never."""
    if identity is None:
        return None
    return {"device_type": identity.device_type, "device_id": identity.device_id_printed,
            "ieee": identity.ieee_printed, "install_code": identity.install_code_printed}


async def commissioning_page(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    identity = hub.identity
    config = hub.config.commissioning
    context: dict[str, Any] = {
        "title": _("Commissioning"),
        "identity": identity_json(identity),
        "qr": qr_svg(identity.qr_text, _("QR code of the device ID and install code")) if identity else None,
        "contact": config.utility_contact,
        "meter_number": config.meter_number,
        "meters": _stages(hub),
        "selftest": selftest_json(hub.state.selftest, hub),
        "selftest_local_at": local(hub.config.site, hub.state.selftest.at) if hub.state.selftest else None,
        "notice": {"selftest": _("The self-test ran again; its results are below.")}.get(request.query.get("done", "")),
    }
    return render(request, "commissioning.html", **context)


async def run_selftest(request: web.Request) -> web.StreamResponse:
    """The page's "Run the self-test" button (a form: its CSRF token checked)."""
    access = request.get(ACCESS)
    if access is None or access.session is None or not same_token(access.session.csrf_token,
                                                                  await csrf_given(request)):
        return forbidden(request, _("the form is missing its CSRF token; reload the page"))
    hub = request.app[HUB]
    wait_s = min(SELFTEST_METER_WAIT_S, hub.config.commissioning.selftest_meter_timeout_s)
    await SelfTest(hub).run(meter_timeout_s=wait_s)
    raise web.HTTPSeeOther("/commissioning?done=selftest")


async def selftest_api(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    return web.json_response(selftest_json(hub.state.selftest, hub), headers={"Cache-Control": "no-store"})


async def commissioning_api(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    stages = [{"meter_id": m["meter_id"], "latest": m["latest"] and {k: m["latest"][k] for k in (
        "meter_id", "stage", "at", "words", "detail")}} for m in _stages(hub) if m["meter_id"] is not None]
    return web.json_response({"identity": identity_json(hub.identity), "meters": stages},
                             headers={"Cache-Control": "no-store"})


def add_commissioning_routes(app: web.Application) -> None:
    app.router.add_get("/commissioning", commissioning_page)
    app.router.add_post("/commissioning/selftest", run_selftest)
    app.router.add_get("/api/v1/commissioning", commissioning_api)
    app.router.add_get("/api/v1/selftest", selftest_api)
