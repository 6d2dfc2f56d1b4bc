"""How long `ems import` takes for a year of 15-minute Green Button data (target < 5 s), and six.

Writes a year of 15-minute intervals (35,040, delivered and received, so 70,080 ESPI
IntervalReadings) as an ESPI XML feed into a temporary folder, imports it with import_file into
a fresh SQLite store, then imports it again (everything already stored: each interval is compared
with the stored one, so corrections are found) and checks the store holds exactly what was
written. Then the same for six years (210,240 intervals), reported, without a target.

    python bench/import.py [--days N]   (N days only, instead of one year and six)
Last line: seconds=.. intervals=.. six_year_seconds=.. six_year_intervals=..
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from ems.config import StoreConfig  # noqa: E402
from ems.greenbutton import espi_xml  # noqa: E402
from ems.importer import import_file  # noqa: E402
from ems.model import IntervalReading  # noqa: E402
from ems.store import Store  # noqa: E402

START = datetime(2025, 1, 1, 8, tzinfo=UTC)  # midnight in Los Angeles


def a_year(days: int) -> list[IntervalReading]:
    """A household's day shape in whole Wh: night base load, evening peak, solar at noon."""
    readings = []
    for i in range(days * 96):
        hour = (i // 4 - 8) % 24  # local hour
        solar_wh = max(0, round(900 * math.sin(math.pi * (hour - 6) / 12))) if 6 <= hour < 18 else 0
        load_wh = 80 + (250 if 17 <= hour < 22 else 0) + (i * 37) % 60
        readings.append(
            IntervalReading(
                "main",
                START + timedelta(minutes=15 * i),
                900,
                max(load_wh - solar_wh, 0) / 1000,
                max(solar_wh - load_wh, 0) / 1000,
            )
        )
    return readings


async def run(days: int) -> tuple[float, int]:
    readings = a_year(days)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "greenbutton.xml"
        started = time.perf_counter()
        path.write_text(espi_xml(readings), encoding="utf-8")
        size_mb = path.stat().st_size / 1e6
        print(
            f"Wrote {len(readings):,} intervals as ESPI XML ({size_mb:.1f} MB) in {time.perf_counter() - started:.2f} s"
        )
        store = Store(
            StoreConfig(url=None, message_retention_hours=24.0, reading_retention_days=800),
            Path(folder) / "data",
        )
        await store.open()
        try:
            calls = 0

            def progress(done: int, total: int) -> None:
                nonlocal calls
                calls += 1

            first = await import_file(path, store, "main", "America/Los_Angeles", progress)
            print(
                f"First import: {first.intervals_read:,} intervals read, {first.intervals_new:,} new, "
                f"in {first.seconds:.2f} s ({calls} progress reports)"
            )
            again = await import_file(path, store, "main", "America/Los_Angeles")
            print(
                f"Second import of the same file: {again.intervals_new:,} new, "
                f"{again.intervals_duplicate:,} already stored, in {again.seconds:.2f} s"
            )
            stored = await store.intervals("main", START, START + timedelta(days=days + 1))
            assert stored == readings, "the store does not hold what the file held"
            assert first.intervals_new == len(readings) and again.intervals_new == 0
            print(f"Store holds exactly the {len(stored):,} intervals written (both directions)")
        finally:
            await store.close()
    return first.seconds, first.intervals_read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, help="import this many days only")
    days = parser.parse_args().days
    if days is not None:
        seconds, count = asyncio.run(run(days))
        print(f"seconds={seconds:.2f} intervals={count}")
        return
    seconds, count = asyncio.run(run(365))
    verdict = "within" if seconds < 5 else "OVER"
    print(f"A year of 15-minute data imports in {seconds:.2f} s, {verdict} the 5 s target\n")
    six_seconds, six_count = asyncio.run(run(6 * 365))
    print(f"Six years of 15-minute data ({six_count:,} intervals) import in {six_seconds:.2f} s")
    print(f"seconds={seconds:.2f} intervals={count} six_year_seconds={six_seconds:.2f} six_year_intervals={six_count}")


if __name__ == "__main__":
    main()
