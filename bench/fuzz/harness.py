"""One atheris (libFuzzer, coverage-guided) run of one target for a number of seconds.

    python -m bench.fuzz.harness TARGET --seconds 600 --work DIR [--crashes DIR]

The appliance's packages are instrumented for coverage. Every input goes to
``bench.fuzz.targets`` and is timed; the harness catches a crash itself (so the run goes on and
finds more), keeps one input per distinct crash (exception type and the innermost frame of the
appliance's code) under ``--crashes`` as ``<target>-<sig>.bin`` with its traceback beside it as
``.txt``, and counts every outcome by kind. An input that takes more than ``SLOW_MS`` is run
twice more; if the fastest of the three is still over, it is a slow input (kept and counted like a
crash: on the event loop it would block the appliance). A real hang is libFuzzer's ``-timeout``
(an artifact ``<target>-timeout-…`` under ``--crashes``, and a non-zero exit). Figures go to
``DIR/stats.json`` every second and at the end.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import atheris

REPO = Path(__file__).resolve().parents[2]
SLOW_MS = 100.0
INSTRUMENTED = ["ems", "rules", "integrations", "yaml", "voluptuous"]  # not zigpy: 4x slower, and its code is not ours
MAX_LEN = {"frames": 256, "greenbutton": 16384, "rules": 4096, "config": 8192}


def signature(err: BaseException) -> str:
    """Exception type and the innermost frame in the appliance's own code (what tells crashes apart)."""
    chain = err.__cause__ or err
    frames = traceback.extract_tb(chain.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(REPO)) and "/bench/" not in f.filename]
    where = ours[-1] if ours else (frames[-1] if frames else None)
    place = f"{Path(where.filename).relative_to(REPO) if where.filename.startswith(str(REPO)) else where.filename}:{where.lineno}" \
        if where else "?"
    return f"{type(chain).__name__} at {place}"


class Stats:
    """The run's figures, written to ``stats.json``."""

    def __init__(self, target: str, path: Path, crashes: Path) -> None:
        self.target = target
        self.path = path
        self.crashes_dir = crashes
        self.runs = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self.crashes: dict[str, dict[str, Any]] = {}
        self.slow: dict[str, dict[str, Any]] = {}
        self.max_ms = 0.0
        self.started = time.monotonic()
        self._written = 0.0

    def _keep(self, prefix: str, data: bytes, text: str) -> str:
        digest = hashlib.sha1(data).hexdigest()[:12]
        base = self.crashes_dir / f"{self.target}-{prefix}-{digest}"
        base.with_suffix(".bin").write_bytes(data)
        base.with_suffix(".txt").write_text(text)
        return str(base.with_suffix(".bin"))

    def crash(self, data: bytes, err: BaseException) -> None:
        sig = signature(err)
        self.kinds["CRASH " + sig] += 1
        if sig in self.crashes:
            self.crashes[sig]["count"] += 1
            return
        text = "".join(traceback.format_exception(err))
        path = self._keep("crash", data, f"{sig}\n\n{text}")
        self.crashes[sig] = {"count": 1, "input": path, "error": f"{type(err).__name__}: {err}"[:300],
                             "traceback": text[-3000:]}
        print(f"\nFUZZ-CRASH {self.target}: {sig}: {path}\n{text}", file=sys.stderr, flush=True)

    def slow_input(self, data: bytes, ms: float, outcome: str) -> None:
        key = outcome[:60]
        self.kinds["SLOW " + key] += 1
        if key in self.slow:
            self.slow[key]["count"] += 1
            self.slow[key]["ms"] = max(self.slow[key]["ms"], ms)
            return
        path = self._keep("slow", data, f"{ms:.0f} ms (fastest of three runs): {outcome}\n")
        self.slow[key] = {"count": 1, "input": path, "ms": round(ms, 1), "outcome": outcome}
        print(f"\nFUZZ-SLOW {self.target}: {ms:.0f} ms: {outcome}: {path}", file=sys.stderr, flush=True)

    def write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < 1.0:
            return
        self._written = now
        figures = {"target": self.target, "runs": self.runs, "seconds": round(now - self.started, 1),
                   "max_ms": round(self.max_ms, 1), "crashes": self.crashes, "slow": self.slow,
                   "kinds": dict(self.kinds.most_common())}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(figures, indent=1))
        os.replace(tmp, self.path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--work", type=Path, required=True, help="corpus and stats.json go here")
    parser.add_argument("--crashes", type=Path, default=REPO / "bench" / "fuzz" / "crashes")
    args, rest = parser.parse_known_args()
    args.work.mkdir(parents=True, exist_ok=True)
    args.crashes.mkdir(parents=True, exist_ok=True)
    corpus, seeds = args.work / "corpus", args.work / "seeds"
    corpus.mkdir(exist_ok=True)
    seeds.mkdir(exist_ok=True)

    with atheris.instrument_imports(include=INSTRUMENTED):
        from bench.fuzz import targets
        target = targets.make(args.target)
        for i, seed in enumerate(target.seeds()):
            (seeds / f"seed-{i}").write_bytes(seed)
            # Warm up (the first run is not timed), inside the block: a target imports the code it
            # drives on its first run, and only what is imported here is instrumented for coverage.
            _safe(target, seed)
    stats = Stats(args.target, args.work / "stats.json", args.crashes)
    deadline = time.monotonic() + args.seconds

    def one(data: bytes) -> None:
        if time.monotonic() >= deadline:
            stats.write(force=True)
            target.close()
            os._exit(0)  # libFuzzer has no clean stop; the figures are written
        stats.runs += 1
        started = time.perf_counter()
        try:
            outcome = target.run(data)
        except Exception as err:  # noqa: BLE001 - a crash: kept and counted, the run goes on
            stats.crash(data, err)
            outcome = None
        ms = (time.perf_counter() - started) * 1000
        if ms > SLOW_MS:
            ms = min(ms, *(_timed(target, data) for _ in range(2)))  # not the machine's hiccup
            if ms > SLOW_MS:
                stats.slow_input(data, ms, outcome or "crash")
        stats.max_ms = max(stats.max_ms, ms)
        if outcome is not None:
            stats.kinds[outcome] += 1
        stats.write()

    words = target.words()
    dictionary = []
    if words:  # libFuzzer's dictionary format: one quoted token a line, bytes escaped as \xNN
        (args.work / "dict.txt").write_text("".join(
            '"' + "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\' else f"\\x{b:02x}" for b in w) + '"\n'
            for w in words))
        dictionary = [f"-dict={args.work / 'dict.txt'}"]
    atheris.Setup([sys.argv[0], str(corpus), str(seeds), *dictionary, f"-max_total_time={int(args.seconds) + 60}",
                   "-timeout=10", f"-max_len={MAX_LEN.get(args.target, 4096)}", "-rss_limit_mb=1536",
                   f"-artifact_prefix={args.crashes}/{args.target}-", "-print_final_stats=1", *rest], one)
    atheris.Fuzz()
    return 0


def _safe(target: Any, data: bytes) -> str | None:
    try:
        return str(target.run(data))
    except Exception:  # noqa: BLE001 - only warming up; the fuzz run reports it
        return None


def _timed(target: Any, data: bytes) -> float:
    started = time.perf_counter()
    _safe(target, data)
    return (time.perf_counter() - started) * 1000


if __name__ == "__main__":
    sys.exit(main())
