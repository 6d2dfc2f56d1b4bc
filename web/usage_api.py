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
of each bucket was read. A daily or monthly reading is shown as a flat share over every bucket it
spans, and those buckets are ``estimated`` (``ems.costs.spread_coarse``). ``price_per_kwh`` is the
time-weighted energy price of the active rate plan over what was read (``ems.billing.priced_usage``,
the meter's own prices included when they are in use), or ``null`` everywhere without a plan.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from ems import billing
from ems.hub import Hub
from ems.model import PriceSignal
from web import params
from web.keys import HUB
from web.usage_buckets import UsageBuckets

_LOGGER = logging.getLogger(__name__)

RANGES = ("day", "week", "cycle", "year")
DAY_BUCKET_S = 900
USAGE_BUCKETS = web.AppKey("usage buckets", UsageBuckets)
WARM_AFTER_S = 5.0  # after start: the link and the first reads first


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


def add_usage_routes(app: web.Application, hub_key: Any = None) -> None:
    """Register GET /api/v1/usage on the app."""
    key = hub_key or HUB

    app[USAGE_BUCKETS] = UsageBuckets()

    def edges_of(hub: Hub, range_: str, interval_s: int) -> list[int]:
        tariff = hub.config.tariff
        plan = tariff.active_plan if tariff is not None else None
        return window(range_, hub.clock(), ZoneInfo(hub.config.site.timezone), plan, interval_s)

    async def warm(hub: Hub, buckets: UsageBuckets) -> None:
        # The long ranges priced once in the background, so the first switch to them is quick.
        await asyncio.sleep(WARM_AFTER_S)
        try:
            meter_id = await billing.choose_meter(hub, None)
            for range_ in ("year", "cycle"):
                await buckets.columns(hub, meter_id, range_, edges_of(hub, range_, 60))
        except web.HTTPException:
            return  # no meter known yet: the first request prices it
        except Exception:  # noqa: BLE001 - a warm-up is an optimisation: its failure only costs time
            _LOGGER.warning("Could not price the usage chart's ranges ahead", exc_info=True)

    async def watching(app: web.Application) -> Any:
        hub: Hub = app[key]
        buckets = app[USAGE_BUCKETS]
        undo = hub.store.watch_intervals(buckets.written)
        # A meter's price from a moment already charged reprices from there, when the meter's prices
        # are the ones charged (tariff.use_meter_prices); otherwise they price nothing here.
        tariff = hub.config.tariff
        unlisten = hub.bus.listen(PriceSignal, lambda p: buckets.written(p.meter_id, p.start)) \
            if tariff is not None and tariff.use_meter_prices else (lambda: None)
        warming = hub.create_task(warm(hub, buckets), "usage chart warm-up")
        yield
        undo()
        unlisten()
        warming.cancel()  # the app stops before the hub (or without one started, in tests)
        await asyncio.gather(warming, return_exceptions=True)

    app.cleanup_ctx.append(watching)

    async def usage(request: web.Request) -> web.Response:
        range_ = request.query.get("range", "day")
        if range_ not in RANGES:
            raise web.HTTPBadRequest(reason=f"range must be one of {', '.join(RANGES)}, not {range_!r}")
        hub: Hub = request.app[key]
        meter_id = await params.meter_id(hub, request)
        tariff = hub.config.tariff
        plan = tariff.active_plan if tariff is not None else None
        timezone = hub.config.site.timezone
        # Only the day's buckets follow the meter's interval (no live meter: the latest stored).
        last = await billing.latest_interval(hub, meter_id, hub.clock()) if range_ == "day" else None
        # A daily or monthly reading is shown over its span: the buckets stay no longer than an hour.
        edges = edges_of(hub, range_, min(last.duration_s, 3600) if last is not None else 60)
        start = datetime.fromtimestamp(edges[0], UTC)
        end = datetime.fromtimestamp(edges[-1], UTC)
        columns = await request.app[USAGE_BUCKETS].columns(hub, meter_id, range_, edges)
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
