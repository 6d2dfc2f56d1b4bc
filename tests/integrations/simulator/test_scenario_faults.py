"""The scenario's ``faults:`` section: link-fault rates and spells for the meter's virtual HAN,
validated like the rest (a bad value names the file, line and key)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ems.errors import ConfigError
from integrations.simulator import SimulatedHan, load_scenario
from integrations.zigbee.han import LinkFaults


def test_the_faults_section_configures_the_meters_han(tmp_path):
    path = tmp_path / "faults.yaml"
    path.write_text("""name: faults
faults:
  drop: 0.1
  duplicate: 0.05
  reorder: 0.05
  delay: 0.02
  delay_s: 0.3
  seed: 11
  freeze: [{at: 1m, for: 20s}]
  away: [{at: 10m, for: 2h}]
""")
    scenario = load_scenario(path)
    assert scenario.faults["freeze"] == [{"at": timedelta(minutes=1), "for": timedelta(seconds=20)}]
    assert scenario.faults["away"] == [{"at": timedelta(minutes=10), "for": timedelta(hours=2)}]
    han = SimulatedHan(scenario).han
    assert han.faults == LinkFaults(drop=0.1, duplicate=0.05, delay=0.02, delay_s=0.3, reorder=0.05, seed=11)


def test_no_faults_section_means_a_clean_air(tmp_path):
    path = tmp_path / "clean.yaml"
    path.write_text("name: clean\n")
    assert not SimulatedHan(load_scenario(path)).han.faults.any


@pytest.mark.parametrize(("body", "line", "key", "text"), [
    ("faults:\n  seed: 1\n  drop: 1.5\n", 3, "faults.drop", "between 0 and 1"),
    ("faults:\n  freeze:\n    - {at: 1m, for: soon}\n", 3, "faults.freeze.0.for", "duration"),
    ("faults:\n  wobble: 0.1\n", 2, "faults.wobble", "unknown key"),
])
def test_a_bad_value_names_the_file_line_and_key(tmp_path, body, line, key, text):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\n" + body)
    with pytest.raises(ConfigError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert f"{path}:{line + 1}" in message and key in message and text in message


def test_the_example_faults_scenario_loads():
    from pathlib import Path

    scenario = load_scenario(Path(__file__).resolve().parents[3] / "config" / "scenarios" / "faults.yaml")
    assert scenario.faults["drop"] == 0.1 and scenario.faults["away"][0]["for"] == timedelta(minutes=5)
