"""The project's set-up: the Dockerfile installs exactly as the README says, CI runs make test."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
README = (REPO / "README.md").read_text()


def _readme_install_steps() -> list[str]:
    section = README.split("## Install by hand", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def _docker_run_steps() -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^RUN (.+)$", DOCKERFILE, re.M)]


def test_dockerfile_install_steps_are_the_readmes():
    readme = _readme_install_steps()
    docker = _docker_run_steps()
    assert docker[0] == readme[0]  # python -m venv /opt/ems
    assert docker[1] == readme[1]  # pip install .


def test_dockerfile_runs_the_appliance_as_a_non_root_user_with_volumes_and_healthcheck():
    assert DOCKERFILE.startswith("#") and "FROM python:3.11-slim" in DOCKERFILE
    assert re.search(r"^USER ems$", DOCKERFILE, re.M)
    assert 'VOLUME ["/config", "/data"]' in DOCKERFILE
    assert "/api/v1/health" in DOCKERFILE.split("HEALTHCHECK", 1)[1]
    cmd = re.search(r"^CMD (.+)$", DOCKERFILE, re.M).group(1)
    assert cmd.startswith('["ems", "run", "-c", "/config"')


def test_readme_shows_the_two_commands_and_ci_calls_make_test():
    assert "make demo" in README and "make test" in README
    assert "make test" in (REPO / ".ci" / "run").read_text()


def test_console_script_is_ems():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["ems"] == "ems.cli:main"
    assert project["requires-python"] == ">=3.11"


def test_import_direction_holds():
    """integrations, rules and web import ems; ems imports none of them (but ems.cli)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports)], cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
