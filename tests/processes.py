"""``ems demo`` as a person starts it, in its own process, for the tests of the command itself.

A test waits for what the demo says (its "Dashboard: URL" line, printed once it has started),
never for a number of seconds: a busy machine is slow, not broken. The suite's own timeout
(pytest-timeout) is what ends a demo that hangs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

EMS = str(Path(sys.executable).parent / "ems")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Demo:
    proc: subprocess.Popen[str]
    url: str
    stderr_path: Path

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stop(self) -> int:
        """SIGTERM, as systemd stops it, and wait for it to end (its exit code)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait()


@contextlib.contextmanager
def running_demo(data_dir: Path, *args: str) -> Iterator[Demo]:
    """``ems demo`` on a free port with ``data_dir``, once it says it is ready; killed if still running after."""
    port = free_port()
    stderr_path = data_dir.parent / f"{data_dir.name}-stderr.log"
    with stderr_path.open("w") as stderr:  # a file, not a pipe: a full pipe would block the demo
        proc = subprocess.Popen([EMS, "demo", "--port", str(port), "--data-dir", str(data_dir), *args],
                                stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ, "PYTHONWARNINGS": "default"})
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # ends when the demo exits
            if line.startswith("Dashboard: "):
                break
        else:
            proc.wait()
            raise AssertionError(f"ems demo ended ({proc.returncode}) before it was ready:\n"
                                 f"{stderr_path.read_text()}")
        yield Demo(proc, f"http://127.0.0.1:{port}", stderr_path)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
