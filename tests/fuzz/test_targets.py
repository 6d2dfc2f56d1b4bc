"""A short, repeatable run of every fuzz target (bench/fuzz): nothing crashes, every refusal is explained.

The long coverage-guided runs are atheris's (``python -m bench.fuzz``, bench/soak.py's fuzz
stage); these are hypothesis's, derandomized so that CI sees the same inputs every time. Each
target raises on a crash (an exception other than its documented refusal, an ERROR logged with a
traceback, a broken invariant), so a test only has to run it and check the outcome is a kind.
Structured inputs (YAML documents made of the real files' keys and values, CSV rows of the real
file's cells) reach past the parsers into the schemas, where random bytes rarely go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.fuzz.targets import REPO

SHORT = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def vocabulary(path: Path) -> tuple[list[Any], list[Any]]:
    """The keys and the scalar values a real file uses (what a structured input is made of)."""
    keys: set[Any] = set()
    values: set[Any] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                keys.add(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif node is not None:
            values.add(node)

    walk(yaml.safe_load(path.read_text()))
    return sorted(keys, key=repr), sorted(values, key=repr)


def documents(path: Path) -> st.SearchStrategy[bytes]:
    """YAML documents of ``path``'s keys and values, nested a few levels, plus a few odd scalars."""
    keys, values = vocabulary(path)
    scalars = st.one_of(st.sampled_from(values), st.integers(-10**6, 10**9), st.floats(allow_nan=True),
                        st.booleans(), st.none(), st.text(max_size=12))
    tree = st.recursive(scalars, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(keys), children, max_size=5)),
        max_leaves=25)
    top = st.dictionaries(st.sampled_from(keys), tree, max_size=6)
    return top.map(lambda doc: yaml.safe_dump(doc, allow_unicode=True).encode())


def kind(outcome: str) -> str:
    assert isinstance(outcome, str) and outcome, outcome
    assert "accepted" in outcome or "rejected" in outcome, outcome
    return outcome


# --- frames ---------------------------------------------------------------------------------


@SHORT
@given(data=st.binary(max_size=160))
def test_any_bytes_through_the_radio_path_are_handled_or_refused(frames, data):
    kind(frames.run(data))


@SHORT
@given(row=st.integers(0, 11), flags=st.integers(0, 7), tsn=st.integers(0, 255),
       words=st.lists(st.sampled_from([0, 1, 0xFF, 0xFFFF, 0xFFFFFF, 0xFFFFFFFF, 0x80000000, 60, 1440]), max_size=24))
def test_every_frame_handler_takes_boundary_values(frames, row, flags, tsn, words):
    """Each HANDLERS row with a payload of 32-bit boundary words (times, ids, durations at their limits)."""
    payload = b"".join(w.to_bytes(4, "little") for w in words)
    kind(frames.run(bytes([row % len(frames.names), flags, tsn]) + payload))


# --- Green Button ---------------------------------------------------------------------------


CSV = (REPO / "tests" / "ems" / "data" / "pge_style_solar_autumn.csv").read_text().splitlines()
CELLS = sorted({cell for line in CSV for cell in line.split(",")})


@SHORT
@given(data=st.binary(max_size=400))
def test_any_bytes_are_a_green_button_file_or_a_reasoned_refusal(greenbutton, data):
    kind(greenbutton.run(data))


@SHORT
@given(header=st.integers(0, len(CSV) - 1), rows=st.lists(st.lists(st.one_of(
    st.sampled_from(CELLS), st.text(alphabet="0123456789-:/. ,\"APMapm", max_size=12)), min_size=1, max_size=8),
    max_size=12))
def test_csv_rows_of_real_cells_are_read_or_refused(greenbutton, header, rows):
    text = "\n".join(CSV[:header + 1] + [",".join(row) for row in rows]) + "\n"
    kind(greenbutton.run(text.encode()))


@SHORT
@given(cut=st.integers(0, 9962), junk=st.binary(max_size=8))
def test_an_espi_file_cut_anywhere_is_refused_with_a_reason(greenbutton, cut, junk):
    data = (REPO / "tests" / "ems" / "data" / "espi_two_directions.xml").read_bytes()
    kind(greenbutton.run(data[:cut] + junk))


# --- rules and configuration -------------------------------------------------------------------


@SHORT
@given(text=documents(REPO / "config" / "rules.yaml"))
def test_rules_made_of_real_keys_and_values_load_or_are_refused(rules_target, text):
    kind(rules_target.run(text))


@SHORT
@given(text=st.binary(max_size=300))
def test_any_bytes_as_rules_load_or_are_refused(rules_target, text):
    kind(rules_target.run(text))


@SHORT
@given(text=documents(REPO / "config" / "ems.yaml"))
def test_a_configuration_made_of_real_keys_and_values_loads_or_is_refused(config_target, text):
    kind(config_target.run(b"\x00" + text))


@SHORT
@given(text=documents(REPO / "config" / "rates.yaml"))
def test_a_rates_file_made_of_real_keys_and_values_loads_or_is_refused(config_target, text):
    kind(config_target.run(b"\x01" + text))
