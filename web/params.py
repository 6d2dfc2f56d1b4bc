"""Parameters shared by the API's handlers: a protocol id in a path is a whole number that fits
32 bits; a meter is one the appliance knows."""

from __future__ import annotations

from aiohttp import web

from ems import billing
from ems.hub import Hub


def path_uint32(request: web.Request, name: str) -> int:
    """The path parameter ``name`` as a uint32 (message and event ids); 404 when it cannot be one."""
    text = request.match_info[name]
    try:
        value = int(text)
    except ValueError:
        raise web.HTTPNotFound(reason=f"{name} must be a whole number, not {text!r}") from None
    if not 0 <= value <= 0xFFFFFFFF:
        raise web.HTTPNotFound(reason=f"no {name} {value}")
    return value


def event_key(request: web.Request) -> tuple[str, int]:
    """``(meter_id, issuer_event_id)`` of an /api/v1/events/{meter_id}/{issuer_event_id}/... path."""
    return request.match_info["meter_id"], path_uint32(request, "issuer_event_id")


async def meter_id(hub: Hub, request: web.Request) -> str:
    """The meter a request asks about (``?meter=``), else the first one known; NotFound (404) when
    there is none such."""
    return await billing.choose_meter(hub, request.query.get("meter"))
