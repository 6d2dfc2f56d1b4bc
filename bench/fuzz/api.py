"""The API target: schemathesis against the live appliance, with the owner's token and without any.

    python -m bench.fuzz.api --seconds 600 --work DIR

The appliance runs in this process as the end-to-end tests run it (``tests.e2e.conftest``: the
real hub, aiohttp server on a free port, SQLite file, zigpy over the virtual radio to the strict
simulated meter). schemathesis (``st run``, every check but two known exclusions, see
tests/web/test_openapi.py) spends half of ``--seconds`` with the owner's token and half without
one. The event loop is probed meanwhile (``ems.loop_probe``): ``max_loop_block_ms`` is how long the
appliance's loop was kept from running while it was fed. Each failing check of each operation is
one crash (from schemathesis' JUnit report); figures go to ``DIR/stats.json`` in the harness'
shape, so ``python -m bench.fuzz`` reports the ``api`` target like the others.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
ST = str(Path(sys.executable).parent / "st")
EXCLUDED = "unsupported_method,positive_data_acceptance"  # see tests/web/test_openapi.py


async def schemathesis(url: str, seconds: float, report_dir: Path, token: str | None) -> tuple[int, str]:
    """One ``st run`` against ``url`` for ``seconds``; (exit code, output)."""
    run = await asyncio.create_subprocess_exec(
        ST, "run", url + "/api/v1/openapi.json",
        *(["--header", f"Authorization: Bearer {token}", "--checks", "all", "--exclude-checks", EXCLUDED]
          if token else ["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
                                     "response_headers_conformance,response_schema_conformance"]),
        "--max-time", str(max(1, int(seconds))), "--workers", "1", "--no-shrink", "--continue-on-failure",
        "--request-timeout", "10", "--report", "junit,har", "--report-dir", str(report_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await run.communicate()
    return int(run.returncode or 0), output.decode(errors="replace")


def failures(report_dir: Path) -> dict[str, str]:
    """Each failing test case of the JUnit reports: operation -> the first line of its failure."""
    found: dict[str, str] = {}
    for path in sorted(report_dir.glob("*.xml")):
        for case in ET.parse(path).iter("testcase"):
            for failure in [*case.iter("failure"), *case.iter("error")]:
                text = (failure.get("message") or failure.text or "").strip().splitlines()
                found[f"{case.get('name')}: {text[0] if text else failure.tag}"[:200]] = (failure.text or "")[-3000:]
    return found


def in_flight(report_dirs: list[Path], at: float, window_s: float = 1.0) -> list[str]:
    """The requests (HAR entries) that overlapped the probe's window ending at ``at`` (epoch s),
    slowest first: what the appliance was answering when its loop stalled."""
    found = []
    for report_dir in report_dirs:
        for path in report_dir.glob("har-*.json"):
            for entry in json.loads(path.read_text()).get("log", {}).get("entries", []):
                start = datetime.fromisoformat(entry["startedDateTime"].replace("Z", "+00:00")).timestamp()
                end = start + entry.get("time", 0) / 1000
                if end >= at - window_s and start <= at:
                    found.append((entry.get("time", 0), f"{entry['request']['method']} {entry['request']['url']}"
                                                        f" {entry['response']['status']} in {entry.get('time', 0):.0f} ms"))
    return [text for _, text in sorted(found, reverse=True)]


def generated(output: str) -> int:
    """schemathesis' count of test cases ("715 generated, 715 passed")."""
    for line in output.splitlines():
        words = line.split()
        if len(words) > 1 and words[1].rstrip(",") == "generated" and words[0].isdigit():
            return int(words[0])
    return 0


async def main_async(seconds: float, work: Path) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from ems.loop_probe import probe
    from tests.e2e.conftest import running_appliance

    probe_path = work / "loop-probe.jsonl"
    kinds: collections.Counter[str] = collections.Counter()
    crashes: dict[str, dict[str, Any]] = {}
    runs = 0
    async with running_appliance(work / "appliance") as appliance:
        await appliance.online()
        task = asyncio.create_task(probe(probe_path))
        try:
            for who, token in (("owner", appliance.token), ("anonymous", None)):
                report_dir = work / f"schemathesis-{who}"
                code, output = await schemathesis(appliance.url, seconds / 2, report_dir, token)
                (work / f"schemathesis-{who}.txt").write_text(output)
                count = generated(output)
                runs += count
                found = failures(report_dir)
                kinds[f"{who}: {count} cases, exit {code}, {len(found)} failing"] += 1
                for name, text in found.items():
                    crashes[f"{who} {name}"] = {"count": 1, "input": str(work / f"schemathesis-{who}.txt"),
                                                "error": name, "traceback": text}
                if code != 0 and not found:
                    crashes[f"{who} st run exit {code}"] = {"count": 1, "input": str(work / f"schemathesis-{who}.txt"),
                                                            "error": output[-300:], "traceback": output[-3000:]}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    rows = [json.loads(line) for line in probe_path.read_text().splitlines() if line.strip()] \
        if probe_path.is_file() else []
    blocks = [row["max_block_ms"] for row in rows]
    dirs = [work / f"schemathesis-{who}" for who in ("owner", "anonymous")]
    for row in rows:
        if row["max_block_ms"] > 100:  # what was in flight (the machine's other load can stall it too)
            requests = in_flight(dirs, row["w"])
            kinds[f"loop stall {row['max_block_ms']:.0f} ms with {len(requests)} requests in flight: "
                  + "; ".join(requests[:3])] += 1
    return {"target": "api", "runs": runs, "seconds": seconds, "crashes": crashes, "slow": {},
            "kinds": dict(kinds), "max_ms": max(blocks, default=None), "max_loop_block_ms": max(blocks, default=None)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--crashes", type=Path, help="unused (the reports stay under --work)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    stats = asyncio.run(main_async(args.seconds, args.work))
    (args.work / "stats.json").write_text(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
