"""The `ems` command as a person runs it: check-config's messages, and a clean SIGTERM stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ems.cli import main

EMS = str(Path(sys.executable).parent / "ems")


def test_check_config_accepts_the_default_configuration(capsys):
    assert main(["check-config"]) == 0
    assert "configuration is valid" in capsys.readouterr().out


def test_check_config_names_file_line_and_key_path_of_every_problem(tmp_path, capsys):
    (tmp_path / "ems.yaml").write_text("web:\n  port: nine\nzigbee_se:\n  radio:\n    type: usb-stick\n")
    assert main(["check-config", "-c", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'ems.yaml'}:2: web.port:" in err
    assert f"{tmp_path / 'ems.yaml'}:5: zigbee_se.radio.type: expected one of virtual, ezsp, znp, deconz" in err
    assert "found 'usb-stick'" in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_demo_starts_serves_and_stops_cleanly_on_sigterm(tmp_path):
    port = _free_port()
    proc = subprocess.Popen([EMS, "demo", "--port", str(port), "--data-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "default"})
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1) as r:
                    if b'"ok"' in r.read():
                        break
            except OSError:
                pass
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "demo never reported a healthy meter link"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Appliance stopped" in err
    assert "Traceback" not in err
    assert (tmp_path / "ems.db").exists()
