"""GET /api/v1/usage: interval energy as read, per bucket, with the price behind it.

``range`` picks the window and the bucket (local time of the site):

- ``day``: the last 24 hours in 15-minute buckets (or the meter's own interval when longer);
- ``week``: the last 7 days, hourly;
- ``cycle``: the billing cycle so far (the calendar month without a rate plan), daily;
- ``year``: the last 365 days, daily.

The answer is columnar (one list per quantity, index i = bucket i), ready for a chart.
Convention: ``consumed_kwh`` and ``generated_kwh`` are both positive, as the meter reads them
(delivered from and received by the grid); a chart draws generation below zero. A bucket no
interval was read in is ``null`` in every column, never estimated; ``coverage`` says which share
of each bucket was read. ``price_per_kwh`` is the time-weighted energy price of the active rate
plan over what was read (``ems.billing.priced_usage``, the meter's own prices included when they
are in use), or ``null`` everywhere without a plan.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ems import billing
from ems.hub import Hub
from web import params
from web.keys import HUB

RANGES = ("day", "week", "cycle", "year")
DAY_BUCKET_S = 900


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), tz).astimezone(UTC)


def _fixed_edges(end: datetime, step_s: int, count: int, tz: ZoneInfo) -> list[int]:
    """``count`` buckets of ``step_s`` ending at the local boundary at or after ``end``."""
    local = end.astimezone(tz)
    midnight = datetime.combine(local.date(), datetime.min.time(), tz)
    offset = (local - midnight).total_seconds()
    last = int(midnight.timestamp()) + -(-int(offset) // step_s) * step_s
    if last < end.timestamp():
        last += step_s
    return [last - (count - k) * step_s for k in range(count + 1)]


def _day_edges(first: date, last: date, tz: ZoneInfo) -> list[int]:
    """Local-day boundaries from ``first`` to the end of ``last`` (23- and 25-hour days too)."""
    days = (last - first).days + 1
    return [int(_local_midnight(first + timedelta(days=k), tz).timestamp()) for k in range(days + 1)]


def window(range_: str, now: datetime, tz: ZoneInfo, plan: Any, interval_s: int) -> list[int]:
    """Bucket edges (epoch seconds, UTC) for a range."""
    today = now.astimezone(tz).date()
    if range_ == "day":
        step = max(DAY_BUCKET_S, interval_s)
        return _fixed_edges(now, step, -(-86400 // step), tz)
    if range_ == "week":
        return _fixed_edges(now, 3600, 7 * 24, tz)
    if range_ == "cycle":
        if plan is not None:
            start, _ = plan.billing_cycle.cycle_of(today)
        else:
            start = today.replace(day=1)
        return _day_edges(start, today, tz)
    return _day_edges(today - timedelta(days=364), today, tz)


def bucket(usage: billing.PricedUsage, edges: list[int]) -> dict[str, Any]:
    """Sum what was read per bucket (numpy; run in an executor). Empty buckets are None."""
    import numpy as np

    arrays = usage.readings
    price = usage.price_per_kwh
    bounds = np.asarray(edges, dtype=np.int64)
    n = len(bounds) - 1
    index = np.searchsorted(bounds, arrays.start_s, side="right") - 1
    inside = (index >= 0) & (index < n)
    index = index[inside]
    duration = arrays.duration_s[inside].astype(np.float64)
    read_s = np.bincount(index, weights=duration, minlength=n)
    count = np.bincount(index, minlength=n)
    consumed_sum = np.bincount(index, weights=arrays.consumed_kwh[inside], minlength=n)
    generated_sum = np.bincount(index, weights=arrays.generated_kwh[inside], minlength=n)
    price_avg = None
    if price is not None:
        weighted = np.bincount(index, weights=price[inside] * duration, minlength=n)
        with np.errstate(divide="ignore", invalid="ignore"):
            price_avg = weighted / read_s
    width = np.diff(bounds).astype(np.float64)

    def column(values: Any, digits: int) -> list[float | None]:
        return [round(float(v), digits) if c else None for v, c in zip(values, count, strict=True)]

    return {
        "t": [int(t) for t in bounds[:-1]],
        "consumed_kwh": column(consumed_sum, 4),
        "generated_kwh": column(generated_sum, 4),
        "price_per_kwh": column(price_avg, 5) if price_avg is not None else [None] * n,
        "coverage": [round(min(float(r / w), 1.0), 3) for r, w in zip(read_s, width, strict=True)],
        "intervals_read": int(count.sum()),
        "empty_buckets": int((count == 0).sum()),
    }


def add_usage_routes(app: web.Application, hub_key: Any = None) -> None:
    """Register GET /api/v1/usage on the app."""
    key = hub_key or HUB

    async def usage(request: web.Request) -> web.Response:
        range_ = request.query.get("range", "day")
        if range_ not in RANGES:
            raise web.HTTPBadRequest(reason=f"range must be one of {', '.join(RANGES)}, not {range_!r}")
        hub: Hub = request.app[key]
        meter_id = await params.meter_id(hub, request)
        tariff = hub.config.tariff
        plan = tariff.active_plan if tariff is not None else None
        timezone = hub.config.site.timezone
        tz = ZoneInfo(timezone)
        now = hub.clock()
        # Only the day's buckets follow the meter's interval (no live meter: the latest stored).
        last = await billing.latest_interval(hub, meter_id, now) if range_ == "day" else None
        interval_s = last.duration_s if last is not None else 60
        edges = window(range_, now, tz, plan, interval_s)
        start = datetime.fromtimestamp(edges[0], UTC)
        end = datetime.fromtimestamp(edges[-1], UTC)
        usage_read = await billing.priced_usage(hub, meter_id, start, end)
        work = functools.partial(bucket, usage_read, edges)
        columns = await asyncio.get_running_loop().run_in_executor(None, work)
        body = {
            "meter_id": meter_id,
            "range": range_,
            "start": _iso(start),
            "end": _iso(end),
            "bucket_s": edges[1] - edges[0] if range_ in ("day", "week") else 86400,
            "timezone": timezone,
            "plan": plan.name if plan is not None else None,
            "currency": plan.currency if plan is not None else None,
            **columns,
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    app.router.add_get("/api/v1/usage", usage)
