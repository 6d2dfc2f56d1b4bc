"""How quickly `ems demo` answers its page, and how much memory it holds after running a while.

Starts `ems demo` on a free port with a fresh data folder, times from process start until
GET / answers 200, lets it run for N minutes against the simulated meter (page and WebSocket
idle, meter reporting), then reads its resident memory.

    python bench/footprint.py [--minutes N]
Last line: startup_s=.. rss_mb=..
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=5.0)
    args = parser.parse_args()
    port = free_port()
    ems = Path(sys.executable).parent / "ems"
    with tempfile.TemporaryDirectory() as data:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(ems), "demo", "--port", str(port), "--data-dir", data],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"ems demo exited with {proc.returncode} before answering")
                try:
                    with urllib.request.urlopen(url, timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    time.sleep(0.01)
            startup_s = time.perf_counter() - started
            print(f"`ems demo` answered GET / {startup_s:.2f} s after the process started.")
            print(f"Letting it run {args.minutes:g} minute(s) against the simulated meter...")
            deadline = time.monotonic() + args.minutes * 60
            peak = 0.0
            while time.monotonic() < deadline:
                time.sleep(min(5.0, max(0.0, deadline - time.monotonic())))
                rss = psutil.Process(proc.pid).memory_info().rss / 2**20
                peak = max(peak, rss)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as response:
                health = response.read().decode()
            rss_mb = psutil.Process(proc.pid).memory_info().rss / 2**20
            print(f"Resident memory after {args.minutes:g} min: {rss_mb:.1f} MB (peak seen {peak:.1f} MB).")
            print(f"Health then: {health}")
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    print(f"startup_s={startup_s:.2f} rss_mb={rss_mb:.1f}")


if __name__ == "__main__":
    main()
