"""The catalogs and the request's language: every string of the sources is translated, pages
follow the browser before sign-in, numbers and dates follow the reader's locale."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from ems.accounts import Accounts, Role
from ems.hub import Hub
from ems.local_text import format_value
from web import i18n
from web.app import create_app
from web.auth import ACCOUNTS

ROOT = Path(__file__).resolve().parents[2]
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None, "t": None, "AccountRejected": None}  # as babel.cfg says
PLACEHOLDER = re.compile(r"%\(\w+\)s|\{\w+\}")
TRANSLATED = sorted(set(i18n.LANGUAGES) - {i18n.DEFAULT})  # the catalogs that must translate everything


def _extracted() -> dict[str, str]:
    """Every msgid the sources hold (as ``pybabel extract -F babel.cfg`` finds them), with where."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, keywords=KEYWORDS
    ):
        msgid = message if isinstance(message, str) else message[0]
        if msgid:
            found.setdefault(msgid, f"{filename}:{lineno}")
    return found


def _catalog(language: str) -> Any:
    with i18n.catalog_path(language).open("rb") as po:
        return read_po(po, locale=language)


@pytest.fixture(scope="module")
def extracted() -> dict[str, str]:
    return _extracted()


@pytest.mark.parametrize("language", sorted(i18n.LANGUAGES))
def test_every_string_of_the_sources_is_in_the_catalog(extracted: dict[str, str], language: str) -> None:
    catalog = _catalog(language)
    missing = {msgid: where for msgid, where in extracted.items() if msgid not in catalog}
    assert not missing, f"not in {language}/messages.po (run pybabel extract/update, see README): {missing}"


def test_the_languages_besides_english_are_spanish_and_chinese() -> None:
    assert TRANSLATED == ["es", "zh"]


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_string_has_a_translation(extracted: dict[str, str], language: str) -> None:
    catalog = _catalog(language)
    untranslated = {msgid: where for msgid, where in extracted.items()
                    if msgid in catalog and not catalog[msgid].string}
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not untranslated, f"no {language} translation for: {untranslated}"
    assert not fuzzy, f"fuzzy (unchecked) {language}: {fuzzy}"


@pytest.mark.parametrize("language", TRANSLATED)
def test_a_translation_keeps_every_placeholder_of_the_english(language: str) -> None:
    for message in _catalog(language):
        if message.id and message.string:
            assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(message.id)), message.id


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_catalogs_hold_no_string_the_sources_dropped(extracted: dict[str, str], language: str) -> None:
    stale = [m.id for m in _catalog(language) if m.id and m.id not in extracted]
    assert not stale, f"obsolete entries in {language} (run pybabel update): {stale}"


def test_the_javascript_strings_are_found_in_the_scripts() -> None:
    msgids = i18n.js_msgids("live.js")

    assert "Meter online" in msgids and "Tier {tier}" in msgids
    assert "Erased nothing" not in msgids


def test_a_page_gets_the_translations_of_its_script_only_in_another_language() -> None:
    token = i18n.use("es")
    try:
        spanish = i18n.js_catalog("live.js")
    finally:
        i18n._LANGUAGE.reset(token)
    assert spanish["locale"] == "es"
    assert spanish["strings"]["Meter online"] == "Medidor conectado"
    assert i18n.js_catalog("live.js") == {"locale": "en", "strings": {}, "temperature_unit": "C"}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("es-MX,es;q=0.9,en;q=0.8", "es"),
        ("en-US,en;q=0.9,es;q=0.8", "en"),
        ("fr-FR,fr;q=0.9,es;q=0.5", "es"),
        ("es;q=0.2, en;q=0.7", "en"),
        ("de, fr", None),
        ("es;q=0", None),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("zh-Hans-CN", "zh"),
        ("en;q=0.5, zh_CN", "zh"),
        ("", None),
    ],
)
def test_accept_language_picks_the_best_language_the_appliance_speaks(header: str, expected: str | None) -> None:
    assert i18n.negotiate(header) == expected


def test_kwh_take_the_decimal_comma_in_spanish() -> None:
    assert format_value("used_kwh", "1234.56", {}, "es", "UTC") == "1.234,6"
    assert format_value("used_kwh", "0.25", {}, "es", "UTC") == "0,2"
    assert format_value("used_kwh", "1234.56", {}, "en", "UTC") == "1,234.6"


def test_kwh_money_and_times_follow_the_chinese_locale() -> None:
    assert format_value("used_kwh", "1234.56", {}, "zh", "UTC") == "1,234.6"
    assert format_value("projected_cost", "1234.5", {"currency": "CNY"}, "zh", "UTC") == "¥1,234.50"
    assert format_value("start", "2024-07-01T23:00:00+00:00", {}, "zh", "America/Los_Angeles") == "7月1日周一 16:00"


def test_money_follows_the_locale_and_names_its_currency() -> None:
    values = {"currency": "USD"}
    assert format_value("projected_cost", "1234.5", values, "en", "UTC") == "$1,234.50"
    assert format_value("projected_cost", "1234.5", values, "es", "UTC") == "1.234,50\xa0US$"


def test_times_are_shown_in_the_site_time_zone_in_the_readers_words() -> None:
    at = "2024-07-01T23:00:00+00:00"  # 4 PM in Los Angeles
    assert format_value("start", at, {}, "en", "America/Los_Angeles") == "Mon, Jul 1, 4:00\u202fPM"
    assert format_value("start", at, {}, "es", "America/Los_Angeles") == "lun, 1 jul, 16:00"


# -- pages over HTTP --------------------------------------------------------------------------------


@pytest.fixture
async def client(hub: Hub, aiohttp_client: Any) -> Any:
    app = create_app(hub)
    app[ACCOUNTS] = Accounts(hub.store, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    client = await aiohttp_client(app)
    await app[ACCOUNTS].create_user("owner", "correct horse battery", Role.OWNER)
    return client


async def test_the_sign_in_page_follows_the_browsers_language(client: Any) -> None:
    page = await client.get("/login", headers={"Accept-Language": "es-ES,es;q=0.9"})
    text = await page.text()

    assert '<html lang="es">' in text
    assert "Iniciar sesión" in text and "Nombre de usuario" in text


async def test_without_a_language_the_sign_in_page_follows_the_site(client: Any) -> None:
    page = await client.get("/login", headers={"Accept-Language": "de-DE"})
    text = await page.text()

    assert '<html lang="en">' in text and "User name" in text


async def test_a_failed_sign_in_says_so_in_the_browsers_language(client: Any) -> None:
    form = await client.get("/login", headers={"Accept-Language": "es"})
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', await form.text()).group(1)
    answer = await client.post("/login", data={"csrf_token": csrf, "username": "owner", "password": "wrong one"},
                               headers={"Accept-Language": "es"})

    assert answer.status == 401
    assert "Nombre de usuario o contraseña incorrectos." in await answer.text()


async def test_a_person_who_picks_chinese_reads_the_dashboard_in_chinese(client: Any) -> None:
    form = await client.get("/login")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', await form.text()).group(1)
    await client.post("/login", data={"csrf_token": csrf, "username": "owner", "password": "correct horse battery"})
    settings = await client.get("/settings")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', await settings.text()).group(1)
    chosen = await client.post("/settings", data={"csrf_token": csrf, "language": "zh"}, allow_redirects=False)

    dashboard = await (await client.get("/")).text()

    assert chosen.status == 303
    assert '<html lang="zh">' in dashboard
    assert "当前需量" in dashboard and "仪表板" in dashboard
    scripts = json.loads(re.search(r'<script type="application/json" id="i18n">(.*?)</script>', dashboard).group(1))
    assert scripts["locale"] == "zh" and scripts["strings"]["Meter online"] == "电表在线"  # the script's strings
