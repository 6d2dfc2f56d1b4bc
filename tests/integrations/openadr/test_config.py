"""The ``openadr`` section of ems.yaml: validated with the other sections, errors naming file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ems.cli import read_config
from ems.errors import ConfigError
from integrations.openadr import VenSettings


def write(tmp_path: Path, section: str) -> Path:
    (tmp_path / "ems.yaml").write_text("site: {name: Test}\nopenadr:\n" + section)
    return tmp_path


def test_the_section_is_off_without_a_vtn(tmp_path: Path) -> None:
    (tmp_path / "ems.yaml").write_text("site: {name: Test}\n")
    config = read_config(tmp_path)
    assert VenSettings.from_section(config.sections["openadr"], tmp_path) is None


def test_a_full_section_becomes_settings_with_paths_in_the_config_folder(tmp_path: Path) -> None:
    config = read_config(write(tmp_path, """  vtn_url: https://vtn.example.com/OpenADR2/Simple/2.0b/
  ven_name: home-123
  cert: certs/ven.pem
  key: certs/ven.key
  vtn_fingerprint: "AB:CD:EF:01:23:45:67:89:AB:CD"
  poll_interval_s: 10
"""))
    settings = VenSettings.from_section(config.sections["openadr"], tmp_path)
    assert settings is not None
    assert settings.vtn_url == "https://vtn.example.com/OpenADR2/Simple/2.0b"
    assert (settings.ven_name, settings.program_id, settings.poll_interval_s) == ("home-123", "openadr", 10.0)
    assert settings.cert == str(tmp_path / "certs/ven.pem") and settings.key == str(tmp_path / "certs/ven.key")
    assert settings.vtn_fingerprint == "ab:cd:ef:01:23:45:67:89:ab:cd"


def test_every_error_names_the_file_line_and_key(tmp_path: Path) -> None:
    folder = write(tmp_path, """  vtn_url: vtn.example.com
  poll_interval_s: 0
  colour: blue
""")
    with pytest.raises(ConfigError) as caught:
        read_config(folder)
    text = "\n".join(caught.value.problems)
    main = folder / "ems.yaml"
    assert f"{main}:3: openadr.vtn_url: expected the VTN's http:// or https:// address" in text
    assert f"{main}:4: openadr.poll_interval_s:" in text
    assert f"{main}:5: openadr.colour: unknown key" in text


def test_a_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    folder = write(tmp_path, "  vtn_url: https://vtn.example.com\n  cert: ven.pem\n")
    with pytest.raises(ConfigError) as caught:
        read_config(folder)
    assert "openadr.key: the VEN's certificate and key go together" in "\n".join(caught.value.problems)
