"""The `ems` command as a person runs it: check-config's messages, a clean SIGTERM stop, the demo's clock."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ems.cli import main
from tests.processes import running_demo


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


def _get_json(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=30) as response:  # the bound guards a hang only
        return json.loads(response.read())


def test_demo_starts_serves_and_stops_cleanly_on_sigterm(tmp_path):
    with running_demo(tmp_path / "data") as demo:  # waits for the demo to say it is ready
        while _get_json(demo.url + "/api/v1/health")["status"] != "ok":  # the meter link is healthy
            assert demo.proc.poll() is None, demo.stderr
            time.sleep(0.1)
        returncode = demo.stop()
        err = demo.stderr
    assert returncode == 0, err
    assert "Appliance stopped" in err
    assert "Traceback" not in err
    assert (tmp_path / "data" / "ems.db").exists()


def test_demo_runs_from_a_chosen_local_time_and_faster(tmp_path):
    with running_demo(tmp_path / "data", "--start", "2026-07-15T14:00", "--speed", "60") as demo:
        token = (tmp_path / "data" / "demo-api-token").read_text().strip()

        def last_interval() -> Any:
            return _get_json(demo.url + "/api/v1/meter", token)["meters"][0]["last_interval"]

        while last_interval() is None:
            assert demo.proc.poll() is None, demo.stderr
            time.sleep(0.1)
        start = datetime.fromisoformat(last_interval()["start"]).astimezone(ZoneInfo("America/Los_Angeles"))
        returncode = demo.stop()
        err = demo.stderr
    assert returncode == 0, err
    # The simulated meter's history ends at its own clock's now: the chosen afternoon, not today.
    assert start.date() == date(2026, 7, 15) and 13 <= start.hour <= 16, start
    assert "Demo time: from 2026-07-15T21:00+00:00, running 60x real time" in err  # 14:00 in Los Angeles


def test_demo_refuses_a_speed_that_is_not_ahead_and_a_start_that_is_no_time(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--speed", "0"])
    assert "--speed: expected a number above 0, found '0'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["demo", "--start", "teatime"])
    assert "--start: expected a date and time such as 2026-07-15T14:00, found 'teatime'" in capsys.readouterr().err
