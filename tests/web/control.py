"""A rule book with no rules, for web tests that need the demand-response component but no rule engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class NoRules:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = ""
        self.ruleset: Any = None
        self.warnings: list[str] = []
        self.problems: list[str] = []

    def load(self) -> None:
        return None

    def evaluate(self, _snapshot: Any) -> list[Any]:
        return []

    def preferences(self) -> tuple[Any, ...]:
        return ()
