"""REST API for the measured load change of a DR event (C6 3.3 step 6): live during it, final after.

``GET /api/v1/events/{meter_id}/{issuer_event_id}/load-change``: kW and kWh, money in the plan's
currency, times ISO 8601 UTC. 404 for an unknown event; 200 with status "insufficient history" when
there are too few similar days to estimate a baseline (the numbers that need one are null).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ems.hub import Hub
from ems.model import english
from web import i18n
from web.control_api import dr_parts_text
from web.keys import HUB
from web.params import event_key

if TYPE_CHECKING:  # numpy: imported when a load change is first asked for, not at start
    from ems.dr.loadchange import IntervalChange, LoadChange

PATH = "/api/v1/events/{meter_id}/{issuer_event_id}/load-change"


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _interval_json(i: IntervalChange) -> dict[str, Any]:
    return {
        "start": _iso(i.start),
        "end": _iso(i.end),
        "part": i.part,
        "baseline_kwh": _r(i.baseline_kwh, 4),
        "actual_kwh": _r(i.actual_kwh, 4),
        "baseline_kw": _r(i.baseline_kw),
        "actual_kw": _r(i.actual_kw),
        "from_demand": i.from_demand,
    }


def load_change_json(change: LoadChange, language: str | None = None, timezone: str = "UTC") -> dict[str, Any]:
    """The JSON shape of a LoadChange (web/openapi.py describes it as LoadChange); ``note_text`` in
    ``language`` (the request's when not given), its times in ``timezone``."""
    language = language or i18n.current()
    note_text = dr_parts_text(change.note, language, timezone)
    return {
        "meter_id": change.meter_id,
        "issuer_event_id": change.issuer_event_id,
        "status": str(change.status),
        "as_of": _iso(change.as_of),
        "start": _iso(change.start),
        "end": _iso(change.end),
        "rebound_end": _iso(change.rebound_end),
        "currency": change.currency,
        "baseline_kwh": _r(change.baseline_kwh),
        "actual_kwh": _r(change.actual_kwh),
        "reduced_kwh": _r(change.reduced_kwh),
        "kw_reduced": _r(change.kw_reduced),
        "peak_kw_reduced": _r(change.peak_kw_reduced),
        "rebound_kwh": _r(change.rebound_kwh),
        "energy_shifted_kwh": _r(change.energy_shifted_kwh),
        "money_saved": _r(change.money_saved, 2),
        "rebate_earned": _r(change.rebate_earned, 2),
        "rebate_baseline_kwh": _r(change.rebate_baseline_kwh),
        "baseline": {
            "days": [d.isoformat() for d in change.baseline_days],
            "day_kind": change.day_kind,
            "adjustment_factor": _r(change.adjustment_factor, 4),
            "adjustment": change.adjustment,
        },
        "missing_intervals": change.missing_intervals,
        "note": english(change.note),
        "note_text": note_text or "",
        "intervals": [_interval_json(i) for i in change.intervals],
    }


def add_loadchange_routes(app: web.Application) -> None:
    """Register GET /api/v1/events/{meter_id}/{issuer_event_id}/load-change."""

    async def load_change(request: web.Request) -> web.Response:
        from ems.dr.loadchange import UnknownEvent, measure_event

        hub: Hub = request.app[HUB]
        meter_id, event_id = event_key(request)
        try:
            if hub.control is not None:  # over the event's effective span (after start randomisation)
                change = await hub.control.load_change(meter_id, event_id, hub.clock())
            else:
                change = await measure_event(hub, meter_id, event_id, hub.clock())
        except UnknownEvent as err:
            raise web.HTTPNotFound(reason=str(err)) from None
        return web.json_response(load_change_json(change, timezone=hub.config.site.timezone),
                                 headers={"Cache-Control": "no-store"})

    app.router.add_get(PATH, load_change)
