"""Path parameters shared by the API's handlers: a protocol id is a whole number that fits 32 bits."""

from __future__ import annotations

from aiohttp import web


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
