"""`ems import FILE`: load a Green Button history file into the store, all or nothing.

The file is parsed whole first (in a worker thread: parsing is blocking), so a bad or cut-short
file is rejected before anything is written; then every interval goes to the store in one
transaction (``Store.import_intervals``): those already stored are skipped, those stored with other
energy corrected, and none is counted twice over stored readings of another length, so importing
the same file twice adds nothing. What was odd in the file (repeats, clock changes, gaps, a cut
block, its own time zone) is said under the summary, each with what was done with it. A file of
several usage points is imported one point, or each point to its own meter, by choice.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ems.config import AppConfig, default_config_dir, load_config
from ems.errors import ConfigError, EmsError

if TYPE_CHECKING:  # the parser and the store (SQLAlchemy) load when a file is imported, not for `ems --help`
    from ems.greenbutton import GreenButtonFile, ImportNote, UsagePoint
    from ems.store import Store

ImportProgress = Callable[[int, int], None]
"""Called with (done, total): bytes parsed of the file's size, then rows written of rows to write.

The write is one transaction, so it reports (0, n) before it and (n, n) once committed.
"""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import did, for the summary line and the notes under it."""

    intervals_read: int
    intervals_new: int
    intervals_duplicate: int  # already stored with the same energy
    first_start: datetime | None
    last_end: datetime | None
    seconds: float
    skipped: tuple[str, ...] = ()  # what the file held that is not electricity intervals
    intervals_corrected: int = 0  # already stored with other energy: the stored value was updated
    intervals_covered: int = 0  # left out: stored readings of the same or a finer length cover them
    stored_replaced: int = 0  # stored coarser readings deleted: the file has finer ones over them
    notes: tuple[ImportNote, ...] = ()  # each oddity of the file and what was done with it
    meters: tuple[str, ...] = ()


async def import_file(
    path: Path,
    store: Store,
    meter_id: str,
    timezone: str,
    progress: ImportProgress | None = None,
    *,
    points: Mapping[str, str] | None = None,
    each_point: bool = False,
) -> ImportResult:
    """Parse ``path`` (ESPI XML or CSV, local times in ``timezone``) and store its intervals.

    ``points`` maps the file's usage point ids to meter ids; ``each_point`` stores every usage
    point under a meter named by its id; without either, a file must hold one usage point with
    electricity readings (else SeveralUsagePoints, listing them). Raises GreenButtonError (naming
    the line or element) for a bad file, OSError if it cannot be read, ZoneInfoNotFoundError for
    an unknown zone; in all three nothing is written.
    """
    from ems.greenbutton import ImportNote

    started = time.perf_counter()
    zone = zoneinfo.ZoneInfo(timezone)  # an unknown zone fails here, before any work
    loop = asyncio.get_running_loop()
    total = (await asyncio.to_thread(path.stat)).st_size

    def parsed(done: int) -> None:
        if progress is not None:
            loop.call_soon_threadsafe(progress, done, total)

    data = (await asyncio.to_thread(read_path, path, timezone, parsed)).select(
        meter_id, points, each=each_point
    )
    rows = len(data.readings)
    if progress is not None:
        progress(0, rows)
    written = await store.import_intervals(data.readings)
    if progress is not None:
        progress(rows, rows)
    notes = list(data.notes)
    if data.local_time is not None and data.readings:
        year = data.readings[0].start.year
        if data.local_time.differs_from(zone, year):
            notes.append(ImportNote("note", 1, (
                f"the file gives its own time zone as {data.local_time.words()}, which is not the "
                f"site's ({timezone}): the readings' times are exact moments and are stored as they "
                "are; days and hours are shown in the site's time zone")))
    return ImportResult(
        intervals_read=rows,
        intervals_new=written.new,
        intervals_duplicate=written.unchanged,
        first_start=data.readings[0].start if data.readings else None,
        last_end=max(r.end for r in data.readings) if data.readings else None,
        seconds=time.perf_counter() - started,
        skipped=data.skipped,
        intervals_corrected=written.corrected,
        intervals_covered=written.covered,
        stored_replaced=written.replaced,
        notes=tuple(notes),
        meters=tuple(dict.fromkeys(r.meter_id for r in data.readings)),
    )


def read_path(path: Path, timezone: str, progress: Callable[[int], None] | None = None) -> GreenButtonFile:
    """The whole file, every usage point (what ``ems import --list`` shows)."""
    from ems.greenbutton import read

    with path.open("rb") as stream:
        return read(stream, timezone, progress, name=path.name)


# --- The command ------------------------------------------------------------------------


def add_import_command(subparsers: Any) -> None:
    """Add `ems import FILE` to the ``ems`` command's subparsers."""
    command = subparsers.add_parser(
        "import",
        help="load interval history from a Green Button file (ESPI XML or CSV)",
        description="Load interval history from a Green Button file (ESPI XML, or the CSV of "
        "a utility's 'Download my data'). Intervals already stored are skipped, changed ones "
        "corrected; what was odd in the file (repeats, clock changes, gaps) is listed.",
    )
    command.add_argument("file", type=Path, help="the Green Button file (.xml or .csv)")
    command.add_argument(
        "-c", "--config", default=str(default_config_dir()), help="configuration folder"
    )
    command.add_argument(
        "--data-dir", default=os.environ.get("EMS_DATA_DIR", "data"), help="where data is kept"
    )
    command.add_argument(
        "--meter-id", default="main", help="meter the intervals belong to (default: main)"
    )
    command.add_argument(
        "--timezone", help="IANA zone of the CSV's local times (default: site.timezone)"
    )
    command.add_argument(
        "--list", action="store_true",
        help="list the file's usage points (meters) with what they hold, and import nothing",
    )
    command.add_argument(
        "--usage-point", action="append", default=[], metavar="ID[=METER]",
        help="import this usage point of the file (to --meter-id, or to METER); repeat for more",
    )
    command.add_argument(
        "--each-point", action="store_true",
        help="import every usage point of the file, each to a meter named by its id",
    )


def _choice(values: list[str], meter_id: str) -> dict[str, str] | str:
    """--usage-point values as {point id: meter id}, or what is wrong with them."""
    choice: dict[str, str] = {}
    for value in values:
        point, sep, meter = value.partition("=")
        point, meter = point.strip(), meter.strip()
        if not point or (sep and not meter):
            return f"--usage-point {value!r}: expected ID or ID=METER"
        choice[point] = meter or meter_id
    if len(choice) > 1 and len(set(choice.values())) < len(choice):
        return "several usage points to one meter would add their readings together; give each its own: --usage-point ID=METER"
    return choice


def _points_lines(points: tuple[UsagePoint, ...]) -> list[str]:
    return [f"  {point}" for point in points]


async def run_import_command(
    args: argparse.Namespace,
    read_config: Callable[[Path], AppConfig] = load_config,
    stderr: IO[str] | None = None,
) -> int:
    """Run `ems import`: 0 when imported, 2 when the file or the configuration is wrong."""
    from ems.greenbutton import GreenButtonError, SeveralUsagePoints
    from ems.model import utcnow
    from ems.store import Store

    err = stderr or sys.stderr
    try:
        config = read_config(Path(args.config))
    except ConfigError as error:
        print(f"Configuration error{'s' if len(error.problems) > 1 else ''}:", file=err)
        for problem in error.problems:
            print(f"  {problem}", file=err)
        return 2
    timezone = args.timezone or config.site.timezone
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        print(
            f"ems import: unknown time zone {timezone!r} (expected an IANA name such as America/Los_Angeles)",
            file=err,
        )
        return 2
    if getattr(args, "list", False):
        return await _list_points(Path(args.file), timezone, err)
    choice = _choice(getattr(args, "usage_point", []), args.meter_id)
    if isinstance(choice, str):
        print(f"ems import: {choice}", file=err)
        return 2
    store = Store(config.store, Path(args.data_dir))
    bar = ProgressBar(err)
    try:
        await store.open()
        result = await import_file(
            Path(args.file), store, args.meter_id, timezone, bar,
            points=choice or None, each_point=getattr(args, "each_point", False),
        )
    except SeveralUsagePoints as error:
        bar.abandon()
        print(
            f"ems import: {args.file} holds {len(error.points)} usage points (meters) with "
            "electricity readings:", file=err,
        )
        for line in _points_lines(error.points):
            print(line, file=err)
        print(
            "ems import: nothing was imported; choose one with --usage-point ID (it goes to "
            "--meter-id), or give each its own meter with --usage-point ID=METER (repeatable) "
            "or --each-point",
            file=err,
        )
        return 2
    except GreenButtonError as error:
        bar.abandon()
        print(f"ems import: {args.file}: {error}", file=err)
        print("ems import: nothing was imported", file=err)
        return 2
    except OSError as error:
        bar.abandon()
        print(f"ems import: cannot read {args.file}: {error.strerror or error}", file=err)
        return 2
    except EmsError as error:
        bar.abandon()
        print(f"ems import: {error}", file=err)
        return 1
    finally:
        await store.close()
    print(summary(result), file=err)
    for line in details(result):
        print(f"  {line}", file=err)
    keep = timedelta(days=config.store.reading_retention_days)
    if result.first_start is not None and result.first_start < utcnow() - keep:
        print(
            f"  note: intervals older than {config.store.reading_retention_days} days "
            "(store.reading_retention_days) will be removed by the daily purge",
            file=err,
        )
    return 0


async def _list_points(path: Path, timezone: str, err: IO[str]) -> int:
    from ems.greenbutton import GreenButtonError

    try:
        data = await asyncio.to_thread(read_path, path, timezone)
    except GreenButtonError as error:
        print(f"ems import: {path}: {error}", file=err)
        return 2
    except OSError as error:
        print(f"ems import: cannot read {path}: {error.strerror or error}", file=err)
        return 2
    print(f"{path} ({data.kind}) holds {len(data.points)} usage point{'s' if len(data.points) != 1 else ''}:", file=err)
    for line in _points_lines(data.points):
        print(line, file=err)
    if data.local_time is not None:
        print(f"  its own time zone: {data.local_time.words()}", file=err)
    return 0


def summary(result: ImportResult) -> str:
    """ "Imported 35,040 intervals (35,000 new, 40 corrected, 0 already stored) from 2025-01-01 to ... in 1.3 s"."""
    span = ""
    if result.first_start is not None and result.last_end is not None:
        span = f" from {result.first_start:%Y-%m-%d} to {result.last_end:%Y-%m-%d}"
    more = ""
    if result.intervals_covered:
        more += f", {result.intervals_covered:,} left out"
    return (
        f"Imported {result.intervals_read:,} intervals ({result.intervals_new:,} new, "
        f"{result.intervals_corrected:,} corrected, {result.intervals_duplicate:,} already stored"
        f"{more}){span} in {result.seconds:.1f} s"
    )


def details(result: ImportResult) -> list[str]:
    """The lines under the summary: what the file held and what was done with each oddity."""
    lines = [f"skipped: {what}" for what in result.skipped]
    lines += [str(note) for note in result.notes]
    if result.intervals_corrected:
        lines.append(
            f"corrected: {result.intervals_corrected:,} intervals already stored with other energy "
            "now hold the file's values"
        )
    if result.intervals_covered:
        lines.append(
            f"dropped: {result.intervals_covered:,} intervals whose time is already stored in "
            "readings of the same or a finer length (counting both would count that energy twice)"
        )
    if result.stored_replaced:
        lines.append(
            f"replaced: {result.stored_replaced:,} stored readings of a coarser length, which the "
            "file's finer readings cover"
        )
    if len(result.meters) > 1:
        lines.append(f"meters: {', '.join(result.meters)}")
    return lines


class ProgressBar:
    """Progress on a terminal as a redrawn bar; elsewhere (logs, pipes) a line per 10 %."""

    WIDTH = 30

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._phase = 0  # 0: reading the file, 1: writing rows
        self._last: tuple[int, int] = (0, 0)
        self._printed = -1  # last tenth printed (not a TTY)
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        if self._phase == 0 and self._last[1] and (total != self._last[1] or done < self._last[0]):
            self._finish_line()
            self._phase, self._printed = 1, -1
        self._last = (done, total)
        label = "Reading" if self._phase == 0 else "Writing"
        fraction = done / total if total else 1.0
        if self._tty:
            filled = round(fraction * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self._stream.write(f"\r{label} [{bar}] {fraction:4.0%}")
            self._stream.flush()
            self._drawn = True
        else:
            tenth = int(fraction * 10 + 1e-9)
            if tenth > self._printed:
                self._printed = tenth
                self._stream.write(f"{label}: {tenth * 10}%\n")
        if fraction >= 1.0 and self._phase == 1:
            self._finish_line()

    def _finish_line(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._drawn = False

    def abandon(self) -> None:
        """End a half-drawn bar so an error message starts on its own line."""
        self._finish_line()
