"""What the store's queries return beyond the domain events: a domain value plus its marks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ems.model import LoadControlEvent, UtilityMessage


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A message as kept: the message itself and what happened to it since."""

    message: UtilityMessage
    cancelled_at: datetime | None = None
    confirmed_at: datetime | None = None
    confirmation_answer: str | None = None
    read: bool = False


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A DR event as kept, with when it was cancelled (None if it was not)."""

    event: LoadControlEvent
    cancelled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One row of the outbox: a serialised upstream report and its delivery bookkeeping."""

    id: int
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    last_error: str | None = None
    meter_id: str | None = None  # the route's meter; None: the premise-wide route
    wire_id: int | None = None  # what the first attempt went out as (a ZCL TSN); None: not tried yet


@dataclass(frozen=True, slots=True)
class IntervalImport:
    """What writing a file's intervals did, against what the store already held for its meter."""

    new: int = 0
    corrected: int = 0  # same interval as stored, different energy: the stored value was updated
    unchanged: int = 0  # same interval, same energy as stored
    covered: int = 0  # left out: stored readings of another length already cover their time
    replaced: int = 0  # stored coarser readings deleted because the file has finer ones over them


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """How many rows one retention run deleted, per table."""

    messages: int = 0
    demand_samples: int = 0
    interval_readings: int = 0
    register_readings: int = 0
    price_signals: int = 0
    dr_events: int = 0
    event_status_reports: int = 0
    outbox: int = 0

    @property
    def total(self) -> int:
        return (
            self.messages
            + self.demand_samples
            + self.interval_readings
            + self.register_readings
            + self.price_signals
            + self.dr_events
            + self.event_status_reports
            + self.outbox
        )
