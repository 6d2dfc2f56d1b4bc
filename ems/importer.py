"""`ems import FILE`: load a Green Button history file into the store, all or nothing.

The file is parsed whole first (in a worker thread: parsing is blocking), so a bad or cut-short
file is rejected before anything is written; then every interval goes to the store in one
transaction, skipping those already stored, so importing the same file twice adds nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ems.config import AppConfig, default_config_dir, load_config
from ems.errors import ConfigError, EmsError

if TYPE_CHECKING:  # the parser and the store (SQLAlchemy) load when a file is imported, not for `ems --help`
    from ems.greenbutton import GreenButtonData
    from ems.store import Store

ImportProgress = Callable[[int, int], None]
"""Called with (done, total): bytes parsed of the file's size, then rows written of rows to write.

The write is one transaction, so it reports (0, n) before it and (n, n) once committed.
"""


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import did, for the summary line."""

    intervals_read: int
    intervals_new: int
    intervals_duplicate: int
    first_start: datetime | None
    last_end: datetime | None
    seconds: float
    skipped: tuple[str, ...] = ()  # what the file held that is not electricity intervals


async def import_file(
    path: Path,
    store: Store,
    meter_id: str,
    timezone: str,
    progress: ImportProgress | None = None,
) -> ImportResult:
    """Parse ``path`` (ESPI XML or CSV, local times in ``timezone``) and store its intervals.

    Raises GreenButtonError (naming the line or element) for a bad file, OSError if it cannot
    be read, ZoneInfoNotFoundError for an unknown zone; in all three nothing is written.
    """
    started = time.perf_counter()
    zoneinfo.ZoneInfo(timezone)  # an unknown zone fails here, before any work
    loop = asyncio.get_running_loop()
    total = (await asyncio.to_thread(path.stat)).st_size

    def parsed(done: int) -> None:
        if progress is not None:
            loop.call_soon_threadsafe(progress, done, total)

    data = await asyncio.to_thread(_parse_path, path, meter_id, timezone, parsed)
    rows = len(data.readings)
    if progress is not None:
        progress(0, rows)
    new = await store.add_intervals(data.readings)
    if progress is not None:
        progress(rows, rows)
    return ImportResult(
        intervals_read=rows,
        intervals_new=new,
        intervals_duplicate=rows - new,
        first_start=data.readings[0].start if data.readings else None,
        last_end=max(r.end for r in data.readings) if data.readings else None,
        seconds=time.perf_counter() - started,
        skipped=data.skipped,
    )


def _parse_path(
    path: Path, meter_id: str, timezone: str, progress: Callable[[int], None]
) -> GreenButtonData:
    from ems.greenbutton import parse

    with path.open("rb") as stream:
        return parse(stream, meter_id, timezone, progress)


# --- The command ------------------------------------------------------------------------


def add_import_command(subparsers: Any) -> None:
    """Add `ems import FILE` to the ``ems`` command's subparsers."""
    command = subparsers.add_parser(
        "import",
        help="load interval history from a Green Button file (ESPI XML or CSV)",
        description="Load interval history from a Green Button file (ESPI XML, or the CSV of "
        "a utility's 'Download my data'). Intervals already stored are skipped.",
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


async def run_import_command(
    args: argparse.Namespace,
    read_config: Callable[[Path], AppConfig] = load_config,
    stderr: IO[str] | None = None,
) -> int:
    """Run `ems import`: 0 when imported, 2 when the file or the configuration is wrong."""
    from ems.greenbutton import GreenButtonError
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
    store = Store(config.store, Path(args.data_dir))
    bar = ProgressBar(err)
    try:
        await store.open()
        result = await import_file(Path(args.file), store, args.meter_id, timezone, bar)
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
    for what in result.skipped:
        print(f"  skipped: {what}", file=err)
    keep = timedelta(days=config.store.reading_retention_days)
    if result.first_start is not None and result.first_start < utcnow() - keep:
        print(
            f"  note: intervals older than {config.store.reading_retention_days} days "
            "(store.reading_retention_days) will be removed by the daily purge",
            file=err,
        )
    return 0


def summary(result: ImportResult) -> str:
    """ "Imported 35,040 intervals (35,040 new, 0 already stored) from 2025-01-01 to ... in 1.3 s"."""
    span = ""
    if result.first_start is not None and result.last_end is not None:
        span = f" from {result.first_start:%Y-%m-%d} to {result.last_end:%Y-%m-%d}"
    return (
        f"Imported {result.intervals_read:,} intervals ({result.intervals_new:,} new, "
        f"{result.intervals_duplicate:,} already stored){span} in {result.seconds:.1f} s"
    )


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
