"""The meter bridges and the 2030.5 meter, each measured the way issue 16 asks, one after another.

    python bench/bridges.py [--only emu2,eagle,ieee2030_5]

For each source the whole appliance runs with its real web server, reading the simulated device over
its real transport (a pseudo-terminal for the EMU-2, HTTP for the EAGLE, mutual TLS for 2030.5):

- ``emu2_p99_ms``: a fragment written on the serial line -> its value on the dashboard's WebSocket;
- ``eagle_p99_ms``, ``ieee2030_5_p99_ms``: the poll's or read's response arriving -> the WebSocket;
- ``recovery_s``: the worst of the three, from the stalled device answering again to the link
  back online (each bench's own figure is printed on its line).

Targets: p99 < 100 ms each; recovery within 60 s. Each source's own bench (``bench/bridges_<kind>.py``)
has more options (its fault soak). Last line: ``emu2_p99_ms=.. eagle_p99_ms=.. ieee2030_5_p99_ms=.. recovery_s=..``
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

KINDS = ("emu2", "eagle", "ieee2030_5")


def _p99(kind: str, figures: dict[str, Any]) -> float:
    for key in (f"{kind}_p99_ms", "p99_ms"):
        if key in figures:
            return float(figures[key])
    raise KeyError(f"bench/bridges_{kind}.py gave no p99: {sorted(figures)}")


async def run(kinds: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    recovery = 0.0
    for kind in kinds:
        module = importlib.import_module(f"bench.bridges_{kind}")
        figures = await module.measure()
        p99, back = _p99(kind, figures), float(figures["recovery_s"])
        print(f"{kind}: p99 {p99:.2f} ms, recovery {back:.1f} s ({', '.join(f'{k}={v}' for k, v in figures.items())})",
              flush=True)
        out[f"{kind}_p99_ms"] = p99
        recovery = max(recovery, back)
    out["recovery_s"] = recovery
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(KINDS), help=f"comma-separated, of {', '.join(KINDS)}")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.only.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        parser.error(f"unknown source(s): {', '.join(unknown)}")
    figures = asyncio.run(run(kinds))
    print(" ".join(f"{key}={value:.2f}" if key.endswith("_ms") else f"{key}={value:.1f}"
                   for key, value in figures.items()))


if __name__ == "__main__":
    main()
