"""Configuration: every problem named with file, line and key path; defaults fill the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
import voluptuous as vol

from ems.config import default_config_dir, load_config
from ems.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "ems.yaml").write_text(text)
    return tmp_path


def test_default_configuration_is_valid():
    from ems.cli import read_config

    config = read_config(default_config_dir())
    assert config.web.port == 8080
    assert config.site.timezone == "America/Los_Angeles"
    assert config.sections["zigbee_se"]["radio"]["type"] == "virtual"


def test_empty_file_gives_defaults(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert config.web.host == "127.0.0.1"
    assert config.store.message_retention_hours == 720


def test_error_names_file_line_and_key_path(tmp_path):
    folder = write(tmp_path, "site:\n  name: Shop\nweb:\n  port: 99999\n")
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    (problem,) = err.value.problems
    assert problem.startswith(f"{folder / 'ems.yaml'}:4: web.port: ")
    assert "found 99999" in problem


def test_every_problem_is_reported_at_once(tmp_path):
    folder = write(tmp_path, "site:\n  timezone: Mars/Olympus\n  colour: red\nstore:\n  message_retention_hours: 2\n")
    with pytest.raises(ConfigError) as err:
        load_config(folder)
    text = "\n".join(err.value.problems)
    assert ":2: site.timezone: unknown time zone" in text
    assert ":3: site.colour: unknown key" in text
    assert ":5: store.message_retention_hours: messages must be kept at least 12 hours" in text


def test_unknown_section_is_an_error(tmp_path):
    folder = write(tmp_path, "sit:\n  name: typo\n")
    with pytest.raises(ConfigError, match=r"ems.yaml:1: sit: unknown section"):
        load_config(folder)


def test_invalid_yaml_names_the_line(tmp_path):
    folder = write(tmp_path, "site:\n  name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"ems.yaml:\d+: not valid YAML"):
        load_config(folder)


def test_duplicate_key_is_an_error(tmp_path):
    folder = write(tmp_path, "web:\n  port: 1\n  port: 2\n")
    with pytest.raises(ConfigError, match="duplicate key 'port'"):
        load_config(folder)


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        load_config(tmp_path / "nope")


def test_integration_section_is_validated_by_its_schema(tmp_path):
    folder = write(tmp_path, "radio:\n  speed: fast\n")
    schema = vol.Schema({vol.Optional("speed", default=1): int})
    with pytest.raises(ConfigError, match=r":2: radio.speed: expected int"):
        load_config(folder, {"radio": schema})


def _alias_bomb(levels: int) -> str:
    lines = ["site: {name: Home}", "a: &a [x,x,x,x,x,x,x,x,x]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{','.join('*' + prev for _ in range(9))}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("text", "says"), [
    (_alias_bomb(7), r"ems.yaml:\d+: the document expands to more than 100000 values"),  # 9**7 values
    ("site: &s {name: *s}\n", r"ems.yaml:1: nested more than 64 levels deep \(or an alias inside itself\)"),
    ("site: " + "[" * 900 + "]" * 900 + "\n", r"ems.yaml:1: nested more than 64 levels deep"),
    ("site: {name: Home}\n" + "#" * (256 * 1024), r"ems.yaml:1: the file is \d+ bytes, larger than the 256 KiB"),
])
def test_a_hostile_configuration_is_refused_naming_the_limit(tmp_path, text, says):
    with pytest.raises(ConfigError, match=says):
        load_config(write(tmp_path, text))


def test_the_node_budget_counts_every_use_of_an_alias(tmp_path):
    from ems.config import MAX_YAML_NODES

    # 9**5 = 59,049 values: within the budget, so a legitimate file with aliases still loads ...
    assert 9 ** 5 < MAX_YAML_NODES < 9 ** 6
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(write(tmp_path, _alias_bomb(5)))
    # ... and one level more is refused before it is built.
    with pytest.raises(ConfigError, match="expands to more than"):
        load_config(write(tmp_path, _alias_bomb(6)))


def test_an_alias_bomb_is_refused_before_any_value_is_built(tmp_path, monkeypatch):
    import ems.config

    built = []
    real_build = ems.config._Builder.build
    monkeypatch.setattr(ems.config._Builder, "build", lambda self, *a: built.append(1) or real_build(self, *a))

    with pytest.raises(ConfigError, match="expands to more than"):
        load_config(write(tmp_path, _alias_bomb(9)))  # 9**9 values once expanded

    assert built == []
