"""Messages the EMS makes itself: English text, template and values kept, filled for any locale,
and stored and restored with their template (so a reader's language still applies after a restart)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ems import local_text
from ems.bus import EventBus
from ems.config import StoreConfig
from ems.local_text import local_message, render
from ems.model import MessageImportance, MessageOrigin
from ems.store import Store

NOW = datetime(2024, 7, 1, 20, 0, tzinfo=UTC)
EVENT = {"event_id": "4101", "start": "2024-07-01T23:00:00+00:00", "end": "2024-07-02T02:00:00+00:00"}


def _announced(**kwargs: object) -> object:
    return local_message("m1", 77, local_text.EVENT_ANNOUNCED, EVENT, importance=MessageImportance.HIGH,
                         start=NOW, end=NOW + timedelta(hours=8), received_at=NOW, **kwargs)


def test_a_local_message_reads_in_english_and_keeps_its_template_and_values() -> None:
    message = _announced(timezone="America/Los_Angeles")

    assert message.origin is MessageOrigin.LOCAL
    assert message.text == "Energy event 4101 announced: please use less from Mon, Jul 1, 4:00\u202fPM to Mon, Jul 1, 7:00\u202fPM."
    assert message.template == local_text.EVENT_ANNOUNCED
    assert dict(message.params) == EVENT


def test_without_a_time_zone_the_english_text_is_in_utc() -> None:
    assert "from Mon, Jul 1, 11:00\u202fPM" in _announced().text


def test_a_translation_fills_the_same_values_for_its_locale() -> None:
    spanish = {local_text.TIER_WARNING: "Aviso: tramo {tier} ({used_kwh} kWh desde el {since})."}
    text = render(local_text.TIER_WARNING, {"tier": "2", "used_kwh": "351.25", "since": "2024-06-01", "plan": "X"},
                  locale="es", gettext=lambda msgid: spanish.get(msgid, msgid))

    assert text == "Aviso: tramo 2 (351,2 kWh desde el 1 jun)."


def test_a_placeholder_without_a_value_shows_as_a_gap_not_an_error() -> None:
    assert render(local_text.EVENT_ENDED, {}) == "Energy event {event_id} has ended. Thank you for taking part."


def test_a_broken_translation_falls_back_to_english() -> None:
    text = render(local_text.EVENT_ENDED, {"event_id": "9"}, gettext=lambda msgid: "Evento {event_id!z} roto")

    assert text == "Energy event 9 has ended. Thank you for taking part."


def test_a_value_that_is_not_what_its_name_says_is_shown_as_it_came() -> None:
    assert render("{used_kwh} / {start}", {"used_kwh": "lots", "start": "soon"}) == "lots / soon"


def test_every_template_names_its_values_as_placeholders() -> None:
    for template in local_text.TEMPLATES:
        assert re.findall(r"\{(\w+)\}", template), template


async def test_the_store_keeps_the_template_and_values_across_a_restart(tmp_path: Path) -> None:
    config = StoreConfig(url=None, message_retention_hours=24.0, reading_retention_days=400)
    store = Store(config, tmp_path)
    await store.open()
    bus = EventBus()
    store.attach(bus)
    try:
        bus.publish(_announced())
        [stored] = await store.messages(NOW - timedelta(hours=1))
    finally:
        await store.close()
    reopened = Store(config, tmp_path)
    await reopened.open()
    try:
        [again] = await reopened.messages(NOW - timedelta(hours=1))
    finally:
        await reopened.close()

    assert stored.message.template == again.message.template == local_text.EVENT_ANNOUNCED
    assert dict(again.message.params) == EVENT
    assert again.message == _announced()


def test_an_event_the_home_sat_out_ends_without_thanks() -> None:
    text = render(local_text.EVENT_ENDED_WITHOUT_YOU, {"event_id": "9"})

    assert text == "Energy event 9 has ended. Your home did not take part."
    assert "Thank" not in text
