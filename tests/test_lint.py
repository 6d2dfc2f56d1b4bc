"""House rules that tools check: ruff (incl. ASYNC, DTZ, G, T20, B904) and mypy on the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

BIN = Path(sys.executable).parent


def test_ruff_finds_nothing():
    result = subprocess.run([str(BIN / "ruff"), "check", "ems", "integrations", "rules", "web", "tests", "bench"],
                            cwd=REPO, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_mypy_type_checks_the_core_and_the_rules():
    result = subprocess.run([str(BIN / "mypy"), "--no-incremental", "ems", "rules"],
                            cwd=REPO, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stdout
