"""Reports survive a kill: ``ems demo`` with an OpenADR program, in its own process, is killed
(SIGKILL: no shutdown at all) while the VTN refuses its reports; started again on the same data,
it delivers the report the VTN refused (under the id it was first sent with) and the ones queued
behind it, none twice."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.integrations.openadr.vtn import Vtn
from tests.processes import running_demo

CONFIG = Path(__file__).resolve().parents[2] / "config"
HANG_GUARD_S = 60.0


@pytest.fixture
async def vtn() -> AsyncIterator[Vtn]:
    server = Vtn(poll_s=1.0)
    await server.start()
    yield server
    await server.stop()


def program_config(folder: Path, vtn: Vtn) -> Path:
    folder.mkdir()
    for name in ("rates.yaml", "rules.yaml"):
        shutil.copy(CONFIG / name, folder / name)
    text = (CONFIG / "ems.yaml").read_text()
    (folder / "ems.yaml").write_text(text + f"\nopenadr:\n  vtn_url: {vtn.url}\n  ven_name: home\n  poll_interval_s: 1\n")
    return folder


async def until(predicate: Any, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + HANG_GUARD_S
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_reports_refused_before_a_kill_reach_the_vtn_once_after_the_restart(tmp_path: Path, vtn: Vtn) -> None:
    config = program_config(tmp_path / "config", vtn)
    refused: list[str] = []

    def refuse(payload: dict[str, Any]) -> None:
        refused.extend(r["report_id"] for r in payload.get("reports") or [])
        raise web.HTTPServiceUnavailable()

    record = vtn._update_report
    vtn._update_report = refuse  # type: ignore[method-assign]
    with running_demo(tmp_path / "data", "-c", str(config)) as demo:
        # The route's items wait behind its head (the VTN sees them in order): the first report is
        # tried again while the next ones, sampled each second, wait in the outbox.
        await until(lambda: len(refused) >= 2, "a report refused twice by the VTN")
        demo.proc.kill()  # no shutdown: what is not on disk is lost
        demo.proc.wait()
    assert set(refused) == {"home-1"}
    held = {"home-1", "home-2"}  # the refused one, and the next one, queued before the kill
    vtn._update_report = record  # type: ignore[method-assign]

    with running_demo(tmp_path / "data", "-c", str(config)):
        await until(lambda: held <= {r["report_id"] for r in vtn.seen.reports}, "the refused reports at the VTN")
    ids = [r["report_id"] for r in vtn.seen.reports]
    assert len(ids) == len(set(ids))  # none twice
