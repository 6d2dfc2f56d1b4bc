"""The load change's note is made of parts, each a msgid and values (ems.model.Text), rendered in
English for the API's ``note`` and in each reader's own language (web.control_api renders it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ems.costs import ReadingArrays
from ems.dr.loadchange import LoadChangeStatus, compute_load_change
from ems.model import english
from web.control_api import dr_parts_text

LA = "America/Los_Angeles"
START = datetime(2024, 7, 10, 23, 0, tzinfo=UTC)


def _change(now: datetime, end: datetime = START + timedelta(hours=2)):
    return compute_load_change(meter_id="main", issuer_event_id=7, start=START, end=end, now=now,
                               history=ReadingArrays.from_readings([]), timezone=LA, event_days=())


def test_an_event_not_started_yet_is_noted_in_spanish() -> None:
    change = _change(START - timedelta(minutes=5))

    assert english(change.note) == "the event has not started yet"
    assert dr_parts_text(change.note, "es", LA) == "el evento aún no ha empezado"


def test_too_little_history_says_why_in_spanish_with_the_date_as_the_locale_writes_it() -> None:
    change = _change(START + timedelta(hours=6))

    assert change.status is LoadChangeStatus.INSUFFICIENT
    assert english(change.note).startswith("too little history: no similar weekday days")
    spanish = dr_parts_text(change.note, "es", LA)
    assert spanish is not None
    assert spanish.startswith("historial insuficiente: ningún día laborable similar sin evento")
    assert "días anteriores al 10 jul" in spanish
