"""`ems import`: a Green Button file into a real SQLite store, all or nothing, deduplicated."""

from __future__ import annotations

import argparse
import gzip
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ems import greenbutton
from ems.config import StoreConfig
from ems.greenbutton import GreenButtonError, espi_xml
from ems.importer import (
    ProgressBar,
    add_import_command,
    details,
    import_file,
    run_import_command,
    summary,
)
from ems.model import IntervalReading
from ems.store import Store

DATA = Path(__file__).parent / "data"
SAMPLE_XML = DATA / "espi_two_directions.xml"
SAMPLE_CSV = DATA / "pge_style_solar_autumn.csv"
EVER = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = Store(
        StoreConfig(url=None, message_retention_hours=24.0, reading_retention_days=10_000),
        tmp_path / "data",
    )
    await store.open()
    yield store
    await store.close()


def year_of_quarter_hours(days: int) -> list[IntervalReading]:
    start = datetime(2025, 1, 1, 8, tzinfo=UTC)
    return [
        IntervalReading(
            "main", start + timedelta(minutes=15 * i), 900, (i % 9) / 1000, (i % 4) / 1000
        )
        for i in range(days * 96)
    ]


async def test_import_stores_both_directions(store: Store) -> None:
    result = await import_file(SAMPLE_XML, store, "main", "America/Los_Angeles")

    assert (result.intervals_read, result.intervals_new, result.intervals_duplicate) == (4, 4, 0)
    assert result.first_start == datetime(2025, 7, 1, 7, tzinfo=UTC)
    assert result.last_end == datetime(2025, 7, 1, 11, tzinfo=UTC)
    assert "therms" in result.skipped[0]
    stored = await store.intervals("main", *EVER)
    assert [(r.consumed_kwh, r.generated_kwh) for r in stored] == [
        (1.25, 0.0),
        (0.8, 0.35),
        (0.0, 1.2),
        (2.1, 0.0),
    ]


async def test_reimport_adds_nothing(store: Store) -> None:
    await import_file(SAMPLE_CSV, store, "main", "America/Los_Angeles")

    again = await import_file(SAMPLE_CSV, store, "main", "America/Los_Angeles")

    assert (again.intervals_read, again.intervals_new, again.intervals_duplicate) == (7, 0, 7)
    assert len(await store.intervals("main", *EVER)) == 7


async def test_overlapping_file_adds_only_the_new_intervals(store: Store, tmp_path: Path) -> None:
    readings = year_of_quarter_hours(2)
    first, second = tmp_path / "first.xml", tmp_path / "second.xml"
    first.write_text(espi_xml(readings[:120]))
    second.write_text(espi_xml(readings[96:]))
    await import_file(first, store, "main", "UTC")

    result = await import_file(second, store, "main", "UTC")

    assert (result.intervals_new, result.intervals_duplicate) == (72, 24)
    assert await store.intervals("main", *EVER) == readings


async def test_truncated_file_stores_nothing(store: Store, tmp_path: Path) -> None:
    whole = espi_xml(year_of_quarter_hours(3)).encode()
    cut = tmp_path / "cut.xml"
    cut.write_bytes(whole[: len(whole) - 500])

    with pytest.raises(
        GreenButtonError, match=r"^line \d+, column \d+: the XML is malformed or ends early"
    ):
        await import_file(cut, store, "main", "UTC")

    assert await store.intervals("main", *EVER) == []


async def test_progress_reports_bytes_then_rows_and_ends_at_100(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(greenbutton, "CHUNK_BYTES", 4096)
    path = tmp_path / "days.xml"
    path.write_text(espi_xml(year_of_quarter_hours(2)))
    size = path.stat().st_size
    calls: list[tuple[int, int]] = []

    await import_file(path, store, "main", "UTC", lambda done, total: calls.append((done, total)))

    reading = [c for c in calls if c[1] == size]
    assert len(reading) > 10 and reading[-1] == (size, size)
    assert [d for d, _ in reading] == sorted(d for d, _ in reading)
    assert calls[-2:] == [(0, 192), (192, 192)]


async def test_unknown_timezone_fails_before_reading(store: Store) -> None:
    with pytest.raises(KeyError):
        await import_file(SAMPLE_CSV, store, "main", "Mars/Olympus_Mons")


# --- the command --------------------------------------------------------------------------


def command_args(tmp_path: Path, file: Path, *extra: str) -> argparse.Namespace:
    config_dir = tmp_path / "config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "ems.yaml").write_text("site:\n  timezone: America/Los_Angeles\n")
    parser = argparse.ArgumentParser(prog="ems")
    add_import_command(parser.add_subparsers(dest="command"))
    return parser.parse_args(
        ["import", str(file), "-c", str(config_dir), "--data-dir", str(tmp_path / "data"), *extra]
    )


async def test_command_imports_and_prints_a_summary(tmp_path: Path) -> None:
    err = io.StringIO()

    code = await run_import_command(command_args(tmp_path, SAMPLE_CSV), stderr=err)

    lines = err.getvalue().splitlines()
    assert code == 0
    assert lines[0] == "Reading: 100%"
    assert lines[1:3] == ["Writing: 0%", "Writing: 100%"]
    assert lines[3].startswith(
        "Imported 7 intervals (7 new, 0 corrected, 0 already stored) from 2024-11-03 to 2024-11-03 in "
    )
    # The sample's rows stop at 03:00 and start again at 11:00: said, not filled in.
    assert lines[4:] == [
        "  note: 1 gap with no readings, from 2024-11-03 03:00 PST to 2024-11-03 11:00 PST "
        "(8 hours): left empty"
    ]


async def test_command_rejects_a_bad_file_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "TYPE,DATE,START TIME,END TIME,USAGE (kWh)\nElectric usage,2025-01-15,00:00,00:14,0.1\nElectric usage,2025-01-15,00:15,00:29,x\n"
    )
    err = io.StringIO()

    code = await run_import_command(command_args(tmp_path, bad, "--meter-id", "house"), stderr=err)

    assert code == 2
    assert f"ems import: {bad}: line 3: USAGE (kWh) is 'x', expected a number" in err.getvalue()
    assert "nothing was imported" in err.getvalue()
    store = Store(
        StoreConfig(url=None, message_retention_hours=24.0, reading_retention_days=800),
        tmp_path / "data",
    )
    await store.open()
    try:
        assert await store.intervals("house", *EVER) == []
    finally:
        await store.close()


async def test_command_missing_file_and_bad_zone_exit_2(tmp_path: Path) -> None:
    err = io.StringIO()
    assert await run_import_command(command_args(tmp_path, tmp_path / "none.xml"), stderr=err) == 2
    assert "cannot read" in err.getvalue()
    assert (
        await run_import_command(
            command_args(tmp_path, SAMPLE_CSV, "--timezone", "Nowhere/X"), stderr=err
        )
        == 2
    )
    assert "unknown time zone 'Nowhere/X'" in err.getvalue()


async def test_command_uses_the_injected_config_loader(tmp_path: Path) -> None:
    seen: list[Path] = []

    def read_config(path: Path):  # the lead's composing loader stands in here
        from ems.config import load_config

        seen.append(path)
        return load_config(path)

    args = command_args(tmp_path, SAMPLE_XML)
    assert await run_import_command(args, read_config=read_config, stderr=io.StringIO()) == 0
    assert seen == [Path(args.config)]


def test_progress_bar_redraws_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    bar = ProgressBar(out)
    for done in (0, 500, 1000):
        bar(done, 1000)
    bar(0, 3)
    bar(3, 3)

    assert out.getvalue().split("\n") == [
        "\rReading [------------------------------]   0%\rReading [###############---------------]  50%"
        "\rReading [##############################] 100%",
        "\rWriting [------------------------------]   0%\rWriting [##############################] 100%",
        "",
    ]


def test_summary_line() -> None:
    from ems.importer import ImportResult

    result = ImportResult(
        35_040, 35_040, 0, datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), 1.26
    )

    assert (
        summary(result)
        == "Imported 35,040 intervals (35,040 new, 0 corrected, 0 already stored) from 2025-01-01 to 2026-01-01 in 1.3 s"
    )


# --- Re-imports against what is stored -----------------------------------------------------


async def test_corrected_reimport_updates_the_stored_value(store: Store, tmp_path: Path) -> None:
    readings = year_of_quarter_hours(1)
    path = tmp_path / "day.xml"
    path.write_text(espi_xml(readings))
    await import_file(path, store, "main", "UTC")
    corrected = [*readings[:10], IntervalReading("main", readings[10].start, 900, 0.5, 0.0), *readings[11:]]
    path.write_text(espi_xml(corrected))

    again = await import_file(path, store, "main", "UTC")

    assert (again.intervals_new, again.intervals_corrected, again.intervals_duplicate) == (0, 1, 95)
    assert summary(again).startswith("Imported 96 intervals (0 new, 1 corrected, 95 already stored)")
    assert await store.intervals("main", *EVER) == corrected


async def test_daily_file_over_stored_quarter_hours_adds_no_energy(store: Store, tmp_path: Path) -> None:
    quarter_hours = year_of_quarter_hours(2)
    fine, coarse = tmp_path / "fine.xml", tmp_path / "daily.xml"
    fine.write_text(espi_xml(quarter_hours))
    await import_file(fine, store, "main", "UTC")
    days = [
        IntervalReading("main", quarter_hours[0].start + timedelta(days=d), 86400, 9.0, 0.0)
        for d in range(3)  # the third day is not stored yet
    ]
    coarse.write_text(espi_xml(days))

    result = await import_file(coarse, store, "main", "UTC")

    assert (result.intervals_new, result.intervals_covered) == (1, 2)
    assert "dropped: 2 intervals whose time is already stored in readings of the same or a finer length" in "\n".join(details(result))
    stored = await store.intervals("main", *EVER)
    assert stored == [*quarter_hours, days[2]]


async def test_quarter_hours_over_a_stored_daily_reading_replace_it(store: Store, tmp_path: Path) -> None:
    quarter_hours = year_of_quarter_hours(1)
    day = IntervalReading("main", quarter_hours[0].start, 86400, 9.0, 0.0)
    coarse, fine = tmp_path / "daily.xml", tmp_path / "fine.xml"
    coarse.write_text(espi_xml([day]))
    await import_file(coarse, store, "main", "UTC")
    fine.write_text(espi_xml(quarter_hours))

    result = await import_file(fine, store, "main", "UTC")

    assert (result.intervals_new, result.stored_replaced) == (96, 1)
    assert await store.intervals("main", *EVER) == quarter_hours


# --- What the command says about a real export --------------------------------------------

ODDITIES = DATA / "utility_hourly_clock_changes.xml"


async def test_command_takes_a_real_export_and_says_what_it_did_with_each_oddity(tmp_path: Path) -> None:
    err = io.StringIO()

    code = await run_import_command(command_args(tmp_path, ODDITIES), stderr=err)

    lines = err.getvalue().splitlines()
    assert code == 0
    summary_at = next(i for i, line in enumerate(lines) if line.startswith("Imported"))
    assert lines[summary_at].startswith(
        "Imported 10 intervals (10 new, 0 corrected, 0 already stored) from 2011-03-13 to 2011-11-06 in "
    )
    said = lines[summary_at + 1:]
    assert [line.split(":")[0] for line in said] == [
        "  dropped", "  dropped", "  merged", "  kept", "  note", "  note", "  note"
    ]
    assert "daylight-saving duplicate" in said[1] and "kept the earlier one" in said[1]
    assert said[5] == (
        "  note: the file gives its own time zone as UTC-5 with daylight saving (+1 h, March to "
        "November), which is not the site's (America/Los_Angeles): the readings' times are exact "
        "moments and are stored as they are; days and hours are shown in the site's time zone"
    )
    assert said[6].startswith("  note: intervals older than")


def several_points_file(tmp_path: Path) -> Path:
    readings = year_of_quarter_hours(1)
    one = espi_xml(readings[:4])
    two = espi_xml(readings[4:8]).replace("UsagePoint/1", "UsagePoint/2").replace(
        "ReadingType/", "ReadingType/2"
    )
    body = two[two.index("<entry>"): two.index("</feed>")]
    path = tmp_path / "two.xml"
    path.write_text(one.replace("</feed>", body + "</feed>"))
    return path


async def test_command_with_several_points_and_no_choice_lists_them(tmp_path: Path) -> None:
    err = io.StringIO()

    code = await run_import_command(command_args(tmp_path, several_points_file(tmp_path)), stderr=err)

    lines = err.getvalue().splitlines()
    assert code == 2
    assert lines.pop(0) == "Reading: 100%"
    assert lines[0].endswith("holds 2 usage points (meters) with electricity readings:")
    both = "15-minute electricity used (delivered), 15-minute electricity sent out (received)"
    assert lines[1].startswith(f"  1: electricity; {both}; 4 intervals from 2025-01-01")
    assert lines[2].startswith(f"  2: electricity; {both}; 4 intervals from 2025-01-01")
    assert "--usage-point ID=METER" in lines[3] and "--each-point" in lines[3]


async def test_command_lists_points_then_imports_each_to_its_meter(tmp_path: Path) -> None:
    path = several_points_file(tmp_path)
    listing = io.StringIO()
    assert await run_import_command(command_args(tmp_path, path, "--list"), stderr=listing) == 0
    assert listing.getvalue().splitlines()[0] == f"{path} (ESPI XML) holds 2 usage points:"
    err = io.StringIO()

    code = await run_import_command(
        command_args(tmp_path, path, "--usage-point", "1=house", "--usage-point", "2=garage"), stderr=err
    )

    assert code == 0, err.getvalue()
    assert "meters: house, garage" in err.getvalue()
    store = Store(StoreConfig(url=None, message_retention_hours=24.0, reading_retention_days=10_000), tmp_path / "data")
    await store.open()
    try:
        assert len(await store.intervals("house", *EVER)) == 4
        assert len(await store.intervals("garage", *EVER)) == 4
        assert await store.intervals("main", *EVER) == []
    finally:
        await store.close()


async def test_command_refuses_two_points_to_one_meter(tmp_path: Path) -> None:
    err = io.StringIO()
    args = command_args(tmp_path, SAMPLE_XML, "--usage-point", "1", "--usage-point", "2")

    assert await run_import_command(args, stderr=err) == 2
    assert "give each its own: --usage-point ID=METER" in err.getvalue()


async def test_command_empty_xml_gets_an_xml_message(tmp_path: Path) -> None:
    empty = tmp_path / "download.xml"
    empty.write_bytes(b"")
    err = io.StringIO()

    assert await run_import_command(command_args(tmp_path, empty), stderr=err) == 2
    assert f"{empty}: the file is empty: a Green Button XML file starts with '<?xml'" in err.getvalue()
    assert "header" not in err.getvalue()


async def test_openespi_demo_feed_imports_exactly(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "test_usage_data.xml"
    path.write_bytes(gzip.decompress((DATA / "openespi" / "test_usage_data.xml.gz").read_bytes()))

    result = await import_file(path, store, "main", "America/New_York")

    assert (result.intervals_read, result.intervals_new, result.notes) == (1340, 1340, ())
    stored = await store.intervals("main", *EVER)
    assert len(stored) == 1340
    assert sum(r.consumed_kwh for r in stored) == pytest.approx(1391.666)
