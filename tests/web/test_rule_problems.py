"""The Rules page's problems in plain words: the validator's English line becomes where, what is
wrong and what to type, in the reader's language (web.rule_problems)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from ems.accounts import Accounts
from ems.errors import ConfigError
from rules import parse_rules
from web import i18n
from web.app import create_app
from web.auth import ACCOUNTS
from web.rule_problems import explain

from .control import home_hub
from .test_control_texts import _sign_in

DEVICES = ["Living room", "Pool pump"]


@pytest.fixture
def spanish() -> Iterator[None]:
    token = i18n.use("es")
    yield
    i18n._LANGUAGE.reset(token)


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_rules(text, "rules.yaml", DEVICES)
    return caught.value.problems


def test_a_word_where_a_whole_number_goes_says_to_type_digits() -> None:
    problems = _problems("devices:\n  Living room: {shed_priority: ninety}\n")
    shown = explain(problems[0], DEVICES)

    assert (shown.line, shown.where) == (2, "device “Living room” · shed_priority")
    assert shown.text == "This must be a whole number. You wrote 'ninety'."
    assert shown.fix == "Type digits only, such as 90."
    assert shown.original == problems[0]  # the validator's line is kept for the log and the API


def test_a_misspelt_device_name_suggests_the_name_in_the_home() -> None:
    shown = explain(_problems("devices:\n  Living rooom: {shed_priority: 90}\n")[0], DEVICES)

    assert shown.text == "There is no device named “Living rooom” in this home."
    assert shown.fix.startswith("Did you mean “Living room”?")


def test_a_yaml_indentation_slip_is_explained_in_spanish(spanish: None) -> None:
    problem = _problems("rules:\n  - name: a\n    action: turn_off\n   - name: b\n")[0]
    assert "did not find expected '-' indicator" in problem
    shown = explain(problem)

    assert shown.line == 4
    assert shown.text == "La sangría de esta línea no encaja con las líneas de arriba."
    assert "espacios" in shown.fix


def test_a_place_in_the_rules_is_named_by_rule_and_condition(spanish: None) -> None:
    text = "rules:\n  - name: a\n    conditions: [{time: {from: '25:00', to: '10:00'}}]\n    action: turn_off\n"
    shown = explain(_problems(text)[0])

    assert shown.where == "regla 1 · condición 1 · time.from"
    assert shown.text == "Aquí va una hora del día. Usted escribió '25:00'."
    assert '"16:30"' in shown.fix


def test_an_unknown_section_names_the_sections_and_the_likely_one() -> None:
    shown = explain(_problems("rulez: []\n")[0])

    assert shown.where == "rulez"
    assert shown.fix == "Did you mean “rules”? The sections are: seasons, devices, rules."


def test_a_phrase_not_recognised_is_shown_as_the_validator_wrote_it() -> None:
    shown = explain("rules.yaml:7: rules.0.action: min_criticality is above max_criticality")

    assert (shown.line, shown.where, shown.fix) == (7, "rule 1 · action", "")
    assert shown.text == "min_criticality is above max_criticality."


async def test_the_rules_page_shows_the_issues_examples_in_plain_spanish(tmp_path: Path, aiohttp_client: Any) -> None:
    bad = "devices:\n  Living rooom: {shed_priority: ninety}\nrules:\n  - name: a\n    action: turn_off\n   - name: b\n"
    async with home_hub(tmp_path) as hub:
        app = create_app(hub)
        app[ACCOUNTS] = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
        client = await aiohttp_client(app)
        await _sign_in(client, "es")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', await (await client.get("/rules")).text()).group(1)
        yaml_slip = await client.post("/rules", data={"csrf_token": csrf, "action": "check", "text": bad})
        typed = await client.post("/rules", data={"csrf_token": csrf, "action": "check",
                                                  "text": bad.replace("   - name: b", "  - name: b")})
        slip_page, typed_page = await yaml_slip.text(), await typed.text()

    assert yaml_slip.status == 422 and typed.status == 422
    assert 'data-line="6"' in slip_page and "La sangría de esta línea no encaja con las líneas de arriba." in slip_page
    assert "Aquí va un número entero. Usted escribió &#39;ninety&#39;." in typed_page
    assert "¿Quiso decir «Living room»?" in typed_page
    for page in (slip_page, typed_page):  # none of the validator's English on the Spanish page
        assert "did not find expected" not in page and "expected int" not in page and "no device named" not in page
