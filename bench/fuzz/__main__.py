"""Run every fuzz target for ``--seconds`` each, two at a time, and report (bench/soak.py's fuzz stage).

    python -m bench.fuzz [--seconds 600] [--work DIR] [--targets frames,rules] [--jobs 2]

Each target runs in its own process (``bench.fuzz.harness``, atheris; ``api`` is schemathesis
against the live appliance, ``bench.fuzz.api``, which also probes its event loop). Then each input the
instrumented run found slow is timed again without instrumentation (``retime`` below, its own
process): only an input still over 100 ms there is a slow input. Prints one line per target
(runs, crashes, slow inputs, the slowest input, rejections by kind), every crash with its saved
input and traceback, and last ``FUZZ-SUMMARY {json}`` (``crashes`` = distinct crashes + slow
inputs + runs that died, ``max_loop_block_ms`` = the appliance's longest loop stall under the
API fuzzing, ``targets`` = per-target figures) for bench/soak.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CRASHES = REPO / "bench" / "fuzz" / "crashes"
SLOW_MS = 100.0
API = "api"  # schemathesis against the live appliance (bench/fuzz/api.py), not an atheris harness


def run_targets(names: list[str], seconds: float, work: Path, jobs: int) -> dict[str, dict[str, Any]]:
    """Each target's harness, ``jobs`` at a time; returns each one's stats (plus its exit code)."""
    pending = list(names)
    running: dict[str, tuple[subprocess.Popen[bytes], Any]] = {}
    results: dict[str, dict[str, Any]] = {}
    while pending or running:
        while pending and len(running) < jobs:
            name = pending.pop(0)
            (work / name).mkdir(parents=True, exist_ok=True)
            log = (work / name / "harness.log").open("wb")
            command = ["bench.fuzz.api"] if name == API else ["bench.fuzz.harness", name]
            process = subprocess.Popen(
                [sys.executable, "-m", *command, "--seconds", str(seconds),
                 "--work", str(work / name), "--crashes", str(CRASHES)],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
            running[name] = (process, log)
        time.sleep(0.5)
        for name, (process, log) in list(running.items()):
            if process.poll() is None:
                continue
            log.close()
            del running[name]
            stats_path = work / name / "stats.json"
            stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {"runs": 0, "kinds": {}}
            stats["returncode"] = process.returncode
            results[name] = stats
    return results


def retime(name: str, files: list[str]) -> dict[str, float]:
    """Each input's fastest of three runs, in ms, uninstrumented (in this process)."""
    from bench.fuzz.targets import make

    target = make(name)
    times = {}
    for path in files:
        data = Path(path).read_bytes()
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            try:
                target.run(data)
            except Exception:  # noqa: BLE001 - a crash is counted by the harness
                pass
            best = min(best, (time.perf_counter() - started) * 1000)
        times[path] = round(best, 1)
    target.close()
    return times


def _retime_in_child(name: str, files: list[str]) -> dict[str, float]:
    if not files:
        return {}
    out = subprocess.run([sys.executable, "-m", "bench.fuzz", "--retime", name, *files],
                         capture_output=True, text=True, cwd=REPO, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("RETIME "):
            return {k: float(v) for k, v in json.loads(line[len("RETIME "):]).items()}
    raise RuntimeError(f"retiming {name} failed: {out.stderr[-2000:]}")


def main() -> int:
    from bench.fuzz.targets import TARGETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="per target")
    parser.add_argument("--work", type=Path, help="corpora, logs and stats (default: a temp folder)")
    parser.add_argument("--targets", help=f"comma-separated, of {', '.join([*TARGETS, API])} (default: all)")
    parser.add_argument("--jobs", type=int, default=2, help="targets at a time (this box has 2 cores)")
    parser.add_argument("--retime", nargs="+", metavar=("TARGET", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.retime:
        print("RETIME " + json.dumps(retime(args.retime[0], args.retime[1:])), flush=True)
        return 0
    known = [*TARGETS, API]
    names = args.targets.split(",") if args.targets else known
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(known)}")
    work = args.work or Path(tempfile.mkdtemp(prefix="ems-fuzz-"))
    CRASHES.mkdir(parents=True, exist_ok=True)
    print(f"fuzz: {', '.join(names)} for {args.seconds:g} s each, {args.jobs} at a time; work in {work}", flush=True)
    results = run_targets(names, args.seconds, work, args.jobs)
    total = 0
    summary: dict[str, Any] = {}
    for name in names:
        stats = results[name]
        candidates = {v["input"]: v for v in stats.get("slow", {}).values()} if name != API else {}
        times = _retime_in_child(name, list(candidates))
        slow = {path: ms for path, ms in times.items() if ms > SLOW_MS}
        crashes = stats.get("crashes", {})
        died = stats.get("returncode", 0) not in (0,)
        count = len(crashes) + len(slow) + (1 if died else 0)
        total += count
        kinds = {k: v for k, v in stats.get("kinds", {}).items() if not k.startswith(("SLOW ", "CRASH "))}
        rejected = {k: v for k, v in kinds.items() if " rejected" in k or k.startswith("rejected")}
        accepted = sum(v for k, v in kinds.items() if "accepted" in k)
        summary[name] = {"runs": stats.get("runs", 0), "seconds": stats.get("seconds"), "crashes": len(crashes),
                         "slow": len(slow), "died": died, "max_ms_instrumented": stats.get("max_ms"),
                         "accepted": accepted, "rejected": sum(rejected.values()), "rejected_kinds": len(rejected)}
        print(f"fuzz {name}: runs={stats.get('runs', 0)} seconds={stats.get('seconds')} crashes={len(crashes)}"
              f" slow={len(slow)} (of {len(candidates)} over {SLOW_MS:g} ms instrumented, retimed without)"
              f" exit={stats.get('returncode')} accepted={accepted} rejected={sum(rejected.values())}"
              f" in {len(rejected)} kinds"
              + (f" max_loop_block_ms={stats.get('max_loop_block_ms')}" if name == API else ""), flush=True)
        for kind, n in list(rejected.items() if name != API else kinds.items())[:12]:
            print(f"    {n:>9}  {kind}", flush=True)
        for sig, crash in crashes.items():
            print(f"  CRASH {name} x{crash['count']}: {sig}: {crash['input']}\n    {crash['error']}", flush=True)
            print("    " + crash["traceback"].strip().replace("\n", "\n    ")[-1500:], flush=True)
        for path, ms in slow.items():
            print(f"  SLOW {name}: {ms:.0f} ms uninstrumented: {path} ({candidates[path]['outcome']})", flush=True)
        if died:
            print(f"  DIED {name}: exit {stats.get('returncode')}; see {work / name / 'harness.log'}"
                  f" and {CRASHES}/{name}-* (libFuzzer's timeout-/oom-/crash- artifacts)", flush=True)
    block = results.get(API, {}).get("max_loop_block_ms")
    print("FUZZ-SUMMARY " + json.dumps({"crashes": total, "max_loop_block_ms": block, "targets": summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
