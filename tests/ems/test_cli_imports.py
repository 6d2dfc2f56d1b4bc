"""Each `ems` command imports what it needs when it runs: `ems --help` and `ems check-config`
answer in a blink (issue 12: at most 0.3 s) because neither loads the appliance.

Each case runs the command in a fresh interpreter (``python -m ems``, this checkout's code) and
reads ``sys.modules`` as the command ends: an import made anywhere on the way is seen.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import REPO

# What the appliance needs to run, not to parse its arguments or check its configuration.
HEAVY = ("zigpy", "sqlalchemy", "numpy", "aiohttp", "cryptography", "jsonschema", "apscheduler", "jinja2")

PROBE = """
import atexit, json, sys
atexit.register(lambda: print("MODULES " + json.dumps(sorted(sys.modules)), file=sys.stderr))
sys.argv = ["ems", *sys.argv[1:]]
import runpy
runpy.run_module("ems", run_name="__main__", alter_sys=True)
"""


def modules_after(*argv: str) -> tuple[int, str, set[str]]:
    """Run ``python -m ems ARGV``; its exit code, output and every module it imported."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO, env=env, capture_output=True,
                            text=True, check=False)
    line = next(line for line in result.stderr.splitlines() if line.startswith("MODULES "))
    return result.returncode, result.stdout, set(json.loads(line.removeprefix("MODULES ")))


def packages(modules: set[str]) -> set[str]:
    return {name.split(".", 1)[0] for name in modules}


def test_help_lists_the_commands_without_importing_the_appliance():
    code, out, modules = modules_after("--help")
    assert code == 0
    for command in ("run", "demo", "check-config", "simulate-meter", "import"):
        assert command in out
    assert packages(modules).isdisjoint(HEAVY), sorted(packages(modules) & set(HEAVY))
    assert not {"ems.hub", "ems.store", "ems.model", "integrations", "web", "holidays"} & modules


def test_a_commands_help_does_not_import_the_appliance_either():
    code, out, modules = modules_after("run", "--help")
    assert code == 0 and "--data-dir" in out
    assert packages(modules).isdisjoint(HEAVY)


def test_check_config_loads_the_schemas_and_one_holiday_calendar_only():
    """The default configuration's rate plan has US/California holidays: checking it imports the
    `holidays` library's United States module, not every country's (302 modules)."""
    code, out, modules = modules_after("check-config")
    assert code == 0 and "configuration is valid" in out
    assert packages(modules).isdisjoint(HEAVY), sorted(packages(modules) & set(HEAVY))
    assert "ems.hub" not in modules and "web" not in packages(modules)
    assert "integrations.zigbee_se" in modules  # its section's schema is checked...
    assert "integrations.zigbee_se.link" not in modules  # ... without its link to the meter
    countries = {name for name in modules if name.startswith("holidays.countries.")}
    assert countries == {"holidays.countries.united_states"}


def test_python_dash_m_ems_is_the_ems_command():
    result = subprocess.run([sys.executable, "-m", "ems", "check-config", "-c", str(REPO / "config")], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout
