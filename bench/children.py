"""What the benchmarks that run the appliance as child processes share (soak, loop, footprint).

The children run this checkout's code: the venv's editable install may point at another checkout,
so each child gets the checkout first on PYTHONPATH.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child: this checkout's code, plus ``extra`` variables."""
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def stop_process(proc: subprocess.Popen[Any], timeout_s: float = 60.0) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout_s``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
