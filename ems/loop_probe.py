"""A probe of the event loop's responsiveness, for benches: how long the loop was kept from running.

A task asks to wake every ``interval_s``; how late it wakes is the longest time some callback
(or the garbage collector, or the machine) kept the loop busy. Once a second it appends one JSON
line to a file: the real time, the worst lateness of that second in milliseconds and the
process's resident memory (VmRSS, kB). ``ems run`` starts it when the environment variable
``EMS_LOOP_PROBE`` names the file (bench/soak.py reads it); nothing else uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path

ENV = "EMS_LOOP_PROBE"


def rss_kb() -> int | None:
    """This process's resident set size in kB (Linux /proc), None where it cannot be read."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


async def probe(path: Path, interval_s: float = 0.01, report_s: float = 1.0) -> None:
    """Run until cancelled, appending ``{"w", "max_block_ms", "rss_kb"}`` lines to ``path``."""
    worst = 0.0
    window_start = time.monotonic()
    with path.open("a", buffering=1) as out:
        while True:
            before = time.monotonic()
            await asyncio.sleep(interval_s)
            late = time.monotonic() - before - interval_s
            worst = max(worst, late)
            if time.monotonic() - window_start >= report_s:
                out.write(json.dumps({"w": time.time(), "max_block_ms": round(worst * 1000, 1),
                                      "rss_kb": rss_kb()}) + "\n")
                worst, window_start = 0.0, time.monotonic()


def start_from_environment() -> asyncio.Task[None] | None:
    """The probe as a task when ``EMS_LOOP_PROBE`` is set (call with the loop running)."""
    target = os.environ.get(ENV)
    if not target:
        return None
    return asyncio.get_running_loop().create_task(probe(Path(target)), name="loop-probe")


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
