"""The project's set-up: the Dockerfile installs exactly as the README says, CI runs make test,
and every install leaves compiled bytecode."""

from __future__ import annotations

import os
import re
import shutil
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
    assert docker[2] == readme[2]  # python -m compileall of what was installed


def test_the_container_install_leaves_bytecode_for_a_run_that_writes_none():
    """The image runs with PYTHONDONTWRITEBYTECODE: without bytecode written at install time,
    every start would compile the product's sources again (issue 12: +0.5 s to the first answer)."""
    assert re.search(r"^ENV .*PYTHONDONTWRITEBYTECODE=1", DOCKERFILE, re.M)
    docker = _docker_run_steps()
    install = next(i for i, step in enumerate(docker) if "pip install" in step)
    assert docker[install + 1] == "/opt/ems/bin/python -m compileall -q /opt/ems/lib"  # the venv's site-packages


def _makefile_compile_command() -> list[str]:
    """The venv target's compileall line, with the Makefile's variables filled in."""
    makefile = (REPO / "Makefile").read_text()
    packages = re.search(r"^PACKAGES := (.+)$", makefile, re.M).group(1).split()
    recipe = makefile.split("\n$(STAMP):", 1)[1].split("\n\n", 1)[0]
    line = next(line.strip() for line in recipe.splitlines() if "compileall" in line)
    assert line.startswith("$(BIN)/python -m compileall"), line
    command = [sys.executable]
    for arg in line.removeprefix("$(BIN)/python").split():
        command += packages if arg == "$(PACKAGES)" else [arg]
    return command


def test_make_venv_compiles_the_editable_checkout_so_a_start_compiles_nothing(tmp_path):
    """The Makefile's compile step, run on a copy of the product's packages: then an appliance started
    with bytecode writing disabled loads every product module from its bytecode, compiling none."""
    for package in ("ems", "integrations", "rules", "web"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(_makefile_compile_command(), cwd=tmp_path, check=True)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-v", "-c", "import ems.cli, ems.hub, web.app, integrations.zigbee_se.link"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    product = str(tmp_path)
    from_cache = [line for line in result.stderr.splitlines() if line.startswith(f"# code object from '{product}")]
    from_source = [line for line in result.stderr.splitlines() if line.startswith(f"# code object from {product}")]
    assert len(from_cache) > 50  # the appliance's modules, from their .pyc
    assert from_source == []


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
