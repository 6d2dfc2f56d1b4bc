"""Green Button parsing: ESPI XML and utility CSV to IntervalReadings, and bad files rejected."""

from __future__ import annotations

import gzip
import io
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ems.greenbutton import (
    GreenButtonError,
    LocalTime,
    SeveralUsagePoints,
    UnknownUsagePoint,
    espi_xml,
    parse,
    parse_csv,
    parse_espi,
    read,
)
from ems.model import IntervalReading

DATA = Path(__file__).parent / "data"
LA = "America/Los_Angeles"
JULY_1_0700Z = 1751353200  # 2025-07-01 07:00 UTC (midnight in Los Angeles)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def read_csv(text: str, timezone: str = LA) -> tuple[IntervalReading, ...]:
    return parse_csv(io.BytesIO(textwrap.dedent(text).encode()), "main", timezone).readings


def espi(reading_types: str, blocks: str) -> bytes:
    """A minimal feed: one MeterReading per ReadingType (rt1, rt2, ...), blocks linked by href."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">\n'
        f"{reading_types}\n{blocks}\n</feed>\n"
    ).encode()


def reading_type(
    number: int, *, uom: int = 72, power: int = 0, flow: int = 1, length: int = 900
) -> str:
    return (
        f'<entry><link rel="self" href="/r/UsagePoint/1/MeterReading/{number}"/>'
        f'<link rel="related" href="/r/ReadingType/{number}"/><content><espi:MeterReading/></content></entry>\n'
        f'<entry><link rel="self" href="/r/ReadingType/{number}"/><content><espi:ReadingType>'
        f"<espi:accumulationBehaviour>4</espi:accumulationBehaviour><espi:flowDirection>{flow}</espi:flowDirection>"
        f"<espi:intervalLength>{length}</espi:intervalLength><espi:powerOfTenMultiplier>{power}</espi:powerOfTenMultiplier>"
        f"<espi:uom>{uom}</espi:uom></espi:ReadingType></content></entry>"
    )


def block(number: int, *values: int | str, start: int = JULY_1_0700Z, length: int = 900) -> str:
    readings = "\n".join(
        f"<espi:IntervalReading><espi:timePeriod><espi:duration>{length}</espi:duration>"
        f"<espi:start>{start + i * length}</espi:start></espi:timePeriod>"
        f"<espi:value>{value}</espi:value></espi:IntervalReading>"
        for i, value in enumerate(values)
    )
    return (
        f'<entry><link rel="self" href="/r/UsagePoint/1/MeterReading/{number}/IntervalBlock/1"/>'
        f"<content><espi:IntervalBlock>\n{readings}\n</espi:IntervalBlock></content></entry>"
    )


def read_espi(document: bytes) -> tuple[IntervalReading, ...]:
    return parse_espi(io.BytesIO(document), "main").readings


# --- ESPI XML -----------------------------------------------------------------------------


def test_espi_sample_merges_directions_and_skips_gas() -> None:
    with (DATA / "espi_two_directions.xml").open("rb") as stream:
        data = parse(stream, "main", LA)

    assert data.kind == "ESPI XML"
    # Delivered in Wh (multiplier 0); received in mWh (multiplier -3), times from the block.
    assert [(r.start, r.duration_s, r.consumed_kwh, r.generated_kwh) for r in data.readings] == [
        (utc(2025, 7, 1, 7), 3600, 1.25, 0.0),
        (utc(2025, 7, 1, 8), 3600, 0.8, 0.35),
        (utc(2025, 7, 1, 9), 3600, 0.0, 1.2),
        (utc(2025, 7, 1, 10), 3600, 2.1, 0.0),
    ]
    assert all(r.meter_id == "main" for r in data.readings)
    assert len(data.skipped) == 2 and "uom 169 (therms)" in data.skipped[0]
    assert data.skipped[1] == "1 billing summary (UsageSummary): a bill's totals, not intervals"


@pytest.mark.parametrize(
    ("power", "value", "kwh"),
    [(0, 1250, 1.25), (3, 2, 2.0), (-3, 1_250_000, 1.25), (-1, 12_345, 1.2345), (1, 7, 0.07)],
)
def test_espi_value_scaled_by_power_of_ten_in_wh(power: int, value: int, kwh: float) -> None:
    readings = read_espi(espi(reading_type(1, power=power), block(1, value)))

    assert readings[0].consumed_kwh == kwh


def test_espi_net_flow_splits_by_sign() -> None:
    readings = read_espi(espi(reading_type(1, flow=4), block(1, 500, -300)))

    assert [(r.consumed_kwh, r.generated_kwh) for r in readings] == [(0.5, 0.0), (0.0, 0.3)]


def test_espi_keeps_the_finest_interval_length() -> None:
    """A file with 15-minute and hourly energy for the same meter must not count it twice."""
    document = espi(
        reading_type(1) + reading_type(2, length=3600),
        block(1, 100, 200, 300, 400) + block(2, 1000, length=3600),
    )
    data = parse_espi(io.BytesIO(document), "main")

    assert [r.duration_s for r in data.readings] == [900] * 4
    assert [str(note) for note in data.notes] == [
        "dropped: 1 reading of 1 hour: readings of 15 minutes cover the same time, and counting "
        "both would count that energy twice"
    ]


def test_espi_links_match_across_spellings_of_the_same_resource() -> None:
    """One feed may name a MeterReading under Subscription/N and its blocks under RetailCustomer/N."""
    types = reading_type(1) + reading_type(2, flow=19)
    types = types.replace(
        '"/r/UsagePoint', '"https://u.example/espi/1_1/resource/Subscription/5/UsagePoint'
    )
    blocks = block(1, 100) + block(2, 40)
    blocks = blocks.replace('"/r/UsagePoint', '"/espi/1_1/resource/RetailCustomer/9/UsagePoint')

    readings = read_espi(espi(types, blocks))

    assert [(r.consumed_kwh, r.generated_kwh) for r in readings] == [(0.1, 0.04)]


def test_espi_repeated_block_is_kept_once_with_a_note() -> None:
    document = espi(reading_type(1), block(1, 100, 200) + block(1, 100, 200))
    data = parse_espi(io.BytesIO(document), "main")

    assert [r.consumed_kwh for r in data.readings] == [0.1, 0.2]
    assert [str(note) for note in data.notes] == [
        "dropped: 2 readings repeated exactly (same time, same energy): counted once"
    ]


def test_espi_only_non_energy_readings_is_rejected() -> None:
    with pytest.raises(GreenButtonError, match=r"no electricity energy readings.*uom 38 \(W"):
        read_espi(espi(reading_type(1, uom=38), block(1, 5)))


def test_espi_bad_value_names_line_and_element() -> None:
    document = espi(reading_type(1), block(1, 100, "12x"))
    line = next(n for n, text in enumerate(document.decode().splitlines(), 1) if "12x" in text)

    with pytest.raises(GreenButtonError) as caught:
        read_espi(document)

    assert caught.value.where == f"line {line} (IntervalReading #2 in IntervalBlock #1)"
    assert "<value> is '12x', expected a whole number" in str(caught.value)


def test_espi_truncated_file_is_rejected_with_its_line() -> None:
    document = (DATA / "espi_two_directions.xml").read_bytes()
    cut = document[: len(document) * 2 // 3]

    with pytest.raises(
        GreenButtonError, match=r"^line \d+, column \d+: the XML is malformed or ends early"
    ):
        read_espi(cut)


def test_espi_daylight_saving_duplicate_keeps_the_first() -> None:
    """Two readings starting at the same time with other energy: the first one in the file wins."""
    document = espi(reading_type(1), block(1, 100) + block(1, 999))
    data = parse_espi(io.BytesIO(document), "main", timezone=LA)

    assert [r.consumed_kwh for r in data.readings] == [0.1]
    line = document.decode().splitlines().index(
        next(t for t in document.decode().splitlines() if "999" in t)) + 1
    assert [str(note) for note in data.notes] == [
        "dropped: 1 reading with the same start as an earlier one but other energy (a "
        f"daylight-saving duplicate), the first at 2025-07-01 00:00 PDT on line {line}: kept the "
        f"earlier one (line {line - 2})"
    ]


def test_espi_overlapping_intervals_of_one_length_keep_the_earlier() -> None:
    document = espi(reading_type(1), block(1, 100, 200) + block(1, 50, start=JULY_1_0700Z + 600))
    data = parse_espi(io.BytesIO(document), "main", timezone=LA)

    assert [r.consumed_kwh for r in data.readings] == [0.1, 0.2]
    assert [str(note) for note in data.notes] == [
        "dropped: 1 reading overlapping an earlier one of the same length, the first from "
        "2025-07-01 00:10 PDT (15 minutes, overlapping the one from 2025-07-01 00:00 PDT): kept "
        "the earlier one"
    ]


def test_espi_entity_declarations_are_refused() -> None:
    document = b'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY a "aaaa">]><feed>&a;</feed>'

    with pytest.raises(GreenButtonError, match="declares an entity"):
        read_espi(document)


def test_not_a_green_button_file() -> None:
    with pytest.raises(GreenButtonError, match="no IntervalBlock found"):
        read_espi(b"<html><body>Sign in</body></html>")


@st.composite
def interval_series(draw: st.DrawFn) -> list[IntervalReading]:
    """Non-overlapping intervals with whole-Wh energy in both directions."""
    start = JULY_1_0700Z + draw(st.integers(-(10**8), 10**8)) * 60
    readings = []
    for _ in range(draw(st.integers(1, 40))):
        start += draw(st.sampled_from([0, 0, 0, 900, 86400]))
        duration_s = draw(st.sampled_from([300, 900, 3600]))
        consumed_wh, generated_wh = draw(st.integers(0, 10**7)), draw(st.integers(0, 10**5))
        readings.append(
            IntervalReading(
                "main",
                datetime.fromtimestamp(start, UTC),
                duration_s,
                consumed_wh / 1000,
                generated_wh / 1000,
            )
        )
        start += duration_s
    return readings


@given(readings=interval_series(), power=st.sampled_from([0, -3]))
def test_espi_round_trip(readings: list[IntervalReading], power: int) -> None:
    document = espi_xml(readings, power_of_ten=power).encode()

    assert read_espi(document) == tuple(readings)


@given(
    spans=st.lists(
        st.tuples(st.integers(0, 96), st.sampled_from([900, 900, 3600, 7200, 86400]), st.integers(1, 999)),
        min_size=1, max_size=30,
    )
)
def test_espi_any_mix_of_lengths_and_overlaps_is_taken_without_counting_time_twice(
    spans: list[tuple[int, int, int]],
) -> None:
    """Whatever overlaps a file holds, what is kept never overlaps, and each reading left out
    overlaps one kept of the same or a finer length."""
    given_readings = [
        IntervalReading("main", datetime.fromtimestamp(JULY_1_0700Z + slot * 900, UTC), length, wh / 1000)
        for slot, length, wh in spans
    ]
    data = parse_espi(io.BytesIO(espi_xml(given_readings).encode()), "main")

    kept = sorted((r.start, r.end) for r in data.readings)
    assert all(end <= start for (_, end), (start, _) in zip(kept, kept[1:], strict=False))
    for reading in given_readings:
        if (reading.start, reading.end) not in kept:
            assert any(
                start < reading.end and reading.start < end and end - start <= reading.end - reading.start
                for start, end in kept
            )
    dropped = sum(note.count for note in data.notes if note.action == "dropped")
    assert len(data.readings) + dropped == len({(r.start, r.duration_s) for r in given_readings}) + sum(
        note.count for note in data.notes if "repeated exactly" in note.what or "same start" in note.what
    )


# --- CSV ----------------------------------------------------------------------------------


def test_csv_sample_autumn_hour_repeats_and_directions_merge() -> None:
    with (DATA / "pge_style_solar_autumn.csv").open("rb") as stream:
        data = parse(stream, "main", LA)

    assert data.kind == "CSV"
    # 01:00 appears twice on 2024-11-03: first PDT (08:00Z), then PST (09:00Z).
    assert [(r.start, r.duration_s, r.consumed_kwh, r.generated_kwh) for r in data.readings] == [
        (utc(2024, 11, 3, 6), 3600, 0.42, 0.0),
        (utc(2024, 11, 3, 7), 3600, 0.38, 0.0),
        (utc(2024, 11, 3, 8), 3600, 0.35, 0.0),
        (utc(2024, 11, 3, 9), 3600, 0.33, 0.0),
        (utc(2024, 11, 3, 10), 3600, 0.31, 0.0),
        (utc(2024, 11, 3, 19), 3600, 0.05, 1.85),
        (utc(2024, 11, 3, 20), 3600, 0.0, 2.10),
    ]


def test_csv_usage_units_cost_with_inclusive_end_minute() -> None:
    readings = read_csv(
        """\
        Name,SAMPLE
        Address,"SAMPLE"
        Account Number,SAMPLE
        Service,SAMPLE

        TYPE,DATE,START TIME,END TIME,USAGE,UNITS,COST,NOTES
        Electric usage,2025-01-15,00:00,00:14,0.12,kWh,$0.04,
        Electric usage,2025-01-15,00:15,00:29,250,Wh,$0.08,
        Electric usage,2025-01-15,00:30,00:44,-0.30,kWh,-$0.10,
        Electric usage,2025-01-15,00:45,00:59,,kWh,,
        """
    )

    assert [(r.start, r.duration_s, r.consumed_kwh, r.generated_kwh) for r in readings] == [
        (utc(2025, 1, 15, 8, 0), 900, 0.12, 0.0),
        (utc(2025, 1, 15, 8, 15), 900, 0.25, 0.0),
        (utc(2025, 1, 15, 8, 30), 900, 0.0, 0.3),
    ]


def test_csv_autumn_quarter_hours_repeat_without_collision() -> None:
    rows = [
        f"Electric usage,2024-11-03,01:{m:02d},01:{m + 14:02d},0.1{i},"
        for i, m in enumerate([0, 15, 30, 45] * 2)
    ]
    readings = read_csv("TYPE,DATE,START TIME,END TIME,USAGE (kWh),NOTES\n" + "\n".join(rows))

    starts = [r.start for r in readings]
    assert starts == [utc(2024, 11, 3, 8) + timedelta(minutes=15 * i) for i in range(8)]
    assert [r.consumed_kwh for r in readings] == [0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 0.17]


def test_csv_autumn_hour_a_third_time_is_dropped_and_said() -> None:
    rows = "\n".join(["Electric usage,2024-11-03,01:00,01:59,0.1,"] * 2 + ["Electric usage,2024-11-03,01:00,01:59,0.7,"])
    data = parse_csv(
        io.BytesIO(("TYPE,DATE,START TIME,END TIME,USAGE (kWh),NOTES\n" + rows).encode()), "main", LA
    )

    assert [(r.start, r.consumed_kwh) for r in data.readings] == [
        (utc(2024, 11, 3, 8), 0.1), (utc(2024, 11, 3, 9), 0.1)
    ]
    assert [str(note) for note in data.notes] == [
        "dropped: 1 row for a repeated autumn time given a third time (the first 2024-11-03 01:00, "
        "line 4; that hour happens only twice): kept the first two"
    ]


def test_csv_spring_gap_is_not_invented() -> None:
    readings = read_csv(
        """\
        TYPE,DATE,START TIME,END TIME,IMPORT (kWh),EXPORT (kWh),NOTES
        Electric usage,2025-03-09,01:00,01:59,0.40,0.00,
        Electric usage,2025-03-09,02:00,02:59,0.00,0.00,
        Electric usage,2025-03-09,03:00,03:59,0.50,0.00,
        """
    )

    # 01:00 PST is 09:00Z and 03:00 PDT is 10:00Z: one real hour apart, nothing between.
    assert [(r.start, r.consumed_kwh) for r in readings] == [
        (utc(2025, 3, 9, 9), 0.4),
        (utc(2025, 3, 9, 10), 0.5),
    ]


def test_csv_energy_in_the_spring_gap_is_added_to_the_row_before() -> None:
    """The utility gives energy for 02:00, which did not happen: it ran in the hour before."""
    document = textwrap.dedent(
        """\
        TYPE,DATE,START TIME,END TIME,USAGE (kWh),NOTES
        Electric usage,2025-03-09,01:00,01:59,0.40,
        Electric usage,2025-03-09,02:00,02:59,0.30,
        Electric usage,2025-03-09,03:00,03:59,0.20,
        """
    )
    data = parse_csv(io.BytesIO(document.encode()), "main", LA)

    assert [(r.start, r.duration_s, r.consumed_kwh) for r in data.readings] == [
        (utc(2025, 3, 9, 9), 3600, 0.7), (utc(2025, 3, 9, 10), 3600, 0.2)
    ]
    assert [str(note) for note in data.notes] == [
        "merged: 1 row for a time the clocks skipped (the first 2025-03-09 02:00, line 3) with "
        "0.3 kWh used: added to the row before"
    ]


def test_csv_energy_in_the_spring_gap_with_no_row_before_is_dropped_and_said() -> None:
    document = "TYPE,DATE,START TIME,END TIME,USAGE (kWh)\nElectric usage,2025-03-09,02:00,02:59,0.30\nElectric usage,2025-03-09,03:00,03:59,0.20\n"
    data = parse_csv(io.BytesIO(document.encode()), "main", LA)

    assert [r.consumed_kwh for r in data.readings] == [0.2]
    assert [note.action for note in data.notes] == ["dropped"]
    assert data.notes[0].what.endswith("with 0.3 kWh used: no row before to add it to")


def test_csv_daily_rows_follow_local_midnights() -> None:
    readings = read_csv(
        """\
        TYPE,DATE,USAGE,UNITS,COST,NOTES
        Electric usage,2025-03-08,12.5,kWh,$3.10,
        Electric usage,2025-03-09,11.0,kWh,$2.80,
        """
    )

    assert [(r.start, r.duration_s) for r in readings] == [
        (utc(2025, 3, 8, 8), 86400),
        (utc(2025, 3, 9, 8), 23 * 3600),
    ]


def test_csv_with_offsets_in_the_times_and_gas_rows() -> None:
    readings = read_csv(
        """\
        Name,Address,Account Number,Service,Type,Date,Start Time,End Time,Usage,Units,Costs,Weather
        U,A,1,E,electric,2024-11-03,2024-11-03 01:00:00-04:00,2024-11-03 01:00:00-05:00,1.0,kWh,$0.12,45
        U,A,1,E,electric,2024-11-03,2024-11-03 01:00:00-05:00,2024-11-03 02:00:00-05:00,2.0,kWh,$0.24,45
        U,A,1,G,natural gas,2024-11-03,2024-11-03 00:00:00-04:00,2024-11-04 00:00:00-05:00,1.2,therms,$2.00,45
        """,
        timezone="America/New_York",
    )

    assert [(r.start, r.duration_s, r.consumed_kwh) for r in readings] == [
        (utc(2024, 11, 3, 5), 3600, 1.0),
        (utc(2024, 11, 3, 6), 3600, 2.0),
    ]


def test_csv_us_dates_12_hour_clock_and_duration_column() -> None:
    readings = read_csv(
        """\
        Meter Number,Date,Start Time,Duration,Consumption,Generation,Net
        12345,1/15/2025,12:00 AM,15,0.2,0.0,0.2
        12345,1/15/2025,12:15 AM,15,0.0,0.4,-0.4
        12345,1/15/2025,1:30 PM,15,"1,000.5",0.0,"1,000.5"
        """
    )

    assert [(r.start, r.consumed_kwh, r.generated_kwh) for r in readings] == [
        (utc(2025, 1, 15, 8, 0), 0.2, 0.0),
        (utc(2025, 1, 15, 8, 15), 0.0, 0.4),
        (utc(2025, 1, 15, 21, 30), 1000.5, 0.0),
    ]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "Electric usage,2025-01-15,00:00,00:14,abc,kWh,,",
            r"^line 3: USAGE is 'abc', expected a number",
        ),
        (
            "Electric usage,2025-01-15,00:00",
            r"^line 3: 3 columns, but the header on line 2 has 8; is the file cut short\?",
        ),
        (
            "Electric usage,15 Jan,00:00,00:14,0.1,kWh,,",
            r"^line 3: the date is '15 Jan', expected YYYY-MM-DD",
        ),
        (
            "Electric usage,2025-01-15,noon,00:14,0.1,kWh,,",
            r"^line 3: START TIME is 'noon', expected HH:MM",
        ),
        ("Electric usage,2025-01-15,00:00,00:14,0.1,kW,,", None),
    ],
)
def test_csv_bad_row_names_its_line(row: str, message: str | None) -> None:
    text = f"Name,SAMPLE\nTYPE,DATE,START TIME,END TIME,USAGE,UNITS,COST,NOTES\n{row}\n"

    with pytest.raises(
        GreenButtonError,
        match=message or r"^line 2: no electricity intervals .*'kW' \(not electric energy\)",
    ):
        read_csv(text)


def test_csv_without_header_is_rejected() -> None:
    with pytest.raises(GreenButtonError, match="no header row found"):
        read_csv("Name,SAMPLE\nAccount Number,1\n2025-01-15,0.1\n")


def test_csv_header_with_unknown_energy_unit_is_rejected() -> None:
    with pytest.raises(
        GreenButtonError, match=r"^line 1: column 'USAGE \(kW\)': unit 'KW' is not kWh"
    ):
        read_csv("TYPE,DATE,START TIME,END TIME,USAGE (kW)\n")


# --- Real utility exports: every oddity taken and named ---------------------------------


def notes_of(data) -> list[str]:
    return [str(note) for note in data.notes]


def test_utility_export_with_clock_change_oddities_is_taken_and_each_oddity_named() -> None:
    with (DATA / "utility_hourly_clock_changes.xml").open("rb") as stream:
        data = parse(stream, "main", LA)

    assert [(r.start, r.duration_s, r.consumed_kwh) for r in data.readings] == [
        (utc(2011, 3, 13, 8), 3600, 0.5),
        (utc(2011, 3, 13, 9), 7200, 1.1),  # over the spring change: kept as it is
        (utc(2011, 3, 13, 11), 3600, 0.45),
        (utc(2011, 3, 13, 12), 3600, 0.4),  # the first of the two readings starting 12:00 UTC
        (utc(2011, 3, 13, 13), 3600, 0.38),
        (utc(2011, 3, 13, 15), 3600, 0.36),  # 14:00 UTC is missing: not invented
        (utc(2011, 11, 6, 7), 3600, 0.3),
        (utc(2011, 11, 6, 8), 3600, 0.31 + 0.462),  # the zero-length reading's energy added
        (utc(2011, 11, 6, 9), 3600, 0.29),
        (utc(2011, 11, 6, 10), 3600, 0.28),  # given twice, the same: once
    ]
    assert notes_of(data) == [
        "dropped: 1 reading repeated exactly (same time, same energy): counted once",
        "dropped: 1 reading with the same start as an earlier one but other energy (a "
        "daylight-saving duplicate), the first at 2011-03-13 05:00 PDT on line 45: kept the "
        "earlier one (line 44)",
        "merged: 1 reading of no length with 0.462 kWh used at 2011-11-06 01:00 PST (the clock "
        "change): added to the reading before it",
        "kept: 1 reading of another length than the usual 1 hour, the first of 2 hours from "
        "2011-03-13 01:00 PST (the clock change): kept as it is",
        "note: 2 gaps with no readings (237 days 16 hours in all), the first from 2011-03-13 "
        "07:00 PDT to 2011-03-13 08:00 PDT (1 hour): left empty",
    ]
    assert [(n.action, n.count) for n in data.notes] == [
        ("dropped", 1), ("dropped", 1), ("merged", 1), ("kept", 1), ("note", 2)
    ]
    assert data.local_time is not None
    assert data.local_time.words() == "UTC-5 with daylight saving (+1 h, March to November)"


def test_zero_length_readings_without_a_neighbour_or_energy_are_dropped_and_said() -> None:
    document = espi(
        reading_type(1, length=3600),
        block(1, 100, length=3600)
        + block(1, 0, length=0, start=JULY_1_0700Z + 7200)  # no energy
        + block(1, 462, length=0, start=JULY_1_0700Z + 3 * 86400),  # nothing next to it
    )
    data = parse_espi(io.BytesIO(document), "main", timezone=LA)

    assert [(r.start, r.consumed_kwh) for r in data.readings] == [(utc(2025, 7, 1, 7), 0.1)]
    assert notes_of(data) == [
        "dropped: 1 reading of no length with 0.462 kWh used at 2025-07-04 00:00 PDT: no reading "
        "next to it to add it to",
        "dropped: 1 reading of no length and no energy",
    ]


def test_daily_readings_are_left_out_only_where_finer_ones_cover_them() -> None:
    """Daily plus 15-minute data: the finest counts; a day without 15-minute data keeps its daily."""
    quarter_hours = block(1, *([10] * 96))  # all of July 1 (Los Angeles)
    days = block(2, 5000, 7000, length=86400)  # July 1 and July 2
    data = parse_espi(
        io.BytesIO(espi(reading_type(1) + reading_type(2, length=86400), quarter_hours + days)),
        "main", timezone=LA,
    )

    assert sum(r.consumed_kwh for r in data.readings) == pytest.approx(0.96 + 7.0)
    assert [r.duration_s for r in data.readings] == [900] * 96 + [86400]
    assert notes_of(data) == [
        "dropped: 1 reading of 1 day: readings of 15 minutes cover the same time, and counting "
        "both would count that energy twice",
        "kept: 1 reading of another length than the usual 15 minutes, the first of 1 day from "
        "2025-07-02 00:00 PDT: kept as it is",
    ]


def test_a_block_whose_readings_stop_short_is_named_as_cut() -> None:
    document = espi(reading_type(1, length=3600), block(1, 100, 200, length=3600)).replace(
        b"<espi:IntervalBlock>",
        f"<espi:IntervalBlock><espi:interval><espi:duration>86400</espi:duration>"
        f"<espi:start>{JULY_1_0700Z}</espi:start></espi:interval>".encode(),
    )
    data = parse_espi(io.BytesIO(document), "main", timezone=LA)

    assert len(data.readings) == 2
    assert notes_of(data) == [
        "note: 1 IntervalBlock (#1, line 5) says it runs from 2025-07-01 00:00 PDT to 2025-07-02 "
        "00:00 PDT but its readings stop at 2025-07-01 02:00 PDT: the file looks cut short (what it "
        "holds was imported; download it again for the rest)"
    ]


def test_a_feed_that_says_it_continues_is_named_as_partial() -> None:
    document = espi(reading_type(1), block(1, 100)).replace(
        b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">',
        b'<feed xmlns="http://www.w3.org/2005/Atom" xmlns:espi="http://naesb.org/espi">'
        b'<link rel="next" href="/espi/1_1/resource/Batch/Subscription/1?page=2"/>',
    )
    data = parse_espi(io.BytesIO(document), "main")

    assert notes_of(data) == [
        "note: 1 link to a next page: the feed says it continues in another download, so this "
        "file holds only part of the data"
    ]


def test_a_file_cut_mid_element_names_the_element() -> None:
    document = espi(reading_type(1), block(1, 100, 200, 300))
    cut = document[: document.index(b"<espi:value>300") + len(b"<espi:val")]

    with pytest.raises(GreenButtonError) as caught:
        read_espi(cut)

    assert "the XML is malformed or ends early" in caught.value.problem
    assert "in the middle of <IntervalReading> (IntervalReading #3 in IntervalBlock #1)" in caught.value.problem


@pytest.mark.parametrize("content", [b"", b"  \n\n  "])
def test_an_empty_xml_file_gets_an_xml_message(content: bytes) -> None:
    with pytest.raises(GreenButtonError) as caught:
        read(io.BytesIO(content), LA, name="download.xml")

    assert str(caught.value) == (
        "the file is empty: a Green Button XML file starts with '<?xml' or '<feed' and holds the "
        "readings; download it again"
    )
    with pytest.raises(GreenButtonError, match="^the file is empty: no Green Button data"):
        read(io.BytesIO(content), LA, name="download.csv")


def test_the_files_own_time_zone_is_compared_with_the_sites() -> None:
    pacific = LocalTime(-28800, 3600, "360E2000", "B40E2000")
    old_rules = LocalTime(-28800, 3600, "4", "A")  # April to October, as before 2007
    no_dst = LocalTime(-28800)

    assert pacific.words() == "UTC-8 with daylight saving (+1 h, March to November)"
    assert not pacific.differs_from(ZoneInfo(LA), 2012)
    assert pacific.differs_from(ZoneInfo("America/New_York"), 2012)
    assert old_rules.words() == "UTC-8 with daylight saving (+1 h)"  # "4", "A": no month in the top bits
    assert LocalTime(-28800, 3600, "40000000", "A0000000").differs_from(ZoneInfo(LA), 2012)
    assert no_dst.differs_from(ZoneInfo(LA), 2012)
    assert not LocalTime(19800).differs_from(ZoneInfo("Asia/Kolkata"), 2012)
    assert LocalTime(19800).words() == "UTC+5:30"


# --- Usage points ---------------------------------------------------------------------------


def two_points() -> bytes:
    first = reading_type(1) + block(1, 100, 200)
    second = (reading_type(2) + block(2, 700, 800, 900)).replace("UsagePoint/1", "UsagePoint/2")
    points = "".join(
        f'<entry><link rel="self" href="/r/UsagePoint/{n}"/><title>{title}</title><content>'
        f"<espi:UsagePoint><espi:ServiceCategory><espi:kind>0</espi:kind></espi:ServiceCategory>"
        "</espi:UsagePoint></content></entry>\n"
        for n, title in ((1, "House"), (2, "Garage"))
    )
    gas = (
        '<entry><link rel="self" href="/r/UsagePoint/3"/><title>Gas</title><content><espi:UsagePoint>'
        "<espi:ServiceCategory><espi:kind>1</espi:kind></espi:ServiceCategory></espi:UsagePoint>"
        "</content></entry>\n"
    )
    return espi(points + gas + first, second)


def test_usage_points_are_listed_with_kind_reading_types_span_and_count() -> None:
    data = read(io.BytesIO(two_points()), LA)

    assert [str(point) for point in data.points] == [
        "1 'House': electricity; 15-minute electricity used (delivered); 2 intervals from "
        "2025-07-01 to 2025-07-01",
        "2 'Garage': electricity; 15-minute electricity used (delivered); 3 intervals from "
        "2025-07-01 to 2025-07-01",
        "3 'Gas': gas; no readings; no electricity intervals",
    ]


def test_several_usage_points_and_no_choice_lists_them() -> None:
    with pytest.raises(SeveralUsagePoints) as caught:
        parse(io.BytesIO(two_points()), "main", LA)

    assert [point.id for point in caught.value.points] == ["1", "2"]
    assert "does the file hold more than one meter" not in str(caught.value)
    assert str(caught.value).startswith(
        "the file holds 2 usage points (meters) with electricity readings, so it cannot tell "
        "which one is this meter: 1 'House': electricity;"
    )


def test_one_usage_point_or_each_to_its_own_meter() -> None:
    data = read(io.BytesIO(two_points()), LA)

    garage = data.select("main", {"2": "garage"})
    assert [(r.meter_id, r.consumed_kwh) for r in garage.readings] == [
        ("garage", 0.7), ("garage", 0.8), ("garage", 0.9)
    ]
    each = data.select("main", each=True)
    assert sorted((r.meter_id, r.consumed_kwh) for r in each.readings) == [
        ("1", 0.1), ("1", 0.2), ("2", 0.7), ("2", 0.8), ("2", 0.9)
    ]
    with pytest.raises(UnknownUsagePoint, match="no usage point '9'; it has: 1, 2, 3"):
        data.select("main", {"9": "x"})
    with pytest.raises(GreenButtonError, match="usage point '3' holds no electricity readings; the ones that do: 1, 2"):
        data.select("main", {"3": "gas"})


# --- The public OpenESPI sample files -------------------------------------------------------

OPENESPI = DATA / "openespi"
OPENESPI_REFUSED = {
    "ApplicationInformation-Entry-Anonymized.xml": "a third-party application's registration",
    "Authorization-Entry-Anonymized.xml": "an access authorization",
    "Customer-Subscription-Feed-Anonymized.xml": "customer details",
    "Multiple-Authorization-Feed-Anonymized.xml": "an access authorization",
    "ServiceCategory.xml": "a service category",
    "Usage-Subscription-Feed-Anonymized.xml": "a usage point's description",
    "usage_point.xml": "a usage point's description",
}
OPENESPI_TAKEN = {  # file: (intervals, first start, kWh)
    "test_usage_data.xml.gz": (1340, utc(2012, 3, 1, 5), 1391.666),
    "test_usage_data_01.xml": (96, utc(2012, 3, 1, 5), 93.846),
    "test_usage_data_11.xml": (92, utc(2012, 3, 11, 5), 109.403),
}


def test_every_openespi_sample_is_listed_here() -> None:
    assert sorted(p.name for p in OPENESPI.iterdir() if p.name != "README.md") == sorted(
        [*OPENESPI_REFUSED, *OPENESPI_TAKEN]
    )


@pytest.mark.parametrize("name", sorted(OPENESPI_REFUSED))
def test_openespi_samples_without_readings_are_refused_naming_what_they_are(name: str) -> None:
    with pytest.raises(GreenButtonError) as caught, (OPENESPI / name).open("rb") as stream:
        read(stream, LA, name=name)

    assert str(caught.value).startswith(f"the file holds {OPENESPI_REFUSED[name]}")
    assert str(caught.value).endswith("but no readings (no IntervalBlock): it is not a download of usage data")


@pytest.mark.parametrize("name", sorted(OPENESPI_TAKEN))
def test_openespi_usage_samples_import_whole(name: str) -> None:
    opener = gzip.open if name.endswith(".gz") else open
    with opener(OPENESPI / name, "rb") as stream:
        data = parse(stream, "main", "America/New_York")

    count, first, kwh = OPENESPI_TAKEN[name]
    assert (len(data.readings), data.readings[0].start) == (count, first)
    assert sum(r.consumed_kwh for r in data.readings) == pytest.approx(kwh)
    assert {r.duration_s for r in data.readings} == {900}
    assert data.notes == ()  # tidy 15-minute data: nothing odd to say
    assert data.skipped == ("1 billing summary (UsageSummary): a bill's totals, not intervals",)
    assert [(p.id, p.title, p.kind) for p in data.points] == [
        ("5446AF3F", "Front Electric Meter", "electricity")
    ]
    assert data.local_time is not None and data.local_time.words() == (
        "UTC-5 with daylight saving (+1 h, March to November)"
    )
