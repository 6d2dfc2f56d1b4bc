"""The customer's rules file: read, validated, replaced atomically, and handed to the control cycle.

The rule engine itself (``rules/``) is pure; the composition root hands its functions in, so the
core never imports it. An edit from the Rules page or the API is validated first and written
with a temporary file, fsync and rename, so a crash leaves the old file or the new one, never half.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ems.errors import ConfigError
from ems.model import DevicePreference, Proposal, Snapshot

_LOGGER = logging.getLogger(__name__)

Parse = Callable[..., Any]  # (text, source, known_devices) -> RuleSet; raises ConfigError
Evaluate = Callable[[Any, Snapshot], list[Proposal]]
Check = Callable[[Any], list[str]]


class RuleBook:
    """The rules in force, from one YAML file."""

    def __init__(self, path: Path, parse: Parse, evaluate: Evaluate, check: Check) -> None:
        self.path = Path(path)
        self._parse = parse
        self._evaluate = evaluate
        self._check = check
        self.ruleset: Any = None
        self.text = ""
        self.warnings: list[str] = []
        self.problems: list[str] = []  # why the file on disk is not in force (shown on the page)

    def load(self) -> None:
        """Read the file; a missing file means no rules, a bad one keeps none and says why."""
        if not self.path.exists():
            self.text, self.ruleset = "", self._parse("", str(self.path))
            return
        text = self.path.read_text(encoding="utf-8")
        try:
            self.ruleset = self._parse(text, str(self.path))
        except ConfigError as err:
            self.problems = err.problems
            _LOGGER.error("Rules in %s are not valid; no rules are in force:\n  %s", self.path,
                          "\n  ".join(err.problems))
            self.ruleset = self._parse("", str(self.path))
        self.text = text
        self.warnings = self._check(self.ruleset)

    async def validate(self, text: str, known_devices: Sequence[str] | None = None) -> tuple[Any, list[str]]:
        """Parse ``text`` as a rules file: the rule set and its warnings, or ConfigError.

        The text comes from a page or the API; parsing it runs in a thread so a large or hostile
        document (bounded by ems.config's YAML limits) never holds up the meter link or the cycle.
        """
        return await asyncio.to_thread(self._validate, text, known_devices)

    def _validate(self, text: str, known_devices: Sequence[str] | None) -> tuple[Any, list[str]]:
        ruleset = self._parse(text, self.path.name, known_devices)
        return ruleset, self._check(ruleset)

    async def replace(self, text: str, known_devices: Sequence[str] | None = None) -> list[str]:
        """Validate and put ``text`` in force (and on disk); returns the warnings."""
        ruleset, warnings = await self.validate(text, known_devices)
        await asyncio.to_thread(_write_atomically, self.path, text)
        self.ruleset, self.text, self.warnings, self.problems = ruleset, text, warnings, []
        _LOGGER.info("Rules replaced (%d warning%s)", len(warnings), "" if len(warnings) == 1 else "s")
        return warnings

    def evaluate(self, snapshot: Snapshot) -> list[Proposal]:
        return self._evaluate(self.ruleset, snapshot) if self.ruleset is not None else []

    def preferences(self) -> tuple[DevicePreference, ...]:
        return tuple(getattr(self.ruleset, "preferences", ()) or ())


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
