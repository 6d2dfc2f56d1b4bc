"""The one place that turns the appliance's errors into HTTP statuses.

Handlers raise what the core raises (``ems.errors``) and let it through; ``error_middleware``
answers with the status below and, under /api/, a JSON body ``{"error": ..., "status": ...}``
(an aiohttp ``HTTPException`` there becomes the same JSON, keeping its headers).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ems.errors import (
    ConfigError,
    Conflict,
    DeviceError,
    EmsError,
    NotFound,
    NotReady,
    RejectedCommand,
    StoreError,
    StoreUnavailable,
)

# The first class the error is an instance of decides (subclasses before their base).
STATUS_FOR_ERROR: tuple[tuple[type[EmsError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (RejectedCommand, 400),
    (ConfigError, 400),
    (NotReady, 503),
    (StoreError, 503),
    (DeviceError, 502),
)

def status_for(error: EmsError) -> int:
    """The HTTP status that says what the caller must do about ``error`` (500 if unforeseen)."""
    return next((code for cls, code in STATUS_FOR_ERROR if isinstance(error, cls)), 500)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Map the appliance's errors to HTTP statuses; API errors are JSON."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if request.path.startswith("/api/") and exc.status >= 400:
            # Keep the exception's headers: a 405 must say which methods are Allowed (RFC 9110).
            headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
            return web.json_response({"error": exc.reason, "status": exc.status}, status=exc.status,
                                     headers=headers)
        raise
    except EmsError as exc:
        status = status_for(exc)
        return web.json_response({"error": public_text(exc), "status": status}, status=status)


STORE_TROUBLE = "the appliance cannot read or save its data now; try again later"


def public_text(error: EmsError) -> str:
    """What a caller is told: a store error's own text names the database file and its SQL, so it is
    replaced by what the caller must know (an outage's message is written for a person already)."""
    if isinstance(error, StoreUnavailable):
        return str(error)
    if isinstance(error, StoreError):
        return STORE_TROUBLE
    return str(error)
