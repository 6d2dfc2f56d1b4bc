"""docs/security.md cannot rot: every test it names exists and is collected, and every threat it
lists names at least one test (issue 11: "write the threat model ... and test each line of it")."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "security.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")
ATTACKERS = ("A neighbour on the HAN", "A device or a person on the home LAN",
             "A third party with a token", "A stolen display link")


def _references(text: str) -> set[tuple[str, str]]:
    return set(REFERENCE.findall(text))


def _collected(files: list[str]) -> set[tuple[str, str]]:
    """The (file, test name) pairs pytest collects from ``files`` (parameters dropped)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pairs = set()
    for line in result.stdout.splitlines():
        match = re.match(r"^(tests/[\w/]+\.py)::(?:\w+::)?(\w+)", line)
        if match:
            pairs.add((match.group(1), match.group(2)))
    return pairs


def test_every_test_the_threat_model_names_is_collected() -> None:
    named = _references(DOC.read_text(encoding="utf-8"))
    assert len(named) >= 40, "the threat model names its tests as `tests/...py::test_name`"

    collected = _collected(sorted({file for file, _ in named}))

    missing = sorted(f"{file}::{name}" for file, name in named - collected)
    assert not missing, f"docs/security.md names tests that do not exist (renamed? removed?): {missing}"


def test_every_attacker_is_covered_and_every_threat_names_a_test() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = re.split(r"^### ", text, flags=re.M)[1:]
    titles = [s.splitlines()[0] for s in sections]
    assert [t for t in titles if t.startswith(ATTACKERS)] and all(
        any(t.startswith(a) for t in titles) for a in ATTACKERS), titles
    for section in sections:
        rows = [line for line in section.splitlines()
                if line.startswith("| ") and not line.startswith(("| Threat", "|---"))]
        assert rows, section.splitlines()[0]
        for row in rows:
            assert _references(row.split("|")[-2]), f"no test named for: {row[:100]}"
