"""The last weeks of each meter's intervals, kept in memory as numpy columns.

The dashboard's cost tiles and usage chart and the bill check all read the billing cycle so far:
a month of 1-minute intervals is some 44,000 rows and 150 ms or more out of SQLite, on every page
load, every range switch and every minute. The store keeps what it has read of the last ``span``
(45 days: a cycle and the month a rebate's baseline looks back over) and asks the database only
for what is newer than what it holds.

What is kept stays true to the database:

- an interval written behind what is kept (a late or backfilled reading, an import) drops what is
  kept from its start on (``written``, called by the store as the reading is queued, before its
  commit: a read after it flushes and reads the rest from the database);
- a purge or a size trim that deleted intervals drops everything (``clear``);
- a read that raced such a write returns what it read but keeps none of it (the generation moved);
- whatever happened, what is kept is read afresh after ``max_age_s``, so rows another process wrote
  (``ems import`` while the appliance runs) show within that time.

About 1.8 MB a meter for 45 days of 1-minute intervals (four 8-byte columns).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ems.costs import ReadingArrays

Fetch = Callable[[datetime, datetime], Awaitable["ReadingArrays"]]

SPAN = timedelta(days=45)
MAX_AGE_S = 3600.0


@dataclass
class _Kept:
    """Every interval of one meter that starts in [start_s, complete_s), as read."""

    start_s: int
    complete_s: int
    columns: ReadingArrays
    read_at: float  # monotonic seconds


def _dt(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


class RecentIntervals:
    """Per meter, the intervals of the last ``span`` read so far; see the module docstring."""

    def __init__(self, span: timedelta = SPAN, max_age_s: float = MAX_AGE_S,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.span_s = int(span.total_seconds())
        self.max_age_s = max_age_s
        self._monotonic = monotonic
        self._kept: dict[str, _Kept] = {}
        self._generation: defaultdict[str, int] = defaultdict(int)
        self._listeners: list[Callable[[str | None, datetime | None], None]] = []
        self.hits = 0  # reads answered (in part) from memory
        self.misses = 0  # reads that (re)built what is kept

    def listen(self, callback: Callable[[str | None, datetime | None], None]) -> Callable[[], None]:
        """Call ``callback(meter_id, start)`` for each interval written, ``(None, None)`` when intervals
        were deleted (what else keeps figures made of them: web.usage_buckets); returns the undo."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def written(self, meter_id: str, start: datetime) -> None:
        """An interval of ``meter_id`` starting at ``start`` is being written."""
        for callback in self._listeners:
            callback(meter_id, start)
        start_s = int(start.timestamp())
        self._generation[meter_id] += 1  # a read under way may have missed it: it keeps nothing
        kept = self._kept.get(meter_id)
        if kept is None or start_s >= kept.complete_s:
            return  # ahead of what is kept: the next read asks the database for it anyway
        if start_s <= kept.start_s:
            del self._kept[meter_id]
            return
        kept.columns = kept.columns.between(kept.start_s, start_s)
        kept.complete_s = start_s

    def clear(self) -> None:
        """Intervals were deleted: keep nothing."""
        for callback in self._listeners:
            callback(None, None)
        for meter_id in self._kept:
            self._generation[meter_id] += 1
        self._kept.clear()

    async def read(self, meter_id: str, start: datetime, end: datetime, now: datetime, fetch: Fetch) -> ReadingArrays:
        """The intervals of ``meter_id`` starting in [start, end), from memory where it holds them
        and from ``fetch`` (the database) for the rest."""
        start_s, end_s, now_s = int(start.timestamp()), int(end.timestamp()), int(now.timestamp())
        horizon_s = now_s - self.span_s
        if end_s <= horizon_s or start_s >= end_s:
            return await fetch(start, end)  # all older than what is kept
        kept = self._kept.get(meter_id)
        if kept is not None and (self._monotonic() - kept.read_at > self.max_age_s or kept.complete_s > now_s):
            del self._kept[meter_id]  # too old to trust (or the clock went back): read afresh
            kept = None
        generation = self._generation[meter_id]
        older = None
        if kept is None:
            self.misses += 1
            # Built over the whole span up to now, whatever part was asked: the next reader asks
            # for another part of it (the cycle's start, the month before it, today).
            begin_s = horizon_s
            fresh = await fetch(_dt(begin_s), _dt(max(end_s, now_s)))
            if start_s < begin_s:
                older = await fetch(start, _dt(begin_s))
            self._keep(meter_id, generation, _Kept(begin_s, now_s, fresh.between(begin_s, now_s), self._monotonic()))
            found = fresh.between(start_s, end_s)
            return found if older is None else older + found
        self.hits += 1
        if start_s < kept.start_s:
            older = await fetch(start, _dt(kept.start_s))
        part = kept.columns.between(max(start_s, kept.start_s), end_s)
        if end_s > kept.complete_s:
            was_s = kept.complete_s
            newer = await fetch(_dt(was_s), end)
            complete_s = min(end_s, now_s)
            if complete_s > was_s and self._generation[meter_id] == generation and \
                    self._kept.get(meter_id) is kept:
                kept.columns = kept.columns + newer.between(was_s, complete_s)
                kept.complete_s = complete_s
                # What has slid out of the span is let go (the span is the memory bound).
                if kept.start_s < horizon_s:
                    kept.columns = kept.columns.between(horizon_s, kept.complete_s)
                    kept.start_s = horizon_s
            part = part + newer.between(start_s, end_s)
        return part if older is None else older + part

    def _keep(self, meter_id: str, generation: int, kept: _Kept) -> None:
        if self._generation[meter_id] == generation:
            self._kept[meter_id] = kept

    @property
    def kept_rows(self) -> int:
        return sum(len(k.columns) for k in self._kept.values())
