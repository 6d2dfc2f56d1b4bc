"""A short, repeatable run of the 2030.5 fuzz target (bench/fuzz/targets_ieee2030_5.py): nothing crashes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz.targets import Target, make

SHORT = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    made = make("ieee2030_5")
    yield made
    made.close()


def test_every_resource_the_simulated_meter_serves_is_accepted(target) -> None:
    seeds = target.seeds()
    assert len(seeds) >= 15
    assert all(target.run(seed).startswith("accepted") for seed in seeds)


@st.composite
def mutated(draw, seeds: list[bytes], words: list[bytes]) -> bytes:
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.integers(0, 3))
        if op == 0:
            data[at:at + draw(st.integers(1, 12))] = b""
        elif op == 1:
            data[at:at] = draw(st.sampled_from(words))
        elif op == 2:
            data[at:at + draw(st.integers(1, 8))] = str(draw(st.sampled_from(
                [0, -1, 255, 2**31, 2**47, -(2**63), 10**20, 3600]))).encode()
        else:
            data[at:at] = draw(st.binary(max_size=4))
    return bytes(data)


def test_mutated_resources_are_accepted_or_refused_with_a_reason(target) -> None:
    seeds, words = target.seeds(), target.words()

    @SHORT
    @given(mutated(seeds, words))
    def run(data: bytes) -> None:
        outcome = target.run(data)
        assert outcome.startswith(("accepted", "rejected: ")), outcome

    run()


@SHORT
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(target, data: bytes) -> None:
    outcome = target.run(data)
    assert outcome.startswith(("accepted", "rejected: ")), outcome
