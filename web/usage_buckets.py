"""The usage chart's buckets that have ended, kept between requests.

A year of 1-minute intervals is 525,600 rows: three to four seconds to read and price, on every
switch to the chart's year. A bucket that has ended changes only when an interval is written into
it or before it (a tier's running sum carries forward within the billing cycle, so an earlier
reading can move a later price, never the other way round). So the answer for a range is its ended
buckets from memory and the bucket under way (the one holding now) priced afresh, and each request
prices only what memory does not hold: after midnight, yesterday; after a late reading, the buckets
from it on.

What is kept follows the store (``Store.watch_intervals``): an interval written (live, late,
imported) drops the kept buckets that end after its start, as does a price the meter publishes for
a moment already past (it may be the one charged); a purge drops everything; each rate plan has its
own. Rows another
process writes (``ems import`` while the appliance runs) are not seen that way, so a range's
buckets older than ``max_age_s`` are priced again in the background while the kept ones answer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ems import billing

if TYPE_CHECKING:
    from ems.hub import Hub

_LOGGER = logging.getLogger(__name__)

MAX_AGE_S = 3600.0
COLUMNS = ("consumed_kwh", "generated_kwh", "price_per_kwh", "coverage", "estimated", "count", "readings")
HIDDEN = ("count", "readings")  # kept per bucket, not answered as columns


@dataclass
class _Ended:
    """Ended buckets of one meter's range: ``starts[i]`` to ``ends[i]`` and their columns."""

    starts: list[int]
    ends: list[int]
    columns: dict[str, list[Any]]
    priced_at: float  # monotonic seconds

    def drop_from(self, index: int) -> None:
        del self.starts[index:], self.ends[index:]
        for values in self.columns.values():
            del values[index:]


def bucket_columns(usage: billing.PricedUsage, edges: list[int]) -> dict[str, list[Any]]:
    """Sum what was read per bucket (numpy; run in an executor): the per-bucket columns, with
    ``count`` (rows in each) and ``readings`` (readings as read that start in each); a bucket nothing
    was read in is ``None`` but in ``coverage``, ``estimated``, ``count`` and ``readings``.

    A daily or monthly reading comes as flat shares over its span (``ems.costs.spread_coarse``): it
    fills every bucket it covers, each marked ``estimated``, and counts once, where it starts."""
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
    whole_start = arrays.wholes()[0][inside]
    readings = np.bincount(index, weights=(whole_start == arrays.start_s[inside]).astype(np.float64), minlength=n)
    shares = arrays.estimated
    estimated = (np.bincount(index, weights=shares[inside].astype(np.float64), minlength=n)
                 if shares is not None else np.zeros(n))
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
        "consumed_kwh": column(consumed_sum, 4),
        "generated_kwh": column(generated_sum, 4),
        "price_per_kwh": column(price_avg, 5) if price_avg is not None else [None] * n,
        "coverage": [round(min(float(r / w), 1.0), 3) for r, w in zip(read_s, width, strict=True)],
        "estimated": [bool(e > 0) for e in estimated],
        "count": [int(c) for c in count],
        "readings": [int(r) for r in readings],
    }


def answer(edges: list[int], columns: dict[str, list[Any]]) -> dict[str, Any]:
    """The API's columns for buckets ``edges`` (``t`` their starts), with the totals."""
    counts = columns["count"]
    return {
        "t": edges[:-1],
        **{name: columns[name] for name in COLUMNS if name not in HIDDEN},
        "intervals_read": sum(columns["readings"]),
        "empty_buckets": sum(1 for c in counts if not c),
    }


class UsageBuckets:
    """Per (meter, range), the ended buckets priced so far; see the module docstring."""

    def __init__(self, max_age_s: float = MAX_AGE_S, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.max_age_s = max_age_s
        self._monotonic = monotonic
        self._ended: dict[tuple[str, str, str | None], _Ended] = {}
        self._refreshing: set[tuple[str, str, str | None]] = set()
        self._generation = 0
        self.priced_buckets = 0  # how many buckets were priced (not taken from memory), for the tests

    def written(self, meter_id: str | None, start: datetime | None) -> None:
        """An interval of ``meter_id`` starting at ``start`` was written (None, None: intervals deleted)."""
        self._generation += 1  # a pricing under way may have missed it: it keeps nothing
        if meter_id is None or start is None:
            self._ended.clear()
            return
        start_s = int(start.timestamp())
        for (meter, _, _), ended in self._ended.items():
            if meter == meter_id:
                first_changed = next((i for i, end in enumerate(ended.ends) if end > start_s), None)
                if first_changed is not None:
                    ended.drop_from(first_changed)

    async def columns(self, hub: Hub, meter_id: str, range_: str, edges: list[int]) -> dict[str, Any]:
        """The chart's columns for ``edges`` (the last bucket holds now)."""
        tariff = hub.config.tariff
        plan = tariff.active_plan if tariff is not None else None
        key = (meter_id, range_, plan.name if plan is not None else None)
        ended = self._ended.get(key)
        now_s = int(hub.clock().timestamp())
        if ended is not None and self._monotonic() - ended.priced_at > self.max_age_s and key not in self._refreshing:
            self._refreshing.add(key)
            hub.create_task(self._refresh(hub, key, edges), f"usage {range_} refresh")
        # The buckets wanted that memory holds, as a run from the first (kept from ``first`` on):
        # any other is priced.
        reuse, first = 0, 0
        if ended is not None and edges[0] in ended.starts:
            first = ended.starts.index(edges[0])
            while (reuse < len(edges) - 1 and first + reuse < len(ended.starts)
                   and ended.starts[first + reuse] == edges[reuse] and ended.ends[first + reuse] == edges[reuse + 1]
                   and edges[reuse + 1] <= now_s):
                reuse += 1
        generation = self._generation
        fresh_edges = edges[reuse:]
        fresh = await self._price(hub, meter_id, fresh_edges)
        self.priced_buckets += len(fresh_edges) - 1
        merged: dict[str, list[Any]] = {}
        for name in COLUMNS:
            kept = ended.columns[name][first:first + reuse] if ended is not None else []
            merged[name] = kept + fresh[name]
        # Keep what has ended (every bucket but one holding now or later).
        done = sum(1 for end in edges[1:] if end <= now_s)
        if done and key not in self._refreshing and generation == self._generation:
            self._ended[key] = _Ended(list(edges[:done]), list(edges[1:done + 1]),
                                      {name: list(merged[name][:done]) for name in COLUMNS},
                                      ended.priced_at if ended is not None and reuse else self._monotonic())
        return answer(edges, merged)

    def holds(self, meter_id: str, range_: str) -> bool:
        """Whether ended buckets of this range are kept (the warm-up has priced it)."""
        return any(m == meter_id and r == range_ and e.starts for (m, r, _), e in self._ended.items())

    async def _refresh(self, hub: Hub, key: tuple[str, str, str | None], edges: list[int]) -> None:
        """Price the range afresh (what is kept is too old to trust) and keep that."""
        meter_id, range_, _ = key
        self._ended.pop(key, None)
        self._refreshing.discard(key)
        await self.columns(hub, meter_id, range_, edges)

    @staticmethod
    async def _price(hub: Hub, meter_id: str, edges: list[int]) -> dict[str, list[Any]]:
        start = datetime.fromtimestamp(edges[0], UTC)
        end = datetime.fromtimestamp(edges[-1], UTC)
        usage = await billing.priced_usage(hub, meter_id, start, end)
        work = functools.partial(bucket_columns, usage, edges)
        return await asyncio.get_running_loop().run_in_executor(None, work)
