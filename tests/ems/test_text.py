"""ems.model.Text: a human text made once, as a msgid and its values; its English follows the
placeholders' kinds (the rules the web applies for a reader's locale), for the log and the store."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from ems.model import Text, english


def test_values_become_machine_strings_in_the_order_given() -> None:
    text = Text.of("{rule} at {end_time}", rule="Tarde", end_time=datetime(2024, 7, 1, 23, 0, tzinfo=UTC),
                   cooling_c=26.0, event_id=7, event_date=date(2024, 7, 1))

    assert text.params == (("rule", "Tarde"), ("end_time", "2024-07-01T23:00:00+00:00"), ("cooling_c", "26.0"),
                           ("event_id", "7"), ("event_date", "2024-07-01"))


def test_english_formats_each_value_by_its_placeholders_kind() -> None:
    text = Text.of("{a_signed_c} {b_c} {c_kw} {d_pct} {e_min} {f_num} {g_time} {h_at} {name}",
                   a_signed_c=3.0, b_c=25.55, c_kw=8.6666, d_pct=50.0, e_min=120, f_num=1.5,
                   g_time=datetime(2024, 7, 1, 23, 20, tzinfo=UTC).astimezone(ZoneInfo("America/Los_Angeles")),
                   h_at="2024-07-01T23:00:00+00:00", name="Pool pump")

    assert text.english() == str(text) == "+3.0 25.6 8.7 50 120 1.5 16:20 2024-07-01T23:00:00+00:00 Pool pump"


def test_a_phrase_is_a_msgid_filled_from_the_same_values() -> None:
    text = Text.of("Rule '{rule}': {what_phrase} {until_phrase}", rule="R", what_phrase="cooling {cooling_c} °C",
                   cooling_c=26.0, until_phrase="until {until_clock}", until_clock="21:00")

    assert str(text) == "Rule 'R': cooling 26.0 °C until 21:00"


def test_a_missing_value_or_a_value_not_of_its_kind_shows_as_it_is() -> None:
    assert str(Text.of("{event_id} from {start_time} for {shed_kw} kW", shed_kw="a lot")) == (
        "{event_id} from {start_time} for a lot kW")
    assert str(Text("no {placeholders")) == "no {placeholders"  # not a template: the msgid as it is


def test_notes_in_parts_are_joined_in_english() -> None:
    parts = (Text.of("cooling held to {cooling_c} °C (comfort limit)", cooling_c=28.0),
             Text("1 interval not read (left out of the totals)"))

    assert english(parts) == "cooling held to 28.0 °C (comfort limit); 1 interval not read (left out of the totals)"
    assert english(()) == ""
