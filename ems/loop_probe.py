"""A probe of the event loop's responsiveness, for benches: how long the loop was kept from running.

A task asks to wake every ``interval_s``; how late it wakes is the longest time some callback
(or the garbage collector, or the machine) kept the loop busy. Once a second it appends one JSON
line to a file: the real time, the worst lateness of that second in milliseconds, the CPU time
the loop's thread spent over it (its own work, as against waiting for the machine) and the
process's resident memory (VmRSS, kB). ``ems run`` starts it when the environment variable
``EMS_LOOP_PROBE`` names the file (bench/soak.py and bench/loop.py read it); nothing else uses it.

What was running: a watchdog thread looks at the loop's heartbeat every few milliseconds; while
the loop is late by more than ``where_after_ms`` it samples the loop thread's stack
(``sys._current_frames``). The second's line then says, under ``"where"``, the stack seen most
often during its worst stall (innermost last, the product's own frames and the innermost one),
so a bench can name the callback that held the loop rather than guess from what was in flight;
``"gc_ms"`` is the longest garbage collection of the second (``gc.callbacks``), when one took 1 ms
or more.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path
from types import FrameType

ENV = "EMS_LOOP_PROBE"
OWN = ("/ems/", "/web/", "/integrations/", "/rules/")  # the product's packages, for the stack summary


def rss_kb() -> int | None:
    """This process's resident set size in kB (Linux /proc), None where it cannot be read."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def summarize(frame: FrameType | None, depth: int = 9) -> str:
    """A stack as ``module:function`` names, outermost first: the last ``depth`` of the product's
    own frames, then the innermost frame when it is someone else's (SQLAlchemy, yaml, json...)."""
    own: list[str] = []
    innermost = ""
    while frame is not None:
        code = frame.f_code
        name = f"{Path(code.co_filename).stem}:{code.co_name}"
        if not innermost:
            innermost = name
        if any(part in code.co_filename for part in OWN) and "loop_probe" not in code.co_filename:
            own.append(name)
            if len(own) >= depth:
                break
        frame = frame.f_back
    own.reverse()
    if innermost and (not own or own[-1] != innermost):
        own.append(innermost)
    return " > ".join(own) or "?"


class GcTimer:
    """The longest garbage collection since the last ``take()`` (``gc.callbacks``), with its generation."""

    def __init__(self) -> None:
        self._began = 0.0
        self.longest_s, self.generation = 0.0, -1

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif (took := time.perf_counter() - self._began) > self.longest_s:
            self.longest_s, self.generation = took, info.get("generation", -1)

    def take(self) -> tuple[float, int]:
        longest = self.longest_s, self.generation
        self.longest_s, self.generation = 0.0, -1
        return longest


class Watchdog:
    """Samples the loop thread's stack while the loop is late (a thread; ``beat()`` from the loop)."""

    def __init__(self, loop_thread: int, expected_s: float, where_after_s: float, poll_s: float = 0.005) -> None:
        self._loop_thread = loop_thread
        self._expected_s = expected_s
        self._where_after_s = where_after_s
        self._poll_s = poll_s
        self._beat = time.monotonic()
        self._samples: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loop-probe-watchdog", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(1.0)

    def beat(self) -> str | None:
        """The loop ran: the stall (if any) is over. Returns where the stall was spent, if sampled."""
        with self._lock:
            self._beat = time.monotonic()
            if not self._samples:
                return None
            where = self._samples.most_common(1)[0][0]
            self._samples.clear()
            return where

    def _run(self) -> None:
        while not self._stop.wait(self._poll_s):
            with self._lock:
                late = time.monotonic() - self._beat - self._expected_s
                if late < self._where_after_s:
                    continue
                frame = sys._current_frames().get(self._loop_thread)
                self._samples[summarize(frame)] += 1
                del frame


async def probe(path: Path, interval_s: float = 0.01, report_s: float = 1.0, where_after_ms: float = 15.0) -> None:
    """Run until cancelled, appending ``{"w", "max_block_ms", "cpu_ms", "process_cpu_ms", "rss_kb"[, "where"]}`` lines to ``path``.

    ``cpu_ms`` is the CPU time the loop's own thread used over the worst late wake-up: close to
    ``max_block_ms`` when the loop's own work held it, far below it when the loop was kept waiting.
    ``process_cpu_ms`` is the whole process's (every thread) over the same span: near the stall
    with little ``cpu_ms``, another of its threads held the GIL (an executor's pure-Python work);
    both small, the machine gave the process no core (other processes on a busy machine).
    """
    watchdog = Watchdog(threading.get_ident(), interval_s, where_after_ms / 1000)
    watchdog.start()
    collections_timer = GcTimer()
    gc.callbacks.append(collections_timer)
    worst, worst_cpu, worst_proc, worst_where = 0.0, 0.0, 0.0, None
    window_start = time.monotonic()
    try:
        with path.open("a", buffering=1) as out:
            while True:
                before, cpu_before, proc_before = time.monotonic(), time.thread_time(), time.process_time()
                await asyncio.sleep(interval_s)
                late = time.monotonic() - before - interval_s
                cpu, proc = time.thread_time() - cpu_before, time.process_time() - proc_before
                where = watchdog.beat()
                if late > worst:
                    worst, worst_cpu, worst_proc, worst_where = late, cpu, proc, where
                if time.monotonic() - window_start >= report_s:
                    row: dict[str, object] = {"w": time.time(), "max_block_ms": round(worst * 1000, 1),
                                              "cpu_ms": round(min(worst_cpu, worst + interval_s) * 1000, 1),
                                              "process_cpu_ms": round(worst_proc * 1000, 1),
                                              "rss_kb": rss_kb()}
                    if worst_where is not None:
                        row["where"] = worst_where
                    gc_s, generation = collections_timer.take()
                    if gc_s >= 0.001:
                        row["gc_ms"], row["gc_generation"] = round(gc_s * 1000, 1), generation
                    out.write(json.dumps(row) + "\n")
                    worst, worst_cpu, worst_proc, worst_where, window_start = 0.0, 0.0, 0.0, None, time.monotonic()
    finally:
        gc.callbacks.remove(collections_timer)
        watchdog.stop()


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
