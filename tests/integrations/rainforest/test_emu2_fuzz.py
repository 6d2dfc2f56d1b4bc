"""A short, repeatable run of the ``emu2`` fuzz target (bench/fuzz/targets_emu2.py): any bytes off the
serial line, and the real fragments cut, spliced and corrupted, are handled or refused, never a crash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz.targets import make
from bench.fuzz.targets_emu2 import SEED_STREAM

SHORT = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def target() -> Iterator:
    emu2 = make("emu2")
    yield emu2
    emu2.close()


def kind(outcome: str) -> str:
    assert "accepted" in outcome or "rejected" in outcome, outcome
    return outcome


def test_the_seeds_are_accepted(target):
    for seed in target.seeds():
        assert target.run(seed).startswith("accepted"), seed[:40]
    assert "PriceSignal" in target.run(b"\x00" + SEED_STREAM)


@SHORT
@given(data=st.binary(max_size=400))
def test_any_bytes_off_the_serial_line(target, data):
    kind(target.run(data))


@SHORT
@given(size=st.integers(0, 255), cuts=st.lists(st.integers(0, len(SEED_STREAM)), min_size=2, max_size=6),
       junk=st.binary(max_size=8))
def test_real_fragments_cut_and_spliced_with_junk(target, size, cuts, junk):
    cuts = sorted(cuts)
    pieces = [SEED_STREAM[a:b] for a, b in zip(cuts, cuts[1:], strict=False)]
    kind(target.run(bytes([size]) + junk.join(pieces)))


@SHORT
@given(value=st.sampled_from([b"0x", b"0xffffffff", b"0x80000000", b"0xffffff", b"-1", b"1e9", b"0x0", b"",
                              b"\xff\xfe", b"&bogus;", b"0x" + b"f" * 20, b"NaN"]),
       field=st.sampled_from([b"Demand", b"Divisor", b"Multiplier", b"SummationDelivered", b"Price",
                              b"TrailingDigits", b"TimeStamp", b"Id", b"Threshold1", b"Duration", b"MeterMacId"]))
def test_every_field_with_boundary_and_foreign_values(target, value, field):
    import re

    stream = re.sub(b"<" + field + b">[^<]*</" + field + b">", b"<" + field + b">" + value.replace(b"\\", b"") +
                    b"</" + field + b">", SEED_STREAM)
    kind(target.run(b"\x07" + stream))
