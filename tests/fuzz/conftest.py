"""Fixtures of the fuzz tests: one instance of each target per module (a target is set up once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.fuzz.targets import Config, Frames, GreenButton, Rules, Target


def _target(cls: type[Target]) -> Iterator[Target]:
    target = cls()
    yield target
    target.close()


@pytest.fixture(scope="module")
def frames() -> Iterator[Target]:
    yield from _target(Frames)


@pytest.fixture(scope="module")
def greenbutton() -> Iterator[Target]:
    yield from _target(GreenButton)


@pytest.fixture(scope="module")
def rules_target() -> Iterator[Target]:
    yield from _target(Rules)


@pytest.fixture(scope="module")
def config_target() -> Iterator[Target]:
    yield from _target(Config)
