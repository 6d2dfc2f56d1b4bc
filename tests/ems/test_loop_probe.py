"""The loop probe says how long the loop was held, and by what (ems/loop_probe.py)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from pathlib import Path

from ems import loop_probe


def hold_the_loop_for(seconds: float) -> None:
    """A callback that keeps the loop busy (the stall the probe must see and name)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


async def test_a_stall_is_reported_with_the_function_that_held_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "probe.jsonl"
    task = asyncio.create_task(loop_probe.probe(path, report_s=0.2))
    await asyncio.sleep(0.05)
    hold_the_loop_for(0.12)
    await asyncio.sleep(0.3)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    worst = max(rows, key=lambda row: row["max_block_ms"])
    assert worst["max_block_ms"] >= 100
    assert "test_loop_probe:hold_the_loop_for" in worst["where"]
    assert worst["cpu_ms"] > 0  # the loop's own thread was busy (how much depends on the machine's load)


async def test_a_quiet_loop_names_nothing(tmp_path: Path) -> None:
    path = tmp_path / "probe.jsonl"
    task = asyncio.create_task(loop_probe.probe(path, report_s=0.1, where_after_ms=1000))
    await asyncio.sleep(0.35)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rows
    assert all("where" not in row for row in rows)
    assert all(row["rss_kb"] is None or row["rss_kb"] > 0 for row in rows)


async def test_a_garbage_collection_over_a_millisecond_is_reported_with_its_generation(tmp_path: Path) -> None:
    path = tmp_path / "probe.jsonl"
    task = asyncio.create_task(loop_probe.probe(path, report_s=0.1))
    await asyncio.sleep(0.02)
    cycles = []
    for _ in range(200_000):  # enough linked objects for a full collection to take over a millisecond
        cycle: list[object] = []
        cycle.append(cycle)
        cycles.append(cycle)
    del cycles
    gc.collect()
    await asyncio.sleep(0.25)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    collected = [row for row in rows if "gc_ms" in row]
    assert collected
    assert max(row["gc_ms"] for row in collected) >= 1.0
    assert any(row["gc_generation"] == 2 for row in collected)
